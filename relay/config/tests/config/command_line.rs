//! The command line: coturn's interop command lines, precedence over the file, `-c`, `-n`,
//! `--check-config`, `--help`, `--version` and reloading.

use std::net::IpAddr;
use std::path::Path;

use relay_config::options::{Group, OPTIONS, Status};
use relay_config::{ConfigError, Outcome, Verbosity};

use crate::support::{run, run_ok, short, tempdir};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The command line the interop tests start Debian's `turnserver` with.
const INTEROP: &[&str] = &[
    "-n",
    "--listening-ip=127.0.0.1",
    "--listening-port=34780",
    "--relay-ip=127.0.0.1",
    "--min-port=63000",
    "--max-port=65500",
    "--use-auth-secret",
    "--static-auth-secret=benchsecret",
    "--realm=bench.local",
    "--allow-loopback-peers",
    "--no-tls",
    "--no-dtls",
    "--no-cli",
    "--relay-threads=1",
    "--log-file=/tmp/x.log",
    "--simple-log",
    "--pidfile=/tmp/x.pid",
    "--no-stdout-log",
];

#[test]
fn the_interop_command_line_starts_the_relay() {
    let l = run_ok(INTEROP, None);
    let c = &l.config;
    assert_eq!(c.listening_ips, [ip("127.0.0.1")]);
    assert_eq!(c.listening_port, 34780);
    assert_eq!(c.relay_ips, [ip("127.0.0.1")]);
    assert_eq!((c.min_port, c.max_port), (63000, 65500));
    assert!(c.use_auth_secret && c.lt_cred_mech && !c.no_auth);
    assert_eq!(c.static_auth_secrets, ["benchsecret"]);
    assert_eq!(c.realm.as_deref(), Some("bench.local"));
    assert!(c.allow_loopback_peers && c.no_tls && c.simple_log && c.no_stdout_log);
    assert_eq!(c.relay_threads, Some(1));
    assert_eq!(c.log_file.as_deref(), Some("/tmp/x.log"));
    assert_eq!(c.pidfile.as_deref(), Some(Path::new("/tmp/x.pid")));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config_file, None);
    assert_eq!(l.args().map(<[_]>::len), Some(INTEROP.len()));
}

#[test]
fn the_interop_command_line_with_static_users_starts_the_relay() {
    let mut args: Vec<&str> =
        INTEROP.iter().copied().filter(|a| !a.starts_with("--use-auth") && !a.starts_with("--static-auth")).collect();
    args.extend(["--lt-cred-mech", "--user=u:p", "--fingerprint"]);
    let l = run_ok(&args, None);
    let c = &l.config;
    assert!(c.lt_cred_mech && !c.use_auth_secret && !c.no_auth && c.fingerprint);
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.users[0].name, "u");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn short_aliases_work_like_the_long_names() {
    let c = run_ok(
        &[
            "-n",
            "-p",
            "3479",
            "-L",
            "127.0.0.1",
            "-E",
            "127.0.0.1",
            "-X",
            "203.0.113.5/127.0.0.1",
            "-m",
            "2",
            "-a",
            "-u",
            "u:p",
            "-r",
            "example.org",
            "-q",
            "5",
            "-Q",
            "50",
            "-s",
            "1000",
            "-B",
            "100000",
            "-v",
            "-f",
            "-l",
            "stdout",
            "-C",
            "-",
            "--no-tls",
        ],
        None,
    )
    .config;
    assert_eq!(c.listening_port, 3479);
    assert_eq!(c.external_ips[0].public, ip("203.0.113.5"));
    assert_eq!(c.relay_threads, Some(2));
    assert_eq!((c.user_quota, c.total_quota, c.max_bps, c.bps_capacity), (5, 50, 1000, 100000));
    assert_eq!(c.verbosity, Verbosity::Verbose);
    assert!(c.fingerprint && c.lt_cred_mech);
    assert_eq!(c.log_file.as_deref(), Some("stdout"));
    assert_eq!(c.rest_api_separator, '-');
}

