//! Garbage flood: random bytes, STUN-shaped junk, credential-less and forged TURN requests and
//! bogus ChannelData at 10,000 datagrams per second for 20 s against a real `tern-relay`, while
//! a legitimate allocation relays a paced flow both ways. The flow must lose nothing, the
//! relay's resident memory must stay flat, and the process must live and keep answering.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use relay_proto::stun::{AttrType, Class, MessageType, Method};
use support::abuse::Rng;
use support::{Client, Creds, Launch, Proto, binding_request, build};

const PPS: u64 = 10_000;
const FLOOD: Duration = Duration::from_secs(20);
const WARMUP: Duration = Duration::from_secs(2);
/// Legitimate datagrams per second in each direction.
const FLOW_PPS: u64 = 50;
/// Resident memory may grow this much over the flood (allocator noise), KiB.
const RSS_SLACK_KIB: u64 = 2048;

/// One junk datagram of a random kind.
fn junk(rng: &mut Rng, buf: &mut Vec<u8>) {
    buf.clear();
    match rng.below(8) {
        // Random bytes.
        0 | 1 => {
            buf.resize(1 + rng.below(300) as usize, 0);
            rng.fill(buf);
        }
        // A STUN header with a random type and random TLVs, lengths sometimes lying.
        2 | 3 => {
            let typ = (rng.next_u64() as u16) & 0x3FFF;
            buf.extend_from_slice(&typ.to_be_bytes());
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&0x2112_A442u32.to_be_bytes());
            buf.resize(20, 0);
            rng.fill(&mut buf[8..20]);
            for _ in 0..rng.below(6) {
                let t = rng.next_u64() as u16;
                let len = rng.below(64) as usize;
                buf.extend_from_slice(&t.to_be_bytes());
                let declared = if rng.below(5) == 0 { rng.next_u64() as u16 } else { len as u16 };
                buf.extend_from_slice(&declared.to_be_bytes());
                let at = buf.len();
                buf.resize(at + ((len + 3) & !3), 0);
                rng.fill(&mut buf[at..at + len]);
            }
            let body = (buf.len() - 20) as u16;
            let body = if rng.below(4) == 0 { body.wrapping_add(4) } else { body };
            buf[2..4].copy_from_slice(&body.to_be_bytes());
        }
        // An Allocate without credentials: a 401 each.
        4 => {
            let mut tid = [0u8; 12];
            rng.fill(&mut tid);
            buf.extend_from_slice(&build(Method::ALLOCATE, Class::Request, tid, |w| {
                w.add_requested_transport(17);
            }));
        }
        // A request with a forged nonce and integrity.
        5 => {
            let mut tid = [0u8; 12];
            rng.fill(&mut tid);
            let method = [Method::ALLOCATE, Method::REFRESH, Method::CREATE_PERMISSION, Method::CHANNEL_BIND]
                [rng.below(4) as usize];
            let mut key = [0u8; 16];
            rng.fill(&mut key);
            buf.extend_from_slice(&build(method, Class::Request, tid, |w| {
                w.add_requested_transport(17);
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "127.0.0.1:9".parse().unwrap());
                w.add_text(AttrType::USERNAME, "alice");
                w.add_text(AttrType::REALM, "tern.test");
                w.add_text(AttrType::NONCE, "obMatJos2wAAAforgedforgedforged00");
                w.add_message_integrity(&key);
            }));
        }
        // ChannelData on random channels, and stunner's memoryleak probe (length 35510, 3 bytes).
        6 => {
            let ch = 0x4000 + rng.below(0x1000) as u16;
            buf.extend_from_slice(&ch.to_be_bytes());
            if rng.below(2) == 0 {
                buf.extend_from_slice(&35510u16.to_be_bytes());
                buf.extend_from_slice(b"xxx");
            } else {
                let n = rng.below(200) as usize;
                buf.extend_from_slice(&(n as u16).to_be_bytes());
                buf.resize(4 + n, 0xAB);
            }
        }
        // Send indications from strangers (no allocation on their 5-tuple).
        _ => {
            let mut tid = [0u8; 12];
            rng.fill(&mut tid);
            buf.extend_from_slice(&build(Method::SEND, Class::Indication, tid, |w| {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "127.0.0.1:9".parse().unwrap());
                w.add(AttrType::DATA, b"junk");
            }));
        }
    }
}

