//! Long-term credentials (RFC 8489 §9.2), TURN REST credentials and stateless nonces.
//!
//! Nonces are stateless: `obMatJos2` + security feature bits (RFC 8489 §9.2) + base64url of a
//! 32-bit timestamp and an HMAC-SHA256 over the timestamp and the client's address, keyed by a
//! per-process random key. Nothing is stored per source before a request authenticates.
//!
//! Integrity is verified before any state changes: the request handlers call
//! [`Authenticator::authenticate`] first and change nothing when it fails.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, Mac};
use rustc_hash::FxHashMap;
use sha2::Sha256;

use crate::stun::attr::{self, PasswordAlgorithm};
use crate::stun::integrity::userhash;
use crate::stun::{Key, Message};
use crate::turn_rest;

/// The RFC 8489 nonce cookie prefix, followed by the security-feature bits.
pub const NONCE_COOKIE: &str = "obMatJos2";
/// base64 of the 24 feature bits: password algorithms (bit 0) and username anonymity (bit 1).
const NONCE_FEATURES: &str = "wAAA";
const NONCE_MAC_LEN: usize = 10;

/// A static user's secret.
#[derive(Clone)]
pub enum UserSecret {
    /// A password; MD5 and SHA-256 keys are derived from it.
    Password(String),
    /// A precomputed MD5 key (`user=name:0x…`); only MD5 works for it.
    Md5Key(Key),
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserSecret(<redacted>)")
    }
}

/// How clients authenticate.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `no-auth`: TURN requests need no credentials.
    pub no_auth: bool,
    /// Static long-term users.
    pub users: Vec<(String, UserSecret)>,
    /// TURN REST shared secrets (`use-auth-secret` + `static-auth-secret`), any of which match.
    pub rest_secrets: Vec<Vec<u8>>,
    /// `rest-api-separator`.
    pub rest_separator: Option<char>,
}

#[derive(Clone)]
struct UserKeys {
    md5: Key,
    sha256: Option<Key>,
}

/// Which integrity attribute a request used; the response uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntegrityKind {
    Sha1,
    Sha256,
}

/// A request that authenticated.
#[derive(Debug, Clone)]
pub(crate) struct AuthOk {
    pub(crate) username: String,
    pub(crate) quota_user: String,
    pub(crate) key: Option<Key>,
    pub(crate) kind: IntegrityKind,
}

/// Why a request did not authenticate, and so which error it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No integrity attribute: 401 with REALM and NONCE, no MESSAGE-INTEGRITY.
    Challenge,
    /// Credentials present but incomplete or inconsistent: 400.
    BadRequest,
    /// Stale or forged nonce: 438 with a fresh one.
    StaleNonce,
    /// Unknown user, expired REST credentials, wrong realm or bad integrity: 401.
    Unauthorized(UnauthorizedReason),
}

/// Why a 401 was given, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnauthorizedReason {
    /// No such user.
    UnknownUser,
    /// TURN REST username expired.
    Expired,
    /// TURN REST username without a timestamp.
    MalformedRestUsername,
    /// The REALM differs from the server's.
    WrongRealm,
    /// MESSAGE-INTEGRITY did not verify.
    BadIntegrity,
}

impl UnauthorizedReason {
    /// Every reason, for metrics.
    pub const ALL: [UnauthorizedReason; 5] = [
        UnauthorizedReason::UnknownUser,
        UnauthorizedReason::Expired,
        UnauthorizedReason::MalformedRestUsername,
        UnauthorizedReason::WrongRealm,
        UnauthorizedReason::BadIntegrity,
    ];

    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnauthorizedReason::UnknownUser => "unknown_user",
            UnauthorizedReason::Expired => "expired",
            UnauthorizedReason::MalformedRestUsername => "malformed_rest_username",
            UnauthorizedReason::WrongRealm => "wrong_realm",
            UnauthorizedReason::BadIntegrity => "bad_integrity",
        }
    }

    /// Index into [`UnauthorizedReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Checks credentials and mints and checks nonces.
pub(crate) struct Authenticator {
    realm: String,
    no_auth: bool,
    users: FxHashMap<String, UserKeys>,
    users_by_hash: FxHashMap<[u8; 32], String>,
    rest_secrets: Vec<Vec<u8>>,
    rest_separator: Option<char>,
    nonce_key: [u8; 32],
    epoch: Instant,
    stale_nonce_secs: u32,
}

impl Authenticator {
    pub(crate) fn new(
        realm: &str,
        cfg: &AuthConfig,
        nonce_key: [u8; 32],
        epoch: Instant,
        stale_nonce_secs: u32,
    ) -> Self {
        let mut a = Authenticator {
            realm: realm.to_owned(),
            no_auth: false,
            users: FxHashMap::default(),
            users_by_hash: FxHashMap::default(),
            rest_secrets: Vec::new(),
            rest_separator: None,
            nonce_key,
            epoch,
            stale_nonce_secs,
        };
        a.set_credentials(cfg);
        a
    }

