//! The two dialects' behaviour over the shared session logic ([`crate::session`]): what each
//! client message does, and what each refusal looks like. Sans-IO: a transport hands in the text
//! it read and gets back a [`Verdict`]; replies go to the member's mailbox, forwards to the
//! caller's [`crate::mailbox::Deferred`].
//!
//! - [`json`]: the JSON protocol at `/ws`, one member per connection.
//! - [`sio`]: Socket.IO v5 inside Engine.IO v4, one member per connected namespace.

pub mod json;
pub mod sio;

/// What the transport does after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep reading.
    Continue,
    /// The client ended the session; close quietly.
    End,
    /// Close the connection, telling the client why.
    Close(CloseWhy, &'static str),
}

/// Why a dialect closes a connection (a transport maps it onto its own close codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseWhy {
    /// The data is not what the protocol allows (WebSocket 1007).
    Invalid,
    /// A feature the server does not take (WebSocket 1003).
    Unsupported,
}
