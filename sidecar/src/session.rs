//! One member's view of the signaling flow, shared by both dialects: create, join, forward,
//! leave, and the credentials push. A JSON connection has one [`Slot`]; a Socket.IO connection has
//! one per connected namespace.
//!
//! Credentials go to a member only once its room holds at least two members: a creator waiting
//! alone gets none, so minting rooms does not mint TURN credentials (SECURITY.md §6, credential
//! issuance without auth). When a room becomes paired, the creator gets its credentials too,
//! before any offer can reach it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use subtle::ConstantTimeEq;

use crate::conn::{Conn, Deferred, text_frame};
use crate::creds::{ice_servers, unix_now};
use crate::limits::JoinThrottled;
use crate::protocol::{self, ErrorCode, ServerEvent};
use crate::rooms::{CreateError, Member, Room, RoomKind, random_id};
use crate::server::Shared;
use crate::sio;

/// A refusal to report to the client.
pub type Refusal = (ErrorCode, &'static str);

/// What a client asked that needs an answer.
pub const NOT_IN_ROOM: Refusal = (ErrorCode::NotInRoom, "join or create a room first");

/// One member slot.
#[derive(Debug)]
pub struct Slot {
    /// The protocol (and namespace) of the rooms this slot can be in.
    pub kind: RoomKind,
    /// The member id the others see.
    pub id: Arc<str>,
    /// The current room.
    pub room: Option<Arc<Room>>,
    /// Whether the auth token was presented (always true without `--auth-token`).
    pub authed: bool,
}

impl Slot {
    /// A slot outside any room.
    pub fn new(kind: RoomKind, authed: bool) -> Self {
        let id: Arc<str> = random_id().unwrap_or_else(|| format!("{:016x}", fallback_id())).into();
        Slot { kind, id, room: None, authed }
    }

    /// Checks a presented token; returns whether it matched.
    pub fn authenticate(&mut self, sh: &Shared, token: &str) -> bool {
        self.authed = token_matches(sh, token);
        self.authed
    }

    /// Creates a room and tells the creator its code.
    pub fn create(&mut self, sh: &Shared, conn: &Arc<Conn>, now: Instant) -> Result<String, Refusal> {
        self.require_auth(sh)?;
        self.leave(sh);
        let member = Member { id: Arc::clone(&self.id), conn: Arc::clone(conn) };
        let room = sh.rooms.create(self.kind.clone(), member, now).map_err(|e| match e {
            CreateError::NoFreeCode => (ErrorCode::ServerBusy, "no free room code; try again later"),
            CreateError::Rng => (ErrorCode::ServerBusy, "the random source failed; try again later"),
        })?;
        let code = room.code.clone();
        tracing::debug!(conn = conn.id, room = %code, "room created");
        self.room = Some(room);
        conn.send_text(&encode(&self.kind, &ServerEvent::Created { code: &code, id: &self.id }));
        Ok(code)
    }

    /// Joins the room with `code`; the joiner gets `joined` and credentials, the others
    /// `peer-joined`.
    pub fn join(&mut self, sh: &Shared, conn: &Arc<Conn>, code: &str, now: Instant) -> Result<String, Refusal> {
        self.require_auth(sh)?;
        let code = normalize_code(code, sh.settings.room_code_length);
        if self.current_room().is_some_and(|r| r.code == code) {
            return Err((ErrorCode::BadMessage, "already in this room"));
        }
        sh.joins.attempt(conn.ip, now).map_err(|t| match t {
            JoinThrottled::PerIp => (ErrorCode::RateLimited, "too many join attempts from your address; wait a minute"),
            JoinThrottled::Global => {
                (ErrorCode::RateLimited, "the server is refusing joins for a minute; try again later")
            }
        })?;
        let member = Member { id: Arc::clone(&self.id), conn: Arc::clone(conn) };
        let (room, others) = match sh.rooms.join(&code, &self.kind, member, now) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(conn = conn.id, ip = %conn.ip, reason = ?e, "join refused");
                sh.joins.failed(now);
                return Err((
                    ErrorCode::RoomUnavailable,
                    "no open room with this code: it may be mistyped, full or expired",
                ));
            }
        };
        self.leave(sh);
        self.room = Some(Arc::clone(&room));
        let peers: Vec<&str> = others.iter().map(|m| &*m.id).collect();
        conn.send_text(&encode(&self.kind, &ServerEvent::Joined { code: &code, id: &self.id, peers: &peers }));
        let joined = text_frame(&encode(&self.kind, &ServerEvent::PeerJoined { id: &self.id }));
        for m in &others {
            m.conn.send_frame_bytes(&joined);
        }
        // The room just became paired: the members who waited alone get credentials now.
        if others.len() == 1 {
            send_credentials(sh, &self.kind, &others[0]);
        }
        send_credentials(sh, &self.kind, &Member { id: Arc::clone(&self.id), conn: Arc::clone(conn) });
        tracing::debug!(conn = conn.id, room = %code, members = others.len() + 1, "joined");
        Ok(code)
    }

    /// Queues an encoded frame for the other members of the room. Returns how many will get it.
    pub fn forward(&self, sh: &Shared, frame: &[u8], out: &mut Deferred) -> Result<usize, Refusal> {
        let room = self.current_room().ok_or(NOT_IN_ROOM)?;
        let mut n = 0;
        if !room.for_each_other(&self.id, |c| {
            out.push(c, frame);
            n += 1;
        }) {
            return Err(NOT_IN_ROOM);
        }
        sh.relayed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Leaves the room, if any; the others get `peer-left`.
    pub fn leave(&mut self, sh: &Shared) {
        let Some(room) = self.room.take() else { return };
        let left = sh.rooms.leave(&room, &self.id);
        if room.is_closed() && left.is_empty() {
            return;
        }
        let frame = text_frame(&encode(&self.kind, &ServerEvent::PeerLeft { id: &self.id }));
        for m in left {
            m.conn.send_frame_bytes(&frame);
        }
    }

    /// The room, unless it was closed under us (expired).
    pub fn current_room(&self) -> Option<&Arc<Room>> {
        self.room.as_ref().filter(|r| !r.is_closed())
    }

    fn require_auth(&self, sh: &Shared) -> Result<(), Refusal> {
        if self.authed || sh.settings.auth_token.is_none() {
            return Ok(());
        }
        Err((ErrorCode::Unauthorized, "this server requires its auth token before you create or join a room"))
    }
}