#[test]
fn the_command_line_overrides_scalars_and_appends_to_lists() {
    let d = tempdir("override");
    std::fs::write(
        d.join("turnserver.conf"),
        "realm=file.example\nmin-port=50000\nlistening-ip=127.0.0.1\ndenied-peer-ip=10.0.0.0-10.255.255.255\nno-tls\n\
         fingerprint\n",
    )
    .unwrap();
    let l = run_ok(
        &["--realm=cli.example", "-L", "::1", "--denied-peer-ip=192.168.0.0-192.168.255.255", "--fingerprint=off"],
        Some(&d),
    );
    let c = &l.config;
    assert_eq!(c.realm.as_deref(), Some("cli.example"));
    assert_eq!(c.min_port, 50000, "untouched by the command line");
    assert_eq!(c.listening_ips, [ip("127.0.0.1"), ip("::1")]);
    assert_eq!(c.denied_peer_ips.len(), 2);
    assert!(!c.fingerprint);
    assert_eq!(l.config_file, Some(d.join("turnserver.conf")));
}

#[test]
fn users_from_the_command_line_come_after_the_files_realm() {
    let d = tempdir("users");
    std::fs::write(d.join("t.conf"), "no-tls\nlt-cred-mech\n").unwrap();
    let c = run_ok(&["-c", "t.conf", "-u", "alice:pw", "-r", "cli.example"], Some(&d)).config;
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.realm.as_deref(), Some("cli.example"));
}

#[test]
fn dash_c_searches_coturns_directories() {
    let root = tempdir("dash-c");
    let cwd = root.join("work");
    std::fs::create_dir_all(cwd.join("etc/coturn")).unwrap();
    std::fs::create_dir_all(root.join("etc/turnserver")).unwrap();
    std::fs::write(root.join("etc/turnserver/tern-c.conf"), "no-tls\nrealm=parent\n").unwrap();
    let l = run_ok(&["-c", "tern-c.conf"], Some(&cwd));
    assert_eq!(l.config.realm.as_deref(), Some("parent"));
    assert_eq!(l.config_file, Some(root.join("etc/turnserver/tern-c.conf")));
    std::fs::write(cwd.join("etc/coturn/tern-c.conf"), "no-tls\nrealm=child\n").unwrap();
    assert_eq!(run_ok(&["-c", "tern-c.conf"], Some(&cwd)).config.realm.as_deref(), Some("child"));
}

#[test]
fn a_missing_dash_c_file_is_an_error() {
    let cwd = tempdir("missing");
    let e = run(&["-c", "tern-nonexistent.conf"], Some(&cwd)).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    let m = e.errors[0].to_string();
    assert!(
        m.starts_with(&format!(
            "command line: -c tern-nonexistent.conf: the config file was not found (searched {}/, ",
            cwd.display()
        )),
        "{m}"
    );
    assert!(m.ends_with("/usr/local/etc/coturn/): give the right path, or -n to read no file"), "{m}");
    assert_eq!(
        run(&["-c", "/nonexistent/t.conf"], Some(&cwd)).unwrap_err().to_string(),
        "command line: -c /nonexistent/t.conf: the config file was not found: give the right path, or -n to read no \
         file"
    );
}

#[test]
fn no_default_file_warns_and_runs_on_defaults() {
    let system = [
        "/etc/",
        "/etc/turnserver/",
        "/etc/coturn/",
        "/usr/local/etc/",
        "/usr/local/etc/turnserver/",
        "/usr/local/etc/coturn/",
    ];
    if system.iter().any(|d| Path::new(d).join("turnserver.conf").exists()) {
        return; // This machine has a system-wide turnserver.conf, which coturn would read too.
    }
    let cwd = tempdir("nodefault");
    let l = run_ok(&["--no-tls"], Some(&cwd));
    assert_eq!(l.config_file, None);
    assert_eq!(l.warnings.len(), 1);
    let m = short(&l.warnings[0]);
    assert!(m.starts_with("command line: no turnserver.conf was found (searched "), "{m}");
    assert!(m.ends_with("so only the defaults and the command line count: give one with -c, or say -n"), "{m}");
}

