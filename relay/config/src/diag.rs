//! Diagnostics: where a setting came from ([`Origin`]), what is wrong with it ([`Diagnostic`]),
//! and the error that stops the start-up ([`ConfigError`]).
//!
//! Every warning and error displays as `file:line: what is wrong, and what would be right`; a
//! setting from the command line displays `command line:` in place of `file:line`.

use std::fmt;
use std::path::PathBuf;

/// Where a setting, a warning or an error comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A line of a configuration file (lines count from 1).
    File {
        /// The file, as found on the search path.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// The process arguments.
    CommandLine,
    /// The configuration as a whole, not one line of it: a default that could not be met, or
    /// a missing setting. Names the file when there is one.
    Whole {
        /// The configuration file, if one was read.
        file: Option<PathBuf>,
    },
}

impl Origin {
    /// Orders diagnostics for reading: file lines in order, then the command line, then the
    /// configuration as a whole.
    pub(crate) fn sort_key(&self) -> (u8, usize) {
        match self {
            Origin::File { line, .. } => (0, *line),
            Origin::CommandLine => (1, 0),
            Origin::Whole { .. } => (2, 0),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::CommandLine | Origin::Whole { file: None } => f.write_str("command line"),
            Origin::Whole { file: Some(path) } => write!(f, "{}", path.display()),
        }
    }
}

/// One warning or error: where, and what is wrong and what would be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it comes from.
    pub origin: Origin,
    /// What is wrong, and what would be right. Never contains a secret.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic { origin, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// A warning: the configuration loads, but something in it is ignored, unknown or suspicious.
/// `--check-config` turns every warning into an error.
pub type Warning = Diagnostic;

/// The configuration cannot be used: the process must exit with status 1 before anything starts.
///
/// Holds every error found, not only the first, so an operator fixes them in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Every error, in the order found. Never empty.
    pub errors: Vec<Diagnostic>,
    /// The warnings found along the way, for the log.
    pub warnings: Vec<Warning>,
}

impl ConfigError {
    /// The process exit status for a configuration error.
    pub const EXIT_STATUS: i32 = 1;

    pub(crate) fn single(origin: Origin, message: impl Into<String>) -> Self {
        ConfigError { errors: vec![Diagnostic::new(origin, message)], warnings: Vec::new() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_origin_displays_as_path_colon_line() {
        let d = Diagnostic::new(Origin::File { path: "/etc/turnserver.conf".into(), line: 12 }, "x is wrong");
        assert_eq!(d.to_string(), "/etc/turnserver.conf:12: x is wrong");
    }

    #[test]
    fn command_line_origin_displays_as_command_line() {
        assert_eq!(Diagnostic::new(Origin::CommandLine, "y").to_string(), "command line: y");
        assert_eq!(Diagnostic::new(Origin::Whole { file: None }, "z").to_string(), "command line: z");
        assert_eq!(Diagnostic::new(Origin::Whole { file: Some("a.conf".into()) }, "z").to_string(), "a.conf: z");
    }

    #[test]
    fn config_error_lists_every_error_on_its_own_line() {
        let e = ConfigError {
            errors: vec![
                Diagnostic::new(Origin::CommandLine, "one"),
                Diagnostic::new(Origin::File { path: "f".into(), line: 2 }, "two"),
            ],
            warnings: vec![],
        };
        assert_eq!(e.to_string(), "command line: one\nf:2: two");
    }
}
