//! The `turnserver.conf` line format, by coturn's `read_config_file()` and `parse_arg_string()`.
//!
//! Turns file bytes into [`Entry`]s (name, raw value, file and line). Knows nothing of what the
//! options mean: the builder looks names up in the option table. The rules:
//! - one option per line: `name=value`, `name value`, `name = value`, or a bare `name`; the
//!   name ends at the first blank or `=`, and the whole run of blanks and `=` after it is skipped;
//! - `#` starts a comment only as the first non-blank character: there are no trailing comments;
//! - trailing whitespace is stripped; a value starting with `"` loses that quote and, if there
//!   is one, the closing quote;
//! - a line ending in `;` gets a warning (coturn's "Check config!").

use std::path::Path;

use crate::diag::{Diagnostic, Origin};
use crate::values::shown;

/// One option as written: a line of a file, or one option of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The name as written (for the command line: the long name it resolved to).
    pub(crate) name: String,
    /// The value, quotes stripped; empty when the option was given bare.
    pub(crate) value: String,
    /// Where it was written.
    pub(crate) origin: Origin,
}

/// What lexing a file gives: its entries, and the problems of lines that did not make one.
#[derive(Debug, Default)]
pub(crate) struct Lexed {
    pub(crate) entries: Vec<Entry>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) errors: Vec<Diagnostic>,
}

/// Splits a file's bytes into entries. Never fails as a whole: bad lines become errors.
pub(crate) fn lex(text: &[u8], path: &Path) -> Lexed {
    let mut out = Lexed::default();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let origin = Origin::File { path: path.to_path_buf(), line: i + 1 };
        // coturn's skip_blanks(): spaces and tabs.
        let start = raw.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(raw.len());
        let line = &raw[start..];
        if line.first() == Some(&b'#') {
            continue;
        }
        // Then isspace() from the end.
        let end = line.iter().rposition(|b| !b.is_ascii_whitespace() && *b != 0x0b).map_or(0, |p| p + 1);
        let line = &line[..end];
        if line.is_empty() {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            out.errors.push(Diagnostic::new(origin, "this line is not valid UTF-8: save the file as UTF-8"));
            continue;
        };
        let (name, value) = split_line(line);
        if line.ends_with(';') {
            // Names only: the value may be a secret.
            out.warnings.push(Diagnostic::new(
                origin.clone(),
                format!(
                    "the line of `{}` ends with `;`: turnserver.conf has no terminator, so the `;` is part of the \
                     value; remove it",
                    shown(name)
                ),
            ));
        }
        out.entries.push(Entry { name: name.to_string(), value: value.to_string(), origin });
    }
    out
}

/// `parse_arg_string()`: the name up to the first blank or `=`, then the value after the run of
/// blanks and `=`, with a leading quote (and its closing quote) removed.
pub(crate) fn split_line(line: &str) -> (&str, &str) {
    let is_sep = |c: char| c == ' ' || c == '\t' || c == '=';
    let (name, rest) = match line.find(is_sep) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_sep)),
        None => (line, ""),
    };
    (name, strip_quotes(rest))
}

/// A value starting with `"` loses it; then trailing blanks go, then a closing `"` if any.
pub(crate) fn strip_quotes(v: &str) -> &str {
    let Some(inner) = v.strip_prefix('"') else { return v };
    let inner = inner.trim_end_matches(['\n', '\r', ' ', '\t']);
    inner.strip_suffix('"').unwrap_or(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> (String, String) {
        let l = lex(line.as_bytes(), Path::new("t.conf"));
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.entries.len(), 1, "{line:?}");
        let e = &l.entries[0];
        (e.name.clone(), e.value.clone())
    }

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn name_equals_value() {
        assert_eq!(one("min-port=49152"), pair("min-port", "49152"));
    }

    #[test]
    fn name_space_value() {
        assert_eq!(one("min-port 49152"), pair("min-port", "49152"));
        assert_eq!(one("new-log-timestamp-format \"%FT%T.%f%z\""), pair("new-log-timestamp-format", "%FT%T.%f%z"));
    }

    #[test]
    fn name_spaced_equals_value_and_doubled_separators() {
        assert_eq!(one("realm = example.org"), pair("realm", "example.org"));
        assert_eq!(one("realm==example.org"), pair("realm", "example.org"));
        assert_eq!(one("realm\t=\t example.org"), pair("realm", "example.org"));
    }

    #[test]
    fn bare_name_has_an_empty_value() {
        assert_eq!(one("fingerprint"), pair("fingerprint", ""));
        assert_eq!(one("fingerprint="), pair("fingerprint", ""));
    }

    #[test]
    fn leading_blanks_and_trailing_whitespace_are_dropped() {
        assert_eq!(one("   \tverbose  \t\r"), pair("verbose", ""));
        assert_eq!(one("realm=a b  "), pair("realm", "a b"));
    }

    #[test]
    fn comments_only_at_the_start_of_a_line() {
        let l = lex(b"# a comment\n   # indented comment\n#min-port=1\n\n\t\n", Path::new("t.conf"));
        assert!(l.entries.is_empty() && l.warnings.is_empty() && l.errors.is_empty());
        assert_eq!(one("min-port=49152 # dev range"), pair("min-port", "49152 # dev range"));
        assert_eq!(one("realm=#hash"), pair("realm", "#hash"));
    }

    #[test]
    fn surrounding_quotes_are_stripped() {
        assert_eq!(one("pidfile=\"/var/run/turnserver.pid\""), pair("pidfile", "/var/run/turnserver.pid"));
        assert_eq!(one("cipher-list=\"DEFAULT\""), pair("cipher-list", "DEFAULT"));
        assert_eq!(one("mysql-userdb=\"host=h dbname=d user=u\""), pair("mysql-userdb", "host=h dbname=d user=u"));
        // Only a leading quote starts the stripping; an unclosed one just goes.
        assert_eq!(one("realm=\"open"), pair("realm", "open"));
        assert_eq!(one("realm=close\""), pair("realm", "close\""));
        assert_eq!(one("realm='single'"), pair("realm", "'single'"));
        assert_eq!(one("realm=\"a \" "), pair("realm", "a "));
    }

    #[test]
    fn lines_are_numbered_from_one() {
        let l = lex(b"# c\n\nverbose\nfingerprint\n", Path::new("t.conf"));
        let lines: Vec<_> = l
            .entries
            .iter()
            .map(|e| match &e.origin {
                Origin::File { line, .. } => *line,
                o => panic!("{o:?}"),
            })
            .collect();
        assert_eq!(lines, [3, 4]);
    }

    #[test]
    fn crlf_files_read_like_lf_files() {
        let l = lex(b"verbose\r\nrealm=x\r\n", Path::new("t.conf"));
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[1].value, "x");
    }

    #[test]
    fn a_trailing_semicolon_warns() {
        let l = lex(b"realm=example.org;\n", Path::new("t.conf"));
        assert_eq!(l.entries[0].value, "example.org;");
        assert_eq!(
            l.warnings[0].to_string(),
            "t.conf:1: the line of `realm` ends with `;`: turnserver.conf has no terminator, so the `;` is part \
             of the value; remove it"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_but_not_in_a_comment() {
        let l = lex(b"# caf\xe9\nrealm=caf\xe9\n", Path::new("t.conf"));
        assert!(l.entries.is_empty());
        assert_eq!(l.errors[0].to_string(), "t.conf:2: this line is not valid UTF-8: save the file as UTF-8");
    }
}
