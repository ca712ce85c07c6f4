//! The typed configuration: [`Config`] and the value types of its fields.
//!
//! This is the contract the relay and the sidecar code against: field names and types stay put;
//! fields may be added. Every field is already validated when a [`Config`] comes out of the
//! loader (`load.rs`); the types here do no I/O.

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
/// range of one). Both ends are of the same family, and `start <= end` as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

impl IpRange {
    /// The range of one address.
    pub fn single(ip: IpAddr) -> Self {
        IpRange { start: ip, end: ip }
    }

    /// Whether `ip` lies in the range, comparing addresses as `u32` / `u128` integers (never
    /// byte by byte: coturn's `6c13608c`). An address of the other family is never inside.
    /// Takes the address as it is: canonicalising `::ffff:a.b.c.d` and friends is the peer
    /// policy's job, before it asks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.v4(), self.v6(), ip) {
            (Some((s, e)), _, IpAddr::V4(a)) => (s..=e).contains(&u32::from(a)),
            (_, Some((s, e)), IpAddr::V6(a)) => (s..=e).contains(&u128::from(a)),
            _ => false,
        }
    }

    /// The ends as integers, if this is an IPv4 range.
    pub fn v4(&self) -> Option<(u32, u32)> {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => Some((s.into(), e.into())),
            _ => None,
        }
    }

    /// The ends as integers, if this is an IPv6 range.
    pub fn v6(&self) -> Option<(u128, u128)> {
        match (self.start, self.end) {
            (IpAddr::V6(s), IpAddr::V6(e)) => Some((s.into(), e.into())),
            _ => None,
        }
    }

    /// Both ends of one family and in order.
    pub(crate) fn is_ordered(&self) -> bool {
        match (self.v4(), self.v6()) {
            (Some((s, e)), _) => s <= e,
            (_, Some((s, e))) => s <= e,
            _ => false,
        }
    }
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

