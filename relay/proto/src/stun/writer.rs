//! The STUN writer: encodes one message into the caller's buffer.
//!
//! Padding is always written as zeros (coturn's CVE-2020-4067 leaked stale memory through
//! uninitialised response bytes). MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
//! computed when they are added, over the bytes written so far with the length patched to cover
//! them, so they must be added last, in that order.
//!
//! Errors are sticky: every `add_*` that does not fit marks the writer, and [`MessageWriter::finish`]
//! reports it. Nothing is ever truncated silently.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;

use super::attr::{self, AttrType, ErrorCode, PasswordAlgorithm};
use super::integrity::{self, SHA1_LEN, SHA256_LEN};
use super::{HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId};

/// The message did not fit the buffer, or a value is too long for a STUN attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer is too small.
    BufferTooSmall,
    /// A value or the whole message exceeds STUN's 16-bit lengths.
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferTooSmall => "buffer too small for the STUN message",
            EncodeError::TooLong => "value too long for a STUN attribute",
        })
    }
}

impl std::error::Error for EncodeError {}

/// Encodes one STUN message into a borrowed buffer.
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
    error: Option<EncodeError>,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message with the magic cookie.
    pub fn new(buf: &'b mut [u8], mtype: MessageType, tid: TransactionId) -> Self {
        let mut cookie_tid = [0u8; 16];
        cookie_tid[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        cookie_tid[4..].copy_from_slice(&tid.0);
        Self::with_raw_id(buf, mtype, cookie_tid)
    }

    /// Starts a message whose 16 bytes after the length are given verbatim: a reply to a
    /// classic RFC 3489 request echoes its 128-bit transaction id.
    pub fn with_raw_id(buf: &'b mut [u8], mtype: MessageType, cookie_and_tid: [u8; 16]) -> Self {
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&cookie_and_tid[4..]);
        let mut w = MessageWriter { buf, len: 0, tid: TransactionId(tid), error: None };
        if w.buf.len() < HEADER_LEN {
            w.error = Some(EncodeError::BufferTooSmall);
            return w;
        }
        w.buf[0..2].copy_from_slice(&mtype.to_u16().to_be_bytes());
        w.buf[2..4].copy_from_slice(&[0, 0]);
        w.buf[4..20].copy_from_slice(&cookie_and_tid);
        w.len = HEADER_LEN;
        w
    }

    /// The transaction id being written.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len <= HEADER_LEN
    }

    /// Adds an attribute whose value is written by `fill` into a slice of exactly `vlen` bytes.
    /// Returns `false` (and marks the writer) when it does not fit.
    pub fn add_with(&mut self, t: AttrType, vlen: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        if self.error.is_some() {
            return false;
        }
        let padded = (vlen + 3) & !3;
        if vlen > 0xFFFF || self.len - HEADER_LEN + 4 + padded > 0xFFFC {
            self.error = Some(EncodeError::TooLong);
            return false;
        }
        let end = self.len + 4 + padded;
        if end > self.buf.len() {
            self.error = Some(EncodeError::BufferTooSmall);
            return false;
        }
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&t.0.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&(vlen as u16).to_be_bytes());
        fill(&mut self.buf[at + 4..at + 4 + vlen]);
        self.buf[at + 4 + vlen..end].fill(0);
        self.len = end;
        self.set_length_field();
        true
    }

    fn set_length_field(&mut self) {
        let l = ((self.len - HEADER_LEN) as u16).to_be_bytes();
        self.buf[2..4].copy_from_slice(&l);
    }

    /// Adds an attribute with a raw value.
    pub fn add(&mut self, t: AttrType, value: &[u8]) -> bool {
        self.add_with(t, value.len(), |v| v.copy_from_slice(value))
    }

    /// Adds a plain address attribute (MAPPED-ADDRESS, ALTERNATE-SERVER, …).
    pub fn add_address(&mut self, t: AttrType, addr: SocketAddr) -> bool {
        let mut v = [0u8; 20];
        let n = attr::encode_address(&mut v, addr, None);
        self.add(t, &v[..n])
    }

    /// Adds an XOR address attribute (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).
    pub fn add_xor_address(&mut self, t: AttrType, addr: SocketAddr) -> bool {
        let mut v = [0u8; 20];
        let tid = self.tid;
        let n = attr::encode_address(&mut v, addr, Some(&tid));
        self.add(t, &v[..n])
    }

    /// Adds a 32-bit attribute (LIFETIME, …).
    pub fn add_u32(&mut self, t: AttrType, value: u32) -> bool {
        self.add(t, &value.to_be_bytes())
    }

    /// Adds a 64-bit attribute (RESERVATION-TOKEN, …).
    pub fn add_u64(&mut self, t: AttrType, value: u64) -> bool {
        self.add(t, &value.to_be_bytes())
    }

    /// Adds a text attribute (USERNAME, REALM, NONCE, SOFTWARE).
    pub fn add_text(&mut self, t: AttrType, s: &str) -> bool {
        self.add(t, s.as_bytes())
    }

    /// Adds ERROR-CODE with the given reason phrase (empty for none).
    pub fn add_error_code(&mut self, code: ErrorCode, reason: &str) -> bool {
        let r = reason.as_bytes();
        self.add_with(AttrType::ERROR_CODE, 4 + r.len(), |v| {
            v[0] = 0;
            v[1] = 0;
            v[2] = (code.0 / 100) as u8 & 0x07;
            v[3] = (code.0 % 100) as u8;
            v[4..].copy_from_slice(r);
        })
    }

    /// Adds UNKNOWN-ATTRIBUTES.
    pub fn add_unknown_attributes(&mut self, types: &[AttrType]) -> bool {
        self.add_with(AttrType::UNKNOWN_ATTRIBUTES, types.len() * 2, |v| {
            for (c, t) in v.chunks_exact_mut(2).zip(types) {
                c.copy_from_slice(&t.0.to_be_bytes());
            }
        })
    }

    /// Adds CHANNEL-NUMBER with its reserved bytes zeroed.
    pub fn add_channel_number(&mut self, number: u16) -> bool {
        let n = number.to_be_bytes();
        self.add(AttrType::CHANNEL_NUMBER, &[n[0], n[1], 0, 0])
    }

    /// Adds REQUESTED-TRANSPORT (17 = UDP, 6 = TCP).
    pub fn add_requested_transport(&mut self, protocol: u8) -> bool {
        self.add(AttrType::REQUESTED_TRANSPORT, &[protocol, 0, 0, 0])
    }

    /// Adds REQUESTED-ADDRESS-FAMILY or ADDITIONAL-ADDRESS-FAMILY.
    pub fn add_family(&mut self, t: AttrType, family: u8) -> bool {
        self.add(t, &[family, 0, 0, 0])
    }

    /// Adds EVEN-PORT with the R bit.
    pub fn add_even_port(&mut self, reserve_next: bool) -> bool {
        self.add(AttrType::EVEN_PORT, &[if reserve_next { 0x80 } else { 0 }])
    }

    /// Adds DONT-FRAGMENT (empty).
    pub fn add_dont_fragment(&mut self) -> bool {
        self.add(AttrType::DONT_FRAGMENT, &[])
    }

    /// Adds PASSWORD-ALGORITHMS listing `algs` (no parameters).
    pub fn add_password_algorithms(&mut self, algs: &[PasswordAlgorithm]) -> bool {
        self.add_with(AttrType::PASSWORD_ALGORITHMS, algs.len() * 4, |v| {
            for (c, a) in v.chunks_exact_mut(4).zip(algs) {
                c[..2].copy_from_slice(&a.number().to_be_bytes());
                c[2..].copy_from_slice(&[0, 0]);
            }
        })
    }

    /// Adds PASSWORD-ALGORITHM (no parameters).
    pub fn add_password_algorithm(&mut self, alg: PasswordAlgorithm) -> bool {
        let n = alg.number().to_be_bytes();
        self.add(AttrType::PASSWORD_ALGORITHM, &[n[0], n[1], 0, 0])
    }

    /// Adds MESSAGE-INTEGRITY (HMAC-SHA1) over everything written so far.
    pub fn add_message_integrity(&mut self, key: &[u8]) -> bool {
        let at = self.len;
        if !self.add_with(AttrType::MESSAGE_INTEGRITY, SHA1_LEN, |v| v.fill(0)) {
            return false;
        }
        let mac = integrity::hmac_sha1(self.buf, at, key);
        self.buf[at + 4..at + 4 + SHA1_LEN].copy_from_slice(&mac);
        true
    }

    /// Adds a full-length MESSAGE-INTEGRITY-SHA256 over everything written so far.
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> bool {
        let at = self.len;
        if !self.add_with(AttrType::MESSAGE_INTEGRITY_SHA256, SHA256_LEN, |v| v.fill(0)) {
            return false;
        }
        let mac = integrity::hmac_sha256(self.buf, at, SHA256_LEN, key);
        self.buf[at + 4..at + 4 + SHA256_LEN].copy_from_slice(&mac);
        true
    }

    /// Adds FINGERPRINT over everything written so far. It must be the last attribute.
    pub fn add_fingerprint(&mut self) -> bool {
        let at = self.len;
        if !self.add_with(AttrType::FINGERPRINT, 4, |v| v.fill(0)) {
            return false;
        }
        let fp = integrity::fingerprint(self.buf, at);
        self.buf[at + 4..at + 8].copy_from_slice(&fp.to_be_bytes());
        true
    }

    /// Finishes the message: its length in the buffer, or the first error met.
    pub fn finish(self) -> Result<usize, EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.len),
        }
    }
}

