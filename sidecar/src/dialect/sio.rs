//! Socket.IO v5's behaviour over one Engine.IO session: namespaces (each its own member), the
//! seed's events, acknowledgements, and refusals as `ERROR` events. Performs no I/O: the
//! transport hands in the data of each Engine.IO message packet.
//!
//! The seed's events: `TV_INIT` creates a room, `JOIN_ROOM` joins one, `LEAVE_ROOM` leaves,
//! `CLIENT_OFFER_TO_SERVER` and `TV_ANSWER_TO_SERVER` reach the others renamed
//! `CLIENT_OFFER_TO_TV` and `TV_ANSWER_TO_CLIENT`, and any other event reaches the others
//! unchanged, like `socket.broadcast.to(room).emit`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::{CloseWhy, Verdict};
use crate::mailbox::{Deferred, Mailbox};
use crate::session::{Peer, Refusal, Slot};
use crate::shared::Shared;
use crate::wire::json::code_from_json;
use crate::wire::sio::{self, Event, SioError, SioPacket, SioType};
use crate::wire::{ErrorCode, RoomKind, ServerEvent};

/// Most Socket.IO namespaces one connection may join.
pub const MAX_NAMESPACES: usize = 8;

/// The Socket.IO side of one Engine.IO session.
#[derive(Debug)]
pub struct SioSession {
    /// The connected namespaces, each with its member.
    slots: Vec<(Arc<str>, Slot)>,
    /// Whether the connection presented the auth token in its HTTP head.
    authed: bool,
    /// Where the session's packets go.
    mailbox: Arc<dyn Mailbox>,
    peer: Peer,
}

impl SioSession {
    /// A session with no namespace connected yet.
    pub fn new(authed: bool, mailbox: Arc<dyn Mailbox>, peer: Peer) -> Self {
        SioSession { slots: Vec::new(), authed, mailbox, peer }
    }

    /// Handles the data of one Engine.IO message (`4…`) packet: one Socket.IO packet.
    pub fn on_message(&mut self, sh: &Shared, data: &str, out: &mut Deferred, now: Instant) -> Verdict {
        let p = match SioPacket::parse(data) {
            Ok(p) => p,
            Err(SioError::Binary) => {
                return Verdict::Close(CloseWhy::Unsupported, "binary attachments are not supported");
            }
            Err(_) => return Verdict::Close(CloseWhy::Invalid, "not a Socket.IO packet"),
        };
        if p.kind != SioType::Event {
            // Anything this thread sends directly must not overtake what it forwarded.
            out.flush();
        }
        match p.kind {
            SioType::Connect => self.connect(sh, &p),
            SioType::Disconnect => {
                if let Some(i) = self.slots.iter().position(|(n, _)| &**n == p.nsp) {
                    let (_, mut slot) = self.slots.swap_remove(i);
                    slot.leave(sh);
                }
            }
            SioType::Event => {
                let Some(i) = self.slots.iter().position(|(n, _)| &**n == p.nsp) else {
                    // socket.io ignores packets for namespaces the socket has not connected.
                    return Verdict::Continue;
                };
                let slot = &mut self.slots[i].1;
                let result = match p.event() {
                    Ok(ev) => sio_event(sh, slot, &ev, out, now),
                    Err(e) => {
                        tracing::debug!(conn = self.peer.conn, error = %e, "bad event");
                        Err((ErrorCode::BadMessage, "an EVENT must be a JSON array starting with the event name"))
                    }
                };
                match (result, p.ack) {
                    (Ok(args), Some(id)) => self.mailbox.send(&sio::ack(p.nsp, id, &args)),
                    (Ok(_), None) => {}
                    (Err((code, message)), ack) => {
                        out.flush();
                        slot.tell(&ServerEvent::Error { code, message });
                        if let Some(id) = ack {
                            let e = serde_json::json!({ "error": { "code": code.as_str(), "message": message } });
                            self.mailbox.send(&sio::ack(p.nsp, id, &[e.to_string()]));
                        }
                    }
                }
            }
            SioType::Ack | SioType::ConnectError => {}
        }
        Verdict::Continue
    }

    /// The session ends: every namespace's room hears `PEER_LEFT`.
    pub fn close(&mut self, sh: &Shared) {
        for (_, slot) in &mut self.slots {
            slot.leave(sh);
        }
        self.slots.clear();
    }

