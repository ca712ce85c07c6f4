//! The client side of TURN, as the load generator speaks it: requests with long-term
//! credentials (a static user or a TURN REST secret), response parsing, and the data framings
//! (ChannelData, Send indication) with a timestamped probe payload.
//!
//! Everything is encoded with `relay-proto`'s codec, so the generator exercises the same bytes
//! a browser would send, and works against any TURN server.

use std::net::SocketAddr;

use relay_proto::channel_data::{self, ChannelData};
use relay_proto::stun::attr::PasswordAlgorithm;
use relay_proto::stun::{AttrType, Class, ErrorCode, Key, Message, MessageType, MessageWriter, Method, TransactionId};
use relay_proto::turn_rest;

/// REQUESTED-TRANSPORT UDP.
const PROTO_UDP: u8 = 17;

/// How the generator authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A static long-term user (`--user=u:p` on coturn).
    User {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A TURN REST shared secret: usernames `expiry:user`, passwords HMAC'd from it.
    Rest {
        /// The `static-auth-secret`.
        secret: String,
        /// The user part of the REST username.
        user: String,
    },
}

impl Credentials {
    /// The username and password to use now (`unix_now` sets a REST username's expiry).
    pub fn resolve(&self, unix_now: u64) -> (String, String) {
        match self {
            Credentials::User { username, password } => (username.clone(), password.clone()),
            Credentials::Rest { secret, user } => {
                let c = turn_rest::generate(secret.as_bytes(), user, 24 * 3600, unix_now);
                (c.username, c.password)
            }
        }
    }
}

/// What a server's 401 taught: the realm and nonce, and the key derived for them.
#[derive(Debug, Clone)]
pub struct Auth {
    /// USERNAME.
    pub username: String,
    /// REALM.
    pub realm: String,
    /// NONCE.
    pub nonce: String,
    /// MD5(username:realm:password).
    pub key: Key,
}

impl Auth {
    /// Derives the key for `realm`. `None` when SASLprep refuses the password.
    pub fn new(username: &str, password: &str, realm: &str, nonce: &str) -> Option<Auth> {
        let key = Key::long_term(PasswordAlgorithm::Md5, username, realm, password).ok()?;
        Some(Auth { username: username.to_owned(), realm: realm.to_owned(), nonce: nonce.to_owned(), key })
    }
}

/// A TURN request the generator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Allocate a UDP relay.
    Allocate,
    /// Refresh with this LIFETIME (0 deletes).
    Refresh(u32),
    /// CreatePermission for these peers.
    CreatePermission(Vec<SocketAddr>),
    /// ChannelBind `number` to `peer`.
    ChannelBind(u16, SocketAddr),
}

impl Request {
    fn method(&self) -> Method {
        match self {
            Request::Allocate => Method::ALLOCATE,
            Request::Refresh(_) => Method::REFRESH,
            Request::CreatePermission(_) => Method::CREATE_PERMISSION,
            Request::ChannelBind(..) => Method::CHANNEL_BIND,
        }
    }
}

/// Encodes `req` into `buf` with transaction id `tid`, with credentials when `auth` is known.
/// Returns the length, or `None` if it does not fit.
pub fn encode_request(buf: &mut [u8], req: &Request, tid: [u8; 12], auth: Option<&Auth>) -> Option<usize> {
    let mut w = MessageWriter::new(buf, MessageType::new(req.method(), Class::Request), TransactionId(tid));
    match req {
        Request::Allocate => {
            w.add_requested_transport(PROTO_UDP);
        }
        Request::Refresh(lifetime) => {
            w.add_u32(AttrType::LIFETIME, *lifetime);
        }
        Request::CreatePermission(peers) => {
            for p in peers {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, *p);
            }
        }
        Request::ChannelBind(number, peer) => {
            w.add_channel_number(*number);
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, *peer);
        }
    }
    if let Some(a) = auth {
        w.add_text(AttrType::USERNAME, &a.username);
        w.add_text(AttrType::REALM, &a.realm);
        w.add_text(AttrType::NONCE, &a.nonce);
        w.add_message_integrity(a.key.as_bytes());
    }
    w.finish().ok()
}

