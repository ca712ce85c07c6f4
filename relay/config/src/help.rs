//! `--help` and `--version` texts.
//!
//! The options are grouped as coturn's manual groups them ("Config file settings", "User
//! database settings", "Flags", "Options with values"), in the order of coturn's example config
//! within each group, and every option Tern does not act on is marked with its status.

use std::fmt::Write;

use crate::options::{Arg, Group, OPTIONS, OptionSpec, Status};

/// `--version`.
pub(crate) fn version() -> String {
    format!(
        "tern-relay {} (reads turnserver.conf and the turnserver command line like coturn 4.17.1)",
        env!("CARGO_PKG_VERSION")
    )
}

/// `--help`.
pub fn text() -> String {
    let mut s = String::new();
    s.push_str("Usage: tern-relay [-n | -c <config-file>] [options]\n");
    s.push_str("A drop-in for coturn's turnserver: the same turnserver.conf, the same options.\n");
    s.push_str("Long options: --name=value or --name value; flags: --name or --name=off.\n");
    s.push_str("Marks: [not supported yet], [no-op], [not in Tern], [removed from coturn]: accepted, with a warning\n");
    s.push_str("when it matters; see conf/turnserver.full.conf.\n\n");
    s.push_str("Config file settings:\n");
    line(&mut s, " -c <file>", "Config file (default turnserver.conf, searched in ./, ./etc/, ../etc/, /etc/,");
    line(&mut s, "", "/usr/local/etc/ and their turnserver/ and coturn/ subdirectories).");
    line(&mut s, " -n", "Read no config file: the command line only.");
    for g in Group::ALL {
        let _ = writeln!(s, "\n{}:", g.heading());
        for o in OPTIONS.iter().filter(|o| o.group == g) {
            option(&mut s, o);
        }
        if g == Group::Flags {
            line(&mut s, " -h, --help", "Print this help and exit.");
        }
    }
    s.push_str("\nTern:\n");
    line(&mut s, " --check-config", "Check the configuration (warnings count as errors), print the effective");
    line(&mut s, "", "configuration and exit: 0 if it is valid, 1 if not.");
    s
}

fn option(s: &mut String, o: &OptionSpec) {
    let mut left = match o.short {
        Some(c) => format!(" -{c}, --{}", o.name),
        None => format!(" --{}", o.name),
    };
    match o.arg {
        Arg::Flag => {}
        Arg::Required => {
            let _ = write!(left, " {}", o.hint);
        }
        Arg::Optional => {
            let _ = write!(left, "[={}]", o.hint);
        }
    }
    let mark = match (o.status, o.status.reason()) {
        (Status::Supported, _) => String::new(),
        (st, Some(reason)) => format!(" [{}: {reason}]", st.label()),
        (st, None) => format!(" [{}]", st.label()),
    };
    let repeat = if o.repeatable { " Repeatable." } else { "" };
    line(s, &left, &format!("{}{repeat}{mark}", o.summary));
}

fn line(s: &mut String, left: &str, right: &str) {
    const COLUMN: usize = 44;
    if left.len() < COLUMN {
        let _ = writeln!(s, "{left:<COLUMN$}{right}");
    } else {
        let _ = writeln!(s, "{left}");
        let _ = writeln!(s, "{:<COLUMN$}{right}", "");
    }
}
