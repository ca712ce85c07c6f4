//! The room table: codes, membership and expiry. Performs no I/O; callers send the messages.
//!
//! A code is drawn from the OS CSPRNG. It stays joinable while the room has a free seat and is
//! younger than `room_ttl`; at `room_ttl` it is burnt (no more joins), and a room that is still
//! unpaired then is closed. A room whose last member leaves is removed at once.
//!
//! Routing uses only this server-side state: a member's session holds its `Arc<Room>` and sends to
//! the room's other members; nothing a client writes after joining names a room or a peer
//! (SECURITY.md §6, cross-room injection).
//!
//! The session logic sees the table only through [`RoomTable`], so a table shared between
//! sidecar nodes (codes reserved in Redis, members on other nodes reached through mailboxes that
//! publish to them) can sit beside [`LocalRooms`], the in-process one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::mailbox::Mailbox;
pub use crate::wire::RoomKind;

/// One member: its id (shown to the others) and where its messages go.
#[derive(Debug, Clone)]
pub struct Member {
    /// Random member id.
    pub id: Arc<str>,
    /// Where to send.
    pub mailbox: Arc<dyn Mailbox>,
}

/// A room.
#[derive(Debug)]
pub struct Room {
    /// The code.
    pub code: String,
    /// The protocol of its members.
    pub kind: RoomKind,
    /// When the code stops being joinable.
    pub expires: Instant,
    state: Mutex<RoomState>,
}

#[derive(Debug, Default)]
struct RoomState {
    members: Vec<Member>,
    closed: bool,
}

/// Why a join failed. The client sees one answer for all three, so a guesser learns nothing
/// about which codes exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// No room has this code (or it is of the other protocol).
    NoSuchRoom,
    /// The room is full.
    Full,
    /// The code has expired.
    Expired,
}

/// Why a room could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// No free code was found (the code space is nearly exhausted).
    NoFreeCode,
    /// The OS random source failed.
    Rng,
}

/// What the session logic needs of a room table.
pub trait RoomTable: Send + Sync + std::fmt::Debug {
    /// Creates a room with `creator` as its only member.
    fn create(&self, kind: RoomKind, creator: Member, now: Instant) -> Result<Arc<Room>, CreateError>;

    /// Adds `member` to the room with `code`; returns the room and the members already there.
    fn join(
        &self,
        code: &str,
        kind: &RoomKind,
        member: Member,
        now: Instant,
    ) -> Result<(Arc<Room>, Vec<Member>), JoinError>;

    /// Removes member `id` from `room`; returns the members left. An emptied room leaves the
    /// table.
    fn leave(&self, room: &Arc<Room>, id: &str) -> Vec<Member>;

    /// Burns expired codes. Returns the rooms closed because they were still unpaired, with the
    /// members to tell.
    fn expire(&self, now: Instant) -> Vec<(Arc<Room>, Vec<Member>)>;

    /// Rooms in the table (joinable codes).
    fn len(&self) -> usize;

    /// Whether the table holds no room.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The in-process table: one map of codes under one lock, each room's members under its own.
#[derive(Debug)]
pub struct LocalRooms {
    by_code: Mutex<HashMap<String, Arc<Room>>>,
    code_length: usize,
    ttl: Duration,
    max_members: usize,
}

impl LocalRooms {
    /// An empty table.
    pub fn new(code_length: usize, ttl: Duration, max_members: usize) -> Self {
        LocalRooms { by_code: Mutex::new(HashMap::new()), code_length, ttl, max_members }
    }
}

impl RoomTable for LocalRooms {
    fn create(&self, kind: RoomKind, creator: Member, now: Instant) -> Result<Arc<Room>, CreateError> {
        let mut table = lock(&self.by_code);
        for _ in 0..64 {
            let code = random_code(self.code_length).ok_or(CreateError::Rng)?;
            if table.contains_key(&code) {
                continue;
            }
            let room = Arc::new(Room {
                code: code.clone(),
                kind,
                expires: now + self.ttl,
                state: Mutex::new(RoomState { members: vec![creator], closed: false }),
            });
            table.insert(code, Arc::clone(&room));
            return Ok(room);
        }
        Err(CreateError::NoFreeCode)
    }

    fn join(
        &self,
        code: &str,
        kind: &RoomKind,
        member: Member,
        now: Instant,
    ) -> Result<(Arc<Room>, Vec<Member>), JoinError> {
        let table = lock(&self.by_code);
        let room = table.get(code).filter(|r| &r.kind == kind).ok_or(JoinError::NoSuchRoom)?;
        if now >= room.expires {
            return Err(JoinError::Expired);
        }
        let mut st = lock(&room.state);
        if st.closed {
            return Err(JoinError::NoSuchRoom);
        }
        if st.members.len() >= self.max_members {
            return Err(JoinError::Full);
        }
        let others = st.members.clone();
        st.members.push(member);
        drop(st);
        Ok((Arc::clone(room), others))
    }

