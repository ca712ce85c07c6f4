//! The peer policy: which peer addresses a client may reach through the relay.
//!
//! One function decides everywhere a peer address enters state or triggers egress:
//! CreatePermission (by IP), ChannelBind, Send and ChannelData (by IP and port). It follows
//! `SECURITY.md` §2.4:
//!
//! 1. Canonicalise: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
//!    (`64:ff9b::/96`) and 6to4 (`2002:AABB:CCDD::/48`) addresses reduce to their IPv4 address,
//!    and every IPv4 rule applies to it. Ranges are compared as integers, never byte-wise.
//! 2. Hard deny, which `allowed-peer-ip` cannot lift: unspecified, loopback (only
//!    `allow-loopback-peers` lifts it), link-local (169.254.169.254, the cloud metadata address,
//!    is in it), ULA, site-local, multicast, 240/4 and broadcast.
//! 3. The relay's own addresses: allowed only on ports inside the relay range, so that two
//!    clients of this server can reach each other's relayed addresses; every other port is
//!    denied (the CVE-2018-4059 chain into a local management port, nested TURN).
//! 4. `allowed-peer-ip` allows; `denied-peer-ip` denies (allowed wins, as in coturn).
//! 5. Default deny, overridable by `allowed-peer-ip`: RFC 1918, 100.64/10 and the special and
//!    documentation ranges of both families (local-use NAT64 `64:ff9b:1::/48` among them).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

/// The addresses the `stunner` toolkit's `range-scan` tries (SECURITY.md §2.2): every one must
/// be refused by the default policy. Tests in this crate and the relay's abuse tests use it.
pub const STUNNER_RANGE_SCAN: [&str; 31] = [
    "0.0.0.0",
    "::",
    "127.0.0.1",
    "127.0.0.8",
    "127.255.255.254",
    "::1",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "169.254.0.1",
    "169.254.254.255",
    "224.0.0.1",
    "239.255.255.254",
    "100.64.0.0",
    "100.127.255.254",
    "192.0.0.1",
    "192.0.0.254",
    "192.0.2.1",
    "192.0.2.254",
    "198.18.0.1",
    "198.19.255.254",
    "198.51.100.1",
    "198.51.100.254",
    "203.0.113.1",
    "203.0.113.254",
    "240.0.0.1",
    "255.255.255.255",
    "169.254.169.254",
];

/// Why a peer was refused. Counted and logged by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// 0.0.0.0/8 or `::`.
    Unspecified,
    /// 127/8 or `::1`, without `allow-loopback-peers`.
    Loopback,
    /// 169.254/16 or fe80::/10.
    LinkLocal,
    /// fc00::/7 or fec0::/10.
    UniqueLocal,
    /// 224/4 or ff00::/8.
    Multicast,
    /// 240/4 and 255.255.255.255.
    Reserved,
    /// One of the relay's own addresses, on a port outside the relay range.
    OwnAddress,
    /// A private, shared or documentation range not listed in `allowed-peer-ip`.
    Private,
    /// Listed in `denied-peer-ip`.
    DeniedByConfig,
}

impl DenyReason {
    /// Every reason, for metrics.
    pub const ALL: [DenyReason; 9] = [
        DenyReason::Unspecified,
        DenyReason::Loopback,
        DenyReason::LinkLocal,
        DenyReason::UniqueLocal,
        DenyReason::Multicast,
        DenyReason::Reserved,
        DenyReason::OwnAddress,
        DenyReason::Private,
        DenyReason::DeniedByConfig,
    ];

    /// Snake-case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Unspecified => "unspecified",
            DenyReason::Loopback => "loopback",
            DenyReason::LinkLocal => "link_local",
            DenyReason::UniqueLocal => "unique_local",
            DenyReason::Multicast => "multicast",
            DenyReason::Reserved => "reserved",
            DenyReason::OwnAddress => "own_address",
            DenyReason::Private => "private",
            DenyReason::DeniedByConfig => "denied_peer_ip",
        }
    }

    /// Index into [`DenyReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive range in the canonical 128-bit space (IPv4 as `::ffff:a.b.c.d`).
