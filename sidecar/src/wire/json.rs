//! The plain JSON protocol spoken at `/ws`: one JSON object per WebSocket text message, told
//! apart by `type`. `docs/SIGNALING.md` has one example per message.
//!
//! Client to server: `create`, `join{code}`, `signal{data}`, `leave`, `auth{token}`, `ping`.
//! Server to client: `created{code,id}`, `joined{code,id,peers}`, `peer-joined{id}`,
//! `peer-left{id}`, `signal{from,data}`, `credentials{iceServers,ttl}`, `pong`,
//! `error{code,message}`.
//!
//! `signal.data` is kept as the raw JSON text it arrived as and forwarded byte for byte; the
//! parser never builds a tree of it (and so never recurses into it).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::creds::IceServer;

/// A parsed client message; borrows from the frame text.
#[derive(Debug)]
pub enum ClientMessage<'a> {
    /// Create a room; answered by `created`.
    Create,
    /// Join the room with this code; answered by `joined` (or `error`).
    Join {
        /// The code as sent: a string, or a number for clients that parsed it.
        code: Cow<'a, str>,
    },
    /// Forward `data` unchanged to the other members.
    Signal {
        /// The raw JSON value.
        data: &'a RawValue,
    },
    /// Leave the room.
    Leave,
    /// Present the `--auth-token`.
    Auth {
        /// The token.
        token: Cow<'a, str>,
    },
    /// Application-level keepalive (browsers cannot send WebSocket pings); answered by `pong`.
    Ping,
}

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not a JSON object with a string `type`.
    #[error("not a JSON object with a string \"type\": {0}")]
    Malformed(String),
    /// `type` is not one the server knows.
    #[error("unknown message type {0:?}; expected create, join, signal, leave, auth or ping")]
    UnknownType(String),
    /// A field the type needs is missing or of the wrong kind.
    #[error("{0}")]
    BadField(&'static str),
}

impl PartialEq for ClientMessage<'_> {
    fn eq(&self, other: &Self) -> bool {
        use ClientMessage::*;
        match (self, other) {
            (Create, Create) | (Leave, Leave) | (Ping, Ping) => true,
            (Join { code: a }, Join { code: b }) | (Auth { token: a }, Auth { token: b }) => a == b,
            (Signal { data: a }, Signal { data: b }) => a.get() == b.get(),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    code: Option<&'a RawValue>,
    #[serde(default, borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

impl<'a> ClientMessage<'a> {
    /// Parses one text frame.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        let w: Wire<'a> = serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        Ok(match &*w.ty {
            "create" => ClientMessage::Create,
            "join" => {
                let raw = w.code.ok_or(ProtocolError::BadField("join needs a \"code\""))?;
                ClientMessage::Join {
                    code: code_from_json(raw)
                        .ok_or(ProtocolError::BadField("\"code\" must be a string or a number"))?,
                }
            }
            "signal" => {
                ClientMessage::Signal { data: w.data.ok_or(ProtocolError::BadField("signal needs a \"data\" field"))? }
            }
            "leave" => ClientMessage::Leave,
            "auth" => {
                ClientMessage::Auth { token: w.token.ok_or(ProtocolError::BadField("auth needs a string \"token\""))? }
            }
            "ping" => ClientMessage::Ping,
            other => return Err(ProtocolError::UnknownType(other.chars().take(64).collect())),
        })
    }
}

/// A room code from a JSON string or non-negative integer.
pub fn code_from_json(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    if s.starts_with('"') {
        return serde_json::from_str::<Cow<'_, str>>(s).ok();
    }
    if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Cow::Borrowed(s));
    }
    None
}

/// Error codes of `error{code,message}`, shared with the Socket.IO `ERROR` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The message could not be parsed.
    BadMessage,
    /// The message exceeds `--max-message-size`.
    MessageTooLarge,
    /// Unknown, full or expired code (one answer for all three).
    RoomUnavailable,
    /// The member's room expired unpaired.
    RoomExpired,
    /// `signal` or `leave` outside a room.
    NotInRoom,
    /// Join attempts rate-limited.
    RateLimited,
    /// `--auth-token` is set and was not presented.
    Unauthorized,
    /// The server could not make a room.
    ServerBusy,
    /// Binary frames are not part of the protocol.
    Unsupported,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::MessageTooLarge => "message-too-large",
            ErrorCode::RoomUnavailable => "room-unavailable",
            ErrorCode::RoomExpired => "room-expired",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::ServerBusy => "server-busy",
            ErrorCode::Unsupported => "unsupported",
        }
    }
}

/// A server event, before encoding for a dialect.
#[derive(Debug, Clone, Copy)]
pub enum ServerEvent<'a> {
    /// The room was created.
    Created {
        /// Its code.
        code: &'a str,
        /// The creator's member id.
        id: &'a str,
    },
    /// The member joined.
    Joined {
        /// The code.
        code: &'a str,
        /// The joiner's member id.
        id: &'a str,
        /// The ids of the members already there.
        peers: &'a [&'a str],
    },
    /// Another member joined.
    PeerJoined {
        /// Its id.
        id: &'a str,
    },
    /// Another member left or its connection died.
    PeerLeft {
        /// Its id.
        id: &'a str,
    },
    /// Fresh ICE servers with TURN credentials.
    Credentials {
        /// The `iceServers` list.
        ice: &'a [IceServer],
        /// Their lifetime in seconds.
        ttl: u64,
    },
    /// A refusal.
    Error {
        /// The code.
        code: ErrorCode,
        /// A sentence for people.
        message: &'a str,
    },
    /// Answer to `ping`.
    Pong,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Out<'a> {
    Created {
        code: &'a str,
        id: &'a str,
    },
    Joined {
        code: &'a str,
        id: &'a str,
        peers: &'a [&'a str],
    },
    PeerJoined {
        id: &'a str,
    },
    PeerLeft {
        id: &'a str,
    },
    Credentials {
        #[serde(rename = "iceServers")]
        ice_servers: &'a [IceServer],
        ttl: u64,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
    Pong,
}

