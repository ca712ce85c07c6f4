//! Finding files the way coturn's `find_config_file()` does, for `-c NAME`, `cert` and `pkey`.
//!
//! An absolute name (or one starting with `~`, which coturn also opens as written) is used as
//! is. A relative name is tried in `./`, `./turnserver/`, `./coturn/`, `./etc/{,turnserver/,coturn/}`,
//! `../etc/{,turnserver/,coturn/}`, `/etc/{,turnserver/,coturn/}` and
//! `/usr/local/etc/{,turnserver/,coturn/}`; if none has it and the name starts with `etc/`,
//! the search runs again without that prefix. Relative directories count from the working
//! directory given, so tests need not change the process's own.
//!
//! Tern adds one place for `cert` and `pkey`: the directory of the config file, which coturn's
//! example config promises ("path relative to the configuration file") but its code never looks in.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The directories coturn searches, relative ones first (`config_file_search_dirs[]`).
pub(crate) const SEARCH_DIRS: &[&str] = &[
    "./",
    "./turnserver/",
    "./coturn/",
    "./etc/",
    "./etc/turnserver/",
    "./etc/coturn/",
    "../etc/",
    "../etc/turnserver/",
    "../etc/coturn/",
    "/etc/",
    "/etc/turnserver/",
    "/etc/coturn/",
    "/usr/local/etc/",
    "/usr/local/etc/turnserver/",
    "/usr/local/etc/coturn/",
];

/// Finds `name` on coturn's search path from `cwd`, then in `extra` (the config file's
/// directory). Returns the path of the first file that opens for reading.
pub(crate) fn find(name: &str, cwd: &Path, extra: Option<&Path>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.starts_with('/') || name.starts_with('~') {
        return opens(&cwd.join(name));
    }
    for dir in SEARCH_DIRS {
        if let Some(found) = opens(&in_dir(cwd, dir).join(name)) {
            return Some(found);
        }
    }
    if let Some(found) = extra.and_then(|d| opens(&d.join(name))) {
        return Some(found);
    }
    name.strip_prefix("etc/").and_then(|rest| find(rest, cwd, extra))
}

/// The places [`find`] looks, for an error message.
pub(crate) fn searched(cwd: &Path) -> String {
    let mut s = format!("{}", in_dir(cwd, "./").display());
    for dir in &SEARCH_DIRS[1..] {
        s.push_str(", ");
        s.push_str(&in_dir(cwd, dir).display().to_string());
    }
    s
}

/// `cwd` joined with one of the search directories, without `./` or `..` left in the path.
fn in_dir(cwd: &Path, dir: &str) -> PathBuf {
    if let Some(rest) = dir.strip_prefix("./") {
        cwd.join(rest)
    } else if let Some(rest) = dir.strip_prefix("../") {
        cwd.parent().unwrap_or(cwd).join(rest)
    } else {
        PathBuf::from(dir)
    }
}

/// `fopen(path, "r")` succeeds and it is a file.
fn opens(path: &Path) -> Option<PathBuf> {
    let f = File::open(path).ok()?;
    f.metadata().ok()?.is_file().then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_search_the_coturn_directories_in_order() {
        let root = tempdir("search-order");
        let cwd = root.join("work");
        std::fs::create_dir_all(cwd.join("etc/coturn")).unwrap();
        std::fs::create_dir_all(root.join("etc/turnserver")).unwrap();
        let name = "tern-search-test.conf";
        std::fs::write(root.join("etc/turnserver").join(name), "").unwrap();
        assert_eq!(find(name, &cwd, None), Some(root.join("etc/turnserver").join(name)), "../etc/turnserver/");
        std::fs::write(cwd.join("etc/coturn").join(name), "").unwrap();
        assert_eq!(find(name, &cwd, None), Some(cwd.join("etc/coturn").join(name)), "./etc/coturn/ comes first");
        std::fs::write(cwd.join(name), "").unwrap();
        assert_eq!(find(name, &cwd, None), Some(cwd.join(name)), "./ comes first of all");
    }

    #[test]
    fn an_etc_prefix_is_retried_without_it() {
        let cwd = tempdir("etc-prefix");
        std::fs::write(cwd.join("tern-etc-test.pem"), "").unwrap();
        assert_eq!(find("etc/tern-etc-test.pem", &cwd, None), Some(cwd.join("tern-etc-test.pem")));
    }

    #[test]
    fn absolute_names_are_used_as_they_are_and_directories_do_not_count() {
        let cwd = tempdir("absolute");
        let file = cwd.join("x.pem");
        std::fs::write(&file, "").unwrap();
        assert_eq!(find(file.to_str().unwrap(), Path::new("/nonexistent"), None), Some(file));
        assert_eq!(find(cwd.to_str().unwrap(), Path::new("/"), None), None);
        assert_eq!(find("", &cwd, None), None);
    }

    #[test]
    fn the_config_files_directory_is_searched_last() {
        let cwd = tempdir("extra-cwd");
        let conf_dir = tempdir("extra-conf");
        std::fs::write(conf_dir.join("tern-extra-test.pem"), "").unwrap();
        assert_eq!(find("tern-extra-test.pem", &cwd, None), None);
        assert_eq!(find("tern-extra-test.pem", &cwd, Some(&conf_dir)), Some(conf_dir.join("tern-extra-test.pem")));
    }

    pub(crate) fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("relay-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
