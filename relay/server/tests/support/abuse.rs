//! What only the security tests need: their relay, a seeded PRNG, the private address the test
//! script sets up, and the addresses stunner's `range-scan` tries in each IPv6 encoding.
//!
//! These tests are `#[ignore]`d in a plain `cargo test`: `scripts/tests.d/45-security.sh` runs
//! them, inside a network namespace of their own where it can, with `TERN_TEST_PRIVATE_IP` set to
//! a non-loopback address (10.x) assigned to a local interface.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ports::LOCALHOST6;
use super::relay::Launch;

impl Launch {
    /// The security tests' relay: the long-term users, listening and relaying on 127.0.0.1 and
    /// ::1, `range` relay ports free on both. Peer-policy flags are the test's to add.
    pub fn dual_stack(range: u16) -> Launch {
        Launch::new().users().listen(&[LOCALHOST6]).range(range).args(&["--no-dtls"])
    }
}

/// The non-loopback local address the test script set up.
pub fn private_ip() -> IpAddr {
    let v = std::env::var("TERN_TEST_PRIVATE_IP")
        .expect("TERN_TEST_PRIVATE_IP is not set: run these tests through scripts/tests.d/45-security.sh");
    v.parse().expect("TERN_TEST_PRIVATE_IP is an IP address")
}

/// A small deterministic PRNG (xorshift64*), so the tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for chunk in b.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Every IPv6 encoding of an IPv4 address that reduces to it: mapped, compatible, NAT64, 6to4.
pub fn v6_encodings(a: Ipv4Addr) -> Vec<IpAddr> {
    let o = a.octets();
    let x = u32::from(a);
    let mut v = vec![IpAddr::V6(a.to_ipv6_mapped())];
    // ::0.0.0.0 and ::0.0.0.1 are :: and ::1, tested as themselves.
    if x > 1 {
        v.push(IpAddr::V6(Ipv6Addr::from(u128::from(x))));
    }
    v.push(IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, (x >> 16) as u16, x as u16)));
    v.push(IpAddr::V6(Ipv6Addr::new(
        0x2002,
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
        0,
        0,
        0,
        0,
        1,
    )));
    v
}

/// SECURITY.md §2.2: the addresses stunner's `range-scan` tries.
pub use relay_proto::policy::STUNNER_RANGE_SCAN as RANGE_SCAN;

/// Each range-scan address and, for the IPv4 ones, each of its IPv6 encodings.
pub fn range_scan_targets() -> Vec<IpAddr> {
    let mut out = Vec::new();
    for s in RANGE_SCAN {
        let ip: IpAddr = s.parse().unwrap();
        out.push(ip);
        if let IpAddr::V4(v4) = ip {
            out.extend(v6_encodings(v4));
        }
    }
    out
}
