//! The relay's per-packet work in the core, on a server holding 1,000 allocations:
//! - ChannelData from a client: first-byte demux, parse, the channel lookup, the Forward;
//! - a peer datagram on a channel: the lookup and the ChannelData header written in place;
//! - a Send indication: STUN parse, the permission check and the peer policy;
//! - a peer datagram without a channel: the permission check and a Data indication in place;
//! - the peer policy alone, and the ChannelData parse alone.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relay_proto::channel_data::{self, ChannelData};
use relay_proto::policy::{PeerPolicy, PeerPolicyConfig};
use relay_proto::server::ClientAction;
use tern_benches::fixture::{CHANNEL, Fixture, NullHost};

const ALLOCS: usize = 1000;
const SIZE: usize = 100;

fn hot_path(c: &mut Criterion) {
    let mut f = Fixture::new(ALLOCS);
    let now = f.now;
    let tuple = f.clients[ALLOCS / 2];
    let relay = f.relays[ALLOCS / 2];
    let (peer, send_peer) = (f.peer, f.send_peer);
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(1));

    let cd = Fixture::channel_data(SIZE);
    g.bench_function("channel_data_demux_parse", |b| {
        b.iter(|| {
            let p = black_box(&cd[..]);
            let k = channel_data::classify(p[0]);
            black_box((k, ChannelData::parse(p).unwrap().channel()))
        })
    });
    g.bench_function("client_channel_data_to_forward", |b| {
        b.iter(|| {
            let a = f.server.handle_client(now, 0, black_box(tuple), black_box(&cd), &mut NullHost);
            assert!(matches!(a, ClientAction::Forward(_)));
            black_box(a)
        })
    });

    let (mut buf, payload) = Fixture::peer_buffer(SIZE);
    g.bench_function("peer_to_channel_data_header_in_place", |b| {
        b.iter(|| black_box(f.server.handle_peer(now, black_box(relay), black_box(peer), &mut buf, payload.clone())))
    });

    let send = f.send_indication(SIZE);
    g.bench_function("client_send_indication_parse_and_permission", |b| {
        b.iter(|| {
            let a = f.server.handle_client(now, 0, black_box(tuple), black_box(&send), &mut NullHost);
            assert!(matches!(a, ClientAction::Forward(_)));
            black_box(a)
        })
    });
    g.bench_function("peer_permission_check_and_data_indication", |b| {
        b.iter(|| {
            let t = f.server.handle_peer(now, black_box(relay), black_box(send_peer), &mut buf, payload.clone());
            black_box(t.unwrap())
        })
    });

    let policy = PeerPolicy::new(PeerPolicyConfig {
        own_ips: vec!["192.0.2.1".parse().unwrap()],
        relay_ports: Some(49152..=65535),
        ..PeerPolicyConfig::default()
    });
    g.bench_function("peer_policy_check", |b| b.iter(|| black_box(policy.check(black_box(peer)))));
    g.bench_function("is_own_relay_address", |b| b.iter(|| black_box(policy.is_own_relay_address(black_box(relay)))));
    g.finish();
    let _ = CHANNEL;
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
