//! From the typed [`Config`] to what the process will do: which addresses to listen on, which
//! relay addresses to use and what to tell clients about them, how many workers, and each
//! worker's slice of the relay port range. Everything here is decided before a socket opens.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{Context as _, bail};
use relay_config::{Config, UserSecret as ConfSecret};
use relay_proto::policy::{AddrRange, PeerPolicyConfig};
use relay_proto::server::{AuthConfig, RelayIp, ServerConfig, UserSecret};
use relay_proto::stun::Key;

/// The realm used when the configuration names none (coturn uses the host's domain).
pub(crate) const DEFAULT_REALM: &str = "tern.local";

/// What the process will run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) listen_ips: Vec<IpAddr>,
    pub(crate) listening_port: u16,
    pub(crate) udp: bool,
    pub(crate) tcp: bool,
    /// `tls-listening-port`; `None` when TLS is off (`no-tls`, or no cert/pkey).
    pub(crate) tls_port: Option<u16>,
    pub(crate) relay_ips: Vec<RelayIp>,
    pub(crate) workers: usize,
    pub(crate) slices: Vec<RangeInclusive<u16>>,
    pub(crate) max_allocate_timeout: Duration,
    /// `relay-coalesce-us` (Tern): `None` when off.
    pub(crate) coalesce: Option<Duration>,
    pub(crate) user_quota: u32,
    pub(crate) total_quota: u32,
    /// Every address of this host: the relay's service ports on them are never peers.
    pub(crate) host_ips: Vec<IpAddr>,
}

impl Plan {
    pub(crate) fn new(cfg: &Config) -> anyhow::Result<Plan> {
        let host_ips = system_addresses().unwrap_or_else(|e| {
            tracing::warn!(target: "relay", error = %e, "cannot list this host's addresses; only the configured ones count as the relay's own");
            Vec::new()
        });
        let listen_ips = if cfg.listening_ips.is_empty() { host_ips.clone() } else { cfg.listening_ips.clone() };
        if listen_ips.is_empty() {
            bail!("no listening address: set listening-ip");
        }
        let relay_locals = if cfg.relay_ips.is_empty() { listen_ips.clone() } else { cfg.relay_ips.clone() };
        let relay_ips = relay_locals
            .iter()
            .map(|&local| RelayIp { local, public: external_for(cfg, local).unwrap_or(local) })
            .collect();
        let workers = cfg
            .relay_threads
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let slices = split_ports(cfg.min_port, cfg.max_port, workers)?;
        Ok(Plan {
            listen_ips,
            listening_port: cfg.listening_port,
            udp: !cfg.no_udp,
            tcp: !cfg.no_tcp,
            tls_port: crate::tls::TlsSettings::from_config(cfg).map(|_| cfg.tls_listening_port),
            relay_ips,
            workers,
            slices,
            max_allocate_timeout: Duration::from_secs(u64::from(cfg.max_allocate_timeout.max(1))),
            coalesce: (cfg.relay_coalesce_us > 0).then(|| Duration::from_micros(u64::from(cfg.relay_coalesce_us))),
            user_quota: cfg.user_quota,
            total_quota: cfg.total_quota,
            host_ips,
        })
    }

    /// The sans-IO core's configuration for worker `i`.
    pub(crate) fn server_config(&self, cfg: &Config, i: usize) -> ServerConfig {
        let realm = cfg.realm.clone().unwrap_or_else(|| DEFAULT_REALM.to_owned());
        let mut sc = ServerConfig::new(&realm, self.slices[i].clone());
        sc.auth = auth_config(cfg);
        sc.software = cfg.software_attribute.then(|| concat!("Tern ", env!("CARGO_PKG_VERSION")).to_owned());
        sc.fingerprint = cfg.fingerprint;
        sc.max_lifetime = Duration::from_secs(u64::from(cfg.max_allocate_lifetime));
        sc.permission_lifetime = Duration::from_secs(u64::from(cfg.permission_lifetime));
        sc.channel_lifetime = Duration::from_secs(u64::from(cfg.channel_lifetime));
        sc.stale_nonce_secs = cfg.stale_nonce;
        sc.relay_ips = self.relay_ips.clone();
        sc.alternate_servers = cfg.alternate_servers.clone();
        sc.policy = self.policy_config(cfg);
        sc.no_udp_relay = cfg.no_udp_relay;
        sc.rfc5766_channel_numbers = cfg.rfc5766_channel_numbers;
        sc.max_bps = cfg.max_bps;
        sc.unauthenticated_rps = cfg.unauthorized_ratelimit_rps;
        sc.stun_only = cfg.stun_only;
        sc.no_stun = cfg.no_stun;
        // Each worker polices its share of the server-wide capacity.
        sc.bps_capacity = cfg.bps_capacity.div_ceil(self.workers as u64);
        sc
    }

    /// The peer policy's inputs: the configured lists, and every address of this server.
    pub(crate) fn policy_config(&self, cfg: &Config) -> PeerPolicyConfig {
        let mut own_ips: Vec<IpAddr> = self.listen_ips.clone();
        for r in &self.relay_ips {
            own_ips.push(r.local);
            own_ips.push(r.public);
        }
        let ranges = |v: &[relay_config::IpRange]| v.iter().filter_map(|r| AddrRange::new(r.start, r.end)).collect();
        PeerPolicyConfig {
            allow_loopback: cfg.allow_loopback_peers,
            allowed: ranges(&cfg.allowed_peer_ips),
            denied: ranges(&cfg.denied_peer_ips),
            own_ips,
            relay_ports: Some(cfg.min_port..=cfg.max_port),
            allow_private_by_default: cfg.allow_private_peers,
            host_ips: self.host_ips.clone(),
            service_ports: self.service_ports(cfg),
        }
    }