///
/// The ends are canonicalised like peers, so `::ffff:10.0.0.0-::ffff:10.255.255.255` is
/// `10.0.0.0-10.255.255.255`. A range whose ends canonicalise to different families (or out of
/// order), such as `64:ff9b::-64:ff9b::1:0:0`, keeps its ends as written ("raw"): it matches the
/// peers whose canonical form is inside it and, as a `denied-peer-ip` entry, also those written
/// inside it, so no entry of the operator's is ever dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    start: u128,
    end: u128,
    raw: bool,
}

impl AddrRange {
    /// A range from `start` to `end` inclusive. `None` if the ends are of different families
    /// or `start > end`, as written.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<Self> {
        if start.is_ipv4() != end.is_ipv4() || key(start) > key(end) {
            return None;
        }
        let (s, e) = (canonical(start), canonical(end));
        if s.is_ipv4() == e.is_ipv4() && key(s) <= key(e) {
            return Some(AddrRange { start: key(s), end: key(e), raw: false });
        }
        Some(AddrRange { start: key(start), end: key(end), raw: true })
    }

    /// A single address.
    pub fn single(ip: IpAddr) -> Self {
        let k = key(canonical(ip));
        AddrRange { start: k, end: k, raw: false }
    }

    fn contains(&self, k: u128) -> bool {
        self.start <= k && k <= self.end
    }

    /// As an `allowed-peer-ip` entry: the peer's canonical form is inside.
    fn allows(&self, canonical: u128) -> bool {
        self.contains(canonical)
    }

    /// As a `denied-peer-ip` entry: the canonical form is inside, or, for a raw range, the form
    /// the client wrote.
    fn denies(&self, canonical: u128, written: u128) -> bool {
        self.contains(canonical) || (self.raw && self.contains(written))
    }
}

/// The policy's inputs, all from the configuration.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicyConfig {
    /// `allow-loopback-peers`.
    pub allow_loopback: bool,
    /// `allowed-peer-ip` ranges.
    pub allowed: Vec<AddrRange>,
    /// `denied-peer-ip` ranges.
    pub denied: Vec<AddrRange>,
    /// The relay's own addresses: listening, relay and external IPs.
    pub own_ips: Vec<IpAddr>,
    /// `min-port..=max-port`.
    pub relay_ports: Option<RangeInclusive<u16>>,
    /// Turn the default-deny tier (private and documentation ranges) off, for pure coturn
    /// behaviour.
    pub allow_private_by_default: bool,
    /// Every other address of the host the relay runs on.
    pub host_ips: Vec<IpAddr>,
    /// The relay's own service ports (listening, TLS, metrics, admin): never a peer on any host
    /// address, whatever `allowed-peer-ip` says (the CVE-2018-4059 chain into a local admin port).
    pub service_ports: Vec<u16>,
}

/// The compiled peer policy.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    cfg: PeerPolicyConfig,
    own: Vec<u128>,
    host: Vec<u128>,
}

impl PeerPolicy {
    /// Compiles the policy.
    pub fn new(cfg: PeerPolicyConfig) -> Self {
        let mut own: Vec<u128> = cfg.own_ips.iter().map(|ip| key(canonical(*ip))).collect();
        own.sort_unstable();
        own.dedup();
        let mut host: Vec<u128> = cfg.host_ips.iter().map(|ip| key(canonical(*ip))).collect();
        host.sort_unstable();
        host.dedup();
        PeerPolicy { cfg, own, host }
    }

