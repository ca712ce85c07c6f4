//! TURN REST credentials for room members, and the ICE server list built from the relay's
//! configuration.
//!
//! Generation is `relay_proto::turn_rest::generate`, the same module the relay verifies with.
//! The user part of the username is a random session id (no PII, SECURITY.md §6). This is the
//! only module that reads the secret's bytes.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use relay_config::Config;
use relay_proto::turn_rest;
use serde::Serialize;

use crate::settings::Secret;

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:`/`turn:`/`turns:` URIs.
    pub urls: Vec<String>,
    /// TURN REST username (`expiry:session`); absent for STUN-only entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN REST password; absent for STUN-only entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Credentials in the TURN REST API draft's response shape (`/api/turn-credentials`).
#[derive(Debug, Clone, Serialize)]
pub struct RestResponse {
    /// `expiry:user`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Seconds the credentials stay valid.
    pub ttl: u64,
    /// The TURN (and STUN) URIs.
    pub uris: Vec<String>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Builds the ICE server list for `user`: one STUN entry without credentials and one TURN entry
/// with fresh credentials.
pub fn ice_servers(secret: &Secret, uris: &[String], user: &str, ttl: Duration, unix_now: u64) -> Vec<IceServer> {
    let c = turn_rest::generate(secret.expose(), user, ttl.as_secs(), unix_now);
    let (stun, turn): (Vec<String>, Vec<String>) = uris.iter().cloned().partition(|u| u.starts_with("stun"));
    let mut out = Vec::with_capacity(2);
    if !stun.is_empty() {
        out.push(IceServer { urls: stun, username: None, credential: None });
    }
    if !turn.is_empty() {
        out.push(IceServer { urls: turn, username: Some(c.username), credential: Some(c.password) });
    }
    out
}

/// Credentials for the REST endpoint.
pub fn rest_response(secret: &Secret, uris: &[String], user: &str, ttl: Duration, unix_now: u64) -> RestResponse {
    let c = turn_rest::generate(secret.expose(), user, ttl.as_secs(), unix_now);
    RestResponse { username: c.username, password: c.password, ttl: c.ttl, uris: uris.to_vec() }
}

/// Why no URI list could be built from a `turnserver.conf`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    /// The relay listens on every address and has no `external-ip`.
    #[error(
        "cannot tell which address clients should use for the relay: set external-ip or listening-ip in the \
         turnserver.conf, or pass --turn-host or --turn-uri"
    )]
    NoHost,
    /// `no-udp`, `no-tcp` and no TLS: the relay has no client listener.
    #[error("the relay config enables no client transport (no-udp and no-tcp, and no TLS)")]
    NoTransport,
}

/// The ICE URIs for a relay configured by `cfg`, as coturn clients expect them:
/// `stun:H:P`, `turn:H:P?transport=udp`, `turn:H:P?transport=tcp`, and
/// `turns:H:TLS?transport=tcp` when TLS is on (a `cert` is set and `no-tls` is not).
///
/// `host` overrides the address; otherwise the first `external-ip`, then the first specific
/// `listening-ip`.
pub fn uris_from_config(cfg: &Config, host: Option<&str>) -> Result<Vec<String>, UriError> {
    let host = match host {
        Some(h) => h.to_owned(),
        None => {
            let ip = cfg
                .external_ips
                .first()
                .map(|e| e.public)
                .or_else(|| cfg.listening_ips.iter().copied().find(|ip| !ip.is_unspecified()))
                .ok_or(UriError::NoHost)?;
            uri_host(ip)
        }
    };
    let p = cfg.listening_port;
    let mut uris = Vec::new();
    if !cfg.no_udp {
        uris.push(format!("stun:{host}:{p}"));
        uris.push(format!("turn:{host}:{p}?transport=udp"));
    }
    if !cfg.no_tcp {
        uris.push(format!("turn:{host}:{p}?transport=tcp"));
    }
    if !cfg.no_tls && cfg.cert.is_some() {
        uris.push(format!("turns:{host}:{}?transport=tcp", cfg.tls_listening_port));
    }
    if uris.is_empty() {
        return Err(UriError::NoTransport);
    }
    Ok(uris)
}

fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The secret to sign with: the first `static-auth-secret` of the relay's config.
pub fn secret_from_config(cfg: &Config) -> Option<Secret> {
    cfg.static_auth_secrets.first().map(Secret::new)
}

#[cfg(test)]
mod tests {
    use relay_config::ExternalIp;

    use super::*;

    /// The vector pinned in `relay_proto::turn_rest` must come out of the sidecar's path too.
    #[test]
    fn pinned_vector_matches_through_the_sidecar() {
        let (secret, username, password) = turn_rest::PINNED_VECTOR;
        let ice = ice_servers(
            &Secret::new(secret),
            &["turn:h:3478?transport=udp".into()],
            "santa",
            Duration::from_secs(86_400),
            1_893_456_000 - 86_400,
        );
        assert_eq!(ice.len(), 1);
        assert_eq!(ice[0].username.as_deref(), Some(username));
        assert_eq!(ice[0].credential.as_deref(), Some(password));
        let r = rest_response(&Secret::new(secret), &[], "santa", Duration::from_secs(86_400), 1_893_456_000 - 86_400);
        assert_eq!((r.username.as_str(), r.password.as_str(), r.ttl), (username, password, 86_400));
    }

    #[test]
    fn stun_entry_carries_no_credentials() {
        let uris = vec!["stun:a:3478".to_owned(), "turn:a:3478?transport=udp".to_owned()];
        let ice = ice_servers(&Secret::new("s"), &uris, "u", Duration::from_secs(60), 1000);
        let json = serde_json::to_string(&ice).unwrap();
        assert_eq!(ice[0].urls, vec!["stun:a:3478"]);
        assert!(ice[0].username.is_none() && ice[0].credential.is_none());
        assert_eq!(ice[1].username.as_deref(), Some("1060:u"));
        assert!(json.starts_with(
            r#"[{"urls":["stun:a:3478"]},{"urls":["turn:a:3478?transport=udp"],"username":"1060:u","credential":""#
        ));
    }

    #[test]
    fn uris_follow_the_relay_config() {
        let mut cfg = Config { listening_ips: vec!["192.0.2.1".parse().unwrap()], ..Config::default() };
        assert_eq!(
            uris_from_config(&cfg, None).unwrap(),
            ["stun:192.0.2.1:3478", "turn:192.0.2.1:3478?transport=udp", "turn:192.0.2.1:3478?transport=tcp"]
        );
        cfg.external_ips = vec![ExternalIp { public: "203.0.113.7".parse().unwrap(), private: None }];
        cfg.cert = Some("/etc/cert.pem".into());
        cfg.listening_port = 3479;
        cfg.tls_listening_port = 5350;
        assert_eq!(
            uris_from_config(&cfg, None).unwrap(),
            [
                "stun:203.0.113.7:3479",
                "turn:203.0.113.7:3479?transport=udp",
                "turn:203.0.113.7:3479?transport=tcp",
                "turns:203.0.113.7:5350?transport=tcp"
            ]
        );
        cfg.no_udp = true;
        cfg.no_tls = true;
        assert_eq!(
            uris_from_config(&cfg, Some("turn.example.com")).unwrap(),
            ["turn:turn.example.com:3479?transport=tcp"]
        );
        cfg.no_tcp = true;
        assert_eq!(uris_from_config(&cfg, None), Err(UriError::NoTransport));
    }

    #[test]
    fn ipv6_hosts_are_bracketed_and_wildcards_need_a_host() {
        let cfg =
            Config { listening_ips: vec!["::".parse().unwrap(), "2001:db8::1".parse().unwrap()], ..Config::default() };
        assert_eq!(uris_from_config(&cfg, None).unwrap()[0], "stun:[2001:db8::1]:3478");
        let any = Config { listening_ips: vec!["0.0.0.0".parse().unwrap()], ..Config::default() };
        assert_eq!(uris_from_config(&any, None), Err(UriError::NoHost));
        assert_eq!(uris_from_config(&Config::default(), None), Err(UriError::NoHost));
    }
}
