//! Engine.IO v4 and Socket.IO v5 packets over the WebSocket transport: parsing and encoding.
//! Performs no I/O.
//!
//! Engine.IO (<https://socket.io/docs/v4/engine-io-protocol/>): one packet per WebSocket text
//! message, a type digit then data: `0` open, `1` close, `2` ping, `3` pong, `4` message,
//! `5` upgrade, `6` noop. Socket.IO (<https://socket.io/docs/v4/socket-io-protocol/>) rides in
//! `4` messages: a type digit (`0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR,
//! `5`/`6` binary variants), then `N-` for binary attachments, then `/nsp,` unless the namespace
//! is `/`, then an optional ack id, then a JSON payload: `42/rtc,7["JOIN_ROOM","123456"]`.
//!
//! Binary attachments are refused: the signaling flow is JSON-only.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::json::ServerEvent;

/// An Engine.IO packet received from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `1`: the client closes the session.
    Close,
    /// `2` + optional data (`2probe` during upgrades).
    Ping(&'a str),
    /// `3` + optional data.
    Pong(&'a str),
    /// `4` + a Socket.IO packet.
    Message(&'a str),
    /// `5`: upgrade (meaningless on a session opened on WebSocket; ignored).
    Upgrade,
    /// `6`: noop.
    Noop,
}

/// Why a packet could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SioError {
    /// An empty text frame.
    #[error("empty Engine.IO packet")]
    Empty,
    /// The Engine.IO type digit is unknown or not one a client sends.
    #[error("unknown Engine.IO packet type {0:?}")]
    EioType(char),
    /// The Socket.IO type digit is unknown.
    #[error("unknown Socket.IO packet type {0:?}")]
    SioType(char),
    /// A binary attachment count, namespace or ack id is malformed.
    #[error("malformed Socket.IO packet header: {0}")]
    Header(&'static str),
    /// Binary events need attachments, which this server does not take.
    #[error("binary attachments are not supported; send JSON arguments")]
    Binary,
    /// The JSON payload does not fit the packet type.
    #[error("invalid Socket.IO payload: {0}")]
    Payload(&'static str),
}

impl<'a> EioPacket<'a> {
    /// Parses one WebSocket text message.
    pub fn parse(text: &'a str) -> Result<Self, SioError> {
        let mut chars = text.chars();
        let t = chars.next().ok_or(SioError::Empty)?;
        let rest = chars.as_str();
        Ok(match t {
            '1' => EioPacket::Close,
            '2' => EioPacket::Ping(rest),
            '3' => EioPacket::Pong(rest),
            '4' => EioPacket::Message(rest),
            '5' => EioPacket::Upgrade,
            '6' => EioPacket::Noop,
            other => return Err(SioError::EioType(other)),
        })
    }
}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioType {
    /// `0`.
    Connect,
    /// `1`.
    Disconnect,
    /// `2`.
    Event,
    /// `3`.
    Ack,
    /// `4` (server to client only).
    ConnectError,
}

/// A Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SioPacket<'a> {
    /// The type.
    pub kind: SioType,
    /// The namespace, `/` by default.
    pub nsp: &'a str,
    /// The ack id, when the sender wants an acknowledgement.
    pub ack: Option<u64>,
    /// The JSON payload text; empty when absent.
    pub payload: &'a str,
}

/// Longest namespace accepted.
pub const MAX_NSP: usize = 128;

impl<'a> SioPacket<'a> {
    /// Parses the data of an Engine.IO message.
    pub fn parse(s: &'a str) -> Result<Self, SioError> {
        let b = s.as_bytes();
        let t = *b.first().ok_or(SioError::Empty)?;
        let kind = match t {
            b'0' => SioType::Connect,
            b'1' => SioType::Disconnect,
            b'2' => SioType::Event,
            b'3' => SioType::Ack,
            b'4' => SioType::ConnectError,
            b'5' | b'6' => return Err(SioError::Binary),
            _ => return Err(SioError::SioType(char::from(t))),
        };
        let mut i = 1;
        let nsp = if b.get(i) == Some(&b'/') {
            let end = s[i..].find(',').map_or(s.len(), |k| i + k);
            let nsp = &s[i..end];
            if nsp.len() > MAX_NSP {
                return Err(SioError::Header("namespace longer than 128 bytes"));
            }
            i = (end + 1).min(s.len());
            nsp
        } else {
            "/"
        };
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let ack = if digits > 0 {
            if digits > 15 {
                return Err(SioError::Header("ack id too long"));
            }
            let id = s[i..i + digits].parse().map_err(|_| SioError::Header("bad ack id"))?;
            i += digits;
            Some(id)
        } else {
            None
        };
        Ok(SioPacket { kind, nsp, ack, payload: &s[i..] })
    }

    /// For an EVENT: its name and raw arguments.
    pub fn event(&self) -> Result<Event<'a>, SioError> {
        if self.kind != SioType::Event {
            return Err(SioError::Payload("not an EVENT"));
        }
        let items: Vec<&'a RawValue> =
            serde_json::from_str(self.payload).map_err(|_| SioError::Payload("EVENT data must be a JSON array"))?;
        let (first, args) = items.split_first().ok_or(SioError::Payload("EVENT array is empty"))?;
        let name: Cow<'a, str> =
            serde_json::from_str(first.get()).map_err(|_| SioError::Payload("event name must be a string"))?;
        Ok(Event { name, args: args.to_vec() })
    }

    /// For a CONNECT: the `auth` object's `token` field, if any.
    pub fn connect_token(&self) -> Result<Option<String>, SioError> {
        if self.payload.is_empty() {
            return Ok(None);
        }
        #[derive(serde::Deserialize)]
        struct Auth {
            #[serde(default)]
            token: Option<String>,
        }
        let a: Auth =
            serde_json::from_str(self.payload).map_err(|_| SioError::Payload("CONNECT data must be an object"))?;
        Ok(a.token)
    }
}

/// An EVENT's name and arguments, as raw JSON.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The event name.
    pub name: Cow<'a, str>,
    /// The arguments, each the JSON text it arrived as.
    pub args: Vec<&'a RawValue>,
}