    fn connect(&mut self, sh: &Shared, p: &SioPacket<'_>) {
        if let Some((_, slot)) = self.slots.iter().find(|(n, _)| &**n == p.nsp) {
            self.mailbox.send(&sio::connect_ok(p.nsp, &slot.id));
            return;
        }
        if self.slots.len() >= MAX_NAMESPACES {
            self.mailbox.send(&sio::connect_error(p.nsp, "too many namespaces on one connection"));
            return;
        }
        let ok = self.authed
            || match p.connect_token() {
                Ok(Some(t)) => sh.token_matches(&t),
                _ => false,
            };
        if !ok {
            self.mailbox.send(&sio::connect_error(
                p.nsp,
                "unauthorized: this server requires its auth token, e.g. io(url, { auth: { token } })",
            ));
            return;
        }
        let nsp: Arc<str> = p.nsp.into();
        let slot = Slot::new(RoomKind::SocketIo(Arc::clone(&nsp)), true, Arc::clone(&self.mailbox), self.peer.clone());
        self.mailbox.send(&sio::connect_ok(p.nsp, &slot.id));
        self.slots.push((nsp, slot));
    }
}

/// Runs one event of the seed's flow; returns the ack arguments.
fn sio_event(
    sh: &Shared,
    slot: &mut Slot,
    ev: &Event<'_>,
    out: &mut Deferred,
    now: Instant,
) -> Result<Vec<String>, Refusal> {
    let RoomKind::SocketIo(nsp) = &slot.kind else { return Err((ErrorCode::BadMessage, "wrong dialect")) };
    let nsp = Arc::clone(nsp);
    if matches!(&*ev.name, "TV_INIT" | "JOIN_ROOM" | "LEAVE_ROOM") {
        // These send to the others directly: what was forwarded before goes first.
        out.flush();
    }
    match &*ev.name {
        "TV_INIT" => {
            let code = slot.create(sh, now)?;
            Ok(vec![serde_json::Value::from(code).to_string()])
        }
        "JOIN_ROOM" => {
            let code = ev.args.first().and_then(|a| join_code(a)).ok_or((
                ErrorCode::BadMessage,
                "JOIN_ROOM takes the code: a string, a number, or an object with a \"code\" field",
            ))?;
            let code = slot.join(sh, &code, now)?;
            Ok(vec![serde_json::json!({ "code": code }).to_string()])
        }
        "LEAVE_ROOM" => {
            slot.leave(sh);
            Ok(vec![])
        }
        name => {
            let out_name = match name {
                "CLIENT_OFFER_TO_SERVER" => "CLIENT_OFFER_TO_TV",
                "TV_ANSWER_TO_SERVER" => "TV_ANSWER_TO_CLIENT",
                other => other,
            };
            let args: Vec<&str> = ev.args.iter().map(|a| a.get()).collect();
            slot.forward(sh, &sio::event(&nsp, out_name, &args), out)?;
            Ok(vec![])
        }
    }
}

/// The code argument of `JOIN_ROOM`: `"123456"`, `123456` or `{ "code": "123456" }` (also
/// `room` / `roomId`, names seen in socket.io examples).
pub fn join_code(arg: &RawValue) -> Option<String> {
    if let Some(c) = code_from_json(arg) {
        return Some(c.into_owned());
    }
    #[derive(serde::Deserialize)]
    struct Obj<'a> {
        #[serde(default, borrow)]
        code: Option<&'a RawValue>,
        #[serde(default, borrow)]
        room: Option<&'a RawValue>,
        #[serde(default, borrow, rename = "roomId")]
        room_id: Option<&'a RawValue>,
    }
    if !arg.get().starts_with('{') {
        return None; // serde would also read a struct from an array
    }
    let o: Obj<'_> = serde_json::from_str(arg.get()).ok()?;
    let raw = o.code.or(o.room).or(o.room_id)?;
    code_from_json(raw).map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_code_accepts_the_shapes_seen_in_the_wild() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        assert_eq!(join_code(&raw(r#""123456""#)).as_deref(), Some("123456"));
        assert_eq!(join_code(&raw("123456")).as_deref(), Some("123456"));
        assert_eq!(join_code(&raw(r#"{"code":"1"}"#)).as_deref(), Some("1"));
        assert_eq!(join_code(&raw(r#"{"roomId":7}"#)).as_deref(), Some("7"));
        assert_eq!(join_code(&raw("[1]")), None);
        assert_eq!(join_code(&raw("{}")), None);
    }
}
