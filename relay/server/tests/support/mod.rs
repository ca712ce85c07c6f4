//! What the relay's real-socket tests share: a `tern-relay` child process on free loopback
//! ports ([`relay`]), a TURN client over UDP, TCP or TLS built on `relay-proto`'s codec and a
//! UDP peer ([`client`]), free ports ([`ports`]), and what only one group of tests needs: test
//! certificates and a rustls client ([`tls`]), HTTP and Prometheus readers ([`ops`]), a seeded
//! PRNG and stunner's address list ([`abuse`]). Every read has a timeout and every relay is
//! killed (by its own handle) when dropped, so a failing test never hangs or leaks a process.
//!
//! Each file in `tests/` is a crate of its own that uses a part of this module, hence the
//! `dead_code` allowance.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod abuse;
pub mod client;
pub mod ops;
pub mod ports;
pub mod relay;
pub mod tls;

// What most tests use, at the top; not every test uses each part.
#[allow(unused_imports)]
pub use self::{client::*, ports::*, relay::*};