    /// Whether a permission may be installed for `ip` (CreatePermission, ChannelBind).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), DenyReason> {
        self.decide(ip, None)
    }

    /// Whether a datagram may leave for `peer` (Send, ChannelData, ChannelBind's peer).
    pub fn check(&self, peer: SocketAddr) -> Result<(), DenyReason> {
        self.decide(peer.ip(), Some(peer.port()))
    }

    /// Whether `peer` is one of the relay's own addresses on a port in the relay range: a
    /// packet to it can be delivered to the allocation inside the server.
    pub fn is_own_relay_address(&self, peer: SocketAddr) -> bool {
        let k = key(canonical(peer.ip()));
        self.own.binary_search(&k).is_ok() && self.in_relay_range(peer.port())
    }

    fn in_relay_range(&self, port: u16) -> bool {
        self.cfg.relay_ports.as_ref().is_some_and(|r| r.contains(&port))
    }

    fn decide(&self, ip: IpAddr, port: Option<u16>) -> Result<(), DenyReason> {
        let written = key(ip);
        let ip = canonical(ip);
        if let Some(reason) = hard_deny(ip)
            && !(reason == DenyReason::Loopback && self.cfg.allow_loopback)
        {
            return Err(reason);
        }
        let k = key(ip);
        if self.own.binary_search(&k).is_ok() {
            return match port {
                None => Ok(()),
                Some(p) if self.in_relay_range(p) => Ok(()),
                // On a development box that allows loopback peers, a loopback relay address is
                // a loopback peer like any other.
                Some(_) if ip.is_loopback() && self.cfg.allow_loopback => Ok(()),
                Some(_) => Err(DenyReason::OwnAddress),
            };
        }
        if let Some(p) = port
            && self.cfg.service_ports.contains(&p)
            && self.host.binary_search(&k).is_ok()
        {
            return Err(DenyReason::OwnAddress);
        }
        if self.cfg.allowed.iter().any(|r| r.allows(k)) {
            return Ok(());
        }
        if self.cfg.denied.iter().any(|r| r.denies(k, written)) {
            return Err(DenyReason::DeniedByConfig);
        }
        if !self.cfg.allow_private_by_default && is_default_denied(ip) {
            return Err(DenyReason::Private);
        }
        Ok(())
    }
}

