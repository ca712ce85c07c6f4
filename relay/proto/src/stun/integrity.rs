//! Credentials and message integrity (RFC 8489 §9, §14.4–§14.7, §18.5).
//!
//! - Short-term key: `OpaqueString(password)` (SASLprep here, as RFC 5769 does).
//! - Long-term key: `MD5(username ":" realm ":" password)` or its SHA-256 variant, with SASLprep
//!   applied to the password (and the username, where it is not already canonical).
//! - MESSAGE-INTEGRITY is HMAC-SHA1, MESSAGE-INTEGRITY-SHA256 is HMAC-SHA256, each over the
//!   message up to the attribute with the header length patched to end just after it. The
//!   patched length lives in a 2-byte temporary: the message is never copied.
//! - FINGERPRINT is CRC-32 of the message up to it, XOR 0x5354554e.

use std::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

use super::attr::PasswordAlgorithm;

/// Length of the MESSAGE-INTEGRITY value.
pub const SHA1_LEN: usize = 20;
/// Length of a full MESSAGE-INTEGRITY-SHA256 value.
pub const SHA256_LEN: usize = 32;
/// XOR constant of FINGERPRINT (RFC 8489 §14.7).
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Why an integrity check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityError {
    /// The message carries no such attribute.
    Missing,
    /// The HMAC does not match.
    Mismatch,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IntegrityError::Missing => "no integrity attribute",
            IntegrityError::Mismatch => "integrity check failed",
        })
    }
}

impl std::error::Error for IntegrityError {}

/// SASLprep (RFC 4013) refused the string: it holds prohibited or unassigned code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslPrepError;

impl fmt::Display for SaslPrepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("string refused by SASLprep")
    }
}

impl std::error::Error for SaslPrepError {}

/// A long-term credential key: 16 bytes (MD5) or 32 bytes (SHA-256), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; 32],
    len: u8,
}

impl Key {
    /// Wraps raw key bytes, e.g. a `user=name:0x<hex>` key from the config. `None` unless 16 or
    /// 32 bytes long.
    pub fn from_bytes(b: &[u8]) -> Option<Key> {
        if b.len() != 16 && b.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..b.len()].copy_from_slice(b);
        Some(Key { bytes, len: b.len() as u8 })
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Derives the long-term key for `username`, `realm` and `password`.
    pub fn long_term(
        alg: PasswordAlgorithm,
        username: &str,
        realm: &str,
        password: &str,
    ) -> Result<Key, SaslPrepError> {
        let password = stringprep::saslprep(password).map_err(|_| SaslPrepError)?;
        // RFC 5769 §2.4 applies SASLprep to the username too; for ASCII names it is the identity.
        let username = stringprep::saslprep(username).map_err(|_| SaslPrepError)?;
        let mut bytes = [0u8; 32];
        let len = match alg {
            PasswordAlgorithm::Md5 => {
                let mut h = Md5::new();
                feed(&mut h, &username, realm, &password);
                bytes[..16].copy_from_slice(&h.finalize());
                16
            }
            PasswordAlgorithm::Sha256 => {
                let mut h = Sha256::new();
                feed(&mut h, &username, realm, &password);
                bytes.copy_from_slice(&h.finalize());
                32
            }
        };
        Ok(Key { bytes, len })
    }
}

fn feed<D: Digest>(h: &mut D, username: &str, realm: &str, password: &str) {
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys never reach logs.
        write!(f, "Key(<{} bytes>)", self.len)
    }
}

/// The short-term key: the SASLprep'd password (RFC 8489 §9.1.1).
pub fn short_term_key(password: &str) -> Result<String, SaslPrepError> {
    stringprep::saslprep(password).map(|s| s.into_owned()).map_err(|_| SaslPrepError)
}

/// USERHASH = SHA-256(username ":" realm) (RFC 8489 §14.4).
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.finalize().into()
}

