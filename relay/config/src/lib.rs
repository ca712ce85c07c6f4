//! `relay-config`: the typed configuration of `tern-relay`, read from `turnserver.conf` and
//! `turnserver`'s command line by coturn's rules.
//!
//! This file fixes the contract other crates code against: the [`Config`] type and its field
//! names. The parser that fills it lives beside it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// One `external-ip` entry: `public` or `public/private`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalIp {
    /// The address reported to clients in XOR-RELAYED-ADDRESS.
    pub public: IpAddr,
    /// The local relay address it stands for; `None` means "every relay address".
    pub private: Option<IpAddr>,
}

/// A long-term user from `user=name:password` or `user=name:0x<hex key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The password or the precomputed key.
    pub secret: UserSecret,
}

/// How a static user proves itself.
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// A plain password; the key is MD5(name:realm:password).
    Password(String),
    /// A precomputed key (`0x` followed by 32 hex digits for MD5).
    Key(Vec<u8>),
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        match self {
            UserSecret::Password(_) => f.write_str("Password(<redacted>)"),
            UserSecret::Key(_) => f.write_str("Key(<redacted>)"),
        }
    }
}

/// An inclusive address range from `denied-peer-ip` / `allowed-peer-ip` (a single address is a
/// range of one). Both ends are of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

/// Log verbosity: `verbose` (-v) and `Verbose` (-V).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum Verbosity {
    /// Default.
    #[default]
    Normal,
    /// `verbose`.
    Verbose,
    /// `Verbose`.
    Extra,
}

/// The effective configuration, validated whole before any socket opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    // ---- listeners and relays ----
    /// `listening-port` (default 3478).
    pub listening_port: u16,
    /// `tls-listening-port` (default 5349).
    pub tls_listening_port: u16,
    /// `listening-ip` (repeatable). Empty means every address.
    pub listening_ips: Vec<IpAddr>,
    /// `relay-ip` (repeatable). Empty means the listening addresses.
    pub relay_ips: Vec<IpAddr>,
    /// `external-ip` (repeatable).
    pub external_ips: Vec<ExternalIp>,
    /// `relay-threads`: the worker count. `None` means one per core.
    pub relay_threads: Option<usize>,
    /// `min-port` (default 49152).
    pub min_port: u16,
    /// `max-port` (default 65535).
    pub max_port: u16,
    /// `no-udp`.
    pub no_udp: bool,
    /// `no-tcp`.
    pub no_tcp: bool,
    /// `no-tls`.
    pub no_tls: bool,
    /// `no-udp-relay`.
    pub no_udp_relay: bool,
    /// `no-tcp-relay`.
    pub no_tcp_relay: bool,

    // ---- authentication ----
    /// `realm`.
    pub realm: Option<String>,
    /// `user` (repeatable).
    pub users: Vec<User>,
    /// `lt-cred-mech`.
    pub lt_cred_mech: bool,
    /// `use-auth-secret`.
    pub use_auth_secret: bool,
    /// `static-auth-secret` (repeatable; any of them matches).
    pub static_auth_secrets: Vec<String>,
    /// `no-auth`.
    pub no_auth: bool,
    /// `rest-api-separator` (default `:`).
    pub rest_api_separator: char,

    // ---- lifetimes (seconds) ----
    /// `stale-nonce` (default 600; 0 = unlimited).
    pub stale_nonce: u32,
    /// `max-allocate-lifetime` (default 3600).
    pub max_allocate_lifetime: u32,
    /// `channel-lifetime` (default 600).
    pub channel_lifetime: u32,
    /// `permission-lifetime` (default 300).
    pub permission_lifetime: u32,
    /// `max-allocate-timeout` (default 60).
    pub max_allocate_timeout: u32,

    // ---- protocol ----
    /// `fingerprint`.
    pub fingerprint: bool,
    /// `alternate-server` (repeatable).
    pub alternate_servers: Vec<SocketAddr>,
    /// `software-attribute` (off by default; `no-software-attribute` keeps it off).
    pub software_attribute: bool,

    // ---- TLS ----
    /// `cert`.
    pub cert: Option<PathBuf>,
    /// `pkey`.
    pub pkey: Option<PathBuf>,
    /// `cipher-list`.
    pub cipher_list: Option<String>,
    /// `no-tlsv1_2`.
    pub no_tlsv1_2: bool,

    // ---- logging and process ----
    /// `log-file`.
    pub log_file: Option<String>,
    /// `simple-log`.
    pub simple_log: bool,
    /// `no-stdout-log`.
    pub no_stdout_log: bool,
    /// `syslog`.
    pub syslog: bool,
    /// `verbose` / `Verbose`.
    pub verbosity: Verbosity,
    /// `pidfile`.
    pub pidfile: Option<PathBuf>,
    /// `proc-user`.
    pub proc_user: Option<String>,
    /// `proc-group`.
    pub proc_group: Option<String>,

    // ---- peers and quotas ----
    /// `allow-loopback-peers`.
    pub allow_loopback_peers: bool,
    /// `no-multicast-peers`.
    pub no_multicast_peers: bool,
    /// `denied-peer-ip` (repeatable).
    pub denied_peer_ips: Vec<IpRange>,
    /// `allowed-peer-ip` (repeatable).
    pub allowed_peer_ips: Vec<IpRange>,
    /// `user-quota` (0 = unlimited).
    pub user_quota: u32,
    /// `total-quota` (0 = unlimited).
    pub total_quota: u32,
    /// `max-bps` (bytes per second per allocation; 0 = unlimited).
    pub max_bps: u64,
    /// `bps-capacity` (bytes per second in total; 0 = unlimited).
    pub bps_capacity: u64,

    // ---- operations ----
    /// `prometheus`.
    pub prometheus: bool,
    /// `prometheus-port` (default 9641).
    pub prometheus_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listening_port: 3478,
            tls_listening_port: 5349,
            listening_ips: Vec::new(),
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            relay_threads: None,
            min_port: 49152,
            max_port: 65535,
            no_udp: false,
            no_tcp: false,
            no_tls: false,
            no_udp_relay: false,
            no_tcp_relay: false,
            realm: None,
            users: Vec::new(),
            lt_cred_mech: false,
            use_auth_secret: false,
            static_auth_secrets: Vec::new(),
            no_auth: false,
            rest_api_separator: ':',
            stale_nonce: 600,
            max_allocate_lifetime: 3600,
            channel_lifetime: 600,
            permission_lifetime: 300,
            max_allocate_timeout: 60,
            fingerprint: false,
            alternate_servers: Vec::new(),
            software_attribute: false,
            cert: None,
            pkey: None,
            cipher_list: None,
            no_tlsv1_2: false,
            log_file: None,
            simple_log: false,
            no_stdout_log: false,
            syslog: false,
            verbosity: Verbosity::Normal,
            pidfile: None,
            proc_user: None,
            proc_group: None,
            allow_loopback_peers: false,
            no_multicast_peers: false,
            denied_peer_ips: Vec::new(),
            allowed_peer_ips: Vec::new(),
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            prometheus: false,
            prometheus_port: 9641,
        }
    }
}