/// Bytes a Data indication puts in front of its payload: the header, XOR-PEER-ADDRESS (8 or 20
/// bytes of value) and the DATA attribute's header.
pub const fn data_indication_headroom(peer_is_ipv4: bool) -> usize {
    HEADER_LEN + 4 + if peer_is_ipv4 { 8 } else { 20 } + 4
}

/// The most a Data indication puts after its payload: padding to 4 bytes and FINGERPRINT.
pub const DATA_INDICATION_TAILROOM: usize = 3 + 8;

/// Writes a Data indication (RFC 8656 §11.4) around `buf[payload]` in place: the header,
/// XOR-PEER-ADDRESS and the DATA header go into the [`data_indication_headroom`] bytes before the
/// payload, zero padding and (with `fingerprint`) FINGERPRINT after it. The payload is not
/// copied. Returns where the message is in `buf`.
///
/// This is [`MessageWriter`]'s counterpart for the one message the data path builds around bytes
/// that are already in place; the same rules hold (zeroed padding, lengths checked, nothing
/// truncated).
pub fn write_data_indication(
    buf: &mut [u8],
    payload: Range<usize>,
    peer: SocketAddr,
    tid: TransactionId,
    fingerprint: bool,
) -> Result<Range<usize>, EncodeError> {
    let len = payload.len();
    let headroom = data_indication_headroom(peer.is_ipv4());
    let pad = (4 - len % 4) % 4;
    let tail = pad + if fingerprint { 8 } else { 0 };
    if payload.start > payload.end || payload.start < headroom || buf.len() < payload.end + tail {
        return Err(EncodeError::BufferTooSmall);
    }
    let start = payload.start - headroom;
    let body_len = headroom - HEADER_LEN + len + tail;
    let body_len = u16::try_from(body_len).ok().filter(|l| usize::from(*l) <= 0xFFFC).ok_or(EncodeError::TooLong)?;
    let mut end = payload.end + pad;
    buf[payload.end..end].fill(0);
    let h = &mut buf[start..payload.start];
    h[0..2].copy_from_slice(&MessageType::new(super::Method::DATA, super::Class::Indication).to_u16().to_be_bytes());
    h[2..4].copy_from_slice(&body_len.to_be_bytes());
    h[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    h[8..20].copy_from_slice(&tid.0);
    let mut v = [0u8; 20];
    let n = attr::encode_address(&mut v, peer, Some(&tid));
    h[20..22].copy_from_slice(&AttrType::XOR_PEER_ADDRESS.0.to_be_bytes());
    h[22..24].copy_from_slice(&(n as u16).to_be_bytes());
    h[24..24 + n].copy_from_slice(&v[..n]);
    let d = 24 + n;
    h[d..d + 2].copy_from_slice(&AttrType::DATA.0.to_be_bytes());
    h[d + 2..d + 4].copy_from_slice(&(len as u16).to_be_bytes());
    if fingerprint {
        buf[end..end + 2].copy_from_slice(&AttrType::FINGERPRINT.0.to_be_bytes());
        buf[end + 2..end + 4].copy_from_slice(&4u16.to_be_bytes());
        let fp = integrity::fingerprint(&buf[start..end + 8], end - start);
        buf[end + 4..end + 8].copy_from_slice(&fp.to_be_bytes());
        end += 8;
    }
    Ok(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{Class, Message, Method};

    #[test]
    fn padding_is_zeroed_even_in_a_dirty_buffer() {
        let mut buf = vec![0xAAu8; 64];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Success), TransactionId([9; 12]));
        w.add_text(AttrType::SOFTWARE, "abcde");
        let n = w.finish().unwrap();
        assert_eq!(n, 20 + 4 + 8);
        assert_eq!(&buf[29..32], &[0, 0, 0]);
    }

    #[test]
    fn overflow_is_reported_not_truncated() {
        let mut buf = vec![0u8; 30];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Success), TransactionId([9; 12]));
        assert!(!w.add(AttrType::SOFTWARE, &[1; 40]));
        assert_eq!(w.finish(), Err(EncodeError::BufferTooSmall));
        let mut small = [0u8; 10];
        let w =
            MessageWriter::new(&mut small, MessageType::new(Method::BINDING, Class::Success), TransactionId([9; 12]));
        assert_eq!(w.finish(), Err(EncodeError::BufferTooSmall));
    }

    #[test]
    fn integrity_and_fingerprint_verify_after_encoding() {
        let mut buf = vec![0u8; 256];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), TransactionId([4; 12]));
        w.add_requested_transport(17);
        w.add_text(AttrType::USERNAME, "user");
        w.add_message_integrity(b"0123456789abcdef");
        w.add_message_integrity_sha256(b"0123456789abcdef0123456789abcdef");
        w.add_fingerprint();
        let n = w.finish().unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        assert!(m.verify_integrity(b"0123456789abcdef").is_ok());
        assert!(m.verify_integrity_sha256(b"0123456789abcdef0123456789abcdef").is_ok());
        assert!(m.verify_integrity(b"wrong").is_err());
        assert_eq!(m.fingerprint_ok(), Some(true));
        assert_eq!(m.requested_transport().unwrap(), Some(17));
    }

    #[test]
    fn error_code_encodes_class_and_number() {
        let mut buf = [0u8; 64];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Error), TransactionId([1; 12]));
        w.add_error_code(ErrorCode::ALLOCATION_MISMATCH, "");
        let n = w.finish().unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.error_code().unwrap().map(|e| e.0), Some(ErrorCode::ALLOCATION_MISMATCH));
    }

    #[test]
    fn data_indication_is_written_around_the_payload_in_place() {
        for (peer, fp) in [("192.0.2.7:4000", false), ("[2001:db8::7]:4000", true)] {
            let peer: SocketAddr = peer.parse().unwrap();
            let head = data_indication_headroom(peer.is_ipv4());
            let mut buf = vec![0xAA; head + 5 + DATA_INDICATION_TAILROOM];
            buf[head..head + 5].copy_from_slice(b"hello");
            let tid = TransactionId([5; 12]);
            let r = write_data_indication(&mut buf, head..head + 5, peer, tid, fp).unwrap();
            assert_eq!(r.start, 0);
            let m = Message::parse(&buf[r.clone()]).unwrap();
            assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
            assert_eq!(m.transaction_id(), tid);
            assert_eq!(m.data(), Some(&b"hello"[..]));
            assert_eq!(m.xor_peer_address().unwrap(), Some(peer));
            assert_eq!(m.fingerprint_ok(), fp.then_some(true));
            assert_eq!(&buf[head + 5..head + 8], &[0, 0, 0], "padding is zeroed");
        }
    }

    #[test]
    fn data_indication_without_room_is_refused() {
        let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let head = data_indication_headroom(true);
        let mut buf = vec![0; head + 4];
        assert_eq!(
            write_data_indication(&mut buf, head - 1..head + 3, peer, TransactionId([0; 12]), false),
            Err(EncodeError::BufferTooSmall)
        );
        assert_eq!(
            write_data_indication(&mut buf, head..head + 4, peer, TransactionId([0; 12]), true),
            Err(EncodeError::BufferTooSmall)
        );
        let mut big = vec![0; head + 0x10000 + 16];
        assert_eq!(
            write_data_indication(&mut big, head..head + 0xFFF0, peer, TransactionId([0; 12]), false),
            Err(EncodeError::TooLong)
        );
    }
}
