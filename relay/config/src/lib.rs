//! `relay-config`: the typed configuration of `tern-relay`, read from `turnserver.conf` and
//! `turnserver`'s command line by coturn's rules, so an operator can replace
//! `turnserver -c /etc/turnserver.conf` with `tern-relay -c /etc/turnserver.conf`.
//!
//! - [`parse_command_line`] reads the process arguments and the config file they name;
//!   [`load_file`] reads one file (the sidecar's way in). [`Loaded::reload`] loads again the
//!   same way, for SIGHUP.
//! - [`Config`] is the contract the relay and the sidecar code against.
//! - [`options::OPTIONS`] lists every option coturn knows, with Tern's support status.
//! - Every problem is reported at once, as `file:line: what is wrong, and what would be right`.
//!
//! Layout: `conf_file.rs` (the line format), `cmdline.rs` (getopt rules), `values.rs` (value
//! syntax), `build.rs` (meaning and coturn's derived defaults), `load.rs` (order of it all),
//! `search.rs` (coturn's file search), `effective.rs` and `help.rs` (output).
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![forbid(unsafe_code)]

mod build;
mod cmdline;
mod conf_file;
mod config;
mod diag;
mod effective;
#[doc(hidden)]
pub mod fuzzing;
mod help;
mod load;
pub mod options;
mod search;
mod values;

pub use build::DEV_STATIC_AUTH_SECRET;
pub use config::{Config, ExternalIp, IpRange, LogFormat, User, UserSecret, Verbosity};
pub use diag::{ConfigError, Diagnostic, Origin, Warning};
pub use effective::{Secrets, to_turnserver_conf};
pub use help::text as help_text;
pub use load::{DEFAULT_CONFIG_FILE, Loaded, Outcome, load_file, parse_command_line, parse_command_line_in};