/// The Engine.IO open packet.
pub fn open(sid: &str, ping_interval_ms: u128, ping_timeout_ms: u128, max_payload: usize) -> String {
    format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":{ping_interval_ms},"pingTimeout":{ping_timeout_ms},"maxPayload":{max_payload}}}"#
    )
}

fn push_nsp(s: &mut String, nsp: &str) {
    if nsp != "/" {
        s.push_str(nsp);
        s.push(',');
    }
}

/// `40[/nsp,]{"sid":…}`: the namespace is connected.
pub fn connect_ok(nsp: &str, sid: &str) -> String {
    let mut s = String::from("40");
    push_nsp(&mut s, nsp);
    s.push_str(&format!(r#"{{"sid":"{sid}"}}"#));
    s
}

/// `44[/nsp,]{"message":…}`: the namespace connection is refused; the client emits
/// `connect_error` with this message.
pub fn connect_error(nsp: &str, message: &str) -> String {
    let mut s = String::from("44");
    push_nsp(&mut s, nsp);
    s.push_str(&serde_json::json!({ "message": message }).to_string());
    s
}

/// `41[/nsp,]`: the server disconnects the namespace.
pub fn disconnect(nsp: &str) -> String {
    let mut s = String::from("41");
    push_nsp(&mut s, nsp);
    s
}

/// `42[/nsp,]["name",args…]` with each argument copied verbatim.
pub fn event<S: AsRef<str>>(nsp: &str, name: &str, args: &[S]) -> String {
    let mut s =
        String::with_capacity(16 + nsp.len() + name.len() + args.iter().map(|a| a.as_ref().len() + 1).sum::<usize>());
    s.push_str("42");
    push_nsp(&mut s, nsp);
    s.push('[');
    s.push_str(&serde_json::to_string(name).unwrap_or_default());
    for a in args {
        s.push(',');
        s.push_str(a.as_ref());
    }
    s.push(']');
    s
}

/// `43[/nsp,]ID[args…]`.
pub fn ack<S: AsRef<str>>(nsp: &str, id: u64, args: &[S]) -> String {
    let mut s = String::from("43");
    push_nsp(&mut s, nsp);
    s.push_str(&id.to_string());
    s.push('[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(a.as_ref());
    }
    s.push(']');
    s
}

/// A server event as the seed's Socket.IO event: `TV_INIT_OK`, `JOIN_ROOM_OK`, `PEER_JOINED`,
/// `PEER_LEFT`, `CONFIG_FEEDBACK`, `ERROR`, `PONG`.
pub fn encode_server_event(nsp: &str, ev: &ServerEvent<'_>) -> String {
    let json = |v: serde_json::Value| v.to_string();
    match *ev {
        ServerEvent::Created { code, .. } => event(nsp, "TV_INIT_OK", &[json(code.into())]),
        ServerEvent::Joined { code, id, peers } => {
            event(nsp, "JOIN_ROOM_OK", &[json(code.into()), json(serde_json::json!({ "id": id, "peers": peers }))])
        }
        ServerEvent::PeerJoined { id } => event(nsp, "PEER_JOINED", &[json(serde_json::json!({ "id": id }))]),
        ServerEvent::PeerLeft { id } => event(nsp, "PEER_LEFT", &[json(serde_json::json!({ "id": id }))]),
        ServerEvent::Credentials { ice, ttl } => {
            event(nsp, "CONFIG_FEEDBACK", &[json(serde_json::json!({ "config": { "iceServers": ice }, "ttl": ttl }))])
        }
        ServerEvent::Error { code, message } => {
            event(nsp, "ERROR", &[json(serde_json::json!({ "code": code.as_str(), "message": message }))])
        }
        ServerEvent::Pong => event::<&str>(nsp, "PONG", &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_packets() {
        assert_eq!(EioPacket::parse("2"), Ok(EioPacket::Ping("")));
        assert_eq!(EioPacket::parse("2probe"), Ok(EioPacket::Ping("probe")));
        assert_eq!(EioPacket::parse("3"), Ok(EioPacket::Pong("")));
        assert_eq!(EioPacket::parse("40"), Ok(EioPacket::Message("0")));
        assert_eq!(EioPacket::parse("1"), Ok(EioPacket::Close));
        assert_eq!(EioPacket::parse(""), Err(SioError::Empty));
        assert_eq!(EioPacket::parse("0{}"), Err(SioError::EioType('0')));
        assert_eq!(EioPacket::parse("é"), Err(SioError::EioType('é')));
    }

    #[test]
    fn socket_io_headers() {
        let p = SioPacket::parse(r#"2/rtc,12["JOIN_ROOM","123456"]"#).unwrap();
        assert_eq!((p.kind, p.nsp, p.ack, p.payload), (SioType::Event, "/rtc", Some(12), r#"["JOIN_ROOM","123456"]"#));
        let p = SioPacket::parse(r#"2["TV_INIT"]"#).unwrap();
        assert_eq!((p.nsp, p.ack), ("/", None));
        let p = SioPacket::parse("0/rtc,").unwrap();
        assert_eq!((p.kind, p.nsp, p.payload), (SioType::Connect, "/rtc", ""));
        let p = SioPacket::parse("0/rtc").unwrap();
        assert_eq!((p.nsp, p.payload), ("/rtc", ""));
        let p = SioPacket::parse(r#"0{"token":"abc"}"#).unwrap();
        assert_eq!(p.connect_token(), Ok(Some("abc".into())));
        assert_eq!(SioPacket::parse("1/rtc,").unwrap().kind, SioType::Disconnect);
        assert_eq!(SioPacket::parse(r#"51-["x",{"_placeholder":true,"num":0}]"#), Err(SioError::Binary));
        assert_eq!(SioPacket::parse("9"), Err(SioError::SioType('9')));
        assert_eq!(SioPacket::parse(""), Err(SioError::Empty));
        assert!(SioPacket::parse(&format!("0/{},", "n".repeat(200))).is_err());
        assert!(SioPacket::parse("2999999999999999999999[]").is_err());
    }

    #[test]
    fn events_keep_their_arguments_verbatim() {
        let p = SioPacket::parse(r#"2["RTC_Candidate_Exchange", {"candidate" : "x"}, 3]"#).unwrap();
        let e = p.event().unwrap();
        assert_eq!(e.name, "RTC_Candidate_Exchange");
        assert_eq!(e.args.iter().map(|a| a.get()).collect::<Vec<_>>(), [r#"{"candidate" : "x"}"#, "3"]);
        assert!(SioPacket::parse("2[]").unwrap().event().is_err());
        assert!(SioPacket::parse("2[1]").unwrap().event().is_err());
        assert!(SioPacket::parse(r#"2{"a":1}"#).unwrap().event().is_err());
        assert!(SioPacket::parse("0").unwrap().event().is_err());
    }

    #[test]
    fn encodings_match_socket_io() {
        assert_eq!(connect_ok("/", "abc"), r#"40{"sid":"abc"}"#);
        assert_eq!(connect_ok("/rtc", "abc"), r#"40/rtc,{"sid":"abc"}"#);
        assert_eq!(connect_error("/rtc", "no"), r#"44/rtc,{"message":"no"}"#);
        assert_eq!(disconnect("/"), "41");
        assert_eq!(event("/", "TV_INIT_OK", &[r#""123456""#]), r#"42["TV_INIT_OK","123456"]"#);
        assert_eq!(event::<&str>("/rtc", "PEER_LEFT", &[]), r#"42/rtc,["PEER_LEFT"]"#);
        assert_eq!(ack("/rtc", 7, &["1", "2"]), "43/rtc,7[1,2]");
        assert_eq!(
            open("s", 25000, 20000, 65536),
            r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}"#
        );
    }

    #[test]
    fn server_events_follow_the_seed() {
        use super::super::json::ErrorCode;
        assert_eq!(
            encode_server_event("/", &ServerEvent::Created { code: "042000", id: "x" }),
            r#"42["TV_INIT_OK","042000"]"#
        );
        assert_eq!(
            encode_server_event("/rtc", &ServerEvent::Credentials { ice: &[], ttl: 60 }),
            r#"42/rtc,["CONFIG_FEEDBACK",{"config":{"iceServers":[]},"ttl":60}]"#
        );
        assert_eq!(
            encode_server_event("/rtc", &ServerEvent::Error { code: ErrorCode::NotInRoom, message: "m" }),
            r#"42/rtc,["ERROR",{"code":"not-in-room","message":"m"}]"#
        );
    }
}
