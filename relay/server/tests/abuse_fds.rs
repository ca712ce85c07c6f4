//! Descriptor exhaustion: a `tern-relay` started under a low `ulimit -n` is filled with
//! allocations (each holds a relay socket) until it answers 508, then TCP clients connect and
//! wait in the listen backlog. While the process has no descriptor left it must not spin (a mio
//! accept loop that hits EMFILE stays readable: SECURITY.md §5), UDP must still be served, and
//! once allocations end the waiting connections are accepted and answered.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::{Client, Creds, Launch, Proto, binding_request};

const NOFILE: u32 = 48;
/// CPU the relay may use in the measured window while out of descriptors: 10% of one core.
const MAX_CPU_SHARE: f64 = 0.10;
const WINDOW: Duration = Duration::from_secs(3);
/// USER_HZ on Linux.
const TICKS_PER_SEC: f64 = 100.0;

fn binding_over(s: &mut TcpStream, tid: [u8; 12], timeout: Duration) -> bool {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 32];
    s.read_exact(&mut buf).is_ok() && buf[8..20] == tid
}

#[test]
#[ignore = "needs a running relay; scripts/tests.d/45-security.sh runs it"]
fn running_out_of_descriptors_neither_spins_nor_wedges() {
    let mut relay = Launch::dual_stack(256).args(&["--relay-threads=1"]).nofile(NOFILE).start();
    let at_start = relay.fd_count();

    // Fill the descriptor table with allocations.
    let mut allocs = Vec::new();
    let refusal = loop {
        let mut c = Client::new(Proto::Udp, relay.addr).with_creds(Creds::user("alice"));
        match c.try_allocate() {
            Ok(_) => allocs.push(c),
            Err(code) => break code,
        }
        assert!(allocs.len() < NOFILE as usize, "more allocations than descriptors");
    };
    assert_eq!(refusal, 508, "out of descriptors, an Allocate gets 508");
    let full = relay.fd_count();
    assert!(full + 2 >= NOFILE as usize, "{full} of {NOFILE} descriptors in use after {} allocations", allocs.len());

    // TCP clients connect (the kernel completes the handshake) and send a Binding the relay
    // cannot accept yet.
    let mut waiting: Vec<(TcpStream, [u8; 12])> = (0..3u8)
        .map(|i| {
            let mut s = TcpStream::connect(relay.addr).unwrap();
            let tid = [0xF0 | i; 12];
            s.write_all(&binding_request(tid)).unwrap();
            (s, tid)
        })
        .collect();

    // No spin while the listener stays readable and accept() fails.
    let t0 = relay.cpu_ticks();
    let w0 = Instant::now();
    std::thread::sleep(WINDOW);
    let cpu = (relay.cpu_ticks() - t0) as f64 / TICKS_PER_SEC / w0.elapsed().as_secs_f64();
    println!(
        "descriptors: {at_start} at start, {full} with {} allocations; CPU while out of descriptors: {:.1}% of a core",
        allocs.len(),
        cpu * 100.0
    );
    assert!(cpu <= MAX_CPU_SHARE, "the relay burns {:.0}% of a core while out of descriptors", cpu * 100.0);
    assert!(relay.alive());

    // UDP is still served.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    probe.send_to(&binding_request([9; 12]), relay.addr).unwrap();
    let mut buf = [0u8; 64];
    assert!(probe.recv(&mut buf).is_ok(), "UDP Binding unanswered while out of descriptors");

    // Free descriptors: the waiting connections are accepted and answered, and allocating
    // works again.
    for mut c in allocs.drain(..10) {
        c.refresh(0).result().unwrap();
    }
    for (s, tid) in &mut waiting {
        assert!(binding_over(s, *tid, Duration::from_secs(5)), "a waiting TCP client was never served");
    }
    let mut c = Client::new(Proto::Tcp, relay.addr).with_creds(Creds::user("bob"));
    assert!(c.try_allocate().is_ok(), "allocating after descriptors came back");
    assert!(relay.alive());
}
