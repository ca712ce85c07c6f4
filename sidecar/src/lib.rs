//! `tern-sidecar`: the WebRTC signaling server that sits next to `tern-relay`.
//!
//! A TV creates a room and shows its short code; a sender joins with the code; the sidecar relays
//! offers, answers and ICE candidates between the members of a room and hands each member of a
//! paired room time-limited TURN REST credentials for the relay.
//!
//! Shape (STYLE.md §10.10, with its "small pool" option): std sockets, no async runtime. A
//! short-lived small-stack thread per connection reads and answers the HTTP head (blocking, with
//! a deadline); an upgraded WebSocket then moves to one of a few `mio` workers that read every
//! ready socket per wake-up ([`pool`]). Writes to a connection never block the writer: every
//! frame goes out with a non-blocking `send`, and what the kernel does not take waits in that
//! connection's bounded outbox, drained by one flusher thread (see [`conn`]). A member that
//! cannot keep up is disconnected; its partner never waits for it.
//!
//! Two wire dialects share one room table: the plain JSON protocol at `/ws` and Engine.IO v4 /
//! Socket.IO v5 at `/socket.io/`. `docs/SIGNALING.md` documents both.
//!
//! Layers, each importing only those below it:
//!
//! | layer | modules |
//! | --- | --- |
//! | process shell | [`server`] (accept loop, helper threads) |
//! | HTTP routes | [`routes`] |
//! | transports | [`transport`] (WebSocket), driven by [`pool`] |
//! | dialects | [`dialect`] (JSON, Socket.IO): what each message does |
//! | session | [`session`] (create, join, forward, leave), [`admission`] (who may connect) |
//! | shared state | [`shared`] over [`rooms`], [`limits`], [`settings`], [`creds`] |
//! | I/O-free parts | [`wire`] (codecs), [`mailbox`] (where messages go), [`http`], [`conn`] (the outbox) |
//!
//! Everything from [`session`] down runs without sockets: the unit tests drive the whole flow
//! with recording mailboxes.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admission;
pub mod cli;
pub mod conn;
pub mod creds;
pub mod dialect;
pub mod http;
pub mod limits;
pub mod mailbox;
pub mod pool;
pub mod rooms;
pub mod routes;
pub mod server;
pub mod session;
pub mod settings;
pub mod shared;
pub mod transport;
mod web;
pub mod wire;

pub use server::{Server, ServerHandle};
pub use settings::Settings;

/// Entry points for the cargo-fuzz targets (`fuzz/fuzz_targets/sidecar_*.rs`) and the corpus
/// replay test (`tests/fuzz_replay.rs`). Each must return normally on any input; the asserts
/// are round-trip invariants of what the server forwards.
#[doc(hidden)]
pub mod fuzzing {
    use crate::wire::json::{ClientMessage, encode_signal};
    use crate::wire::sio::{EioPacket, SioPacket, SioType, event};

    /// Parses a client frame of the JSON protocol; a parsed `signal` must forward its `data`
    /// bytes unchanged, and whenever `data` decodes, the forwarded message decodes to the same
    /// value. (`data` may be valid JSON that serde will not decode, such as a lone surrogate
    /// escape that browsers' `JSON.parse` accepts: it is forwarded as sent.)
    pub fn json_message(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Ok(ClientMessage::Signal { data }) = ClientMessage::parse(text) {
            let out = encode_signal("0123456789abcdef", data);
            assert!(out.ends_with(&format!(",\"data\":{}}}", data.get())));
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(data.get()) {
                let back: serde_json::Value = serde_json::from_str(&out).expect("forwarded signal decodes");
                assert_eq!(back["from"], "0123456789abcdef");
                assert_eq!(back["data"], value);
            }
        }
    }

    /// Parses an Engine.IO packet and the Socket.IO packet inside; a parsed EVENT must re-encode
    /// to a packet that parses to the same event.
    pub fn sio_packet(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let Ok(EioPacket::Message(m)) = EioPacket::parse(text) else { return };
        let Ok(p) = SioPacket::parse(m) else { return };
        let _ = p.connect_token();
        let Ok(ev) = p.event() else { return };
        let args: Vec<&str> = ev.args.iter().map(|a| a.get()).collect();
        let wire = event(p.nsp, &ev.name, &args);
        let EioPacket::Message(m2) = EioPacket::parse(&wire).expect("re-encoded packet parses") else {
            panic!("re-encoded packet is not a message")
        };
        let p2 = SioPacket::parse(m2).expect("re-encoded Socket.IO packet parses");
        assert_eq!((p2.kind, p2.nsp, p2.ack), (SioType::Event, p.nsp, None));
        let ev2 = p2.event().expect("re-encoded event parses");
        assert_eq!(ev2.name, ev.name);
        assert_eq!(ev2.args.iter().map(|a| a.get()).collect::<Vec<_>>(), args);
    }

    /// Parses an HTTP request head and routes it (no I/O).
    pub fn http_head(data: &[u8]) {
        if let Ok(Some(req)) = crate::http::Request::parse(data) {
            assert!(req.head_len <= data.len());
            let _ = crate::routes::route(&req);
            let _ = req.query_param("token");
            let _ = req.bearer();
        }
    }
}