/// How log lines are written: `log-format` (a Tern option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The value as `log-format` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The effective configuration, validated whole before any socket opens.
///
/// `Debug` leaves the static auth secrets out.
#[derive(Clone, PartialEq)]
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
    /// `relay-threads`: the worker count, 1–128. `None` means one per core. coturn's `0`
    /// ("relay in the listener thread") becomes 1.
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
    /// `realm`. `None`: coturn falls back to the host's domain name.
    pub realm: Option<String>,
    /// `user` (repeatable). Empty when `use-auth-secret` is on (coturn ignores them then).
    pub users: Vec<User>,
    /// `lt-cred-mech`, as derived: on when set, when users exist, or with `use-auth-secret`.
    pub lt_cred_mech: bool,
    /// `use-auth-secret` (also on when a `static-auth-secret` is given, as in coturn).
    pub use_auth_secret: bool,
    /// `static-auth-secret` (repeatable; any of them matches).
    pub static_auth_secrets: Vec<String>,
    /// `no-auth`, as derived: on when set, or when there are no users and no secret.
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
    /// `rfc5766-channel-numbers`: also bind channels 0x5000–0x7FFF (RFC 5766 clients).
    pub rfc5766_channel_numbers: bool,
    /// `unauthorized-ratelimit-rps`: 401/438 answers per UDP source per second. Tern limits by
    /// default (10, coturn's rps default); 0 turns the limit off.
    pub unauthorized_ratelimit_rps: u32,
    /// `stun-only`: answer STUN Binding only; TURN requests get 400.
    pub stun_only: bool,
    /// `no-stun`: TURN only; Binding requests are ignored.
    pub no_stun: bool,
    /// `alternate-server` (repeatable).
    pub alternate_servers: Vec<SocketAddr>,
    /// `software-attribute` (off by default; `no-software-attribute` keeps it off).
    pub software_attribute: bool,

    // ---- TLS ----
    /// `cert`, found on the search path (or coturn's default `turn_server_cert.pem` if found).
    pub cert: Option<PathBuf>,
    /// `pkey`, found on the search path (or coturn's default `turn_server_pkey.pem` if found).
    pub pkey: Option<PathBuf>,
    /// `cipher-list`.
    pub cipher_list: Option<String>,
    /// `no-tlsv1_2`.
    pub no_tlsv1_2: bool,
    /// `no-tlsv1` (rustls never offers TLS 1.0; kept so the effective config shows it).
    pub no_tlsv1: bool,
    /// `no-tlsv1_1` (rustls never offers TLS 1.1; kept so the effective config shows it).
    pub no_tlsv1_1: bool,

    // ---- logging and process ----
    /// `log-file`; `stdout`, `-` and `syslog` are special names.
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
    /// `prometheus-address`: the exporter's address. `None`: every IPv4 address, as in coturn.
    pub prometheus_address: Option<IpAddr>,
    /// `prometheus-path` (default `/metrics`).
    pub prometheus_path: String,
    /// `prometheus-username-labels`: per-user series for the live allocations (off).
    pub prometheus_username_labels: bool,
    /// `drain-min-allocations`: in drain mode (SIGUSR1) the process exits once at most this many
    /// allocations remain (default 0).
    pub drain_min_allocations: u32,
    /// `relay-coalesce-us` (Tern): after a worker turn that relayed only a few datagrams, sleep
    /// this many microseconds before polling again, in the epochs where that measurably saves
    /// CPU; default 50, 0 turns it off.
    pub relay_coalesce_us: u32,
    /// `allow-private-peers` (Tern): turn off the default-deny tier (RFC 1918, 100.64/10 and the
    /// documentation ranges) for coturn's behaviour; `denied-peer-ip` still applies.
    pub allow_private_peers: bool,
    /// `drain-timeout` (Tern): seconds drain mode waits for allocations to end before exiting
    /// anyway (default 3600; 0 = no limit).
    pub drain_timeout: u32,
    /// `drain-alternate-server` (Tern, repeatable): in drain mode, new allocations get 300 with
    /// one of these; without them (and without `alternate-server`) they get 508.
    pub drain_alternate_servers: Vec<SocketAddr>,
    /// `admin-api` (Tern): the admin HTTP API (sessions, kill, `/healthz`, `/readyz`).
    pub admin_api: bool,
    /// `admin-api-address` (Tern; default 127.0.0.1).
    pub admin_api_address: IpAddr,
    /// `admin-api-port` (Tern; default 9642).
    pub admin_api_port: u16,
    /// `admin-api-token` (Tern): the bearer token the admin API asks for; required when
    /// `admin-api-address` is not a loopback address.
    pub admin_api_token: Option<String>,
    /// `log-format` (Tern): `text` (default) or `json`.
    pub log_format: LogFormat,
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
            rfc5766_channel_numbers: false,
            unauthorized_ratelimit_rps: 10,
            stun_only: false,
            no_stun: false,
            alternate_servers: Vec::new(),
            software_attribute: false,
            cert: None,
            pkey: None,
            cipher_list: None,
            no_tlsv1_2: false,
            no_tlsv1: false,
            no_tlsv1_1: false,
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
            prometheus_address: None,
            prometheus_path: "/metrics".to_string(),
            prometheus_username_labels: false,
            drain_min_allocations: 0,
            relay_coalesce_us: 50,
            allow_private_peers: false,
            drain_timeout: 3600,
            drain_alternate_servers: Vec::new(),
            admin_api: false,
            admin_api_address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            admin_api_port: 9642,
            admin_api_token: None,
            log_format: LogFormat::Text,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written out so the secrets stay out of logs; the destructuring has no `..`, so a new
        // field does not compile until it is listed here.
        let Config {
            listening_port,
            tls_listening_port,
            listening_ips,
            relay_ips,
            external_ips,
            relay_threads,
            min_port,
            max_port,
            no_udp,
            no_tcp,
            no_tls,
            no_udp_relay,
            no_tcp_relay,
            realm,
            users,
            lt_cred_mech,
            use_auth_secret,
            static_auth_secrets,
            no_auth,
            rest_api_separator,
            stale_nonce,
            max_allocate_lifetime,
            channel_lifetime,
            permission_lifetime,
            max_allocate_timeout,
            fingerprint,
            rfc5766_channel_numbers,
            unauthorized_ratelimit_rps,
            stun_only,
            no_stun,
            alternate_servers,
            software_attribute,
            cert,
            pkey,
            cipher_list,
            no_tlsv1_2,
            no_tlsv1,
            no_tlsv1_1,
            log_file,
            simple_log,
            no_stdout_log,
            syslog,
            verbosity,
            pidfile,
            proc_user,
            proc_group,
            allow_loopback_peers,
            no_multicast_peers,
            denied_peer_ips,
            allowed_peer_ips,
            user_quota,
            total_quota,
            max_bps,
            bps_capacity,
            prometheus,
            prometheus_port,
            prometheus_address,
            prometheus_path,
            prometheus_username_labels,
            drain_min_allocations,
            relay_coalesce_us,
            allow_private_peers,
            drain_timeout,
            drain_alternate_servers,
            admin_api,
            admin_api_address,
            admin_api_port,
            admin_api_token,
            log_format,
        } = self;
        f.debug_struct("Config")
            .field("listening_port", listening_port)
            .field("tls_listening_port", tls_listening_port)
            .field("listening_ips", listening_ips)
            .field("relay_ips", relay_ips)
            .field("external_ips", external_ips)
            .field("relay_threads", relay_threads)
            .field("min_port", min_port)
            .field("max_port", max_port)
            .field("no_udp", no_udp)
            .field("no_tcp", no_tcp)
            .field("no_tls", no_tls)
            .field("no_udp_relay", no_udp_relay)
            .field("no_tcp_relay", no_tcp_relay)
            .field("realm", realm)
            .field("users", users)
            .field("lt_cred_mech", lt_cred_mech)
            .field("use_auth_secret", use_auth_secret)
            .field("static_auth_secrets", &format_args!("<{} redacted>", static_auth_secrets.len()))
            .field("no_auth", no_auth)
            .field("rest_api_separator", rest_api_separator)
            .field("stale_nonce", stale_nonce)
            .field("max_allocate_lifetime", max_allocate_lifetime)
            .field("channel_lifetime", channel_lifetime)
            .field("permission_lifetime", permission_lifetime)
            .field("max_allocate_timeout", max_allocate_timeout)
            .field("fingerprint", fingerprint)
            .field("rfc5766_channel_numbers", rfc5766_channel_numbers)
            .field("unauthorized_ratelimit_rps", unauthorized_ratelimit_rps)
            .field("stun_only", stun_only)
            .field("no_stun", no_stun)
            .field("alternate_servers", alternate_servers)
            .field("software_attribute", software_attribute)
            .field("cert", cert)
            .field("pkey", pkey)
            .field("cipher_list", cipher_list)
            .field("no_tlsv1_2", no_tlsv1_2)
            .field("no_tlsv1", no_tlsv1)
            .field("no_tlsv1_1", no_tlsv1_1)
            .field("log_file", log_file)
            .field("simple_log", simple_log)
            .field("no_stdout_log", no_stdout_log)
            .field("syslog", syslog)
            .field("verbosity", verbosity)
            .field("pidfile", pidfile)
            .field("proc_user", proc_user)
            .field("proc_group", proc_group)
            .field("allow_loopback_peers", allow_loopback_peers)
            .field("no_multicast_peers", no_multicast_peers)
            .field("denied_peer_ips", denied_peer_ips)
            .field("allowed_peer_ips", allowed_peer_ips)
            .field("user_quota", user_quota)
            .field("total_quota", total_quota)
            .field("max_bps", max_bps)
            .field("bps_capacity", bps_capacity)
            .field("prometheus", prometheus)
            .field("prometheus_port", prometheus_port)
            .field("prometheus_address", prometheus_address)
            .field("prometheus_path", prometheus_path)
            .field("prometheus_username_labels", prometheus_username_labels)
            .field("drain_min_allocations", drain_min_allocations)
            .field("relay_coalesce_us", relay_coalesce_us)
            .field("allow_private_peers", allow_private_peers)
            .field("drain_timeout", drain_timeout)
            .field("drain_alternate_servers", drain_alternate_servers)
            .field("admin_api", admin_api)
            .field("admin_api_address", admin_api_address)
            .field("admin_api_port", admin_api_port)
            .field("admin_api_token", &admin_api_token.as_ref().map(|_| "<redacted>"))
            .field("log_format", log_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let c = Config {
            static_auth_secrets: vec!["hunter2".into()],
            admin_api_token: Some("admin-token-secret".into()),
            users: vec![User { name: "u".into(), secret: UserSecret::Password("pw-secret".into()) }],
            ..Config::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("pw-secret") && !d.contains("admin-token-secret"), "{d}");
        assert!(d.contains("static_auth_secrets: <1 redacted>") && d.contains("prometheus_port: 9641"), "{d}");
    }

    #[test]
    fn ranges_compare_as_integers() {
        let r = IpRange { start: "2001:db8::ff".parse().unwrap(), end: "2001:db8::1:0".parse().unwrap() };
        // Byte-wise, ::1:0 < ::ff in the last byte; as integers it is inside.
        assert!(r.contains("2001:db8::100".parse().unwrap()));
        assert!(!r.contains("2001:db8::fe".parse().unwrap()));
        assert!(!r.contains("10.0.0.1".parse().unwrap()));
        let v4 = IpRange { start: "10.0.0.0".parse().unwrap(), end: "10.255.255.255".parse().unwrap() };
        assert!(v4.contains("10.1.2.3".parse().unwrap()));
        assert!(!v4.contains("11.0.0.0".parse().unwrap()));
        assert!(!v4.contains("::ffff:10.1.2.3".parse().unwrap()), "canonicalising is the policy's job");
        assert_eq!(v4.v4(), Some((0x0a00_0000, 0x0aff_ffff)));
        assert_eq!(IpRange::single("::1".parse().unwrap()).v6(), Some((1, 1)));
    }
}
