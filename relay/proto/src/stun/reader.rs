//! The borrowed STUN reader: one validation pass over `&[u8]`, then lazy, zero-copy getters.
//!
//! Rules (RFC 8489 §5, §6, §14):
//! - the top two bits are zero, the magic cookie is present, the length is a multiple of 4 and
//!   equals the datagram's length minus the header;
//! - attributes are walked with their padding; the padding's content is ignored;
//! - the first occurrence of an attribute wins;
//! - after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count, after
//!   MESSAGE-INTEGRITY-SHA256 only FINGERPRINT, and FINGERPRINT must be last.
//!
//! Every read is bounds-checked with `from_be_bytes` on slices: no input can panic it.

use std::fmt;
use std::net::SocketAddr;

use super::attr::{self, AttrError, AttrType, ErrorCode};
use super::integrity::{self, IntegrityError};
use super::{HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId};

/// Why bytes are not a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than 20 bytes.
    TooShort,
    /// One of the top two bits of the type is set (RFC 7983: not STUN).
    NotStun,
    /// The magic cookie is missing (an RFC 3489 message, or not STUN).
    BadCookie,
    /// The length field is not a multiple of 4.
    UnalignedLength,
    /// The length field disagrees with the datagram's length.
    LengthMismatch,
    /// An attribute runs past the end of the message.
    AttributeOverrun,
    /// An attribute follows FINGERPRINT.
    AfterFingerprint,
    /// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 or FINGERPRINT has a wrong length.
    BadIntegrityLength,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::TooShort => "shorter than a STUN header",
            ParseError::NotStun => "top bits of the message type set",
            ParseError::BadCookie => "no magic cookie",
            ParseError::UnalignedLength => "length not a multiple of 4",
            ParseError::LengthMismatch => "length field disagrees with the datagram",
            ParseError::AttributeOverrun => "attribute runs past the end",
            ParseError::AfterFingerprint => "attribute after FINGERPRINT",
            ParseError::BadIntegrityLength => "integrity or fingerprint attribute of wrong length",
        })
    }
}

impl std::error::Error for ParseError {}

/// A validated STUN message borrowed from the caller's buffer.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    raw: &'a [u8],
    mtype: MessageType,
    tid: TransactionId,
    /// Attributes in `raw[HEADER_LEN..body_end]` count as the message's content.
    body_end: usize,
    /// Offsets of the attribute headers of the integrity and fingerprint attributes that count.
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
    classic: bool,
}

impl<'a> Message<'a> {
    /// Parses and validates a STUN message that must carry the magic cookie (RFC 5389/8489).
    pub fn parse(raw: &'a [u8]) -> Result<Self, ParseError> {
        let msg = Self::parse_any(raw)?;
        if msg.classic {
            return Err(ParseError::BadCookie);
        }
        Ok(msg)
    }

