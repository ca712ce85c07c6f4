//! The core's configuration, built by the shell from `turnserver.conf` and flags.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::auth::AuthConfig;
use crate::policy::PeerPolicyConfig;

/// A relay address: where relay sockets bind, and what clients are told (`external-ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayIp {
    /// The local address relay sockets bind to.
    pub local: IpAddr,
    /// The address reported in XOR-RELAYED-ADDRESS.
    pub public: IpAddr,
}

/// The core's configuration, built by the shell from `turnserver.conf` and flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `realm`.
    pub realm: String,
    /// Users, REST secrets, `no-auth`.
    pub auth: AuthConfig,
    /// SOFTWARE attribute on responses; `None` by default (fingerprinting and amplification).
    pub software: Option<String>,
    /// `fingerprint`: FINGERPRINT on every message (it is also mirrored when a request has one).
    pub fingerprint: bool,
    /// Default allocation lifetime (RFC 8656: 600 s).
    pub default_lifetime: Duration,
    /// `max-allocate-lifetime` (3600 s).
    pub max_lifetime: Duration,
    /// `permission-lifetime` (RFC 8656: exactly 300 s).
    pub permission_lifetime: Duration,
    /// `channel-lifetime` (RFC 8656: 600 s).
    pub channel_lifetime: Duration,
    /// `stale-nonce` in seconds (0 = unlimited).
    pub stale_nonce_secs: u32,
    /// Relay addresses; when empty, the address the client reached is used.
    pub relay_ips: Vec<RelayIp>,
    /// This worker's slice of the relay port range.
    pub ports: RangeInclusive<u16>,
    /// `alternate-server`: Allocate is answered 300 Try Alternate, round-robin.
    pub alternate_servers: Vec<SocketAddr>,
    /// The peer policy's inputs.
    pub policy: PeerPolicyConfig,
    /// Permissions per allocation (coturn caps at 1024).
    pub max_permissions: usize,
    /// Channels per allocation.
    pub max_channels: usize,
    /// `no-udp-relay`.
    pub no_udp_relay: bool,
    /// `stun-only`: TURN requests are refused.
    pub stun_only: bool,
    /// `no-stun`: Binding requests are ignored.
    pub no_stun: bool,
    /// `rfc5766-channel-numbers`: also bind channels 0x5000–0x7FFF, as RFC 5766 clients ask.
    pub rfc5766_channel_numbers: bool,
    /// `max-bps`: bytes per second per allocation in each direction; 0 = unlimited.
    pub max_bps: u64,
    /// This worker's share of `bps-capacity` (bytes per second, both directions); 0 = unlimited.
    pub bps_capacity: u64,
    /// Unauthenticated answers (401, 438) per source address per second over UDP; 0 = no limit.
    /// Loopback sources are exempt: they cannot be spoofed from outside.
    pub unauthenticated_rps: u32,
}

impl ServerConfig {
    /// RFC 8656 defaults with the given realm and this worker's port slice.
    pub fn new(realm: &str, ports: RangeInclusive<u16>) -> Self {
        ServerConfig {
            realm: realm.to_owned(),
            auth: AuthConfig::default(),
            software: None,
            fingerprint: false,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            stale_nonce_secs: 600,
            relay_ips: Vec::new(),
            ports,
            alternate_servers: Vec::new(),
            policy: PeerPolicyConfig::default(),
            max_permissions: 1024,
            max_channels: 1024,
            no_udp_relay: false,
            stun_only: false,
            no_stun: false,
            rfc5766_channel_numbers: false,
            max_bps: 0,
            bps_capacity: 0,
            unauthenticated_rps: 10,
        }
    }
}