/// Encodes a server event as a JSON protocol message.
pub fn encode(ev: &ServerEvent<'_>) -> String {
    let out = match *ev {
        ServerEvent::Created { code, id } => Out::Created { code, id },
        ServerEvent::Joined { code, id, peers } => Out::Joined { code, id, peers },
        ServerEvent::PeerJoined { id } => Out::PeerJoined { id },
        ServerEvent::PeerLeft { id } => Out::PeerLeft { id },
        ServerEvent::Credentials { ice, ttl } => Out::Credentials { ice_servers: ice, ttl },
        ServerEvent::Error { code, message } => Out::Error { code: code.as_str(), message },
        ServerEvent::Pong => Out::Pong,
    };
    serde_json::to_string(&out).unwrap_or_default()
}

/// The forwarded form of a `signal`: `{"type":"signal","from":ID,"data":DATA}` with `data`
/// copied byte for byte.
pub fn encode_signal(from: &str, data: &RawValue) -> String {
    let data = data.get();
    let mut s = String::with_capacity(data.len() + from.len() + 40);
    s.push_str(r#"{"type":"signal","from":"#);
    s.push_str(&serde_json::to_string(from).unwrap_or_default());
    s.push_str(r#","data":"#);
    s.push_str(data);
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_message_parses() {
        assert_eq!(ClientMessage::parse(r#"{"type":"create"}"#), Ok(ClientMessage::Create));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","code":"012345"}"#),
            Ok(ClientMessage::Join { code: "012345".into() })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","code":12345}"#),
            Ok(ClientMessage::Join { code: "12345".into() })
        );
        assert_eq!(ClientMessage::parse(r#"{"code":"1","type":"leave","extra":[1,2]}"#), Ok(ClientMessage::Leave));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientMessage::Auth { token: "t".into() })
        );
        assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        let ClientMessage::Signal { data } =
            ClientMessage::parse(r#"{"type":"signal","data": {"sdp" : "v=0\r\n"} }"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(data.get(), r#"{"sdp" : "v=0\r\n"}"#, "data is kept byte for byte");
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(matches!(ClientMessage::parse("nope"), Err(ProtocolError::Malformed(_))));
        assert!(matches!(ClientMessage::parse(r#"{"type":1}"#), Err(ProtocolError::Malformed(_))));
        assert_eq!(ClientMessage::parse(r#"{"type":"dance"}"#), Err(ProtocolError::UnknownType("dance".into())));
        assert!(matches!(ClientMessage::parse(r#"{"type":"join"}"#), Err(ProtocolError::BadField(_))));
        assert!(matches!(ClientMessage::parse(r#"{"type":"join","code":[1]}"#), Err(ProtocolError::BadField(_))));
        assert!(matches!(ClientMessage::parse(r#"{"type":"join","code":-1}"#), Err(ProtocolError::BadField(_))));
        assert!(matches!(ClientMessage::parse(r#"{"type":"signal"}"#), Err(ProtocolError::BadField(_))));
    }

    /// Deep nesting inside `data` is validated iteratively: a thread with the connection's small
    /// stack survives a message of 60,000 brackets.
    #[test]
    fn deep_nesting_does_not_overflow_a_small_stack() {
        let deep = format!(r#"{{"type":"signal","data":{}{}}}"#, "[".repeat(30_000), "]".repeat(30_000));
        let ok = std::thread::Builder::new()
            .stack_size(crate::server::CONN_STACK)
            .spawn(move || ClientMessage::parse(&deep).is_ok())
            .unwrap()
            .join()
            .unwrap();
        assert!(ok);
    }

    #[test]
    fn server_messages_encode() {
        assert_eq!(
            encode(&ServerEvent::Created { code: "123456", id: "ab" }),
            r#"{"type":"created","code":"123456","id":"ab"}"#
        );
        assert_eq!(
            encode(&ServerEvent::Joined { code: "1", id: "b", peers: &["a"] }),
            r#"{"type":"joined","code":"1","id":"b","peers":["a"]}"#
        );
        assert_eq!(encode(&ServerEvent::PeerLeft { id: "a" }), r#"{"type":"peer-left","id":"a"}"#);
        assert_eq!(
            encode(&ServerEvent::Error { code: ErrorCode::RoomUnavailable, message: "m" }),
            r#"{"type":"error","code":"room-unavailable","message":"m"}"#
        );
        let data: Box<RawValue> = serde_json::from_str(r#"{"candidate":"a b"}"#).unwrap();
        assert_eq!(encode_signal("ab", &data), r#"{"type":"signal","from":"ab","data":{"candidate":"a b"}}"#);
    }
}