    /// Ports the relay itself serves on: never reachable as a peer on any host address.
    fn service_ports(&self, cfg: &Config) -> Vec<u16> {
        let mut p = vec![cfg.listening_port, cfg.tls_listening_port];
        if cfg.prometheus {
            p.push(cfg.prometheus_port);
        }
        if cfg.admin_api {
            p.push(cfg.admin_api_port);
        }
        p
    }

    /// The addresses clients reach, for the start-up banner.
    pub(crate) fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listen_ips.iter().map(|ip| SocketAddr::new(*ip, self.listening_port)).collect()
    }

    /// The TLS listening addresses: empty when TLS is off, or when `tls-listening-port` is the
    /// TCP `listening-port` (which serves TLS clients anyway, by their first byte).
    pub(crate) fn tls_listen_addrs(&self) -> Vec<SocketAddr> {
        match self.tls_port {
            Some(p) if !(self.tcp && p == self.listening_port) => {
                self.listen_ips.iter().map(|ip| SocketAddr::new(*ip, p)).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Users and REST secrets, as the core wants them.
pub(crate) fn auth_config(cfg: &Config) -> AuthConfig {
    let users = cfg
        .users
        .iter()
        .filter_map(|u| {
            let secret = match &u.secret {
                ConfSecret::Password(p) => UserSecret::Password(p.clone()),
                ConfSecret::Key(k) => UserSecret::Md5Key(Key::from_bytes(k)?),
            };
            Some((u.name.clone(), secret))
        })
        .collect();
    let rest_secrets = if cfg.use_auth_secret {
        cfg.static_auth_secrets.iter().map(|s| s.as_bytes().to_vec()).collect()
    } else {
        Vec::new()
    };
    AuthConfig { no_auth: cfg.no_auth, users, rest_secrets, rest_separator: Some(cfg.rest_api_separator) }
}

/// `external-ip`: a `public/private` entry for this local address, else a bare `public` entry
/// of the same family.
fn external_for(cfg: &Config, local: IpAddr) -> Option<IpAddr> {
    cfg.external_ips
        .iter()
        .find(|e| e.private == Some(local))
        .or_else(|| cfg.external_ips.iter().find(|e| e.private.is_none() && e.public.is_ipv4() == local.is_ipv4()))
        .map(|e| e.public)
}

/// Splits `min..=max` into `n` disjoint, nearly equal slices, one per worker.
pub(crate) fn split_ports(min: u16, max: u16, n: usize) -> anyhow::Result<Vec<RangeInclusive<u16>>> {
    let total = usize::from(max.saturating_sub(min)) + 1;
    if max < min || n == 0 || total < n {
        bail!(
            "the relay port range {min}-{max} is too small for {n} workers: widen min-port/max-port or lower relay-threads"
        );
    }
    let base = total / n;
    let extra = total % n;
    let mut out = Vec::with_capacity(n);
    let mut start = usize::from(min);
    for i in 0..n {
        let len = base + usize::from(i < extra);
        let end = start + len - 1;
        out.push(start as u16..=end as u16);
        start = end + 1;
    }
    Ok(out)
}

/// coturn's default: every IPv4 address of the system, then every IPv6 one (without the
/// link-local ones, which need a scope).
fn system_addresses() -> anyhow::Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = if_addrs::get_if_addrs()
        .context("listing the system's addresses (set listening-ip to skip this)")?
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| match ip {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    out.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_slices_are_disjoint_and_cover_the_range() {
        let s = split_ports(49152, 65535, 3).unwrap();
        assert_eq!(s[0].start(), &49152);
        assert_eq!(s[2].end(), &65535);
        let total: usize = s.iter().map(|r| usize::from(r.end() - r.start()) + 1).sum();
        assert_eq!(total, 16384);
        for w in s.windows(2) {
            assert_eq!(*w[0].end() + 1, *w[1].start());
        }
        assert!(split_ports(100, 100, 2).is_err());
    }

    #[test]
    #[allow(clippy::field_reassign_with_default)]
    fn external_ip_maps_each_relay_address_separately() {
        let mut cfg = Config::default();
        cfg.external_ips = vec![
            relay_config::ExternalIp {
                public: "203.0.113.5".parse().unwrap(),
                private: Some("10.0.0.5".parse().unwrap()),
            },
            relay_config::ExternalIp {
                public: "203.0.113.6".parse().unwrap(),
                private: Some("10.0.0.6".parse().unwrap()),
            },
        ];
        assert_eq!(external_for(&cfg, "10.0.0.6".parse().unwrap()), Some("203.0.113.6".parse().unwrap()));
        assert_eq!(external_for(&cfg, "10.0.0.7".parse().unwrap()), None);
        cfg.external_ips.push(relay_config::ExternalIp { public: "198.51.100.1".parse().unwrap(), private: None });
        assert_eq!(external_for(&cfg, "10.0.0.7".parse().unwrap()), Some("198.51.100.1".parse().unwrap()));
    }
}