    fn leave(&self, room: &Arc<Room>, id: &str) -> Vec<Member> {
        let mut table = lock(&self.by_code);
        let mut st = lock(&room.state);
        st.members.retain(|m| &*m.id != id);
        if st.members.is_empty() {
            st.closed = true;
            if table.get(&room.code).is_some_and(|r| Arc::ptr_eq(r, room)) {
                table.remove(&room.code);
            }
        }
        st.members.clone()
    }

    fn expire(&self, now: Instant) -> Vec<(Arc<Room>, Vec<Member>)> {
        let mut closed = Vec::new();
        lock(&self.by_code).retain(|_, room| {
            if now < room.expires {
                return true;
            }
            let mut st = lock(&room.state);
            if st.members.len() < 2 {
                st.closed = true;
                closed.push((Arc::clone(room), std::mem::take(&mut st.members)));
            }
            false
        });
        closed
    }

    fn len(&self) -> usize {
        lock(&self.by_code).len()
    }
}

impl Room {
    /// The other members, unless the room was closed.
    pub fn others(&self, id: &str) -> Option<Vec<Member>> {
        let st = lock(&self.state);
        if st.closed {
            return None;
        }
        Some(st.members.iter().filter(|m| &*m.id != id).cloned().collect())
    }

    /// Calls `f` for each other member without cloning the list (the forwarding hot path).
    /// Returns `false` when the room was closed.
    pub fn for_each_other(&self, id: &str, mut f: impl FnMut(&Arc<dyn Mailbox>)) -> bool {
        let st = lock(&self.state);
        if st.closed {
            return false;
        }
        for m in st.members.iter().filter(|m| &*m.id != id) {
            f(&m.mailbox);
        }
        true
    }

    /// Members now.
    pub fn member_count(&self) -> usize {
        lock(&self.state).members.len()
    }

    /// Whether the room was closed (expired unpaired, or emptied).
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }
}

/// A code of `len` decimal digits from the OS CSPRNG, without modulo bias.
pub fn random_code(len: usize) -> Option<String> {
    let mut code = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while code.len() < len {
        getrandom::fill(&mut buf).ok()?;
        // 250 = 25 * 10: bytes below it map uniformly onto digits.
        for &b in buf.iter().filter(|&&b| b < 250) {
            if code.len() == len {
                break;
            }
            code.push(char::from(b'0' + b % 10));
        }
    }
    Some(code)
}

/// A random hex id of 16 characters (64 bits).
pub fn random_id() -> Option<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::Recorder;

    #[test]
    fn codes_are_digits_of_the_asked_length_and_vary() {
        let a = random_code(6).unwrap();
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| random_code(8).unwrap()).collect();
        assert!(distinct.len() > 45, "{distinct:?}");
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            for b in random_code(10).unwrap().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 2000 per digit expected; 6 sigma is about 270.
        assert!(counts.iter().all(|&c| (1700..2300).contains(&c)), "{counts:?}");
    }

    #[test]
    fn join_leave_full_and_expiry() {
        let t0 = Instant::now();
        let rooms = LocalRooms::new(6, Duration::from_secs(60), 2);
        let room = rooms.create(RoomKind::Json, member("a"), t0).unwrap();
        assert_eq!(
            rooms.join(&room.code, &RoomKind::SocketIo("/".into()), member("x"), t0).unwrap_err(),
            JoinError::NoSuchRoom
        );
        let (r2, others) = rooms.join(&room.code, &RoomKind::Json, member("b"), t0).unwrap();
        assert!(Arc::ptr_eq(&room, &r2));
        assert_eq!(others.len(), 1);
        assert_eq!(rooms.join(&room.code, &RoomKind::Json, member("c"), t0).unwrap_err(), JoinError::Full);
        assert_eq!(room.others("a").unwrap().len(), 1);
        // A paired room survives its code's expiry; the code does not.
        assert!(rooms.expire(t0 + Duration::from_secs(61)).is_empty());
        assert_eq!(rooms.len(), 0);
        assert!(!room.is_closed());
        assert_eq!(rooms.leave(&room, "a").len(), 1);
        assert!(rooms.leave(&room, "b").is_empty());
        assert!(room.is_closed());
    }

    #[test]
    fn unpaired_rooms_close_at_expiry() {
        let t0 = Instant::now();
        let rooms = LocalRooms::new(6, Duration::from_secs(60), 2);
        let room = rooms.create(RoomKind::Json, member("a"), t0).unwrap();
        assert_eq!(
            rooms.join(&room.code, &RoomKind::Json, member("b"), t0 + Duration::from_secs(60)).unwrap_err(),
            JoinError::Expired
        );
        let closed = rooms.expire(t0 + Duration::from_secs(60));
        assert_eq!(closed.len(), 1);
        assert_eq!(&*closed[0].1[0].id, "a");
        assert!(room.is_closed() && room.others("a").is_none());
        assert_eq!(rooms.join(&room.code, &RoomKind::Json, member("b"), t0).unwrap_err(), JoinError::NoSuchRoom);
    }

    fn member(id: &str) -> Member {
        Member { id: id.into(), mailbox: Recorder::new() }
    }
}