/// A response, as far as the generator cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Success; XOR-RELAYED-ADDRESS when present (Allocate).
    Success {
        /// The relayed address.
        relayed: Option<SocketAddr>,
    },
    /// 401 or 438: retry with these realm and nonce.
    Challenge {
        /// REALM.
        realm: String,
        /// NONCE.
        nonce: String,
    },
    /// Any other error.
    Error(u16),
}

/// Parses a response; `None` when `b` is not a STUN response.
pub fn parse_response(b: &[u8]) -> Option<([u8; 12], Response)> {
    let m = Message::parse(b).ok()?;
    let tid = m.transaction_id().0;
    let r = match m.class() {
        Class::Success => Response::Success { relayed: m.xor_relayed_address().ok().flatten() },
        Class::Error => {
            let code = m.error_code().ok().flatten().map_or(0, |(c, _)| c.0);
            match (code, m.realm().ok().flatten(), m.nonce().ok().flatten()) {
                (401 | 438, Some(realm), Some(nonce)) if code != ErrorCode::STALE_NONCE.0 || !nonce.is_empty() => {
                    Response::Challenge { realm: realm.to_owned(), nonce: nonce.to_owned() }
                }
                _ => Response::Error(code),
            }
        }
        Class::Request | Class::Indication => return None,
    };
    Some((tid, r))
}

/// Bytes of the probe header every data message starts with: a magic, the sender's index,
/// a sequence number and the send time.
pub const PROBE_LEN: usize = 24;
const PROBE_MAGIC: u32 = 0x544C_4447; // "TLDG"

/// The probe a data message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Index of the sending client.
    pub sender: u32,
    /// Per-run sequence number.
    pub seq: u64,
    /// Send time, nanoseconds since the run's start.
    pub sent_ns: u64,
}

impl Probe {
    /// Writes the probe at the start of `out` (at least [`PROBE_LEN`] bytes).
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&PROBE_MAGIC.to_be_bytes());
        out[4..8].copy_from_slice(&self.sender.to_be_bytes());
        out[8..16].copy_from_slice(&self.seq.to_be_bytes());
        out[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a probe from the start of an application payload.
    pub fn read(b: &[u8]) -> Option<Probe> {
        let b = b.get(..PROBE_LEN)?;
        if u32::from_be_bytes(b[0..4].try_into().ok()?) != PROBE_MAGIC {
            return None;
        }
        Some(Probe {
            sender: u32::from_be_bytes(b[4..8].try_into().ok()?),
            seq: u64::from_be_bytes(b[8..16].try_into().ok()?),
            sent_ns: u64::from_be_bytes(b[16..24].try_into().ok()?),
        })
    }
}

/// A prepared data message whose payload (and so its probe) sits at a fixed offset, so each
/// send only rewrites the probe.
#[derive(Debug, Clone)]
pub struct DataTemplate {
    /// The whole message.
    pub bytes: Vec<u8>,
    /// Where the application payload starts.
    pub payload_at: usize,
}

impl DataTemplate {
    /// A ChannelData message on `channel` with `size` payload bytes.
    pub fn channel(channel: u16, size: usize) -> DataTemplate {
        let size = size.max(PROBE_LEN);
        let mut bytes = vec![0u8; channel_data::HEADER_LEN + size];
        let mut h = [0u8; channel_data::HEADER_LEN];
        // `size` is at most a datagram; a longer one is clamped by the caller's option parsing.
        let _ = channel_data::write_header(&mut h, channel, size);
        bytes[..channel_data::HEADER_LEN].copy_from_slice(&h);
        bytes[channel_data::HEADER_LEN..].fill(0x5A);
        DataTemplate { bytes, payload_at: channel_data::HEADER_LEN }
    }

