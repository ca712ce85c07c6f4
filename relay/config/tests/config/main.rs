//! Integration tests of relay-config, in one binary to keep link times down.
#![allow(clippy::unwrap_used)]

mod command_line;
mod coturn_compat;
mod full_conf;
mod fuzz_replay;
mod properties;
mod rules;
mod support;
