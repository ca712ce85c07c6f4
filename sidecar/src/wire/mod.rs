//! The wire formats, as codecs: parsing what clients send and encoding what the server sends.
//! Performs no I/O and holds no state.
//!
//! - [`json`]: the plain JSON protocol of `/ws`.
//! - [`sio`]: Engine.IO v4 packets and the Socket.IO v5 packets inside them.
//!
//! [`RoomKind`] names a dialect (and a Socket.IO namespace); [`encode`] writes a
//! [`ServerEvent`] in the words of that dialect, so the session logic never needs to know which
//! protocol a member speaks.

pub mod json;
pub mod sio;

use std::sync::Arc;

pub use json::{ErrorCode, ServerEvent};

/// Which protocol a room speaks: members of a JSON room and of a Socket.IO namespace cannot meet,
/// so one encoding of a message fits every member.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomKind {
    /// The JSON protocol at `/ws`.
    Json,
    /// Socket.IO, in this namespace.
    SocketIo(Arc<str>),
}

/// Encodes a server event for a room's dialect: a JSON text message, or a Socket.IO EVENT
/// packet with the seed's upper-snake names (`docs/SIGNALING.md` has the table).
pub fn encode(kind: &RoomKind, ev: &ServerEvent<'_>) -> String {
    match kind {
        RoomKind::Json => json::encode(ev),
        RoomKind::SocketIo(nsp) => sio::encode_server_event(nsp, ev),
    }
}
