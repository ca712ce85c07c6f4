//! The `turnserver` command line, the way coturn's `getopt_long()` reads it.
//!
//! - `--name=value`; `--name value` for options that need a value; flags and options with an
//!   optional value take one only after `=` (getopt's rule: `--fingerprint yes` leaves `yes` as
//!   a stray argument, which is an error);
//! - a unique prefix of a long name stands for it, as in getopt (`--listening-p`);
//! - short aliases (`-p 3478`, `-p3478`, `-vf`), with coturn's warning for `-p=3478`;
//! - `-c FILE` picks the config file, `-n` reads none, `-h`/`--help`, `--version`;
//! - Tern's own `--check-config`.
//!
//! Unknown options are errors here (coturn prints its usage and exits), unlike unknown names in
//! the file, which only warn.

use std::ffi::OsStr;

use crate::conf_file::Entry;
use crate::diag::{Diagnostic, Origin};
use crate::options::{self, Arg, OptionSpec};
use crate::values::shown;

/// Long options of Tern's own, on the command line only.
const TERN_ONLY: &[&str] = &["help", "check-config"];

/// What the command line asks for.
#[derive(Debug, Default)]
pub(crate) struct CommandLine {
    /// Options, in order, names resolved to long names.
    pub(crate) entries: Vec<Entry>,
    /// `-c FILE` (the last one wins).
    pub(crate) config_file: Option<String>,
    /// `-n`: no config file.
    pub(crate) no_config_file: bool,
    /// `-h` / `--help`.
    pub(crate) help: bool,
    /// `--version`.
    pub(crate) version: bool,
    /// `--check-config`.
    pub(crate) check_config: bool,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) errors: Vec<Diagnostic>,
}

impl CommandLine {
    fn error(&mut self, message: String) {
        self.errors.push(Diagnostic::new(Origin::CommandLine, message));
    }
}

/// Reads the process arguments (without argv\[0\]).
pub(crate) fn parse<S: AsRef<OsStr>>(args: &[S]) -> CommandLine {
    let mut cl = CommandLine::default();
    let args: Vec<Option<&str>> = args.iter().map(|a| a.as_ref().to_str()).collect();
    let mut i = 0;
    // The last option given without `=` that cannot take the next word: explains a stray word.
    let mut last_bare: Option<&'static OptionSpec> = None;
    while i < args.len() {
        let Some(arg) = args[i] else {
            cl.error(format!("argument {} is not valid UTF-8: tern-relay reads UTF-8 arguments only", i + 1));
            i += 1;
            continue;
        };
        i += 1;
        if arg == "--" {
            for rest in &args[i..] {
                stray(&mut cl, rest.unwrap_or("<not UTF-8>"), None);
            }
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            last_bare = long(&mut cl, body, &args, &mut i);
        } else if arg.len() > 1 && arg.starts_with('-') {
            short(&mut cl, &arg[1..], &args, &mut i);
            last_bare = None;
        } else {
            stray(&mut cl, arg, last_bare);
            last_bare = None;
        }
    }
    cl
}

/// `--name[=value]`. Returns the option if it was a flag given without `=`.
fn long(cl: &mut CommandLine, body: &str, args: &[Option<&str>], i: &mut usize) -> Option<&'static OptionSpec> {
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    let resolved = match resolve(name) {
        Ok(r) => r,
        Err(message) => {
            cl.error(message);
            return None;
        }
    };
    let spec = match resolved {
        Resolved::TernOnly(t) => {
            if inline.is_some() {
                cl.error(format!("--{t} takes no value: write --{t}"));
            } else if t == "help" {
                cl.help = true;
            } else {
                cl.check_config = true;
            }
            return None;
        }
        Resolved::Option(spec) => spec,
    };
    if spec.name == "version" {
        match inline.map(|v| crate::values::boolean("version", v)) {
            None | Some(Ok(true)) => cl.version = true,
            Some(Ok(false)) => {}
            Some(Err(e)) => cl.error(e),
        }
        return None;
    }
    let value = match (spec.arg, inline) {
        (_, Some(v)) => v.to_string(),
        (Arg::Required, None) => match args.get(*i) {
            Some(Some(v)) => {
                *i += 1;
                v.to_string()
            }
            Some(None) => {
                *i += 1;
                cl.error(format!("the value of --{} is not valid UTF-8", spec.name));
                return None;
            }
            None => {
                cl.error(format!(
                    "--{0} needs a value: --{0}={1} or --{0} {1}",
                    spec.name,
                    spec.hint.trim_matches(['<', '>'])
                ));
                return None;
            }
        },
        (Arg::Flag | Arg::Optional, None) => String::new(),
    };
    cl.entries.push(Entry { name: spec.name.to_string(), value, origin: Origin::CommandLine });
    (inline.is_none() && spec.arg != Arg::Required).then_some(spec)
}