/// Sends junk at `PPS` until `stop`, from 16 source ports on 127.0.0.2 (an address without a
/// permission), to the listening address and to the relayed address (as a stranger peer would).
fn flood(targets: Vec<SocketAddr>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let socks: Vec<UdpSocket> = (0..16)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.2:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut rng = Rng::new(0x5EED_F100D);
    let mut buf = Vec::with_capacity(2048);
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut sink = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let due = t0.elapsed().as_micros() as u64 * PPS / 1_000_000;
        // Never a burst of more than 50 ms worth when the sender falls behind.
        let due = due.min(n + PPS / 20);
        while n < due {
            junk(&mut rng, &mut buf);
            let s = &socks[(n % 16) as usize];
            let _ = s.send_to(&buf, targets[(n % targets.len() as u64) as usize]);
            n += 1;
        }
        // Throw away the 401s and 420s, so the sockets do not fill up.
        for s in &socks {
            while s.recv_from(&mut sink).is_ok() {}
        }
        sent.store(n, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
#[ignore = "needs a running relay; scripts/tests.d/45-security.sh runs it"]
fn a_garbage_flood_neither_disturbs_a_relayed_flow_nor_grows_memory() {
    let mut relay = Launch::dual_stack(16).args(&["--allow-loopback-peers"]).start();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_nonblocking(true).unwrap();
    let mut c = Client::new(Proto::Udp, relay.addr).with_creds(Creds::user("alice"));
    let relayed = c.try_allocate().unwrap();
    c.channel_bind(0x4000, peer.local_addr().unwrap()).result().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let targets = vec![relay.addr, relay.addr, relay.addr, relayed];
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || flood(targets, stop, sent))
    };
    let rss_start = relay.rss_kib();
    let cpu_start = relay.cpu_ticks();
    std::thread::sleep(WARMUP);
    let rss_warm = relay.rss_kib();

    // The legitimate flow: numbered datagrams both ways, paced, while the flood goes on.
    let t0 = Instant::now();
    let (mut to_peer, mut to_client) = (BTreeSet::new(), BTreeSet::new());
    let mut seq = 0u32;
    let mut buf = [0u8; 2048];
    let mut rss_max = rss_warm;
    let mut next_sample = Instant::now();
    while t0.elapsed() < FLOOD {
        let due = (t0.elapsed().as_millis() as u64 * FLOW_PPS / 1000) as u32;
        while seq < due {
            c.send_channel_data(0x4000, &seq.to_be_bytes());
            peer.send_to(&seq.to_be_bytes(), relayed).unwrap();
            seq += 1;
        }
        while let Ok((n, _)) = peer.recv_from(&mut buf) {
            if n == 4 {
                to_peer.insert(u32::from_be_bytes(buf[..4].try_into().unwrap()));
            }
        }
        while let Some(d) = c.recv_payload(Duration::from_millis(5)) {
            if d.len() == 4 {
                to_client.insert(u32::from_be_bytes(d[..4].try_into().unwrap()));
            }
        }
        if Instant::now() >= next_sample {
            rss_max = rss_max.max(relay.rss_kib());
            next_sample += Duration::from_secs(1);
        }
    }
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    let flood_secs = (WARMUP + t0.elapsed()).as_secs_f64();
    // The last datagrams in flight.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && (to_peer.len() < seq as usize || to_client.len() < seq as usize) {
        while let Ok((n, _)) = peer.recv_from(&mut buf) {
            if n == 4 {
                to_peer.insert(u32::from_be_bytes(buf[..4].try_into().unwrap()));
            }
        }
        while let Some(d) = c.recv_payload(Duration::from_millis(20)) {
            if d.len() == 4 {
                to_client.insert(u32::from_be_bytes(d[..4].try_into().unwrap()));
            }
        }
    }
    let rss_end = relay.rss_kib();
    let cpu = (relay.cpu_ticks() - cpu_start) as f64 / 100.0 / flood_secs;
    let junk_sent = sent.load(Ordering::Relaxed);
    println!(
        "flood: {junk_sent} junk datagrams in {flood_secs:.1} s ({:.0}/s), relay CPU {:.0}% of a core; flow {seq} \
         each way, {} reached the peer, {} reached the client; VmRSS {rss_start} KiB at start, {rss_warm} after \
         warm-up, {rss_max} max, {rss_end} at the end",
        junk_sent as f64 / flood_secs,
        cpu * 100.0,
        to_peer.len(),
        to_client.len()
    );
    assert!(relay.alive(), "the relay died under the flood:\n{}", relay.log_text());
    assert!(junk_sent as f64 >= 0.75 * PPS as f64 * flood_secs, "the flood fell short: {junk_sent} datagrams");
    assert_eq!(to_peer.len(), seq as usize, "client-to-peer datagrams lost under the flood");
    assert_eq!(to_client.len(), seq as usize, "peer-to-client datagrams lost under the flood");
    assert!(
        rss_end <= rss_warm + RSS_SLACK_KIB && rss_max <= rss_warm + RSS_SLACK_KIB,
        "VmRSS grew from {rss_warm} KiB to {rss_max} KiB (max) / {rss_end} KiB (end)"
    );
    // Still answering.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    probe.send_to(&binding_request([3; 12]), relay.addr).unwrap();
    let n = probe.recv(&mut buf).expect("a Binding answer after the flood");
    assert_eq!(&buf[..2], &MessageType::new(Method::BINDING, Class::Success).to_u16().to_be_bytes());
    assert!(n >= 32);
}
