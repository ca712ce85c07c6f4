//! STUN messages (RFC 8489): the header, message types, and the borrowed reader and the writer.
//!
//! Everything here works on caller-owned byte slices. Parsing never copies a payload and never
//! allocates; encoding writes into the caller's buffer. Nothing here performs I/O.
//!
//! - [`Message`] is a validated, borrowed view of one message ([`reader`]).
//! - [`MessageWriter`] encodes one message ([`writer`]).
//! - [`attr`] names every attribute type Tern knows and decodes the typed ones.
//! - [`integrity`] computes keys, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.

pub mod attr;
pub mod integrity;
pub mod reader;
pub mod writer;

use std::fmt;

pub use attr::{AttrType, ErrorCode, PasswordAlgorithm};
pub use integrity::Key;
pub use reader::{Message, ParseError};
pub use writer::{EncodeError, MessageWriter};

/// The magic cookie of RFC 5389/8489 §5, fixed in every modern STUN header.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Bytes in a STUN header.
pub const HEADER_LEN: usize = 20;
/// The largest STUN message: the 16-bit length field plus the header.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 0xFFFC;

/// The class of a STUN message (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Class {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// A STUN method: 12 bits. The named constants are the ones of RFC 8489, RFC 8656 and RFC 6062.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Method = Method(0x001);
    pub const ALLOCATE: Method = Method(0x003);
    pub const REFRESH: Method = Method(0x004);
    pub const SEND: Method = Method(0x006);
    pub const DATA: Method = Method(0x007);
    pub const CREATE_PERMISSION: Method = Method(0x008);
    pub const CHANNEL_BIND: Method = Method(0x009);
    pub const CONNECT: Method = Method(0x00A);
    pub const CONNECTION_BIND: Method = Method(0x00B);
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// The method's name, or `None` for a method Tern does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::BINDING => "Binding",
            Method::ALLOCATE => "Allocate",
            Method::REFRESH => "Refresh",
            Method::SEND => "Send",
            Method::DATA => "Data",
            Method::CREATE_PERMISSION => "CreatePermission",
            Method::CHANNEL_BIND => "ChannelBind",
            Method::CONNECT => "Connect",
            Method::CONNECTION_BIND => "ConnectionBind",
            Method::CONNECTION_ATTEMPT => "ConnectionAttempt",
            _ => return None,
        })
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Method({:#05x})", self.0),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A message type: method and class, interleaved on the wire as RFC 8489 §5 draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    pub method: Method,
    pub class: Class,
}

impl MessageType {
    pub const fn new(method: Method, class: Class) -> Self {
        MessageType { method, class }
    }

    /// Decodes the 14 significant bits of the type field. The top two bits must already be
    /// known to be zero.
    pub fn from_u16(v: u16) -> Self {
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        let class = ((v & 0x0010) >> 4) | ((v & 0x0100) >> 7);
        MessageType { method: Method(method), class: Class::from_bits(class) }
    }

    /// Encodes to the 16-bit type field.
    pub fn to_u16(self) -> u16 {
        let m = self.method.0 & 0x0FFF;
        let c = self.class.bits();
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }
}

/// The 96-bit transaction id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransactionId(pub [u8; 12]);

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Whether `first` starts a STUN message in the RFC 7983 demultiplexing scheme (0–3).
#[inline]
pub fn is_stun_first_byte(first: u8) -> bool {
    first <= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_round_trips_every_method_and_class() {
        for m in 0..0x1000u16 {
            for c in [Class::Request, Class::Indication, Class::Success, Class::Error] {
                let t = MessageType::new(Method(m), c);
                let v = t.to_u16();
                assert_eq!(v & 0xC000, 0);
                assert_eq!(MessageType::from_u16(v), t);
            }
        }
    }

    #[test]
    fn well_known_types_have_their_rfc_values() {
        assert_eq!(MessageType::new(Method::BINDING, Class::Request).to_u16(), 0x0001);
        assert_eq!(MessageType::new(Method::BINDING, Class::Success).to_u16(), 0x0101);
        assert_eq!(MessageType::new(Method::BINDING, Class::Error).to_u16(), 0x0111);
        assert_eq!(MessageType::new(Method::ALLOCATE, Class::Request).to_u16(), 0x0003);
        assert_eq!(MessageType::new(Method::SEND, Class::Indication).to_u16(), 0x0016);
        assert_eq!(MessageType::new(Method::DATA, Class::Indication).to_u16(), 0x0017);
        assert_eq!(MessageType::new(Method::CHANNEL_BIND, Class::Success).to_u16(), 0x0109);
    }
}