    /// A Send indication to `peer` with `size` payload bytes.
    pub fn send(peer: SocketAddr, size: usize, tid: [u8; 12]) -> Option<DataTemplate> {
        let size = size.max(PROBE_LEN);
        let mut buf = vec![0u8; size + 128];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId(tid));
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        w.add_with(AttrType::DATA, size, |v| v.fill(0x5A));
        let n = w.finish().ok()?;
        buf.truncate(n);
        let payload_at = {
            let m = Message::parse(&buf).ok()?;
            let d = m.data()?;
            d.as_ptr() as usize - buf.as_ptr() as usize
        };
        Some(DataTemplate { bytes: buf, payload_at })
    }

    /// A raw datagram (no TURN framing), for the bare-forwarder ceiling and the direct baseline.
    pub fn raw(size: usize) -> DataTemplate {
        DataTemplate { bytes: vec![0x5A; size.max(PROBE_LEN)], payload_at: 0 }
    }

    /// Stamps the probe.
    pub fn stamp(&mut self, p: &Probe) {
        p.write(&mut self.bytes[self.payload_at..]);
    }
}

/// The application payload of a datagram a client received from the server: ChannelData or a
/// Data indication. `raw` returns the datagram itself (ceiling and baseline runs).
pub fn received_payload(b: &[u8], raw: bool) -> Option<&[u8]> {
    if raw {
        return Some(b);
    }
    match b.first()? {
        0x40..=0x7F => ChannelData::parse(b).ok().map(|c| c.payload()),
        0..=3 => {
            let m = Message::parse(b).ok()?;
            (m.method() == Method::DATA && m.class() == Class::Indication).then(|| m.data()).flatten()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn probe_round_trips_through_both_framings() {
        let p = Probe { sender: 7, seq: 42, sent_ns: 123_456_789 };
        let mut t = DataTemplate::channel(0x4001, 100);
        t.stamp(&p);
        assert_eq!(t.bytes.len(), 104);
        assert_eq!(Probe::read(received_payload(&t.bytes, false).unwrap()), Some(p));

        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut s = DataTemplate::send(peer, 100, [3; 12]).unwrap();
        s.stamp(&p);
        let m = Message::parse(&s.bytes).unwrap();
        assert_eq!(m.xor_peer_address().unwrap(), Some(peer));
        assert_eq!(Probe::read(m.data().unwrap()), Some(p));
        assert_eq!(Probe::read(b"short"), None);
    }

    #[test]
    fn requests_carry_credentials_that_verify() {
        let auth = Auth::new("1893456000:bench", "pw", "bench.local", "n0nce").unwrap();
        let mut buf = [0u8; 512];
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let n = encode_request(&mut buf, &Request::ChannelBind(0x4000, peer), [1; 12], Some(&auth)).unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.method(), Method::CHANNEL_BIND);
        assert_eq!(m.channel_number().unwrap(), Some(0x4000));
        m.verify_integrity(auth.key.as_bytes()).unwrap();
        let n = encode_request(&mut buf, &Request::Allocate, [2; 12], None).unwrap();
        assert_eq!(Message::parse(&buf[..n]).unwrap().requested_transport().unwrap(), Some(17));
    }

    #[test]
    fn challenge_and_success_are_told_apart() {
        let mut buf = [0u8; 256];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Error), TransactionId([9; 12]));
        w.add_error_code(ErrorCode::UNAUTHORIZED, "Unauthorized");
        w.add_text(AttrType::REALM, "r");
        w.add_text(AttrType::NONCE, "n");
        let n = w.finish().unwrap();
        assert_eq!(
            parse_response(&buf[..n]),
            Some(([9; 12], Response::Challenge { realm: "r".into(), nonce: "n".into() }))
        );
        let relayed: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Success), TransactionId([8; 12]));
        w.add_xor_address(AttrType::XOR_RELAYED_ADDRESS, relayed);
        let n = w.finish().unwrap();
        assert_eq!(parse_response(&buf[..n]), Some(([8; 12], Response::Success { relayed: Some(relayed) })));
    }
}
