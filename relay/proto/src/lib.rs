//! `relay-proto`: Tern's sans-IO core.
//!
//! This crate holds everything that decides what a TURN/STUN server does, and nothing that
//! touches the outside world: no sockets, no threads, no clock reads. Time comes in as `now`
//! (and `unix_now` for REST expiry) and randomness as a seed, so every behaviour is testable
//! and reproducible. The `tern-relay` binary is a thin mio shell around it.
//!
//! - [`stun`]: the RFC 8489 codec (borrowed reader, writer into caller buffers, credentials).
//! - [`channel_data`]: ChannelData framing and RFC 7983 demultiplexing.
//! - [`framing`]: where messages end on TCP and TLS streams.
//! - [`server`]: the TURN server state machine.
//! - [`policy`]: which peers a client may reach.
//! - [`turn_rest`]: TURN REST credentials, shared with the sidecar.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::disallowed_methods))]

pub mod channel_data;
pub mod framing;
pub mod policy;
pub mod server;
pub mod stun;
pub mod turn_rest;
pub mod types;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
