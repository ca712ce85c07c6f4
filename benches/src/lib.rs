//! Tern's benchmarks: the pieces the criterion benches (`benches/`) and the packet load
//! generator (`tern-load`, in `src/bin/`) share.
//!
//! - [`client`]: TURN as a client speaks it, on `relay-proto`'s codec.
//! - [`fixture`]: an in-memory server with allocations, channels and permissions.
//! - [`hist`]: a fixed-memory latency histogram.
//! - [`procfs`]: a server process's CPU seconds and RSS.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod client;
pub mod fixture;
pub mod hist;
pub mod procfs;
