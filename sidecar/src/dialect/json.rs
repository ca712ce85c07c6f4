//! The JSON protocol's behaviour (`/ws`): each client message becomes an action of the
//! connection's one [`Slot`]; every refusal becomes an `error` message. Performs no I/O: the
//! transport hands in text and owns the socket.

use std::time::Instant;

use crate::mailbox::Deferred;
use crate::session::Slot;
use crate::shared::Shared;
use crate::wire::json::{self, ClientMessage};
use crate::wire::{ErrorCode, ServerEvent};

/// The JSON protocol on one connection.
#[derive(Debug)]
pub struct JsonSession {
    /// The connection's member.
    pub slot: Slot,
}

impl JsonSession {
    /// A session around a slot outside any room.
    pub fn new(slot: Slot) -> Self {
        JsonSession { slot }
    }

    /// Handles one text message. Forwarded messages wait in `out`; whatever this sends directly
    /// to another member goes after them.
    pub fn on_text(&mut self, sh: &Shared, text: &str, out: &mut Deferred, now: Instant) {
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.slot.tell(&ServerEvent::Error { code: ErrorCode::BadMessage, message: &e.to_string() });
                return;
            }
        };
        if !matches!(msg, ClientMessage::Signal { .. }) {
            // Anything this thread sends directly must not overtake what it forwarded.
            out.flush();
        }
        let slot = &mut self.slot;
        let result = match msg {
            ClientMessage::Create => slot.create(sh, now).map(drop),
            ClientMessage::Join { code } => slot.join(sh, &code, now).map(drop),
            ClientMessage::Signal { data } => slot.forward(sh, &json::encode_signal(&slot.id, data), out).map(drop),
            ClientMessage::Leave => {
                slot.leave(sh);
                Ok(())
            }
            ClientMessage::Auth { token } => {
                if slot.authenticate(sh, &token) {
                    Ok(())
                } else {
                    Err((ErrorCode::Unauthorized, "wrong auth token"))
                }
            }
            ClientMessage::Ping => {
                slot.tell(&ServerEvent::Pong);
                Ok(())
            }
        };
        if let Err((code, message)) = result {
            out.flush();
            self.slot.tell(&ServerEvent::Error { code, message });
        }
    }

    /// A binary message: not part of the protocol; the connection lives on.
    pub fn on_binary(&mut self, out: &mut Deferred) {
        out.flush();
        self.slot.tell(&ServerEvent::Error {
            code: ErrorCode::Unsupported,
            message: "binary messages are not supported; send JSON text",
        });
    }

    /// A message over `--max-message-size`: the client is told before its connection closes.
    pub fn on_too_large(&mut self, out: &mut Deferred, message: &str) {
        out.flush();
        self.slot.tell(&ServerEvent::Error { code: ErrorCode::MessageTooLarge, message });
    }

    /// The connection ends: the room hears `peer-left`.
    pub fn close(&mut self, sh: &Shared) {
        self.slot.leave(sh);
    }
}
