//! The STUN codec on RFC 5769's sample request (§2.1): decode it, verify its
//! MESSAGE-INTEGRITY and FINGERPRINT, and encode a Binding success response; plus the long-term
//! vector (§2.4) and a whole Binding request through the server core.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use relay_proto::server::{Server, ServerConfig};
use relay_proto::stun::{AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId};
use relay_proto::types::FiveTuple;
use serde_json::Value;
use tern_benches::fixture::NullHost;

fn vector(name_prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let v: Value = serde_json::from_str(include_str!("../../relay/proto/tests/data/rfc5769.json")).unwrap();
    let v =
        v["vectors"].as_array().unwrap().iter().find(|v| v["name"].as_str().unwrap().starts_with(name_prefix)).unwrap();
    let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    (hex(v["hex"].as_str().unwrap()), hex(v["key_hex"].as_str().unwrap()))
}

fn codec(c: &mut Criterion) {
    let (req, key) = vector("2.1");
    let mut g = c.benchmark_group("rfc5769");
    g.bench_function("decode_request", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&req)).unwrap();
            black_box((m.username().unwrap(), m.software().unwrap()))
        })
    });
    let m = Message::parse(&req).unwrap();
    g.bench_function("verify_integrity_and_fingerprint", |b| {
        b.iter(|| {
            black_box(&m).verify_integrity(black_box(&key)).unwrap();
            black_box(black_box(&m).fingerprint_ok())
        })
    });
    let (lt, lt_key) = vector("2.4");
    let lt = Message::parse(&lt).unwrap();
    g.bench_function("verify_long_term_integrity", |b| {
        b.iter(|| black_box(&lt).verify_integrity(black_box(&lt_key)).unwrap())
    });
    let tid = m.transaction_id();
    let client: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let mut out = [0u8; 128];
    g.bench_function("encode_binding_success", |b| {
        b.iter(|| {
            let mut w = MessageWriter::new(&mut out, MessageType::new(Method::BINDING, Class::Success), black_box(tid));
            w.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, black_box(client));
            w.add_fingerprint();
            black_box(w.finish().unwrap())
        })
    });
    g.finish();

    // The whole Binding exchange in the core: parse, check, answer, queue.
    let mut server = Server::new(ServerConfig::new("bench.local", 49152..=65535), [1; 32], Instant::now());
    let tuple = FiveTuple::udp(client, "192.0.2.2:3478".parse().unwrap());
    let mut binding = [0u8; 64];
    let n = MessageWriter::new(&mut binding, MessageType::new(Method::BINDING, Class::Request), TransactionId([4; 12]))
        .finish()
        .unwrap();
    let now = Instant::now();
    c.bench_function("server/binding_request", |b| {
        b.iter(|| {
            server.handle_client(now, 0, tuple, black_box(&binding[..n]), &mut NullHost);
            black_box(server.poll_transmit())
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