#[test]
fn dash_n_reads_no_file_even_with_dash_c() {
    let d = tempdir("dash-n");
    std::fs::write(d.join("turnserver.conf"), "realm=file\n").unwrap();
    let l = run_ok(&["-c", "turnserver.conf", "-n", "--no-tls"], Some(&d));
    assert_eq!((l.config_file, l.config.realm), (None, None));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn command_line_errors_say_command_line() {
    let e = run(&["-n", "--no-tls", "--min-port=70000", "--bogus", "stray"], None).unwrap_err();
    assert_eq!(
        e.errors.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        [
            "command line: unknown option --bogus: see --help for the options",
            "command line: unexpected argument `stray`: options start with `-` (see --help)",
            "command line: min-port `70000` is out of range: use a port number from 0 to 65535",
        ]
    );
}

#[test]
fn file_and_command_line_errors_are_reported_together() {
    let d = tempdir("together");
    std::fs::write(d.join("turnserver.conf"), "no-tls\nmax-port=x\n").unwrap();
    let e = run(&["--min-port=y"], Some(&d)).unwrap_err();
    let got: Vec<String> = e.errors.iter().map(short).collect();
    assert_eq!(
        got,
        [
            "2: max-port `x` is not a number: use a port number from 0 to 65535",
            "command line: min-port `y` is not a number: use a port number from 0 to 65535",
        ]
    );
}

#[test]
fn non_utf8_arguments_are_errors() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"--realm=\xff");
    let e = relay_config::parse_command_line_in([std::ffi::OsStr::new("-n"), bad], Path::new("/")).unwrap_err();
    assert_eq!(e.to_string(), "command line: argument 2 is not valid UTF-8: tern-relay reads UTF-8 arguments only");
}

// ---- --check-config ----

