//! What the benchmarks read about a server process from `/proc`: CPU seconds (utime + stime of
//! all its threads, from `/proc/PID/stat`) and resident memory (`VmRSS` in `/proc/PID/status`).

use std::fs;
use std::path::PathBuf;

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ; 100 on every Linux this runs on).
pub const USER_HZ: f64 = 100.0;

/// Total CPU seconds used by process `pid`, or `None` if it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = fs::read_to_string(PathBuf::from(format!("/proc/{pid}/stat"))).ok()?;
    parse_stat_cpu(&s)
}

/// utime + stime from a `/proc/PID/stat` line, in seconds.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may contain spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(PathBuf::from(format!("/proc/{pid}/status"))).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name_parses() {
        let line = "1234 (tern worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_stat_cpu(line), Some(4.0));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(rss_kib(me).unwrap() > 0);
    }
}
