//! `conf/turnserver.full.conf` and the option table stay in step: every option of the table is
//! in the file with the same status, and the file names no option the table does not have.

use std::collections::BTreeMap;
use std::path::Path;

use relay_config::options::OPTIONS;

use crate::support::short;

fn full_conf_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/turnserver.full.conf")
}

/// `name -> "label (reason)"` for each `# Tern:` line and the `#name…` line under it.
fn statuses_in_file() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(full_conf_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(status) = l.strip_prefix("# Tern: ") else { continue };
        let next = lines.get(i + 1).unwrap_or_else(|| panic!("line {}: `# Tern:` ends the file", i + 1));
        let opt =
            next.strip_prefix('#').unwrap_or_else(|| panic!("line {}: {next:?} is not a commented option", i + 2));
        let name = opt.split([' ', '=', '\t']).next().unwrap();
        let old = out.insert(name.to_string(), status.to_string());
        assert!(old.is_none(), "{name} appears twice in turnserver.full.conf");
    }
    out
}

#[test]
fn full_conf_lists_every_option_with_the_tables_status_and_nothing_else() {
    let file = statuses_in_file();
    let table: BTreeMap<String, String> = OPTIONS
        .iter()
        .map(|o| {
            let s = match o.status.reason() {
                Some(r) => format!("{} ({r})", o.status.label()),
                None => o.status.label().to_string(),
            };
            (o.name.to_string(), s)
        })
        .collect();
    for (name, status) in &table {
        assert_eq!(file.get(name), Some(status), "{name}: the table says {status:?}");
    }
    for name in file.keys() {
        assert!(table.contains_key(name), "turnserver.full.conf lists {name}, which the option table does not know");
    }
}

#[test]
fn full_conf_reads_without_a_warning() {
    let l = relay_config::load_file(&full_conf_path()).unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<String> = l.warnings.iter().map(short).collect();
    // Nothing is set, so only the no-certificate warning may appear, on a machine without one.
    assert!(w.iter().all(|w| w.starts_with("file: TLS is on")), "{w:?}");
}

#[test]
fn every_example_line_in_full_conf_reads_as_its_option() {
    // Uncomment each example alone: it must be known (no "unknown option" warning) and a
    // supported one must not warn at all, unless its example needs a file or a secret.
    let text = std::fs::read_to_string(full_conf_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with("# Tern: ") {
            continue;
        }
        let example = &lines[i + 1][1..];
        let name = example.split([' ', '=', '\t']).next().unwrap();
        if matches!(name, "cert" | "pkey" | "user" | "use-auth-secret" | "version") {
            continue;
        }
        let r = crate::support::load(example);
        let warnings: Vec<String> = match &r {
            Ok(l) => l.warnings.iter().map(short).collect(),
            Err(e) => panic!("{example}: {e}"),
        };
        assert!(warnings.iter().all(|w| !w.contains("unknown option")), "{example}: {warnings:?}");
        if l.ends_with(": supported") {
            assert!(
                warnings.iter().all(|w| w.contains("realm is not set") || w.contains("is not a relay-ip")),
                "{example}: {warnings:?}"
            );
        }
    }
}