    /// Parses a message that may be a classic RFC 3489 one (no magic cookie); see
    /// [`Message::is_classic`]. The attribute walk is the same.
    pub fn parse_any(raw: &'a [u8]) -> Result<Self, ParseError> {
        if raw.len() < HEADER_LEN {
            return Err(ParseError::TooShort);
        }
        let typ = u16::from_be_bytes([raw[0], raw[1]]);
        if typ & 0xC000 != 0 {
            return Err(ParseError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
        if len % 4 != 0 {
            return Err(ParseError::UnalignedLength);
        }
        if len + HEADER_LEN != raw.len() {
            return Err(ParseError::LengthMismatch);
        }
        let cookie = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&raw[8..20]);

        let mut msg = Message {
            raw,
            mtype: MessageType::from_u16(typ),
            tid: TransactionId(tid),
            body_end: raw.len(),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
            classic: cookie != MAGIC_COOKIE,
        };
        msg.walk()?;
        Ok(msg)
    }

    fn walk(&mut self) -> Result<(), ParseError> {
        let raw = self.raw;
        let mut off = HEADER_LEN;
        let mut body_end = None;
        while off < raw.len() {
            let (t, vlen) = match raw.get(off..off + 4) {
                Some(h) => (AttrType(u16::from_be_bytes([h[0], h[1]])), usize::from(u16::from_be_bytes([h[2], h[3]]))),
                None => return Err(ParseError::AttributeOverrun),
            };
            let padded = (vlen + 3) & !3;
            if off + 4 + padded > raw.len() {
                return Err(ParseError::AttributeOverrun);
            }
            if self.fingerprint.is_some() {
                return Err(ParseError::AfterFingerprint);
            }
            match t {
                AttrType::MESSAGE_INTEGRITY if self.integrity.is_none() && self.integrity_sha256.is_none() => {
                    if vlen != integrity::SHA1_LEN {
                        return Err(ParseError::BadIntegrityLength);
                    }
                    self.integrity = Some(off);
                    body_end.get_or_insert(off);
                }
                AttrType::MESSAGE_INTEGRITY_SHA256 if self.integrity_sha256.is_none() => {
                    // RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4.
                    if !(16..=32).contains(&vlen) || vlen % 4 != 0 {
                        return Err(ParseError::BadIntegrityLength);
                    }
                    self.integrity_sha256 = Some(off);
                    body_end.get_or_insert(off);
                }
                AttrType::FINGERPRINT => {
                    if vlen != 4 {
                        return Err(ParseError::BadIntegrityLength);
                    }
                    self.fingerprint = Some(off);
                    body_end.get_or_insert(off);
                }
                // Anything else after an integrity attribute is ignored (RFC 8489 §14.5).
                _ => {}
            }
            off += 4 + padded;
        }
        self.body_end = body_end.unwrap_or(raw.len());
        Ok(())
    }

    /// The whole message as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.mtype
    }

    /// The method.
    pub fn method(&self) -> super::Method {
        self.mtype.method
    }

    /// The class.
    pub fn class(&self) -> super::Class {
        self.mtype.class
    }

    /// The 96-bit transaction id (for a classic message, the last 96 of its 128 bits).
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Whether the message lacks the magic cookie: an RFC 3489 message.
    pub fn is_classic(&self) -> bool {
        self.classic
    }

