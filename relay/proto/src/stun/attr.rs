//! Attribute types and the value formats of the attributes Tern reads or writes.
//!
//! Every attribute of RFC 8489 (STUN), RFC 8656 (TURN), RFC 5780 (NAT behaviour discovery),
//! RFC 6062 (TURN TCP), RFC 8016 (mobility) is named here, plus the RFC 3489 legacy ones and the
//! ICE attributes (RFC 8445) that browsers put into STUN messages. Decoders take the raw value
//! and return a small `Copy` error; they never panic on any input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{MAGIC_COOKIE, TransactionId};

/// An attribute type (RFC 8489 §18.3). Values below 0x8000 are comprehension-required.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrType(pub u16);

macro_rules! attrs {
    ($( $(#[$doc:meta])* $name:ident = $val:literal, $text:literal; )*) => {
        impl AttrType {
            $( $(#[$doc])* pub const $name: AttrType = AttrType($val); )*

            /// The attribute's registered name, or `None` if Tern does not know it.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }

            /// Every attribute type Tern knows, in numeric order of declaration.
            pub const ALL: &'static [AttrType] = &[$( AttrType($val), )*];
        }
    };
}

attrs! {
    // RFC 8489 (STUN)
    /// RFC 8489 §14.1
    MAPPED_ADDRESS = 0x0001, "MAPPED-ADDRESS";
    /// RFC 3489 (legacy)
    RESPONSE_ADDRESS = 0x0002, "RESPONSE-ADDRESS";
    /// RFC 5780 §7.2
    CHANGE_REQUEST = 0x0003, "CHANGE-REQUEST";
    /// RFC 3489 (legacy)
    SOURCE_ADDRESS = 0x0004, "SOURCE-ADDRESS";
    /// RFC 3489 (legacy)
    CHANGED_ADDRESS = 0x0005, "CHANGED-ADDRESS";
    /// RFC 8489 §14.3
    USERNAME = 0x0006, "USERNAME";
    /// RFC 3489 (legacy)
    PASSWORD = 0x0007, "PASSWORD";
    /// RFC 8489 §14.5
    MESSAGE_INTEGRITY = 0x0008, "MESSAGE-INTEGRITY";
    /// RFC 8489 §14.8
    ERROR_CODE = 0x0009, "ERROR-CODE";
    /// RFC 8489 §14.13
    UNKNOWN_ATTRIBUTES = 0x000A, "UNKNOWN-ATTRIBUTES";
    /// RFC 3489 (legacy)
    REFLECTED_FROM = 0x000B, "REFLECTED-FROM";
    /// RFC 8656 §18.1
    CHANNEL_NUMBER = 0x000C, "CHANNEL-NUMBER";
    /// RFC 8656 §18.2
    LIFETIME = 0x000D, "LIFETIME";
    /// RFC 8656 §18.3
    XOR_PEER_ADDRESS = 0x0012, "XOR-PEER-ADDRESS";
    /// RFC 8656 §18.4
    DATA = 0x0013, "DATA";
    /// RFC 8489 §14.9
    REALM = 0x0014, "REALM";
    /// RFC 8489 §14.10
    NONCE = 0x0015, "NONCE";
    /// RFC 8656 §18.5
    XOR_RELAYED_ADDRESS = 0x0016, "XOR-RELAYED-ADDRESS";
    /// RFC 8656 §18.6
    REQUESTED_ADDRESS_FAMILY = 0x0017, "REQUESTED-ADDRESS-FAMILY";
    /// RFC 8656 §18.7
    EVEN_PORT = 0x0018, "EVEN-PORT";
    /// RFC 8656 §18.8
    REQUESTED_TRANSPORT = 0x0019, "REQUESTED-TRANSPORT";
    /// RFC 8656 §18.9
    DONT_FRAGMENT = 0x001A, "DONT-FRAGMENT";
    /// RFC 8489 §14.6
    MESSAGE_INTEGRITY_SHA256 = 0x001C, "MESSAGE-INTEGRITY-SHA256";
    /// RFC 8489 §14.11
    PASSWORD_ALGORITHM = 0x001D, "PASSWORD-ALGORITHM";
    /// RFC 8489 §14.4
    USERHASH = 0x001E, "USERHASH";
    /// RFC 8489 §14.2
    XOR_MAPPED_ADDRESS = 0x0020, "XOR-MAPPED-ADDRESS";
    /// RFC 8656 §18.10
    RESERVATION_TOKEN = 0x0022, "RESERVATION-TOKEN";
    /// RFC 8445 §16.1
    PRIORITY = 0x0024, "PRIORITY";
    /// RFC 8445 §16.1
    USE_CANDIDATE = 0x0025, "USE-CANDIDATE";
    /// RFC 5780 §7.4
    PADDING = 0x0026, "PADDING";
    /// RFC 5780 §7.5
    RESPONSE_PORT = 0x0027, "RESPONSE-PORT";
    /// RFC 6062 §6.2.1
    CONNECTION_ID = 0x002A, "CONNECTION-ID";
    /// RFC 7635 §6.2
    ACCESS_TOKEN = 0x001B, "ACCESS-TOKEN";
    /// RFC 8656 §18.11
    ADDITIONAL_ADDRESS_FAMILY = 0x8000, "ADDITIONAL-ADDRESS-FAMILY";
    /// RFC 8656 §18.12
    ADDRESS_ERROR_CODE = 0x8001, "ADDRESS-ERROR-CODE";
    /// RFC 8489 §14.12
    PASSWORD_ALGORITHMS = 0x8002, "PASSWORD-ALGORITHMS";
    /// RFC 8489 §14.16
    ALTERNATE_DOMAIN = 0x8003, "ALTERNATE-DOMAIN";
    /// RFC 8656 §18.13
    ICMP = 0x8004, "ICMP";
    /// RFC 8489 §14.14
    SOFTWARE = 0x8022, "SOFTWARE";
    /// RFC 8489 §14.15
    ALTERNATE_SERVER = 0x8023, "ALTERNATE-SERVER";
    /// RFC 7982 §3.1
    TRANSACTION_TRANSMIT_COUNTER = 0x8025, "TRANSACTION_TRANSMIT_COUNTER";
    /// RFC 5780 §7.6
    CACHE_TIMEOUT = 0x8027, "CACHE-TIMEOUT";
    /// RFC 8489 §14.7
    FINGERPRINT = 0x8028, "FINGERPRINT";
    /// RFC 8445 §16.1
    ICE_CONTROLLED = 0x8029, "ICE-CONTROLLED";
    /// RFC 8445 §16.1
    ICE_CONTROLLING = 0x802A, "ICE-CONTROLLING";
    /// RFC 5780 §7.3
    RESPONSE_ORIGIN = 0x802B, "RESPONSE-ORIGIN";
    /// RFC 5780 §7.4
    OTHER_ADDRESS = 0x802C, "OTHER-ADDRESS";
    /// RFC 6679 §10.2.1
    ECN_CHECK = 0x802D, "ECN-CHECK";
    /// RFC 7635 §6.1
    THIRD_PARTY_AUTHORIZATION = 0x802E, "THIRD-PARTY-AUTHORIZATION";
    /// draft-ietf-tram-stun-origin
    ORIGIN = 0x802F, "ORIGIN";
    /// RFC 8016 §3.1
    MOBILITY_TICKET = 0x8030, "MOBILITY-TICKET";
}

impl AttrType {
    /// Whether an agent that does not understand this attribute must reject the message (420).
    #[inline]
    pub fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }

    /// Whether Tern knows this attribute type.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Debug for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "AttrType({:#06x})", self.0),
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why an attribute value could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrError {
    /// The value is shorter or longer than its format allows.
    BadLength(AttrType),
    /// The address family byte is neither 0x01 (IPv4) nor 0x02 (IPv6).
    BadFamily(AttrType),
    /// A text attribute is not UTF-8 or is over its length limit.
    BadText(AttrType),
    /// A field holds a value its RFC forbids.
    BadValue(AttrType),
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrError::BadLength(t) => write!(f, "{t}: bad length"),
            AttrError::BadFamily(t) => write!(f, "{t}: unknown address family"),
            AttrError::BadText(t) => write!(f, "{t}: invalid or oversize text"),
            AttrError::BadValue(t) => write!(f, "{t}: invalid value"),
        }
    }
}

impl std::error::Error for AttrError {}

/// Address family codes used by the address attributes and REQUESTED-ADDRESS-FAMILY.
pub const FAMILY_IPV4: u8 = 0x01;
/// See [`FAMILY_IPV4`].
pub const FAMILY_IPV6: u8 = 0x02;

/// Upper bounds for text attributes (RFC 8489 §14: fewer than 509 bytes for USERNAME, fewer than
/// 128 characters, at most 763 bytes, for REALM, NONCE, SOFTWARE and reason phrases).
pub const MAX_USERNAME_LEN: usize = 508;
/// See [`MAX_USERNAME_LEN`].
pub const MAX_TEXT_BYTES: usize = 763;
/// See [`MAX_USERNAME_LEN`].
pub const MAX_TEXT_CHARS: usize = 127;

/// Decodes MAPPED-ADDRESS (and the other plain address attributes).
pub fn decode_address(t: AttrType, v: &[u8]) -> Result<SocketAddr, AttrError> {
    let (family, port, addr) = split_address(t, v)?;
    let ip = match family {
        FAMILY_IPV4 => {
            let b: [u8; 4] = addr.try_into().map_err(|_| AttrError::BadLength(t))?;
            IpAddr::V4(Ipv4Addr::from(b))
        }
        _ => {
            let b: [u8; 16] = addr.try_into().map_err(|_| AttrError::BadLength(t))?;
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Decodes an XOR-*-ADDRESS attribute (RFC 8489 §14.2).
pub fn decode_xor_address(t: AttrType, v: &[u8], tid: &TransactionId) -> Result<SocketAddr, AttrError> {
    let (family, xport, addr) = split_address(t, v)?;
    let port = xport ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match family {
        FAMILY_IPV4 => {
            let b: [u8; 4] = addr.try_into().map_err(|_| AttrError::BadLength(t))?;
            IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes(b) ^ MAGIC_COOKIE))
        }
        _ => {
            let b: [u8; 16] = addr.try_into().map_err(|_| AttrError::BadLength(t))?;
            IpAddr::V6(Ipv6Addr::from(u128::from_be_bytes(b) ^ xor_mask_v6(tid)))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn split_address(t: AttrType, v: &[u8]) -> Result<(u8, u16, &[u8]), AttrError> {
    if v.len() < 4 {
        return Err(AttrError::BadLength(t));
    }
    let family = v[1];
    let port = u16::from_be_bytes([v[2], v[3]]);
    let addr = &v[4..];
    match (family, addr.len()) {
        (FAMILY_IPV4, 4) | (FAMILY_IPV6, 16) => Ok((family, port, addr)),
        (FAMILY_IPV4 | FAMILY_IPV6, _) => Err(AttrError::BadLength(t)),
        _ => Err(AttrError::BadFamily(t)),
    }
}

pub(crate) fn xor_mask_v6(tid: &TransactionId) -> u128 {
    let mut m = [0u8; 16];
    m[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[4..].copy_from_slice(&tid.0);
    u128::from_be_bytes(m)
}

/// Encodes an address attribute value into `out` (8 or 20 bytes), optionally XORed.
/// Returns the number of bytes written.
pub fn encode_address(out: &mut [u8; 20], addr: SocketAddr, xor: Option<&TransactionId>) -> usize {
    out[0] = 0;
    let port = match xor {
        Some(_) => addr.port() ^ (MAGIC_COOKIE >> 16) as u16,
        None => addr.port(),
    };
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_IPV4;
            let mut v = u32::from(ip);
            if xor.is_some() {
                v ^= MAGIC_COOKIE;
            }
            out[4..8].copy_from_slice(&v.to_be_bytes());
            8
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_IPV6;
            let mut v = u128::from(ip);
            if let Some(tid) = xor {
                v ^= xor_mask_v6(tid);
            }
            out[4..20].copy_from_slice(&v.to_be_bytes());
            20
        }
    }
}

/// Decodes a 32-bit attribute (LIFETIME, PRIORITY, …).
pub fn decode_u32(t: AttrType, v: &[u8]) -> Result<u32, AttrError> {
    let b: [u8; 4] = v.try_into().map_err(|_| AttrError::BadLength(t))?;
    Ok(u32::from_be_bytes(b))
}

/// Decodes a 64-bit attribute (RESERVATION-TOKEN, ICE-CONTROLLED, …).
pub fn decode_u64(t: AttrType, v: &[u8]) -> Result<u64, AttrError> {
    let b: [u8; 8] = v.try_into().map_err(|_| AttrError::BadLength(t))?;
    Ok(u64::from_be_bytes(b))
}

/// Decodes CHANNEL-NUMBER: the number, then two reserved bytes (RFC 8656 §18.1).
pub fn decode_channel_number(v: &[u8]) -> Result<u16, AttrError> {
    let t = AttrType::CHANNEL_NUMBER;
    let b: [u8; 4] = v.try_into().map_err(|_| AttrError::BadLength(t))?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

/// Decodes REQUESTED-TRANSPORT: the IANA protocol number, then three reserved bytes.
pub fn decode_requested_transport(v: &[u8]) -> Result<u8, AttrError> {
    let t = AttrType::REQUESTED_TRANSPORT;
    let b: [u8; 4] = v.try_into().map_err(|_| AttrError::BadLength(t))?;
    Ok(b[0])
}

/// Decodes REQUESTED-ADDRESS-FAMILY or ADDITIONAL-ADDRESS-FAMILY: a family byte and three
/// reserved bytes.
pub fn decode_family(t: AttrType, v: &[u8]) -> Result<u8, AttrError> {
    let b: [u8; 4] = v.try_into().map_err(|_| AttrError::BadLength(t))?;
    match b[0] {
        FAMILY_IPV4 | FAMILY_IPV6 => Ok(b[0]),
        _ => Err(AttrError::BadFamily(t)),
    }
}

/// Decodes EVEN-PORT: whether the R (reserve next port) bit is set (RFC 8656 §18.7).
pub fn decode_even_port(v: &[u8]) -> Result<bool, AttrError> {
    let t = AttrType::EVEN_PORT;
    // RFC 8656 says one byte; some clients pad the value itself to 4 bytes.
    match v.first() {
        Some(b) if v.len() <= 4 => Ok(b & 0x80 != 0),
        _ => Err(AttrError::BadLength(t)),
    }
}

/// Decodes a UTF-8 text attribute with RFC 8489's limits.
pub fn decode_text(t: AttrType, v: &[u8]) -> Result<&str, AttrError> {
    let max_bytes = if t == AttrType::USERNAME { MAX_USERNAME_LEN } else { MAX_TEXT_BYTES };
    if v.len() > max_bytes {
        return Err(AttrError::BadText(t));
    }
    let s = std::str::from_utf8(v).map_err(|_| AttrError::BadText(t))?;
    if t != AttrType::USERNAME && s.chars().count() > MAX_TEXT_CHARS {
        return Err(AttrError::BadText(t));
    }
    Ok(s)
}

/// A STUN error code with its RFC 8489 reason phrase.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const TRY_ALTERNATE: ErrorCode = ErrorCode(300);
    pub const BAD_REQUEST: ErrorCode = ErrorCode(400);
    pub const UNAUTHORIZED: ErrorCode = ErrorCode(401);
    pub const FORBIDDEN: ErrorCode = ErrorCode(403);
    pub const UNKNOWN_ATTRIBUTE: ErrorCode = ErrorCode(420);
    pub const ALLOCATION_MISMATCH: ErrorCode = ErrorCode(437);
    pub const STALE_NONCE: ErrorCode = ErrorCode(438);
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: ErrorCode = ErrorCode(440);
    pub const WRONG_CREDENTIALS: ErrorCode = ErrorCode(441);
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: ErrorCode = ErrorCode(442);
    pub const PEER_ADDRESS_FAMILY_MISMATCH: ErrorCode = ErrorCode(443);
    pub const ALLOCATION_QUOTA_REACHED: ErrorCode = ErrorCode(486);
    pub const ROLE_CONFLICT: ErrorCode = ErrorCode(487);
    pub const SERVER_ERROR: ErrorCode = ErrorCode(500);
    pub const INSUFFICIENT_CAPACITY: ErrorCode = ErrorCode(508);

    /// The reason phrase of RFC 8489 §14.8 and RFC 8656 §19.
    pub fn reason(self) -> &'static str {
        match self.0 {
            300 => "Try Alternate",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            420 => "Unknown Attribute",
            437 => "Allocation Mismatch",
            438 => "Stale Nonce",
            440 => "Address Family not Supported",
            441 => "Wrong Credentials",
            442 => "Unsupported Transport Protocol",
            443 => "Peer Address Family Mismatch",
            486 => "Allocation Quota Reached",
            487 => "Role Conflict",
            500 => "Server Error",
            508 => "Insufficient Capacity",
            _ => "",
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// Decodes ERROR-CODE into the code and the reason phrase.
pub fn decode_error_code(v: &[u8]) -> Result<(ErrorCode, &str), AttrError> {
    let t = AttrType::ERROR_CODE;
    if v.len() < 4 {
        return Err(AttrError::BadLength(t));
    }
    let class = u16::from(v[2] & 0x07);
    let number = u16::from(v[3]);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(AttrError::BadValue(t));
    }
    let reason = decode_text(t, &v[4..])?;
    Ok((ErrorCode(class * 100 + number), reason))
}

/// A password algorithm of RFC 8489 §18.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordAlgorithm {
    /// 0x0001: the key is MD5(username ":" realm ":" password).
    Md5,
    /// 0x0002: the key is SHA-256(username ":" realm ":" password).
    Sha256,
}

impl PasswordAlgorithm {
    /// The registered number.
    pub fn number(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }

    /// Maps a registered number, or `None` for an unknown one.
    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// Decodes PASSWORD-ALGORITHM: algorithm number, parameter length, parameters (padded).
pub fn decode_password_algorithm(v: &[u8]) -> Result<(u16, &[u8]), AttrError> {
    let t = AttrType::PASSWORD_ALGORITHM;
    let mut it = PasswordAlgorithms { rest: v, t };
    let first = it.next().ok_or(AttrError::BadLength(t))??;
    if !it.rest.is_empty() {
        return Err(AttrError::BadLength(t));
    }
    Ok(first)
}

/// Iterates the entries of PASSWORD-ALGORITHMS (RFC 8489 §14.11).
pub fn password_algorithms(v: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), AttrError>> {
    PasswordAlgorithms { rest: v, t: AttrType::PASSWORD_ALGORITHMS }
}

struct PasswordAlgorithms<'a> {
    rest: &'a [u8],
    t: AttrType,
}

impl<'a> Iterator for PasswordAlgorithms<'a> {
    type Item = Result<(u16, &'a [u8]), AttrError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(AttrError::BadLength(self.t)));
        }
        let alg = u16::from_be_bytes([self.rest[0], self.rest[1]]);
        let plen = usize::from(u16::from_be_bytes([self.rest[2], self.rest[3]]));
        let padded = (plen + 3) & !3;
        if self.rest.len() < 4 + padded {
            self.rest = &[];
            return Some(Err(AttrError::BadLength(self.t)));
        }
        let params = &self.rest[4..4 + plen];
        self.rest = &self.rest[4 + padded..];
        Some(Ok((alg, params)))
    }
}

/// Iterates the attribute types listed in UNKNOWN-ATTRIBUTES.
pub fn unknown_attributes(v: &[u8]) -> impl Iterator<Item = AttrType> + '_ {
    v.chunks_exact(2).map(|c| AttrType(u16::from_be_bytes([c[0], c[1]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_attribute_has_a_unique_number_and_name() {
        let mut nums: Vec<u16> = AttrType::ALL.iter().map(|a| a.0).collect();
        nums.sort_unstable();
        let before = nums.len();
        nums.dedup();
        assert_eq!(before, nums.len());
        for a in AttrType::ALL {
            assert!(a.name().is_some());
        }
        assert_eq!(AttrType(0x7777).name(), None);
    }

    #[test]
    fn xor_address_round_trips_v4_and_v6() {
        let tid = TransactionId([7; 12]);
        for addr in ["192.0.2.1:32853", "[2001:db8:1234:5678:11:2233:4455:6677]:32853"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut buf = [0u8; 20];
            let n = encode_address(&mut buf, addr, Some(&tid));
            assert_eq!(decode_xor_address(AttrType::XOR_PEER_ADDRESS, &buf[..n], &tid), Ok(addr));
            let n = encode_address(&mut buf, addr, None);
            assert_eq!(decode_address(AttrType::MAPPED_ADDRESS, &buf[..n]), Ok(addr));
        }
    }

    #[test]
    fn address_with_wrong_length_or_family_is_refused() {
        let t = AttrType::XOR_PEER_ADDRESS;
        let tid = TransactionId::default();
        assert_eq!(decode_xor_address(t, &[0, 1, 0, 0, 1, 2, 3], &tid), Err(AttrError::BadLength(t)));
        assert_eq!(decode_xor_address(t, &[0, 3, 0, 0, 1, 2, 3, 4], &tid), Err(AttrError::BadFamily(t)));
        assert_eq!(decode_xor_address(t, &[0, 2, 0, 0, 1, 2, 3, 4], &tid), Err(AttrError::BadLength(t)));
        assert_eq!(decode_xor_address(t, &[], &tid), Err(AttrError::BadLength(t)));
    }

    #[test]
    fn error_code_decodes_class_and_number() {
        let v = [0, 0, 4, 38, b'S', b't'];
        assert_eq!(decode_error_code(&v), Ok((ErrorCode::STALE_NONCE, "St")));
        assert!(decode_error_code(&[0, 0, 7, 0]).is_err());
        assert!(decode_error_code(&[0, 0, 4, 100]).is_err());
    }

    #[test]
    fn oversize_text_is_refused() {
        let long = vec![b'a'; 509];
        assert!(decode_text(AttrType::USERNAME, &long).is_err());
        assert!(decode_text(AttrType::USERNAME, &long[..508]).is_ok());
        assert!(decode_text(AttrType::REALM, &long[..128]).is_err());
        assert!(decode_text(AttrType::REALM, &long[..127]).is_ok());
        assert!(decode_text(AttrType::NONCE, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn password_algorithms_iterates_padded_entries() {
        let v = [0, 2, 0, 0, 0, 1, 0, 0];
        let algs: Vec<_> = password_algorithms(&v).collect();
        assert_eq!(algs, vec![Ok((2, &[][..])), Ok((1, &[][..]))]);
        let bad = [0, 2, 0, 5, 1];
        assert!(password_algorithms(&bad).any(|r| r.is_err()));
    }
}