/// Reduces every IPv4-in-IPv6 form to its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible ::a.b.c.d (deprecated), except :: and ::1 themselves.
    if s[..6].iter().all(|&x| x == 0) && u32::from(low32) > 1 {
        return IpAddr::V4(low32);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return IpAddr::V4(low32);
    }
    // 6to4 2002:AABB:CCDD::/48.
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    IpAddr::V6(v6)
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The hard-deny tier, on a canonical address.
fn hard_deny(ip: IpAddr) -> Option<DenyReason> {
    match ip {
        IpAddr::V4(v4) => {
            if in_v4(v4, [0, 0, 0, 0], 8) {
                Some(DenyReason::Unspecified)
            } else if in_v4(v4, [127, 0, 0, 0], 8) {
                Some(DenyReason::Loopback)
            } else if in_v4(v4, [169, 254, 0, 0], 16) {
                Some(DenyReason::LinkLocal)
            } else if in_v4(v4, [224, 0, 0, 0], 4) {
                Some(DenyReason::Multicast)
            } else if in_v4(v4, [240, 0, 0, 0], 4) {
                Some(DenyReason::Reserved)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() {
                Some(DenyReason::Unspecified)
            } else if v6.is_loopback() {
                Some(DenyReason::Loopback)
            } else if in_v6(v6, Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10) {
                Some(DenyReason::LinkLocal)
            } else if in_v6(v6, Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7)
                || in_v6(v6, Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10)
            {
                Some(DenyReason::UniqueLocal)
            } else if in_v6(v6, Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8) {
                Some(DenyReason::Multicast)
            } else {
                None
            }
        }
    }
}

/// The default-deny tier, on a canonical address.
fn is_default_denied(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => [
            ([10, 0, 0, 0], 8),
            ([172, 16, 0, 0], 12),
            ([192, 168, 0, 0], 16),
            ([100, 64, 0, 0], 10),
            ([192, 0, 0, 0], 24),
            ([192, 0, 2, 0], 24),
            ([198, 18, 0, 0], 15),
            ([198, 51, 100, 0], 24),
            ([203, 0, 113, 0], 24),
            ([192, 88, 99, 0], 24),
        ]
        .iter()
        .any(|(net, p)| in_v4(v4, *net, *p)),
        IpAddr::V6(v6) => [
            // Documentation (RFC 3849, RFC 9637).
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
            (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
            // Discard-only (RFC 6666).
            (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
            // IETF protocol assignments, Teredo among them (RFC 2928, RFC 4380).
            (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
            // Local-use NAT64 (RFC 8215): a translator inside the network would reach its IPv4
            // side, and the embedding depends on the operator's prefix length.
            (Ipv6Addr::new(0x64, 0xff9b, 0x1, 0, 0, 0, 0, 0), 48),
            // SRv6 segment identifiers (RFC 9602).
            (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16),
            // The rest of ::/8 after canonicalisation (IPv4-translated ::ffff:0:a.b.c.d and
            // other reserved forms): never a routable peer.
            (Ipv6Addr::UNSPECIFIED, 8),
        ]
        .iter()
        // `::1` is in ::/8 too, but it is loopback: the hard tier, which `allow-loopback-peers` lifts.
        .any(|(net, p)| in_v6(v6, *net, *p) && !v6.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn default_policy() -> PeerPolicy {
        PeerPolicy::new(PeerPolicyConfig {
            own_ips: vec!["198.51.100.10".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            relay_ports: Some(49152..=65535),
            ..Default::default()
        })
    }

    /// `a` and every IPv6 form that embeds it. The IPv4-compatible form of 0.0.0.0 and 0.0.0.1
    /// would be `::` and `::1`, which are addresses of their own, so those two have none.
    fn encodings(a: Ipv4Addr) -> Vec<IpAddr> {
        let o = a.octets();
        let x = u32::from(a);
        let compat = IpAddr::V6(Ipv6Addr::from(u128::from(x)));
        vec![
            IpAddr::V4(a),
            IpAddr::V6(a.to_ipv6_mapped()),
            if x > 1 { compat } else { IpAddr::V4(a) },
            IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, (x >> 16) as u16, x as u16)),
            IpAddr::V6(Ipv6Addr::new(
                0x2002,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
                0,
                0,
                0,
                0,
                1,
            )),
        ]
    }

    #[test]
    fn stunner_range_scan_targets_are_all_refused_by_default() {
        let p = default_policy();
        for t in STUNNER_RANGE_SCAN.iter().chain(&[
            "fe80::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "64:ff9b:1::a00:1",
            "5f00::1",
            "::ffff:0:a00:1",
            "100::1",
            "2001::1",
        ]) {
            let ip: IpAddr = t.parse().unwrap();
            assert!(p.check(SocketAddr::new(ip, 80)).is_err(), "{t} allowed");
            assert!(p.check_ip(ip).is_err(), "{t} allowed by IP");
        }
    }

    #[test]
    fn public_peers_are_allowed() {
        let p = default_policy();
        for t in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(p.check(SocketAddr::new(t.parse().unwrap(), 443)), Ok(()), "{t}");
        }
    }

    #[test]
    fn own_address_only_inside_the_relay_range() {
        let p = default_policy();
        let own: IpAddr = "198.51.100.10".parse().unwrap();
        assert_eq!(p.check(SocketAddr::new(own, 50000)), Ok(()));
        assert_eq!(p.check(SocketAddr::new(own, 3478)), Err(DenyReason::OwnAddress));
        assert_eq!(p.check(SocketAddr::new(own, 9641)), Err(DenyReason::OwnAddress));
        assert_eq!(p.check_ip(own), Ok(()));
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 10).to_ipv6_mapped());
        assert_eq!(p.check(SocketAddr::new(mapped, 22)), Err(DenyReason::OwnAddress));
        assert!(p.is_own_relay_address(SocketAddr::new(own, 50000)));
    }

    #[test]
    fn service_ports_on_any_host_address_are_never_peers() {
        let host: IpAddr = "10.0.0.5".parse().unwrap();
        let p = PeerPolicy::new(PeerPolicyConfig {
            allowed: vec![AddrRange::single(host)],
            host_ips: vec![host],
            service_ports: vec![3478, 9641],
            ..Default::default()
        });
        assert_eq!(p.check(SocketAddr::new(host, 9641)), Err(DenyReason::OwnAddress));
        assert_eq!(p.check("[::ffff:10.0.0.5]:3478".parse().unwrap()), Err(DenyReason::OwnAddress));
        assert_eq!(p.check(SocketAddr::new(host, 5432)), Ok(()), "allowed-peer-ip still opens other ports");
        assert_eq!(p.check_ip(host), Ok(()));
    }

    #[test]
    fn allowed_peer_ip_lifts_the_default_tier_but_not_the_hard_one() {
        let p = PeerPolicy::new(PeerPolicyConfig {
            allowed: vec![
                AddrRange::new("10.0.0.0".parse().unwrap(), "10.0.0.255".parse().unwrap()).unwrap(),
                AddrRange::single("169.254.169.254".parse().unwrap()),
            ],
            denied: vec![AddrRange::new("10.0.0.0".parse().unwrap(), "10.255.255.255".parse().unwrap()).unwrap()],
            ..Default::default()
        });
        assert_eq!(p.check_ip("10.0.0.7".parse().unwrap()), Ok(()));
        assert_eq!(p.check_ip("::ffff:10.0.0.7".parse().unwrap()), Ok(()));
        assert_eq!(p.check_ip("10.0.1.7".parse().unwrap()), Err(DenyReason::DeniedByConfig));
        assert_eq!(p.check_ip("169.254.169.254".parse().unwrap()), Err(DenyReason::LinkLocal));
    }

    #[test]
    fn allow_loopback_lifts_only_loopback() {
        let p = PeerPolicy::new(PeerPolicyConfig {
            allow_loopback: true,
            own_ips: vec!["127.0.0.1".parse().unwrap()],
            relay_ports: Some(49152..=65535),
            ..Default::default()
        });
        assert_eq!(p.check("127.0.0.1:34800".parse().unwrap()), Ok(()));
        assert_eq!(p.check("[::ffff:127.0.0.1]:80".parse().unwrap()), Ok(()));
        assert_eq!(p.check("[::1]:80".parse().unwrap()), Ok(()));
        assert_eq!(p.check("0.0.0.0:80".parse().unwrap()), Err(DenyReason::Unspecified));
        assert_eq!(p.check("169.254.169.254:80".parse().unwrap()), Err(DenyReason::LinkLocal));
    }

    #[test]
    fn ranges_compare_as_integers_not_bytes() {
        // coturn 6c13608c: a per-byte compare under-blocked non-prefix-aligned IPv6 ranges.
        let r = AddrRange::new("2001:db8::ff00".parse().unwrap(), "2001:db8::1:00ff".parse().unwrap()).unwrap();
        assert!(r.contains(key("2001:db8::ffff".parse().unwrap())));
        assert!(r.contains(key("2001:db8::1:0001".parse().unwrap())));
        assert!(!r.contains(key("2001:db8::1:0100".parse().unwrap())));
        assert!(AddrRange::new("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()).is_none());
        assert!(AddrRange::new("10.0.0.2".parse().unwrap(), "::2".parse().unwrap()).is_none());
    }

    #[test]
    fn a_range_whose_ends_canonicalise_apart_is_kept_not_dropped() {
        // `64:ff9b::` is 0.0.0.0 in disguise, `64:ff9b::1:0:0` is plain IPv6: such an entry used
        // to be refused by AddrRange::new, and the server's plan silently dropped it.
        let r = AddrRange::new("64:ff9b::".parse().unwrap(), "64:ff9b::1:0:0".parse().unwrap()).unwrap();
        // (Without the default tier, which refuses all of ::/8 but the NAT64 /96 anyway.)
        let cfg = PeerPolicyConfig { denied: vec![r], allow_private_by_default: true, ..Default::default() };
        let p = PeerPolicy::new(cfg);
        assert_eq!(p.check_ip("64:ff9b::0:1:0:0".parse().unwrap()), Err(DenyReason::DeniedByConfig));
        assert_eq!(p.check_ip("64:ff9b::808:808".parse().unwrap()), Err(DenyReason::DeniedByConfig));
        assert_eq!(p.check_ip("64:ff9b::2:0:0".parse().unwrap()), Ok(()));
        assert_eq!(p.check_ip("8.8.8.8".parse().unwrap()), Ok(()));
        // As written: the out-of-order canonical ends of a raw range do not matter.
        assert!(AddrRange::new("::ffff:10.0.0.5".parse().unwrap(), "64:ff9b::a00:1".parse().unwrap()).is_some());
        // An allow entry only ever matches canonical forms: a private address written in 6to4
        // inside an allowed IPv6 range is still the private address.
        let wide = AddrRange::new("2001:db8::".parse().unwrap(), "2002:ffff::".parse().unwrap()).unwrap();
        let p = PeerPolicy::new(PeerPolicyConfig { allowed: vec![wide], ..Default::default() });
        assert_eq!(p.check_ip("2002:a00:1::1".parse().unwrap()), Err(DenyReason::Private));
        assert_eq!(p.check_ip("2001:db8::1".parse().unwrap()), Ok(()));
    }

    /// The first and last address of each IPv4 range the policy names, and their neighbours.
    fn boundaries() -> Vec<Ipv4Addr> {
        let nets: [([u8; 4], u32); 15] = [
            ([0, 0, 0, 0], 8),
            ([127, 0, 0, 0], 8),
            ([169, 254, 0, 0], 16),
            ([224, 0, 0, 0], 4),
            ([240, 0, 0, 0], 4),
            ([10, 0, 0, 0], 8),
            ([172, 16, 0, 0], 12),
            ([192, 168, 0, 0], 16),
            ([100, 64, 0, 0], 10),
            ([192, 0, 0, 0], 24),
            ([192, 0, 2, 0], 24),
            ([198, 18, 0, 0], 15),
            ([198, 51, 100, 0], 24),
            ([203, 0, 113, 0], 24),
            ([192, 88, 99, 0], 24),
        ];
        let mut out = Vec::new();
        for (net, prefix) in nets {
            let start = u32::from(Ipv4Addr::from(net));
            let end = start | (u32::MAX >> prefix);
            for x in [start.wrapping_sub(1), start, start + 1, end - 1, end, end.wrapping_add(1)] {
                out.push(Ipv4Addr::from(x));
            }
        }
        out
    }

    #[test]
    fn every_encoding_of_every_range_boundary_gets_the_same_verdict() {
        let policies = [
            default_policy(),
            PeerPolicy::new(PeerPolicyConfig { allow_loopback: true, ..Default::default() }),
            PeerPolicy::new(PeerPolicyConfig {
                allowed: vec![
                    AddrRange::new("::ffff:10.0.0.0".parse().unwrap(), "::ffff:10.255.255.255".parse().unwrap())
                        .unwrap(),
                ],
                denied: vec![
                    AddrRange::new("64:ff9b::c000:0".parse().unwrap(), "64:ff9b::c0ff:ffff".parse().unwrap()).unwrap(),
                ],
                ..Default::default()
            }),
        ];
        for p in &policies {
            for a in boundaries() {
                let want = p.check(SocketAddr::new(IpAddr::V4(a), 80));
                for e in encodings(a) {
                    assert_eq!(p.check(SocketAddr::new(e, 80)), want, "{e} vs {a}");
                    assert_eq!(p.check_ip(e), p.check_ip(IpAddr::V4(a)), "{e} vs {a}");
                }
            }
        }
    }

    fn any_policy() -> impl Strategy<Value = PeerPolicy> {
        let v4 = |x: u32| IpAddr::V4(Ipv4Addr::from(x));
        (any::<bool>(), any::<(u32, u32)>(), any::<(u32, u32)>(), 0u8..4, any::<u32>(), any::<bool>()).prop_map(
            move |(allow_loopback, (a, b), (c, d), lists, own, private)| {
                // Ranges written in IPv4 or in an IPv6 encoding: both canonicalise alike.
                let range = |x: u32, y: u32, mapped: bool| {
                    let (lo, hi) = (x.min(y), x.max(y));
                    if mapped {
                        AddrRange::new(
                            IpAddr::V6(Ipv4Addr::from(lo).to_ipv6_mapped()),
                            IpAddr::V6(Ipv4Addr::from(hi).to_ipv6_mapped()),
                        )
                    } else {
                        AddrRange::new(v4(lo), v4(hi))
                    }
                    .unwrap()
                };
                PeerPolicy::new(PeerPolicyConfig {
                    allow_loopback,
                    allowed: if lists & 1 != 0 { vec![range(a, b, false)] } else { Vec::new() },
                    denied: if lists & 2 != 0 { vec![range(c, d, true)] } else { Vec::new() },
                    own_ips: vec![v4(own), "127.0.0.1".parse().unwrap()],
                    relay_ports: Some(49152..=65535),
                    allow_private_by_default: private,
                    host_ips: vec![v4(c)],
                    service_ports: vec![3478, 9641],
                })
            },
        )
    }

    proptest! {
        #[test]
        fn under_any_policy_every_encoding_gets_the_same_verdict_and_reason(
            p in any_policy(),
            a in any::<u32>(),
            port in any::<u16>(),
        ) {
            let a = Ipv4Addr::from(a);
            let want = p.check(SocketAddr::new(IpAddr::V4(a), port));
            for e in encodings(a) {
                prop_assert_eq!(p.check(SocketAddr::new(e, port)), want, "{} vs {}", e, a);
                prop_assert_eq!(p.check_ip(e), p.check_ip(IpAddr::V4(a)), "{} vs {}", e, a);
            }
        }

        #[test]
        fn every_ipv6_encoding_of_an_ipv4_address_gets_the_same_verdict(a in any::<u32>(), port in any::<u16>()) {
            let p = default_policy();
            let a = Ipv4Addr::from(a);
            let want = p.check(SocketAddr::new(IpAddr::V4(a), port)).is_ok();
            for e in encodings(a) {
                prop_assert_eq!(p.check(SocketAddr::new(e, port)).is_ok(), want, "{} vs {}", e, a);
                prop_assert_eq!(p.check_ip(e).is_ok(), p.check_ip(IpAddr::V4(a)).is_ok());
            }
        }

        #[test]
        fn range_membership_matches_a_u128_reference(a in any::<u128>(), b in any::<u128>(), x in any::<u128>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let v6 = |v: u128| IpAddr::V6(Ipv6Addr::from(v));
            // Only pure IPv6 ends (canonicalisation would move IPv4-in-IPv6 ends elsewhere).
            prop_assume!(canonical(v6(lo)).is_ipv6() && canonical(v6(hi)).is_ipv6() && canonical(v6(x)).is_ipv6());
            let r = AddrRange::new(v6(lo), v6(hi)).unwrap();
            prop_assert_eq!(r.contains(key(v6(x))), lo <= x && x <= hi);
        }
    }
}
