//! One member's view of the signaling flow, shared by both dialects: create, join, forward,
//! leave, and the credentials push. A JSON connection has one [`Slot`]; a Socket.IO connection has
//! one per connected namespace. Sans-IO: a slot sends through its [`Mailbox`] and the others',
//! and takes the time as an argument, so the whole flow runs in unit tests with recording
//! mailboxes.
//!
//! Credentials go to a member only once its room holds at least two members: a creator waiting
//! alone gets none, so minting rooms does not mint TURN credentials (SECURITY.md §6, credential
//! issuance without auth). When a room becomes paired, the creator gets its credentials too,
//! before any offer can reach it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::creds::{ice_servers, unix_now};
use crate::limits::JoinThrottled;
use crate::mailbox::{Deferred, Mailbox};
use crate::rooms::{CreateError, Member, Room, RoomKind, random_id};
use crate::shared::Shared;
use crate::wire::{self, ErrorCode, ServerEvent};

/// A refusal to report to the client.
pub type Refusal = (ErrorCode, &'static str);

/// What a client asked that needs an answer.
pub const NOT_IN_ROOM: Refusal = (ErrorCode::NotInRoom, "join or create a room first");

/// Who a member is, as decided when its connection was accepted.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Process-unique connection id (logs only).
    pub conn: u64,
    /// The client's address (join limits, logs).
    pub ip: IpAddr,
}

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
    /// Where this member's messages go.
    pub mailbox: Arc<dyn Mailbox>,
    /// The connection it came on.
    pub peer: Peer,
}

impl Slot {
    /// A slot outside any room.
    pub fn new(kind: RoomKind, authed: bool, mailbox: Arc<dyn Mailbox>, peer: Peer) -> Self {
        let id: Arc<str> = random_id().unwrap_or_else(|| format!("{:016x}", fallback_id())).into();
        Slot { kind, id, room: None, authed, mailbox, peer }
    }

    /// Checks a presented token; returns whether it matched.
    pub fn authenticate(&mut self, sh: &Shared, token: &str) -> bool {
        self.authed = sh.token_matches(token);
        self.authed
    }

    /// Sends this member a server event.
    pub fn tell(&self, ev: &ServerEvent<'_>) {
        self.mailbox.send(&wire::encode(&self.kind, ev));
    }

    /// Creates a room and tells the creator its code.
    pub fn create(&mut self, sh: &Shared, now: Instant) -> Result<String, Refusal> {
        self.require_auth(sh)?;
        self.leave(sh);
        let room = sh.rooms.create(self.kind.clone(), self.member(), now).map_err(|e| match e {
            CreateError::NoFreeCode => (ErrorCode::ServerBusy, "no free room code; try again later"),
            CreateError::Rng => (ErrorCode::ServerBusy, "the random source failed; try again later"),
        })?;
        let code = room.code.clone();
        tracing::debug!(conn = self.peer.conn, room = %code, "room created");
        self.room = Some(room);
        self.tell(&ServerEvent::Created { code: &code, id: &self.id });
        Ok(code)
    }

    /// Joins the room with `code`; the joiner gets `joined` and credentials, the others
    /// `peer-joined`.
    pub fn join(&mut self, sh: &Shared, code: &str, now: Instant) -> Result<String, Refusal> {
        self.require_auth(sh)?;
        let code = normalize_code(code, sh.settings.room_code_length);
        if self.current_room().is_some_and(|r| r.code == code) {
            return Err((ErrorCode::BadMessage, "already in this room"));
        }
        sh.joins.attempt(self.peer.ip, now).map_err(|t| match t {
            JoinThrottled::PerIp => (ErrorCode::RateLimited, "too many join attempts from your address; wait a minute"),
            JoinThrottled::Global => {
                (ErrorCode::RateLimited, "the server is refusing joins for a minute; try again later")
            }
        })?;
        let (room, others) = match sh.rooms.join(&code, &self.kind, self.member(), now) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(conn = self.peer.conn, ip = %self.peer.ip, reason = ?e, "join refused");
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
        self.tell(&ServerEvent::Joined { code: &code, id: &self.id, peers: &peers });
        let joined = wire::encode(&self.kind, &ServerEvent::PeerJoined { id: &self.id });
        for m in &others {
            m.mailbox.send(&joined);
        }
        // The room just became paired: the members who waited alone get credentials now.
        if others.len() == 1 {
            send_credentials(sh, &self.kind, &others[0]);
        }
        send_credentials(sh, &self.kind, &self.member());
        tracing::debug!(conn = self.peer.conn, room = %code, members = others.len() + 1, "joined");
        Ok(code)
    }

