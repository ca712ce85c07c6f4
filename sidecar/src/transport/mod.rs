//! The transports that carry a dialect: how bytes arrive and leave, and when a connection is
//! dead. Each connection becomes a [`crate::pool::Task`] on a worker once its HTTP head is read.
//!
//! - [`ws`]: WebSocket (both dialects).

pub mod ws;