    /// The 16 bytes after the length field: cookie and transaction id (the RFC 3489 id).
    pub fn cookie_and_transaction_id(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.raw[4..20]);
        out
    }

    /// Iterates the attributes that count, in order: those before the first integrity or
    /// fingerprint attribute. The integrity and fingerprint attributes themselves are not
    /// included; see [`Message::has_integrity`] and friends.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { raw: &self.raw[..self.body_end], off: HEADER_LEN }
    }

    /// The value of the first occurrence of `t`.
    pub fn get(&self, t: AttrType) -> Option<&'a [u8]> {
        self.attributes().find(|(at, _)| *at == t).map(|(_, v)| v)
    }

    /// The values of every occurrence of `t`, in order.
    pub fn get_all(&self, t: AttrType) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.attributes().filter(move |(at, _)| *at == t).map(|(_, v)| v)
    }

    /// Comprehension-required attributes Tern does not know: the server answers 420 listing
    /// them (RFC 8489 §6.3.1).
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = AttrType> + use<'a> {
        self.attributes().map(|(t, _)| t).filter(|t| t.is_comprehension_required() && !t.is_known())
    }

    /// Whether the message carries MESSAGE-INTEGRITY.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// Whether the message carries MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// Whether the message carries FINGERPRINT.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, in constant time, without copying.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let off = self.integrity.ok_or(IntegrityError::Missing)?;
        let expected = &self.raw[off + 4..off + 4 + integrity::SHA1_LEN];
        integrity::verify_sha1(self.raw, off, key, expected)
    }

    /// Checks MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, possibly truncated) with `key`.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let off = self.integrity_sha256.ok_or(IntegrityError::Missing)?;
        let vlen = usize::from(u16::from_be_bytes([self.raw[off + 2], self.raw[off + 3]]));
        let expected = &self.raw[off + 4..off + 4 + vlen];
        integrity::verify_sha256(self.raw, off, key, expected)
    }

    /// Checks FINGERPRINT. `None` when the message has none.
    pub fn fingerprint_ok(&self) -> Option<bool> {
        let off = self.fingerprint?;
        let got = u32::from_be_bytes([self.raw[off + 4], self.raw[off + 5], self.raw[off + 6], self.raw[off + 7]]);
        Some(integrity::fingerprint(self.raw, off) == got)
    }

    // ---- typed getters: `Ok(None)` when absent, `Err` when present but malformed ----

    fn typed<T>(&self, t: AttrType, f: impl FnOnce(&'a [u8]) -> Result<T, AttrError>) -> Result<Option<T>, AttrError> {
        self.get(t).map(f).transpose()
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        let tid = self.tid;
        self.typed(AttrType::XOR_MAPPED_ADDRESS, |v| attr::decode_xor_address(AttrType::XOR_MAPPED_ADDRESS, v, &tid))
    }

    /// MAPPED-ADDRESS.
    pub fn mapped_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.typed(AttrType::MAPPED_ADDRESS, |v| attr::decode_address(AttrType::MAPPED_ADDRESS, v))
    }

    /// The first XOR-PEER-ADDRESS.
    pub fn xor_peer_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        let tid = self.tid;
        self.typed(AttrType::XOR_PEER_ADDRESS, |v| attr::decode_xor_address(AttrType::XOR_PEER_ADDRESS, v, &tid))
    }

    /// Every XOR-PEER-ADDRESS, in order (CreatePermission may carry several).
    pub fn xor_peer_addresses(&self) -> impl Iterator<Item = Result<SocketAddr, AttrError>> + use<'a> {
        let tid = self.tid;
        self.get_all(AttrType::XOR_PEER_ADDRESS)
            .map(move |v| attr::decode_xor_address(AttrType::XOR_PEER_ADDRESS, v, &tid))
    }

    /// XOR-RELAYED-ADDRESS: the first one (an allocation with two families has two).
    pub fn xor_relayed_address(&self) -> Result<Option<SocketAddr>, AttrError> {
        let tid = self.tid;
        self.typed(AttrType::XOR_RELAYED_ADDRESS, |v| attr::decode_xor_address(AttrType::XOR_RELAYED_ADDRESS, v, &tid))
    }

    /// Every XOR-RELAYED-ADDRESS, in order.
    pub fn xor_relayed_addresses(&self) -> impl Iterator<Item = Result<SocketAddr, AttrError>> + use<'a> {
        let tid = self.tid;
        self.get_all(AttrType::XOR_RELAYED_ADDRESS)
            .map(move |v| attr::decode_xor_address(AttrType::XOR_RELAYED_ADDRESS, v, &tid))
    }

    /// ALTERNATE-SERVER.
    pub fn alternate_server(&self) -> Result<Option<SocketAddr>, AttrError> {
        self.typed(AttrType::ALTERNATE_SERVER, |v| attr::decode_address(AttrType::ALTERNATE_SERVER, v))
    }

    /// USERNAME, as UTF-8 of at most 508 bytes.
    pub fn username(&self) -> Result<Option<&'a str>, AttrError> {
        self.typed(AttrType::USERNAME, |v| attr::decode_text(AttrType::USERNAME, v))
    }

    /// USERHASH: 32 bytes.
    pub fn userhash(&self) -> Result<Option<&'a [u8; 32]>, AttrError> {
        self.typed(AttrType::USERHASH, |v| v.try_into().map_err(|_| AttrError::BadLength(AttrType::USERHASH)))
    }

    /// REALM.
    pub fn realm(&self) -> Result<Option<&'a str>, AttrError> {
        self.typed(AttrType::REALM, |v| attr::decode_text(AttrType::REALM, v))
    }

    /// NONCE.
    pub fn nonce(&self) -> Result<Option<&'a str>, AttrError> {
        self.typed(AttrType::NONCE, |v| attr::decode_text(AttrType::NONCE, v))
    }

    /// SOFTWARE.
    pub fn software(&self) -> Result<Option<&'a str>, AttrError> {
        self.typed(AttrType::SOFTWARE, |v| attr::decode_text(AttrType::SOFTWARE, v))
    }

    /// PASSWORD-ALGORITHM: the algorithm number and its parameters.
    pub fn password_algorithm(&self) -> Result<Option<(u16, &'a [u8])>, AttrError> {
        self.typed(AttrType::PASSWORD_ALGORITHM, attr::decode_password_algorithm)
    }

    /// The raw value of PASSWORD-ALGORITHMS; iterate it with [`attr::password_algorithms`].
    pub fn password_algorithms(&self) -> Option<&'a [u8]> {
        self.get(AttrType::PASSWORD_ALGORITHMS)
    }

    /// ERROR-CODE: the code and the reason phrase.
    pub fn error_code(&self) -> Result<Option<(ErrorCode, &'a str)>, AttrError> {
        self.typed(AttrType::ERROR_CODE, attr::decode_error_code)
    }

    /// The attribute types listed in UNKNOWN-ATTRIBUTES.
    pub fn unknown_attributes(&self) -> impl Iterator<Item = AttrType> + use<'a> {
        self.get(AttrType::UNKNOWN_ATTRIBUTES).into_iter().flat_map(attr::unknown_attributes)
    }

    /// LIFETIME in seconds.
    pub fn lifetime(&self) -> Result<Option<u32>, AttrError> {
        self.typed(AttrType::LIFETIME, |v| attr::decode_u32(AttrType::LIFETIME, v))
    }

    /// REQUESTED-TRANSPORT: the IANA protocol number (17 = UDP, 6 = TCP).
    pub fn requested_transport(&self) -> Result<Option<u8>, AttrError> {
        self.typed(AttrType::REQUESTED_TRANSPORT, attr::decode_requested_transport)
    }

    /// REQUESTED-ADDRESS-FAMILY: [`attr::FAMILY_IPV4`] or [`attr::FAMILY_IPV6`].
    pub fn requested_address_family(&self) -> Result<Option<u8>, AttrError> {
        self.typed(AttrType::REQUESTED_ADDRESS_FAMILY, |v| attr::decode_family(AttrType::REQUESTED_ADDRESS_FAMILY, v))
    }

    /// ADDITIONAL-ADDRESS-FAMILY (must be IPv6 per RFC 8656 §7.2).
    pub fn additional_address_family(&self) -> Result<Option<u8>, AttrError> {
        self.typed(AttrType::ADDITIONAL_ADDRESS_FAMILY, |v| attr::decode_family(AttrType::ADDITIONAL_ADDRESS_FAMILY, v))
    }

    /// EVEN-PORT: `Some(reserve_next)` when present.
    pub fn even_port(&self) -> Result<Option<bool>, AttrError> {
        self.typed(AttrType::EVEN_PORT, attr::decode_even_port)
    }

    /// RESERVATION-TOKEN: 8 bytes.
    pub fn reservation_token(&self) -> Result<Option<u64>, AttrError> {
        self.typed(AttrType::RESERVATION_TOKEN, |v| attr::decode_u64(AttrType::RESERVATION_TOKEN, v))
    }

    /// Whether DONT-FRAGMENT is present.
    pub fn dont_fragment(&self) -> bool {
        self.get(AttrType::DONT_FRAGMENT).is_some()
    }

    /// CHANNEL-NUMBER.
    pub fn channel_number(&self) -> Result<Option<u16>, AttrError> {
        self.typed(AttrType::CHANNEL_NUMBER, attr::decode_channel_number)
    }

    /// DATA: the payload, borrowed.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.get(AttrType::DATA)
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        d.field("type", &self.mtype).field("tid", &self.tid);
        let attrs: Vec<AttrType> = self.attributes().map(|(t, _)| t).collect();
        d.field("attributes", &attrs)
            .field("integrity", &self.integrity.is_some())
            .field("integrity_sha256", &self.integrity_sha256.is_some())
            .field("fingerprint", &self.fingerprint.is_some())
            .finish()
    }
}

