//! The same-server relay-to-relay short circuit, through the real binary on loopback: data
//! between two allocations of one server is delivered with the destination's permission checks
//! and with the sender's relay address (as clients were told it) as its source, whether the two
//! allocations live in the same worker or in two.
//!
//! With `external-ip` the relay addresses clients learn (127.0.0.2) have no socket behind them
//! (relay sockets bind 127.0.0.1), so a datagram sent to one through the kernel would be lost:
//! only the short circuit, which maps public to local, can deliver it.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{Client, Launch, Relay, Via};

/// Starts tern-relay with `workers` workers, anonymous access, 64 relay ports.
fn relay(workers: usize, external: bool) -> Relay {
    let mut launch = Launch::new().range(64).args(&[
        "--no-auth",
        "--allow-loopback-peers",
        &format!("--relay-threads={workers}"),
        "--no-stdout-log",
        "--log-file=/dev/null",
    ]);
    if external {
        launch = launch.args(&["--external-ip=127.0.0.2/127.0.0.1"]);
    }
    launch.start()
}

fn scenario(workers: usize, external: bool) {
    let r = relay(workers, external);
    // Eight pairs, so that with two workers some pairs straddle them (SO_REUSEPORT spreads
    // clients by their port; all eight on one side has odds of 1 in 256).
    let mut clients: Vec<(Client, _)> = (0..16)
        .map(|_| {
            let mut c = r.udp();
            let relayed = c.allocate();
            (c, relayed)
        })
        .collect();
    let public_ip = if external { "127.0.0.2" } else { "127.0.0.1" };
    for (_, relayed) in &clients {
        assert_eq!(relayed.ip().to_string(), public_ip);
    }
    for pair in clients.chunks_mut(2) {
        let [(a, ra), (b, rb)] = pair else { unreachable!("16 clients make 8 pairs") };
        let (ra, rb) = (*ra, *rb);
        a.channel_bind(0x4000, rb).result().unwrap();
        // B has no permission for A: nothing may arrive.
        a.send_channel_data(0x4000, b"before permission");
        assert!(b.recv_data(Duration::from_millis(300)).is_none(), "delivered without the destination's permission");
        // With a permission, a Data indication from A's relay address (as clients know it).
        b.create_permission(&[ra]).result().unwrap();
        a.send_channel_data(0x4000, b"hello b");
        assert_eq!(b.recv_data(Duration::from_secs(2)), Some((Via::Peer(ra), b"hello b".to_vec())));
        // With a channel, ChannelData on B's number; and back the other way.
        b.channel_bind(0x4001, ra).result().unwrap();
        a.send_channel_data(0x4000, b"on a channel");
        assert_eq!(b.recv_data(Duration::from_secs(2)), Some((Via::Channel(0x4001), b"on a channel".to_vec())));
        b.send_channel_data(0x4001, b"hello a");
        assert_eq!(a.recv_data(Duration::from_secs(2)), Some((Via::Channel(0x4000), b"hello a".to_vec())));
    }
}

#[test]
fn short_circuit_keeps_permissions_and_source_in_one_worker() {
    scenario(1, false);
}

#[test]
fn short_circuit_keeps_permissions_and_source_across_workers() {
    scenario(2, false);
}

#[test]
fn short_circuit_maps_external_addresses() {
    scenario(2, true);
}
