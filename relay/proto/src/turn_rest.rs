//! TURN REST credentials (draft-uberti-behave-turn-rest, coturn's `use-auth-secret`).
//!
//! The username is `expiry:user` (expiry in Unix seconds); the password is
//! `base64(HMAC-SHA1(secret, username))`. Verification also accepts coturn's reversed form
//! `user:expiry`, and refuses an expired username. The sidecar generates with this module and the
//! relay verifies with it, so the two cannot drift; [`PINNED_VECTOR`] is tested by both crates.
//!
//! Wall-clock time comes in as `unix_now`: nothing here reads a clock.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// coturn's default `rest-api-separator`.
pub const DEFAULT_SEPARATOR: char = ':';

/// A fixed vector: `(secret, username, password)`. Both the relay and the sidecar test it.
pub const PINNED_VECTOR: (&str, &str, &str) = ("north-pole-secret", "1893456000:santa", "YKrKiRq4M8nuJh6T5hpduxVjzfA=");

/// Time-limited credentials ready to hand to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCredentials {
    /// `expiry:user`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Seconds the credentials stay valid.
    pub ttl: u64,
}

/// Generates credentials for `user` valid for `ttl` seconds from `unix_now`.
pub fn generate(secret: &[u8], user: &str, ttl: u64, unix_now: u64) -> RestCredentials {
    let expiry = unix_now.saturating_add(ttl);
    let username = if user.is_empty() { expiry.to_string() } else { format!("{expiry}{DEFAULT_SEPARATOR}{user}") };
    let password = password(secret, &username);
    RestCredentials { username, password, ttl }
}

/// The password for a REST `username` under `secret`.
pub fn password(secret: &[u8], username: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// A parsed REST username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestUsername<'a> {
    /// Expiry, Unix seconds.
    pub expiry: u64,
    /// The user part (possibly empty); quotas count per user.
    pub user: &'a str,
}

/// Why a REST username is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestError {
    /// No expiry timestamp could be found in the username.
    Malformed,
    /// The expiry is in the past.
    Expired,
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestError::Malformed => "REST username has no expiry timestamp",
            RestError::Expired => "REST credentials expired",
        })
    }
}

impl std::error::Error for RestError {}

/// Parses `expiry:user`, `user:expiry` or a bare `expiry`, as coturn does: when the part before
/// the first separator is all digits it is the expiry, otherwise the part after it is.
pub fn parse_username(username: &str, separator: char) -> Result<RestUsername<'_>, RestError> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let parse = |s: &str| s.parse::<u64>().map_err(|_| RestError::Malformed);
    match username.split_once(separator) {
        Some((ts, user)) if digits(ts) => Ok(RestUsername { expiry: parse(ts)?, user }),
        Some((user, ts)) if digits(ts) => Ok(RestUsername { expiry: parse(ts)?, user }),
        Some(_) => Err(RestError::Malformed),
        None if digits(username) => Ok(RestUsername { expiry: parse(username)?, user: "" }),
        None => Err(RestError::Malformed),
    }
}

/// Checks a REST username's expiry against `unix_now` and returns it parsed.
pub fn check_username(username: &str, separator: char, unix_now: u64) -> Result<RestUsername<'_>, RestError> {
    let u = parse_username(username, separator)?;
    if u.expiry < unix_now {
        return Err(RestError::Expired);
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_vector_matches() {
        let (secret, username, pwd) = PINNED_VECTOR;
        assert_eq!(password(secret.as_bytes(), username), pwd);
        let c = generate(secret.as_bytes(), "santa", 86_400, 1_893_456_000 - 86_400);
        assert_eq!((c.username.as_str(), c.password.as_str()), (username, pwd));
    }

    #[test]
    fn both_username_orders_parse() {
        assert_eq!(parse_username("1700000000:alice", ':'), Ok(RestUsername { expiry: 1_700_000_000, user: "alice" }));
        assert_eq!(parse_username("alice:1700000000", ':'), Ok(RestUsername { expiry: 1_700_000_000, user: "alice" }));
        assert_eq!(parse_username("1700000000", ':'), Ok(RestUsername { expiry: 1_700_000_000, user: "" }));
        assert_eq!(parse_username("1700000000:a:b", ':'), Ok(RestUsername { expiry: 1_700_000_000, user: "a:b" }));
        assert_eq!(parse_username("alice", ':'), Err(RestError::Malformed));
        assert_eq!(parse_username("alice:bob", ':'), Err(RestError::Malformed));
        assert_eq!(parse_username("99999999999999999999999:x", ':'), Err(RestError::Malformed));
        assert_eq!(parse_username("1700000000-alice", '-'), Ok(RestUsername { expiry: 1_700_000_000, user: "alice" }));
    }

    #[test]
    fn expired_usernames_are_refused() {
        assert_eq!(check_username("100:u", ':', 101), Err(RestError::Expired));
        assert!(check_username("100:u", ':', 100).is_ok());
    }
}