/// Iterator over `(type, value)` of a validated message's counted attributes.
#[derive(Clone)]
pub struct Attributes<'a> {
    raw: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (AttrType, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // The walk in `Message::parse_any` proved every header and value in range.
        let h = self.raw.get(self.off..self.off + 4)?;
        let t = AttrType(u16::from_be_bytes([h[0], h[1]]));
        let vlen = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let v = self.raw.get(self.off + 4..self.off + 4 + vlen)?;
        self.off += 4 + ((vlen + 3) & !3);
        Some((t, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{Class, MessageWriter, Method};

    fn binding_with(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), TransactionId([1; 12]));
        for (t, v) in attrs {
            w.add(AttrType(*t), v);
        }
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn header_checks_reject_bad_input() {
        let good = binding_with(&[]);
        assert!(Message::parse(&good).is_ok());
        assert_eq!(Message::parse(&good[..19]).unwrap_err(), ParseError::TooShort);
        let mut b = good.clone();
        b[0] |= 0x80;
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::NotStun);
        let mut b = good.clone();
        b[4] ^= 1;
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::BadCookie);
        assert!(Message::parse_any(&b).unwrap().is_classic());
        let mut b = good.clone();
        b[3] = 2;
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::UnalignedLength);
        let mut b = good.clone();
        b.extend_from_slice(&[0; 4]);
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::LengthMismatch);
    }

    #[test]
    fn attribute_overrun_is_rejected() {
        let mut b = binding_with(&[(0x8022, b"abcd")]);
        b[22..24].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::AttributeOverrun);
    }

    #[test]
    fn first_occurrence_wins() {
        let b = binding_with(&[(0x0006, b"first"), (0x0006, b"second")]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.username().unwrap(), Some("first"));
        assert_eq!(m.get_all(AttrType::USERNAME).count(), 2);
    }

    #[test]
    fn attributes_after_message_integrity_are_ignored() {
        let mut buf = vec![0u8; 256];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::REFRESH, Class::Request), TransactionId([2; 12]));
        w.add_u32(AttrType::LIFETIME, 600);
        w.add_message_integrity(b"key");
        let n = w.finish().unwrap();
        buf.truncate(n);
        // An on-path attacker appends LIFETIME=0 and an XOR-PEER-ADDRESS and fixes the length.
        buf.extend_from_slice(&[0x00, 0x0D, 0, 4, 0, 0, 0, 0]);
        buf.extend_from_slice(&[0x00, 0x12, 0, 8, 0, 1, 0, 1, 1, 2, 3, 4]);
        let len = (buf.len() - 20) as u16;
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.lifetime().unwrap(), Some(600));
        assert_eq!(m.xor_peer_address().unwrap(), None);
        assert!(m.verify_integrity(b"key").is_ok());
    }

    #[test]
    fn fingerprint_must_be_last() {
        let mut buf = vec![0u8; 256];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), TransactionId([3; 12]));
        w.add_fingerprint();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf.extend_from_slice(&[0x80, 0x22, 0, 0]);
        let len = (buf.len() - 20) as u16;
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(Message::parse(&buf).unwrap_err(), ParseError::AfterFingerprint);
    }

    #[test]
    fn unknown_comprehension_required_attributes_are_reported() {
        let b = binding_with(&[(0x7777, b"x"), (0xC001, b"y"), (0x0024, &[0, 0, 0, 1])]);
        let m = Message::parse(&b).unwrap();
        let unknown: Vec<_> = m.unknown_comprehension_required().collect();
        assert_eq!(unknown, vec![AttrType(0x7777)]);
    }
}