enum Resolved {
    Option(&'static OptionSpec),
    TernOnly(&'static str),
}

/// An exact long name, or a unique prefix of one (getopt_long).
fn resolve(name: &str) -> Result<Resolved, String> {
    if let Some(spec) = options::find(name) {
        return Ok(Resolved::Option(spec));
    }
    if let Some(t) = TERN_ONLY.iter().find(|t| **t == name) {
        return Ok(Resolved::TernOnly(t));
    }
    let mut hits: Vec<&'static str> = if name.is_empty() {
        Vec::new()
    } else {
        options::OPTIONS
            .iter()
            .map(|o| o.name)
            .chain(TERN_ONLY.iter().copied())
            .filter(|n| n.starts_with(name))
            .collect()
    };
    match hits.len() {
        1 => resolve(hits[0]),
        0 => {
            let hint = match options::suggest(name) {
                Some(s) => format!("did you mean --{s}? (see --help)"),
                None => "see --help for the options".to_string(),
            };
            Err(format!("unknown option --{}: {hint}", shown(name)))
        }
        _ => {
            hits.truncate(6);
            Err(format!("--{} is ambiguous: it could be --{}; write the whole name", shown(name), hits.join(", --")))
        }
    }
}

/// A cluster of short options: `-v`, `-vf`, `-p 3478`, `-p3478`, `-c FILE`.
fn short(cl: &mut CommandLine, cluster: &str, args: &[Option<&str>], i: &mut usize) {
    for (k, c) in cluster.char_indices() {
        let rest = &cluster[k + c.len_utf8()..];
        let spec = match c {
            'h' => {
                cl.help = true;
                continue;
            }
            'n' => {
                cl.no_config_file = true;
                continue;
            }
            'c' => None,
            _ => match options::find_short(c) {
                Some(spec) => Some(spec),
                None => {
                    cl.error(format!("unknown option -{}: see --help for the options", shown(&c.to_string())));
                    continue;
                }
            },
        };
        let takes_value = spec.is_none_or(OptionSpec::short_takes_value);
        if !takes_value {
            if let Some(spec) = spec {
                cl.entries.push(Entry {
                    name: spec.name.to_string(),
                    value: String::new(),
                    origin: Origin::CommandLine,
                });
            }
            continue;
        }
        let value = if !rest.is_empty() {
            Some(rest.to_string())
        } else if let Some(next) = args.get(*i) {
            *i += 1;
            next.map(str::to_string)
        } else {
            None
        };
        let Some(value) = value else {
            match spec {
                Some(spec) => cl.error(format!("-{c} needs a value: -{c} {}", spec.hint.trim_matches(['<', '>']))),
                None => cl.error("-c needs a file name: -c /etc/turnserver.conf".to_string()),
            }
            return;
        };
        if value.starts_with('=') {
            // Not the value itself: `-u =name:password` must not print the password.
            cl.warnings.push(Diagnostic::new(
                Origin::CommandLine,
                format!(
                    "-{c} is followed by `=`: the short form takes its value without it (write -{c} <value>); the \
                     `=` is kept as part of the value"
                ),
            ));
        }
        match spec {
            Some(spec) => cl.entries.push(Entry { name: spec.name.to_string(), value, origin: Origin::CommandLine }),
            None => cl.config_file = Some(value),
        }
        return;
    }
}

/// A word that is not an option: coturn logs "Unknown argument"; Tern refuses to start.
fn stray(cl: &mut CommandLine, word: &str, after: Option<&'static OptionSpec>) {
    let message = match after {
        Some(spec) => format!(
            "unexpected argument `{0}`: --{1} takes a value only after `=`, as in --{1}={0}",
            shown(word),
            spec.name
        ),
        None => format!("unexpected argument `{}`: options start with `-` (see --help)", shown(word)),
    };
    cl.error(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(args: &[&str]) -> Vec<(String, String)> {
        let cl = parse(args);
        assert!(cl.errors.is_empty(), "{:?}", cl.errors);
        cl.entries.into_iter().map(|e| (e.name, e.value)).collect()
    }

    fn errors(args: &[&str]) -> Vec<String> {
        parse(args).errors.into_iter().map(|e| e.to_string()).collect()
    }

    fn e(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn long_options_take_values_after_equals_or_as_the_next_word() {
        assert_eq!(
            entries(&["--listening-port=3478", "--realm", "example.org", "--fingerprint"]),
            [e("listening-port", "3478"), e("realm", "example.org"), e("fingerprint", "")]
        );
        // A required value may start with `-`.
        assert_eq!(entries(&["--static-auth-secret", "-x-"]), [e("static-auth-secret", "-x-")]);
    }

    #[test]
    fn flags_and_optional_values_take_a_value_only_after_equals() {
        assert_eq!(
            entries(&["--fingerprint=no", "--stale-nonce=30"]),
            [e("fingerprint", "no"), e("stale-nonce", "30")]
        );
        assert_eq!(
            errors(&["--fingerprint", "yes"]),
            ["command line: unexpected argument `yes`: --fingerprint takes a value only after `=`, as in \
              --fingerprint=yes"]
        );
        assert_eq!(
            errors(&["--stale-nonce", "30"]),
            ["command line: unexpected argument `30`: --stale-nonce takes a value only after `=`, as in \
              --stale-nonce=30"]
        );
    }

    #[test]
    fn short_aliases_map_to_long_names() {
        assert_eq!(
            entries(&["-p", "3478", "-L127.0.0.1", "-vf", "-X", "203.0.113.5/10.0.0.1", "-a", "-u", "u:p"]),
            [
                e("listening-port", "3478"),
                e("listening-ip", "127.0.0.1"),
                e("verbose", ""),
                e("fingerprint", ""),
                e("external-ip", "203.0.113.5/10.0.0.1"),
                e("lt-cred-mech", ""),
                e("user", "u:p"),
            ]
        );
    }

    #[test]
    fn short_k_takes_a_value_as_in_coturn() {
        assert_eq!(entries(&["-K", "1"]), [e("keep-address-family", "1")]);
    }

    #[test]
    fn short_option_with_equals_warns_like_coturn() {
        let cl = parse(&["-r=example.org"]);
        assert_eq!(cl.entries[0].value, "=example.org");
        assert_eq!(
            cl.warnings[0].to_string(),
            "command line: -r is followed by `=`: the short form takes its value without it (write -r <value>); \
             the `=` is kept as part of the value"
        );
    }

    #[test]
    fn config_file_switches() {
        let cl = parse(&["-c", "a.conf", "-c", "b.conf"]);
        assert_eq!(cl.config_file.as_deref(), Some("b.conf"));
        assert!(!cl.no_config_file);
        assert!(parse(&["-n"]).no_config_file);
        assert_eq!(parse(&["-cfile.conf"]).config_file.as_deref(), Some("file.conf"));
        assert_eq!(errors(&["-c"]), ["command line: -c needs a file name: -c /etc/turnserver.conf"]);
    }

    #[test]
    fn help_version_and_check_config() {
        assert!(parse(&["-h"]).help);
        assert!(parse(&["--help"]).help);
        assert!(parse(&["--version"]).version);
        assert!(parse(&["--check-config"]).check_config);
        assert!(parse(&["--check-c"]).check_config, "a unique prefix");
        assert!(!errors(&["--check"]).is_empty(), "check-config or check-origin-consistency");
    }

    #[test]
    fn unique_prefixes_resolve_ambiguous_ones_do_not() {
        assert_eq!(entries(&["--listening-p=1"]), [e("listening-port", "1")]);
        assert_eq!(
            errors(&["--listening=1"]),
            ["command line: --listening is ambiguous: it could be --listening-device, --listening-port, \
              --listening-ip; write the whole name"]
        );
    }

    #[test]
    fn unknown_options_are_errors_with_a_suggestion() {
        assert_eq!(
            errors(&["--listening-prot=1"]),
            ["command line: unknown option --listening-prot: did you mean --listening-port? (see --help)"]
        );
        assert_eq!(errors(&["-Z"]), ["command line: unknown option -Z: see --help for the options"]);
        assert_eq!(errors(&["--relay-ip"]), ["command line: --relay-ip needs a value: --relay-ip=ip or --relay-ip ip"]);
    }

    #[test]
    fn words_after_double_dash_are_stray() {
        assert_eq!(
            errors(&["--", "-v"]),
            ["command line: unexpected argument `-v`: options start with `-` (see --help)"]
        );
    }
}