/// The header with its length patched so that the message ends after an attribute of
/// `attr_value_len` bytes starting at `attr_off`.
fn patched_header(raw: &[u8], attr_off: usize, attr_value_len: usize) -> [u8; 4] {
    let len = (attr_off - super::HEADER_LEN + 4 + attr_value_len) as u16;
    let l = len.to_be_bytes();
    [raw[0], raw[1], l[0], l[1]]
}

/// HMAC-SHA1 of `raw[..attr_off]` with the header patched for a MESSAGE-INTEGRITY at `attr_off`.
pub(crate) fn hmac_sha1(raw: &[u8], attr_off: usize, key: &[u8]) -> [u8; SHA1_LEN] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&patched_header(raw, attr_off, SHA1_LEN));
    mac.update(&raw[4..attr_off]);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `raw[..attr_off]` patched for a MESSAGE-INTEGRITY-SHA256 of `value_len` bytes.
pub(crate) fn hmac_sha256(raw: &[u8], attr_off: usize, value_len: usize, key: &[u8]) -> [u8; SHA256_LEN] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&patched_header(raw, attr_off, value_len));
    mac.update(&raw[4..attr_off]);
    mac.finalize().into_bytes().into()
}

pub(crate) fn verify_sha1(raw: &[u8], attr_off: usize, key: &[u8], expected: &[u8]) -> Result<(), IntegrityError> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).map_err(|_| IntegrityError::Mismatch)?;
    mac.update(&patched_header(raw, attr_off, SHA1_LEN));
    mac.update(&raw[4..attr_off]);
    // `verify_slice` compares in constant time.
    mac.verify_slice(expected).map_err(|_| IntegrityError::Mismatch)
}

pub(crate) fn verify_sha256(raw: &[u8], attr_off: usize, key: &[u8], expected: &[u8]) -> Result<(), IntegrityError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| IntegrityError::Mismatch)?;
    mac.update(&patched_header(raw, attr_off, expected.len()));
    mac.update(&raw[4..attr_off]);
    // A truncated value is compared against the leftmost bytes, in constant time.
    mac.verify_truncated_left(expected).map_err(|_| IntegrityError::Mismatch)
}

/// FINGERPRINT value for a message whose FINGERPRINT attribute starts at `attr_off`.
pub(crate) fn fingerprint(raw: &[u8], attr_off: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&patched_header(raw, attr_off, 4));
    h.update(&raw[4..attr_off]);
    h.finalize() ^ FINGERPRINT_XOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_key_applies_saslprep_to_the_password() {
        // RFC 5769 §2.4: the password "The<U+00AD>M<U+00AA>tr<U+2168>" prepares to "TheMatrIX".
        let k = Key::long_term(PasswordAlgorithm::Md5, "マトリックス", "example.org", "The\u{00AD}M\u{00AA}tr\u{2168}")
            .unwrap();
        let want = [0xe8, 0xca, 0x7a, 0xd5, 0x9d, 0x5e, 0xb0, 0x51, 0x8e, 0x31, 0x29, 0x11, 0xd2, 0xda, 0xb2, 0xa9];
        assert_eq!(k.as_bytes(), &want);
    }

    #[test]
    fn sha256_key_is_32_bytes_and_differs_from_md5() {
        let a = Key::long_term(PasswordAlgorithm::Sha256, "u", "r", "p").unwrap();
        let b = Key::long_term(PasswordAlgorithm::Md5, "u", "r", "p").unwrap();
        assert_eq!(a.as_bytes().len(), 32);
        assert_eq!(b.as_bytes().len(), 16);
    }

    #[test]
    fn key_from_bytes_accepts_only_md5_or_sha256_sizes() {
        assert!(Key::from_bytes(&[0; 16]).is_some());
        assert!(Key::from_bytes(&[0; 32]).is_some());
        assert!(Key::from_bytes(&[0; 20]).is_none());
    }

    #[test]
    fn saslprep_refuses_prohibited_code_points() {
        assert!(short_term_key("a\u{0007}b").is_err());
        assert_eq!(short_term_key("VOkJxbRl1RmTxUk/WvJxBt").unwrap(), "VOkJxbRl1RmTxUk/WvJxBt");
    }
}
