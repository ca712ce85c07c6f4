//! The sidecar's effective settings, built by [`crate::cli`] from flags, environment and the
//! relay's `turnserver.conf`, or directly by tests.
//!
//! The TURN secret is wrapped in [`Secret`], whose `Debug` prints nothing of it, so no log line
//! or error message can carry it (SECURITY.md §6).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A TURN `static-auth-secret`. `Debug` is redacted; the bytes are only reachable through
/// [`Secret::expose`], which only [`crate::creds`] calls.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret's bytes, for the HMAC.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which `Origin` headers a WebSocket upgrade may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// No `--allowed-origin`: requests without `Origin` (non-browser clients) and same-origin
    /// requests (the `Origin` authority equals `Host`) pass; cross-site pages are refused.
    SameOrigin,
    /// `--allowed-origin '*'`: every origin passes.
    Any,
    /// `--allowed-origin URL` (repeatable): these exact origins, plus requests without `Origin`.
    List(Vec<String>),
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The TURN REST secret shared with the relay.
    pub secret: Secret,
    /// The URIs handed to clients (`stun:`, `turn:`, `turns:`).
    pub turn_uris: Vec<String>,
    /// Lifetime of issued TURN credentials.
    pub credential_ttl: Duration,
    /// Digits in a room code.
    pub room_code_length: usize,
    /// How long a room's code stays joinable; a room still unpaired then is closed.
    pub room_ttl: Duration,
    /// Members per room, creator included.
    pub max_room_members: usize,
    /// The Origin allow-list.
    pub origins: OriginPolicy,
    /// When set, a member must present this token before it gets a room or credentials, and
    /// `/api/turn-credentials` answers holders of it.
    pub auth_token: Option<Secret>,
    /// Open TCP connections in total.
    pub max_connections: usize,
    /// Open TCP connections per client address (per /64 for IPv6).
    pub max_connections_per_ip: usize,
    /// Largest WebSocket message and frame accepted, in bytes.
    pub max_message_size: usize,
    /// Join attempts per client address per minute (a token bucket of that size).
    pub max_joins_per_minute: u32,
    /// Failed joins per minute over all clients before every join is refused for the rest of
    /// the minute (against distributed code guessing).
    pub max_failed_joins_per_minute: u32,
    /// Interval between the server's pings.
    pub ping_interval: Duration,
    /// How long a ping may go unanswered before the peer counts as dead.
    pub ping_timeout: Duration,
    /// Bytes queued for one connection before it counts as a slow reader and is disconnected.
    pub max_write_buffer: usize,
    /// How long a connection's queued bytes may make no progress before it is disconnected.
    pub write_timeout: Duration,
    /// Time allowed to send the HTTP request head.
    pub handshake_timeout: Duration,
}

impl Settings {
    /// Defaults around a secret and URIs; the tests and the CLI start from here.
    pub fn new(secret: Secret, turn_uris: Vec<String>) -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            secret,
            turn_uris,
            credential_ttl: Duration::from_secs(3600),
            room_code_length: 6,
            room_ttl: Duration::from_secs(600),
            max_room_members: 2,
            origins: OriginPolicy::SameOrigin,
            auth_token: None,
            max_connections: 10_000,
            max_connections_per_ip: 100,
            max_message_size: 64 * 1024,
            max_joins_per_minute: 30,
            max_failed_joins_per_minute: 600,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_write_buffer: 1 << 20,
            write_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_shows_in_debug() {
        let s = Settings::new(Secret::new("hunter2-very-secret"), vec![]);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }
}