    /// Queues a message for the other members of the room. Returns how many will get it.
    pub fn forward(&self, sh: &Shared, msg: &str, out: &mut Deferred) -> Result<usize, Refusal> {
        let room = self.current_room().ok_or(NOT_IN_ROOM)?;
        let mut n = 0;
        if !room.for_each_other(&self.id, |m| {
            out.push(m, msg);
            n += 1;
        }) {
            return Err(NOT_IN_ROOM);
        }
        sh.stats.relayed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Leaves the room, if any; the others get `peer-left`.
    pub fn leave(&mut self, sh: &Shared) {
        let Some(room) = self.room.take() else { return };
        let left = sh.rooms.leave(&room, &self.id);
        if room.is_closed() && left.is_empty() {
            return;
        }
        let msg = wire::encode(&self.kind, &ServerEvent::PeerLeft { id: &self.id });
        for m in left {
            m.mailbox.send(&msg);
        }
    }

    /// The room, unless it was closed under us (expired).
    pub fn current_room(&self) -> Option<&Arc<Room>> {
        self.room.as_ref().filter(|r| !r.is_closed())
    }

    fn member(&self) -> Member {
        Member { id: Arc::clone(&self.id), mailbox: Arc::clone(&self.mailbox) }
    }

    fn require_auth(&self, sh: &Shared) -> Result<(), Refusal> {
        if self.authed || sh.settings.auth_token.is_none() {
            return Ok(());
        }
        Err((ErrorCode::Unauthorized, "this server requires its auth token before you create or join a room"))
    }
}

/// Closes the rooms whose code expired unpaired and tells their members (the sweeper calls it).
pub fn expire_rooms(sh: &Shared, now: Instant) {
    for (room, members) in sh.rooms.expire(now) {
        tracing::debug!(room = %room.code, "room expired unpaired");
        let msg = wire::encode(
            &room.kind,
            &ServerEvent::Error {
                code: ErrorCode::RoomExpired,
                message: "the room expired before it was paired; create a new one",
            },
        );
        for m in members {
            m.mailbox.send(&msg);
        }
    }
}

/// Mints TURN REST credentials for `m` and sends them. The one place members get credentials.
fn send_credentials(sh: &Shared, kind: &RoomKind, m: &Member) {
    let s = &sh.settings;
    let ice = ice_servers(&s.secret, &s.turn_uris, &m.id, s.credential_ttl, unix_now());
    m.mailbox.send(&wire::encode(kind, &ServerEvent::Credentials { ice: &ice, ttl: s.credential_ttl.as_secs() }));
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

fn fallback_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mailbox::Recorder;
    use crate::settings::Secret;

    #[test]
    fn numeric_codes_get_their_zeros_back() {
        assert_eq!(normalize_code("12345", 6), "012345");
        assert_eq!(normalize_code(" 123456 ", 6), "123456");
        assert_eq!(normalize_code("abc", 6), "abc");
        assert_eq!(normalize_code("", 6), "");
    }

    /// The whole flow without a socket: create, join, credentials once paired, forward, leave.
    #[test]
    fn a_pair_meets_trades_signals_and_parts_without_sockets() {
        let sh = shared(|_| {});
        let t0 = Instant::now();
        let (ta, mut a) = slot(RoomKind::Json);
        let (tb, mut b) = slot(RoomKind::Json);
        let code = a.create(&sh, t0).unwrap();
        assert_eq!(ta.take(), [format!(r#"{{"type":"created","code":"{code}","id":"{}"}}"#, a.id)]);
        b.join(&sh, &code, t0).unwrap();
        let got_b = tb.take();
        assert!(got_b[0].starts_with(r#"{"type":"joined""#) && got_b[1].starts_with(r#"{"type":"credentials""#));
        let got_a = ta.take();
        assert_eq!(got_a[0], format!(r#"{{"type":"peer-joined","id":"{}"}}"#, b.id));
        assert!(got_a[1].starts_with(r#"{"type":"credentials""#), "the creator gets credentials once paired");

        let mut out = Deferred::default();
        assert_eq!(a.forward(&sh, "m1", &mut out), Ok(1));
        assert_eq!(a.forward(&sh, "m2", &mut out), Ok(1));
        assert!(tb.take().is_empty(), "forwarded messages wait for the flush");
        out.flush();
        assert_eq!(tb.take(), ["m1", "m2"]);
        assert_eq!(sh.stats.relayed.load(Ordering::Relaxed), 2);

        b.leave(&sh);
        assert_eq!(ta.take(), [format!(r#"{{"type":"peer-left","id":"{}"}}"#, b.id)]);
        assert_eq!(b.forward(&sh, "m3", &mut out), Err(NOT_IN_ROOM));
    }

    #[test]
    fn an_unpaired_room_expires_and_its_creator_is_told() {
        let sh = shared(|s| s.room_ttl = Duration::from_secs(5));
        let t0 = Instant::now();
        let (ta, mut a) = slot(RoomKind::SocketIo("/".into()));
        a.create(&sh, t0).unwrap();
        ta.take();
        expire_rooms(&sh, t0 + Duration::from_secs(4));
        assert!(ta.take().is_empty());
        expire_rooms(&sh, t0 + Duration::from_secs(5));
        assert_eq!(
            ta.take(),
            [
                r#"42["ERROR",{"code":"room-expired","message":"the room expired before it was paired; create a new one"}]"#
            ]
        );
        assert!(a.current_room().is_none());
    }

    #[test]
    fn without_the_token_there_is_no_room() {
        let sh = shared(|s| s.auth_token = Some(Secret::new("0123456789abcdef-token")));
        let (_t, mut a) = slot(RoomKind::Json);
        a.authed = false;
        assert_eq!(a.create(&sh, Instant::now()).unwrap_err().0, ErrorCode::Unauthorized);
        assert!(!a.authenticate(&sh, "nope"));
        assert!(a.authenticate(&sh, "0123456789abcdef-token"));
        assert!(a.create(&sh, Instant::now()).is_ok());
    }

    fn shared(f: impl FnOnce(&mut crate::settings::Settings)) -> Arc<Shared> {
        let mut s = crate::settings::Settings::new(Secret::new("s"), vec!["turn:h:3478".into()]);
        f(&mut s);
        Shared::new(s, Instant::now()).0
    }

    fn slot(kind: RoomKind) -> (Arc<Recorder>, Slot) {
        let r = Recorder::new();
        let peer = Peer { conn: 0, ip: "192.0.2.1".parse().unwrap() };
        (Arc::clone(&r), Slot::new(kind, true, r, peer))
    }
}
