//! `tern-sidecar`: the WebRTC signaling server that sits next to `tern-relay`.
//!
//! A TV creates a room and shows its short code; a sender joins with the code; the sidecar relays
//! offers, answers and ICE candidates between the members of a room and hands each member of a
//! paired room time-limited TURN REST credentials for the relay.
//!
//! Shape (STYLE.md §10.10): blocking std sockets, no async runtime. One small-stack thread per
//! connection reads; writes to a connection never block the writer: every frame goes out with a
//! non-blocking `send`, and what the kernel does not take waits in that connection's bounded
//! outbox, drained by one flusher thread (see [`conn`]). A member that cannot keep up is
//! disconnected; its partner never waits for it.
//!
//! Two wire dialects share one room table: the plain JSON protocol at `/ws` ([`protocol`]) and
//! Engine.IO v4 / Socket.IO v5 at `/socket.io/` ([`sio`]). `docs/SIGNALING.md` documents both.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod conn;
pub mod creds;
pub mod http;
pub mod limits;
pub mod protocol;
pub mod rooms;
pub mod server;
pub mod session;
pub mod settings;
pub mod sio;
mod web;

pub use server::{Server, ServerHandle};
pub use settings::Settings;

/// Entry points for the cargo-fuzz targets (`fuzz/fuzz_targets/sidecar_*.rs`) and the corpus
/// replay test. Each must return normally on any input.
pub mod fuzzing {
    /// Parses a client frame of the JSON protocol.
    pub fn json_message(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = crate::protocol::ClientMessage::parse(text);
        }
    }

    /// Parses an Engine.IO packet and, for messages, the Socket.IO packet inside, then the event.
    pub fn sio_packet(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(crate::sio::EioPacket::Message(m)) = crate::sio::EioPacket::parse(text)
            && let Ok(p) = crate::sio::SioPacket::parse(m)
        {
            let _ = p.event();
            let _ = p.connect_token();
        }
    }

    /// Parses an HTTP request head and routes it (no I/O).
    pub fn http_head(data: &[u8]) {
        if let Ok(Some(req)) = crate::http::Request::parse(data) {
            let _ = crate::http::route(&req);
        }
    }
}