#[test]
fn check_config_prints_the_effective_configuration() {
    let mut args = INTEROP.to_vec();
    args.push("--check-config");
    let Ok(Outcome::CheckConfig(out)) = run(&args, None) else { panic!("check-config failed") };
    assert!(
        out.starts_with(
            "# tern-relay --check-config: the configuration is valid.\n# Read from the command line only.\n"
        ),
        "{out}"
    );
    for line in [
        "listening-ip=127.0.0.1\n",
        "listening-port=34780\n",
        "min-port=63000\n",
        "max-port=65500\n",
        "realm=bench.local\n",
        "use-auth-secret=on\n",
        "# lt-cred-mech=on (implied by use-auth-secret)\n",
        "# static-auth-secret: 1 set, not shown\n",
        "no-tls=on\n",
        "relay-threads=1\n",
        "pidfile=/tmp/x.pid\n",
        "allow-loopback-peers=on\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    assert!(!out.contains("benchsecret"), "the secret leaked:\n{out}");
    assert!(out.contains("# Note: command line: allow-loopback-peers lets clients reach"), "{out}");
}

#[test]
fn check_config_output_reads_back_as_the_same_configuration() {
    let mut base: Vec<&str> = INTEROP.iter().copied().filter(|a| !a.contains("auth-secret")).collect();
    base.extend(["--denied-peer-ip=10.0.0.0-10.255.255.255", "-X", "203.0.113.5/127.0.0.1", "-V"]);
    let first = run_ok(&base, None);
    let mut check = base.clone();
    check.push("--check-config");
    let Ok(Outcome::CheckConfig(out)) = run(&check, None) else { panic!("check-config failed") };
    let d = tempdir("readback");
    std::fs::write(d.join("eff.conf"), &out).unwrap();
    let again = relay_config::load_file(&d.join("eff.conf")).unwrap();
    assert_eq!(again.config, first.config, "{out}");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

#[test]
fn check_config_turns_warnings_into_errors() {
    let e: ConfigError = run(&["-n", "--no-tls", "--mobility", "--check-config"], None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: mobility is not supported by Tern yet and is ignored: remove it to silence this warning"
    );
    assert_eq!(ConfigError::EXIT_STATUS, 1);
}

#[test]
fn check_config_reports_errors_and_warnings_together() {
    let e = run(&["-n", "--no-tls", "--mobility", "--min-port=x", "--check-config"], None).unwrap_err();
    assert_eq!(e.errors.len(), 2, "{e}");
}

// ---- --help and --version ----

#[test]
fn help_lists_every_option_under_coturns_groups_and_marks_unsupported_ones() {
    let Ok(Outcome::Help(h)) = run(&["--help"], None) else { panic!() };
    let Ok(Outcome::Help(h2)) = run(&["-n", "-h", "--bogus"], None) else { panic!("-h wins over errors") };
    assert_eq!(h, h2);
    let headings = ["Config file settings:", "User database settings:", "Flags:", "Options with values:", "Tern:"];
    let at: Vec<usize> =
        headings.iter().map(|t| h.find(&format!("\n{t}\n")).unwrap_or_else(|| panic!("{t}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "groups out of order: {at:?}");
    for o in OPTIONS {
        let entry = match o.short {
            Some(c) => format!(" -{c}, --{}", o.name),
            None => format!(" --{}", o.name),
        };
        let all: Vec<&str> = h.lines().collect();
        let at_lines: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].starts_with(&entry) && all[i][entry.len()..].starts_with([' ', '[']) || all[i] == entry)
            .collect();
        assert_eq!(at_lines.len(), 1, "{} appears {} times", o.name, at_lines.len());
        // The entry, and its description when it wraps onto the next line.
        let i = at_lines[0];
        let text = format!("{} {}", all[i], all.get(i + 1).filter(|l| l.starts_with("    ")).unwrap_or(&""));
        let lines = [text.as_str()];
        let pos = h.find(all[i]).unwrap();
        let group = match o.group {
            Group::UserDatabase => 1,
            Group::Flags => 2,
            Group::Options => 3,
        };
        assert!(at[group] < pos && pos < at[group + 1], "{} is not under {}", o.name, headings[group]);
        let marked = lines[0].contains(&format!("[{}", o.status.label()));
        assert_eq!(marked, o.status != Status::Supported, "{}: {}", o.name, lines[0]);
    }
    assert!(h.contains(" --check-config"));
}

#[test]
fn version_prints_and_exits() {
    let Ok(Outcome::Version(v)) = run(&["--version"], None) else { panic!() };
    assert!(v.starts_with("tern-relay "), "{v}");
}

// ---- reload ----

#[test]
fn reload_reads_the_same_files_again() {
    let d = tempdir("reload");
    let conf = d.join("turnserver.conf");
    std::fs::write(&conf, "no-tls\nrealm=one\n").unwrap();
    let l = run_ok(&["-c", "turnserver.conf", "--min-port=50000"], Some(&d));
    std::fs::write(&conf, "no-tls\nrealm=two\n").unwrap();
    let again = l.reload().unwrap();
    assert_eq!(again.config.realm.as_deref(), Some("two"));
    assert_eq!(again.config.min_port, 50000, "the command line still counts");
    std::fs::write(&conf, "no-tls\nrealm=\n").unwrap();
    assert_eq!(short(&l.reload().unwrap_err().errors[0]), "2: realm needs a value, e.g. realm=example.org");

    let f = relay_config::load_file(&conf.with_file_name("other.conf"));
    assert!(f.is_err());
    std::fs::write(&conf, "no-tls\nrealm=three\n").unwrap();
    let f = relay_config::load_file(&conf).unwrap();
    std::fs::write(&conf, "no-tls\nrealm=four\n").unwrap();
    assert_eq!(f.reload().unwrap().config.realm.as_deref(), Some("four"));
    assert!(f.args().is_none());
}

#[test]
fn secrets_stay_out_of_debug_output_and_messages() {
    let l = run_ok(INTEROP, None);
    let d = format!("{l:?}");
    assert!(!d.contains("benchsecret"), "{d}");
    let e = run(&["-n", "--no-tls", "--static-auth-secret=s3cr3t;", "-u", "=alice:pw0rd", "--min-port=x"], None)
        .unwrap_err();
    let all = format!("{e:?} {e}");
    assert!(!all.contains("s3cr3t") && !all.contains("pw0rd"), "{all}");
    let w = crate::support::load("realm=r\nstatic-auth-secret=s3cr3t;\n").unwrap();
    assert!(!format!("{:?}", w.warnings).contains("s3cr3t"));
}