/// Whether `token` is the configured auth token (constant time).
pub fn token_matches(sh: &Shared, token: &str) -> bool {
    sh.settings.auth_token.as_ref().is_some_and(|t| bool::from(t.expose().ct_eq(token.as_bytes())))
}

fn send_credentials(sh: &Shared, kind: &RoomKind, m: &Member) {
    let s = &sh.settings;
    let ice = ice_servers(&s.secret, &s.turn_uris, &m.id, s.credential_ttl, unix_now());
    m.conn.send_text(&encode(kind, &ServerEvent::Credentials { ice: &ice, ttl: s.credential_ttl.as_secs() }));
}

/// Numeric codes that lost their leading zeros (a client that parsed the code as a number) get
/// them back.
fn normalize_code(code: &str, len: usize) -> String {
    let code = code.trim();
    if code.len() < len && !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{code:0>len$}");
    }
    code.to_owned()
}

/// Encodes a server event for a room's dialect. The Socket.IO names follow the seed's
/// upper-snake style; `docs/SIGNALING.md` has the table.
pub fn encode(kind: &RoomKind, ev: &ServerEvent<'_>) -> String {
    let RoomKind::SocketIo(nsp) = kind else { return protocol::encode(ev) };
    let json = |v: serde_json::Value| v.to_string();
    match *ev {
        ServerEvent::Created { code, .. } => sio::event(nsp, "TV_INIT_OK", &[json(code.into())]),
        ServerEvent::Joined { code, id, peers } => {
            sio::event(nsp, "JOIN_ROOM_OK", &[json(code.into()), json(serde_json::json!({ "id": id, "peers": peers }))])
        }
        ServerEvent::PeerJoined { id } => sio::event(nsp, "PEER_JOINED", &[json(serde_json::json!({ "id": id }))]),
        ServerEvent::PeerLeft { id } => sio::event(nsp, "PEER_LEFT", &[json(serde_json::json!({ "id": id }))]),
        ServerEvent::Credentials { ice, ttl } => sio::event(
            nsp,
            "CONFIG_FEEDBACK",
            &[json(serde_json::json!({ "config": { "iceServers": ice }, "ttl": ttl }))],
        ),
        ServerEvent::Error { code, message } => {
            sio::event(nsp, "ERROR", &[json(serde_json::json!({ "code": code.as_str(), "message": message }))])
        }
        ServerEvent::Pong => sio::event::<&str>(nsp, "PONG", &[]),
    }
}

fn fallback_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_codes_get_their_zeros_back() {
        assert_eq!(normalize_code("12345", 6), "012345");
        assert_eq!(normalize_code(" 123456 ", 6), "123456");
        assert_eq!(normalize_code("abc", 6), "abc");
        assert_eq!(normalize_code("", 6), "");
    }

    #[test]
    fn socket_io_names_follow_the_seed() {
        let k = RoomKind::SocketIo("/".into());
        assert_eq!(encode(&k, &ServerEvent::Created { code: "042000", id: "x" }), r#"42["TV_INIT_OK","042000"]"#);
        let k = RoomKind::SocketIo("/rtc".into());
        assert_eq!(
            encode(&k, &ServerEvent::Credentials { ice: &[], ttl: 60 }),
            r#"42/rtc,["CONFIG_FEEDBACK",{"config":{"iceServers":[]},"ttl":60}]"#
        );
        assert_eq!(
            encode(&k, &ServerEvent::Error { code: ErrorCode::NotInRoom, message: "m" }),
            r#"42/rtc,["ERROR",{"code":"not-in-room","message":"m"}]"#
        );
    }
}