    /// Replaces users and secrets (a reload); nonces and their key stay.
    pub(crate) fn set_credentials(&mut self, cfg: &AuthConfig) {
        self.no_auth = cfg.no_auth;
        self.users.clear();
        self.users_by_hash.clear();
        for (name, secret) in &cfg.users {
            let keys = match secret {
                UserSecret::Password(p) => {
                    match (
                        Key::long_term(PasswordAlgorithm::Md5, name, &self.realm, p),
                        Key::long_term(PasswordAlgorithm::Sha256, name, &self.realm, p),
                    ) {
                        (Ok(md5), Ok(sha)) => UserKeys { md5, sha256: Some(sha) },
                        _ => {
                            tracing::warn!(target: "relay", user = %name.escape_debug(), "password refused by SASLprep; user skipped");
                            continue;
                        }
                    }
                }
                UserSecret::Md5Key(k) => UserKeys { md5: *k, sha256: None },
            };
            self.users_by_hash.insert(userhash(name, &self.realm), name.clone());
            self.users.insert(name.clone(), keys);
        }
        self.rest_secrets = cfg.rest_secrets.clone();
        self.rest_separator = cfg.rest_separator;
    }

    pub(crate) fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh nonce bound to `client`.
    pub(crate) fn nonce(&self, now: Instant, client: SocketAddr) -> String {
        let ts = self.secs(now);
        let mac = self.nonce_mac(ts, client);
        let mut raw = [0u8; 4 + NONCE_MAC_LEN];
        raw[..4].copy_from_slice(&ts.to_be_bytes());
        raw[4..].copy_from_slice(&mac[..NONCE_MAC_LEN]);
        let mut s = String::with_capacity(NONCE_COOKIE.len() + NONCE_FEATURES.len() + 19);
        s.push_str(NONCE_COOKIE);
        s.push_str(NONCE_FEATURES);
        B64URL.encode_string(raw, &mut s);
        s
    }

    fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn nonce_mac(&self, ts: u32, client: SocketAddr) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.nonce_key).expect("HMAC takes keys of any length");
        mac.update(&ts.to_be_bytes());
        match client.ip() {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        mac.update(&client.port().to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `nonce` was minted by this process for `client` and is still fresh.
    pub(crate) fn nonce_ok(&self, now: Instant, client: SocketAddr, nonce: &str) -> bool {
        let Some(rest) = nonce.strip_prefix(NONCE_COOKIE).and_then(|r| r.strip_prefix(NONCE_FEATURES)) else {
            return false;
        };
        let mut raw = [0u8; 4 + NONCE_MAC_LEN + 2];
        let Ok(n) = B64URL.decode_slice(rest, &mut raw) else { return false };
        if n != 4 + NONCE_MAC_LEN {
            return false;
        }
        let ts = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mac = self.nonce_mac(ts, client);
        // Constant-time compare of the MAC.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..NONCE_MAC_LEN], &raw[4..4 + NONCE_MAC_LEN])) {
            return false;
        }
        let now_s = self.secs(now);
        if ts > now_s {
            return false;
        }
        self.stale_nonce_secs == 0 || now_s - ts < self.stale_nonce_secs
    }

    /// Authenticates a request (RFC 8489 §9.2.4), in the RFC's order.
    pub(crate) fn authenticate(
        &self,
        now: Instant,
        unix_now: u64,
        client: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<AuthOk, AuthFailure> {
        if self.no_auth {
            return Ok(AuthOk {
                username: String::new(),
                quota_user: String::new(),
                key: None,
                kind: IntegrityKind::Sha1,
            });
        }
        let kind = if msg.has_integrity_sha256() {
            IntegrityKind::Sha256
        } else if msg.has_integrity() {
            IntegrityKind::Sha1
        } else {
            return Err(AuthFailure::Challenge);
        };
        let bad = |_| AuthFailure::BadRequest;
        let username = msg.username().map_err(bad)?;
        let userhash_attr = msg.userhash().map_err(bad)?;
        let realm = msg.realm().map_err(bad)?.ok_or(AuthFailure::BadRequest)?;
        let nonce = msg.nonce().map_err(bad)?.ok_or(AuthFailure::BadRequest)?;
        if username.is_none() && userhash_attr.is_none() {
            return Err(AuthFailure::BadRequest);
        }
        if !self.nonce_ok(now, client, nonce) {
            return Err(AuthFailure::StaleNonce);
        }
        let alg = self.password_algorithm(msg)?;
        if realm != self.realm {
            return Err(AuthFailure::Unauthorized(UnauthorizedReason::WrongRealm));
        }
        let username: &str = match (username, userhash_attr) {
            (Some(u), _) => u,
            (None, Some(h)) => match self.users_by_hash.get(h) {
                Some(u) => u.as_str(),
                None => return Err(AuthFailure::Unauthorized(UnauthorizedReason::UnknownUser)),
            },
            (None, None) => return Err(AuthFailure::BadRequest),
        };

        let verify = |key: &Key| match kind {
            IntegrityKind::Sha1 => msg.verify_integrity(key.as_bytes()).is_ok(),
            IntegrityKind::Sha256 => msg.verify_integrity_sha256(key.as_bytes()).is_ok(),
        };

        if let Some(keys) = self.users.get(username) {
            let key = match alg {
                PasswordAlgorithm::Md5 => Some(keys.md5),
                PasswordAlgorithm::Sha256 => keys.sha256,
            };
            return match key {
                Some(k) if verify(&k) => {
                    Ok(AuthOk { username: username.to_owned(), quota_user: username.to_owned(), key: Some(k), kind })
                }
                Some(_) => Err(AuthFailure::Unauthorized(UnauthorizedReason::BadIntegrity)),
                None => Err(AuthFailure::Unauthorized(UnauthorizedReason::UnknownUser)),
            };
        }

        if self.rest_secrets.is_empty() {
            return Err(AuthFailure::Unauthorized(UnauthorizedReason::UnknownUser));
        }
        let sep = self.rest_separator.unwrap_or(turn_rest::DEFAULT_SEPARATOR);
        let parsed = turn_rest::check_username(username, sep, unix_now).map_err(|e| {
            AuthFailure::Unauthorized(match e {
                turn_rest::RestError::Expired => UnauthorizedReason::Expired,
                turn_rest::RestError::Malformed => UnauthorizedReason::MalformedRestUsername,
            })
        })?;
        for secret in &self.rest_secrets {
            let password = turn_rest::password(secret, username);
            let Ok(key) = Key::long_term(alg, username, &self.realm, &password) else { continue };
            if verify(&key) {
                return Ok(AuthOk {
                    username: username.to_owned(),
                    quota_user: parsed.user.to_owned(),
                    key: Some(key),
                    kind,
                });
            }
        }
        Err(AuthFailure::Unauthorized(UnauthorizedReason::BadIntegrity))
    }

    /// RFC 8489 §9.2.4 bid-down protection: with neither attribute, MD5; otherwise both must
    /// be present, PASSWORD-ALGORITHMS must be what we offer, and the choice one of them.
    fn password_algorithm(&self, msg: &Message<'_>) -> Result<PasswordAlgorithm, AuthFailure> {
        let chosen = msg.password_algorithm().map_err(|_| AuthFailure::BadRequest)?;
        let offered = msg.password_algorithms();
        match (chosen, offered) {
            (None, None) => Ok(PasswordAlgorithm::Md5),
            (Some((n, _)), Some(list)) => {
                let mut algs = Vec::with_capacity(2);
                for entry in attr::password_algorithms(list) {
                    let (a, _) = entry.map_err(|_| AuthFailure::BadRequest)?;
                    algs.push(a);
                }
                if algs != OFFERED.map(PasswordAlgorithm::number) || !algs.contains(&n) {
                    return Err(AuthFailure::BadRequest);
                }
                PasswordAlgorithm::from_number(n).ok_or(AuthFailure::BadRequest)
            }
            _ => Err(AuthFailure::BadRequest),
        }
    }
}

/// The password algorithms this server offers, in its order of preference.
pub(crate) const OFFERED: [PasswordAlgorithm; 2] = [PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256];

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn auth(stale: u32) -> (Authenticator, Instant) {
        let t0 = Instant::now();
        (Authenticator::new("r", &AuthConfig::default(), [7; 32], t0, stale), t0)
    }

    #[test]
    fn nonce_is_bound_to_the_client_and_expires() {
        let (a, t0) = auth(600);
        let c1: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let c2: SocketAddr = "192.0.2.1:1001".parse().unwrap();
        let n = a.nonce(t0, c1);
        assert!(n.starts_with("obMatJos2wAAA"));
        assert_eq!(n.len(), 32);
        assert!(a.nonce_ok(t0 + Duration::from_secs(599), c1, &n));
        assert!(!a.nonce_ok(t0 + Duration::from_secs(600), c1, &n));
        assert!(!a.nonce_ok(t0, c2, &n));
        let mut forged = n.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert!(!a.nonce_ok(t0, c1, std::str::from_utf8(&forged).unwrap()));
        assert!(!a.nonce_ok(t0, c1, "garbage"));
    }

    #[test]
    fn stale_nonce_zero_means_unlimited() {
        let (a, t0) = auth(0);
        let c: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        let n = a.nonce(t0, c);
        assert!(a.nonce_ok(t0 + Duration::from_secs(1_000_000), c, &n));
    }
}
