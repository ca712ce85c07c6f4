//! Golden tests: one per parsing rule, and the exact message for each kind of bad value.

use std::net::IpAddr;

use relay_config::options::{Arg, OPTIONS, Status};
use relay_config::{ExternalIp, IpRange, UserSecret, Verbosity};

use crate::support::{errors, load_raw, ok, pem_pair, short, tempdir, warnings};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---- the line format ----

#[test]
fn all_four_line_forms_set_options() {
    let c = ok("min-port=50000\nmax-port 50100\nrealm = example.org\nfingerprint\n").config;
    assert_eq!((c.min_port, c.max_port), (50000, 50100));
    assert_eq!(c.realm.as_deref(), Some("example.org"));
    assert!(c.fingerprint);
}

#[test]
fn a_hash_starts_a_comment_only_at_the_start_of_a_line() {
    assert!(!ok("#fingerprint\n   # fingerprint\n").config.fingerprint);
    assert_eq!(
        errors("# dev range\nmin-port=50000 # dev range\n"),
        ["2: min-port `50000 # dev range` is not a number: use a port number from 0 to 65535; a `#` starts a \
          comment only at the start of a line, so put comments on their own line"]
    );
    // In a string, the rest of the line is the value, as in coturn.
    assert_eq!(ok("realm=example.org # ours\n").config.realm.as_deref(), Some("example.org # ours"));
}

#[test]
fn surrounding_quotes_are_stripped() {
    let c = ok("pidfile=\"/var/run/turnserver.pid\"\ncipher-list=\"DEFAULT\"\nrealm=\"a b\"\n").config;
    assert_eq!(c.pidfile.as_deref(), Some(std::path::Path::new("/var/run/turnserver.pid")));
    assert_eq!(c.cipher_list.as_deref(), Some("DEFAULT"));
    assert_eq!(c.realm.as_deref(), Some("a b"));
}

#[test]
fn scalars_take_the_last_value_and_lists_accumulate() {
    let c = ok("realm=a\nrealm=b\nlistening-ip=127.0.0.1\nlistening-ip=::1\nstatic-auth-secret=s1\n\
                static-auth-secret=s2\ndenied-peer-ip=10.0.0.0-10.255.255.255\ndenied-peer-ip=192.168.0.1\n")
    .config;
    assert_eq!(c.realm.as_deref(), Some("b"));
    assert_eq!(c.listening_ips, [ip("127.0.0.1"), ip("::1")]);
    assert_eq!(c.static_auth_secrets, ["s1", "s2"]);
    assert_eq!(c.denied_peer_ips.len(), 2);
    assert_eq!(c.denied_peer_ips[1], IpRange::single(ip("192.168.0.1")));
}

#[test]
fn a_repeated_listening_address_is_kept_once_with_a_warning() {
    let l = ok("listening-ip=127.0.0.1\nlistening-ip=127.0.0.1\n");
    assert_eq!(l.config.listening_ips, [ip("127.0.0.1")]);
    assert_eq!(
        l.warnings.iter().map(short).collect::<Vec<_>>(),
        ["2: listening-ip 127.0.0.1 is listed twice: keep one line"]
    );
}

#[test]
fn boolean_spellings_follow_coturn() {
    for (v, want) in [("on", true), ("yes", true), ("1", true), ("true", true), ("t", true), ("", true)] {
        assert_eq!(ok(&format!("fingerprint={v}\n")).config.fingerprint, want, "{v:?}");
    }
    for v in ["off", "no", "0", "false", "f", "OFF", "No"] {
        assert!(!ok(&format!("fingerprint\nfingerprint={v}\n")).config.fingerprint, "{v:?}");
    }
    assert_eq!(
        errors("fingerprint=maybe\n"),
        ["1: fingerprint `maybe` is not a boolean: use on/off, yes/no, true/false or 1/0"]
    );
}

#[test]
fn an_unknown_boolean_is_an_error_even_on_an_unsupported_flag() {
    assert_eq!(
        errors("mobility=sometimes\n"),
        ["1: mobility `sometimes` is not a boolean: use on/off, yes/no, true/false or 1/0"]
    );
}

#[test]
fn unknown_names_warn_with_file_and_line() {
    assert_eq!(
        warnings("\nlistening-prot=3478\nfrobnicate\n"),
        [
            "2: unknown option `listening-prot` is ignored, as coturn does (\"Bad configuration format\"): did you \
             mean `listening-port`?",
            "3: unknown option `frobnicate` is ignored, as coturn does (\"Bad configuration format\"): check the \
             spelling, or remove the line",
        ]
    );
    // The file and the line, in full.
    let l = ok("frobnicate\n");
    let full = l.warnings[0].to_string();
    let file = l.config_file.unwrap();
    assert!(full.starts_with(&format!("{}:1: unknown option", file.display())), "{full}");
}

#[test]
fn names_are_case_sensitive() {
    assert_eq!(ok("Verbose\n").config.verbosity, Verbosity::Extra);
    assert_eq!(ok("verbose\n").config.verbosity, Verbosity::Verbose);
    assert_eq!(
        warnings("ca-file=/x\n"),
        ["1: unknown option `ca-file` is ignored, as coturn does (\"Bad configuration format\"): did you mean \
          `CA-file`?"]
    );
}

#[test]
fn a_trailing_semicolon_warns() {
    let l = ok("realm=example.org;\n");
    assert_eq!(l.config.realm.as_deref(), Some("example.org;"));
    assert_eq!(
        l.warnings.iter().map(short).collect::<Vec<_>>(),
        ["1: the line of `realm` ends with `;`: turnserver.conf has no terminator, so the `;` is part of the \
          value; remove it"]
    );
}

// ---- supported, unsupported, removed ----

#[test]
fn an_unsupported_option_warns_once_and_is_ignored() {
    assert_eq!(
        warnings("mobility\nsock-buf-size=1000\nmobility\naux-server=1.2.3.4:5\naux-server=1.2.3.4:6\n"),
        [
            "1: mobility is not supported by Tern yet and is ignored: remove it to silence this warning",
            "2: sock-buf-size is not supported by Tern yet and is ignored: remove it to silence this warning",
            "4: aux-server is not supported by Tern yet and is ignored: remove it to silence this warning",
        ]
    );
}

#[test]
fn an_unsupported_flag_that_asks_for_what_tern_does_is_quiet() {
    assert!(
        warnings(
            "stun-only=false\ncli=off\ndtls=0\nudp-recvmmsg\nudp-gso\nstateless-nonce\nno-cli\nno-dtls\nno-rfc5780\n"
        )
        .is_empty()
    );
    assert!(warnings("drop-invalid-packets\n").is_empty());
    assert_eq!(
        warnings("drop-invalid-packets=off\n"),
        ["1: drop-invalid-packets is not supported by Tern yet and is ignored: remove it to silence this warning"]
    );
}

#[test]
fn a_no_op_flag_set_the_other_way_warns() {
    assert_eq!(
        warnings("no-cli=false\n"),
        ["1: no-cli=false is ignored: Tern has no telnet CLI; remove it to silence this warning"]
    );
}

#[test]
fn unavailable_options_say_why() {
    assert_eq!(
        warnings("cli-password=qwerty\ndtls\n"),
        [
            "1: cli-password is ignored: Tern has no telnet CLI; remove it to silence this warning",
            "2: dtls is ignored: Tern has no DTLS; remove it to silence this warning",
        ]
    );
}

#[test]
fn options_coturn_removed_warn_like_coturn_and_say_what_to_do() {
    assert_eq!(
        warnings("no-loopback-peers\nne=3\n"),
        [
            "1: no-loopback-peers is not a coturn option any more (coturn 4.17 says \"Bad configuration format\") \
             and is ignored: loopback peers are denied unless allow-loopback-peers is set; delete the line",
            "2: ne is not a coturn option any more (coturn 4.17 says \"Bad configuration format\") and is ignored: \
             the network engine choice is gone from coturn; delete the line",
        ]
    );
}

#[test]
fn every_unsupported_option_is_accepted_with_at_most_one_warning_naming_it() {
    // A flag set both ways asks once for something Tern does not do: one warning, either way.
    for o in OPTIONS.iter().filter(|o| o.status != Status::Supported) {
        let text = if o.arg == Arg::Flag {
            format!("{0}=on\n{0}=off\n{0}=on\n{0}=off\n", o.name)
        } else {
            format!("{0}=1\n{0}=1\n", o.name)
        };
        let w = warnings(&text);
        assert_eq!(w.len(), 1, "{}: {w:?}", o.name);
        let named = [format!("1: {} ", o.name), format!("2: {} ", o.name), format!("2: {}=off ", o.name)];
        assert!(named.iter().any(|n| w[0].starts_with(n.as_str())), "{}: {w:?}", o.name);
    }
}

#[test]
fn version_in_a_file_is_ignored_with_a_warning() {
    assert_eq!(warnings("version\n"), ["1: version only works on the command line, as --version: remove the line"]);
}

// ---- values that land in Config ----

#[test]
fn ports_and_lifetimes_land() {
    let c = ok("listening-port=3479\ntls-listening-port=5350\nprometheus-port=9000\nstale-nonce=30\n\
                max-allocate-lifetime=600\nchannel-lifetime=300\npermission-lifetime=120\nmax-allocate-timeout=10\n")
    .config;
    assert_eq!((c.listening_port, c.tls_listening_port, c.prometheus_port), (3479, 5350, 9000));
    assert_eq!(
        (c.stale_nonce, c.max_allocate_lifetime, c.channel_lifetime, c.permission_lifetime),
        (30, 600, 300, 120)
    );
    assert_eq!(c.max_allocate_timeout, 10);
}

#[test]
fn a_bare_lifetime_means_the_default() {
    let c = ok("stale-nonce=5\nstale-nonce\nchannel-lifetime\n").config;
    assert_eq!((c.stale_nonce, c.channel_lifetime), (600, 600));
    assert_eq!(ok("stale-nonce=0\n").config.stale_nonce, 0);
}

#[test]
fn quotas_and_bandwidth_land() {
    let c = ok("user-quota=12\ntotal-quota=1200\nmax-bps=3000000\nbps-capacity=100000000\n").config;
    assert_eq!((c.user_quota, c.total_quota, c.max_bps, c.bps_capacity), (12, 1200, 3_000_000, 100_000_000));
}

#[test]
fn external_ip_in_both_forms() {
    let c = ok(
        "relay-ip=10.0.0.5\nrelay-ip=10.0.0.6\nexternal-ip=203.0.113.5/10.0.0.5\nexternal-ip=203.0.113.6/10.0.0.6\n",
    )
    .config;
    assert_eq!(
        c.external_ips,
        [
            ExternalIp { public: ip("203.0.113.5"), private: Some(ip("10.0.0.5")) },
            ExternalIp { public: ip("203.0.113.6"), private: Some(ip("10.0.0.6")) },
        ]
    );
    assert_eq!(
        ok("external-ip=60.70.80.91\n").config.external_ips,
        [ExternalIp { public: ip("60.70.80.91"), private: None }]
    );
}

#[test]
fn external_ip_mapping_a_non_relay_address_warns() {
    assert_eq!(
        warnings("relay-ip=10.0.0.5\nexternal-ip=203.0.113.5/10.0.0.9\n"),
        ["2: external-ip maps 10.0.0.9, which is not a relay-ip, so the mapping is never used: add relay-ip=10.0.0.9 \
          or fix the mapping"]
    );
}

#[test]
fn verbosity_follows_coturn() {
    assert_eq!(ok("verbose\nVerbose\n").config.verbosity, Verbosity::Extra);
    assert_eq!(ok("Verbose\nverbose=false\n").config.verbosity, Verbosity::Extra, "coturn keeps extra");
    assert_eq!(ok("verbose\nverbose=off\n").config.verbosity, Verbosity::Normal);
    assert_eq!(ok("Verbose=no\n").config.verbosity, Verbosity::Normal);
}

#[test]
fn software_attribute_and_its_deprecated_inverse() {
    assert!(!ok("").config.software_attribute);
    assert!(ok("software-attribute\n").config.software_attribute);
    assert!(!ok("software-attribute\nno-software-attribute\n").config.software_attribute);
    assert!(ok("no-software-attribute=false\n").config.software_attribute);
}

#[test]
fn relay_threads_zero_means_one_worker() {
    assert_eq!(ok("relay-threads=0\n").config.relay_threads, Some(1));
    assert_eq!(ok("relay-threads=128\n").config.relay_threads, Some(128));
    assert_eq!(ok("").config.relay_threads, None);
}

#[test]
fn alternate_servers_accumulate_with_the_default_port() {
    let c = ok("alternate-server=1.2.3.4:5678\nalternate-server=5.6.7.8\nalternate-server=[2001:db8::1]:3479\n").config;
    let want: Vec<std::net::SocketAddr> =
        ["1.2.3.4:5678", "5.6.7.8:3478", "[2001:db8::1]:3479"].iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(c.alternate_servers, want);
}

#[test]
fn tls_versions_cipher_list_and_process_options_land() {
    let c = ok("no-tlsv1\nno-tlsv1_1\nno-tlsv1_2\ncipher-list=\"ECDHE-RSA-AES128-GCM-SHA256\"\nproc-user=turnserver\n\
                proc-group=turnserver\nlog-file=/var/log/turn.log\nsimple-log\nno-stdout-log\nsyslog\n")
    .config;
    assert!(c.no_tlsv1 && c.no_tlsv1_1 && c.no_tlsv1_2);
    assert_eq!(c.cipher_list.as_deref(), Some("ECDHE-RSA-AES128-GCM-SHA256"));
    assert_eq!((c.proc_user.as_deref(), c.proc_group.as_deref()), (Some("turnserver"), Some("turnserver")));
    assert_eq!(c.log_file.as_deref(), Some("/var/log/turn.log"));
    assert!(c.simple_log && c.no_stdout_log && c.syslog);
}

#[test]
fn peer_options_land() {
    let c = ok("allow-loopback-peers\nno-multicast-peers\nallowed-peer-ip=10.0.0.5\nno-udp-relay\nno-tcp\n").config;
    assert!(c.allow_loopback_peers && c.no_multicast_peers && c.no_udp_relay && c.no_tcp);
    assert_eq!(c.allowed_peer_ips, [IpRange::single(ip("10.0.0.5"))]);
}

#[test]
fn allow_loopback_peers_is_a_notice_not_a_warning() {
    let l = ok("allow-loopback-peers\n");
    assert!(l.warnings.is_empty());
    assert_eq!(
        l.notices.iter().map(short).collect::<Vec<_>>(),
        ["1: allow-loopback-peers lets clients reach this host's loopback services through the relay: use it for \
          local development only"]
    );
}

// ---- authentication: coturn's derived defaults ----

#[test]
fn nothing_set_means_no_auth() {
    let c = ok("").config;
    assert!(c.no_auth && !c.lt_cred_mech && !c.use_auth_secret);
}

#[test]
fn users_turn_lt_cred_mech_on_with_a_warning() {
    let l = ok("realm=example.org\nuser=alice:pw\n");
    assert!(l.config.lt_cred_mech && !l.config.no_auth);
    assert_eq!(
        l.warnings.iter().map(short).collect::<Vec<_>>(),
        ["2: user accounts are defined but lt-cred-mech is not set: turning lt-cred-mech on, as coturn does; add \
          lt-cred-mech to say so"]
    );
}

#[test]
fn users_are_read_after_the_realm_whatever_the_order() {
    let c = ok("user=alice:pw\nuser=bob:0xbc807ee29df3c9ffa736523fb2c4e8ee\nlt-cred-mech\nrealm=example.org\n").config;
    assert_eq!(c.realm.as_deref(), Some("example.org"));
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[0].secret, UserSecret::Password("pw".into()));
    assert!(matches!(&c.users[1].secret, UserSecret::Key(k) if k.len() == 16));
}

#[test]
fn a_user_defined_twice_keeps_the_last() {
    let l = ok("lt-cred-mech\nrealm=r\nuser=alice:one\nuser=alice:two\n");
    assert_eq!(l.config.users.len(), 1);
    assert_eq!(l.config.users[0].secret, UserSecret::Password("two".into()));
    assert_eq!(
        l.warnings.iter().map(short).collect::<Vec<_>>(),
        ["4: user `alice` is defined again and replaces the earlier one: keep one"]
    );
}

#[test]
fn users_are_ignored_with_the_rest_api_as_in_coturn() {
    let l = ok("realm=r\nuse-auth-secret\nstatic-auth-secret=s\nuser=alice:pw\nuser=bob:pw\n");
    assert!(l.config.users.is_empty());
    assert_eq!(
        l.warnings.iter().map(short).collect::<Vec<_>>(),
        ["4: user is ignored while use-auth-secret or static-auth-secret is set, as in coturn: remove the user \
          lines, or the secret to use lt-cred-mech"]
    );
}

#[test]
fn a_static_auth_secret_alone_turns_the_rest_api_on() {
    let c = ok("realm=r\nstatic-auth-secret=s\n").config;
    assert!(c.use_auth_secret && c.lt_cred_mech && !c.no_auth);
}

#[test]
fn use_auth_secret_without_a_secret_is_an_error() {
    assert_eq!(
        errors("realm=r\nuse-auth-secret\n"),
        ["2: use-auth-secret is set but no static-auth-secret is: add static-auth-secret=<a long random string> \
          (Tern has no database to read turn_secret from)"]
    );
}

#[test]
fn no_auth_with_credentials_is_an_error() {
    assert_eq!(
        errors("realm=r\nno-auth\nlt-cred-mech\n"),
        ["2: no-auth and lt-cred-mech cannot be used together (coturn refuses this too): keep one of them"]
    );
    assert_eq!(
        errors("realm=r\nstatic-auth-secret=s\nno-auth\n"),
        ["3: no-auth and static-auth-secret cannot be used together (coturn refuses this too): keep one of them"]
    );
}

#[test]
fn no_auth_ignores_users_with_a_warning() {
    let l = ok("no-auth\nuser=alice:pw\n");
    assert!(l.config.no_auth && l.config.users.is_empty());
    assert_eq!(
        l.warnings.iter().map(short).collect::<Vec<_>>(),
        ["1: no-auth is set, so the user accounts are ignored, as in coturn: remove no-auth to use them"]
    );
}

#[test]
fn lt_cred_mech_and_use_auth_secret_together_warn_like_coturn() {
    assert_eq!(
        warnings("realm=r\nlt-cred-mech\nuse-auth-secret\nstatic-auth-secret=s\n"),
        ["2: lt-cred-mech and use-auth-secret are both set: the shared secret wins and static users are not used \
          (coturn warns too); keep only one of them"]
    );
}

#[test]
fn long_term_credentials_without_a_realm_warn() {
    assert_eq!(
        warnings("lt-cred-mech\nuser=a:b\n"),
        ["file: long-term credentials are on but realm is not set: set realm=<your domain> (coturn would use the \
          host's domain name)"]
    );
}

#[test]
fn the_development_secret_is_noticed() {
    let l = ok("realm=r\nuse-auth-secret\nstatic-auth-secret=tern-dev-secret-change-me\n");
    assert_eq!(
        l.notices.iter().map(short).collect::<Vec<_>>(),
        ["3: static-auth-secret is the development secret of conf/turnserver.conf: change it before anyone else can \
          reach this relay"]
    );
}

// ---- the exact error for each kind of bad value ----

#[test]
fn port_errors() {
    assert_eq!(
        errors("listening-port=65536\ntls-listening-port=-1\nmin-port=abc\nmax-port\n"),
        [
            "1: listening-port `65536` is out of range: use a port number from 0 to 65535",
            "2: tls-listening-port `-1` is negative: use a port number from 0 to 65535",
            "3: min-port `abc` is not a number: use a port number from 0 to 65535",
            "4: max-port needs a value: use a port number from 0 to 65535",
        ]
    );
}

#[test]
fn min_port_above_max_port() {
    assert_eq!(
        errors("min-port=60000\nmax-port=50000\n"),
        ["1: min-port 60000 is above max-port 50000: min-port must not be above max-port"]
    );
}

#[test]
fn ip_errors() {
    assert_eq!(
        errors("listening-ip=10.0.0.300\nrelay-ip=[::1]\nrelay-ip=10.0.0.0/8\nlistening-ip=\n"),
        [
            "1: listening-ip `10.0.0.300` is not an IP address: use an IPv4 address like 192.0.2.1 or an IPv6 \
             address like 2001:db8::1",
            "2: relay-ip `[::1]` is not an IP address: use an IPv4 address like 192.0.2.1 or an IPv6 address like \
             2001:db8::1; write IPv6 addresses without brackets here",
            "3: relay-ip `10.0.0.0/8` is not an IP address: use an IPv4 address like 192.0.2.1 or an IPv6 address \
             like 2001:db8::1; relay-ip takes one address, not a prefix",
            "4: listening-ip needs an address, e.g. listening-ip=192.0.2.1 or listening-ip=2001:db8::1",
        ]
    );
}

#[test]
fn range_errors() {
    assert_eq!(
        errors(
            "denied-peer-ip=10.0.0.0/8\ndenied-peer-ip=10.0.0.9-10.0.0.1\nallowed-peer-ip=10.0.0.1-::1\n\
             allowed-peer-ip=10.0.0.1-10.0.0\n"
        ),
        [
            "1: denied-peer-ip `10.0.0.0/8` is a CIDR prefix, which turnserver.conf does not read: write \
             10.0.0.0-10.255.255.255",
            "2: denied-peer-ip `10.0.0.9-10.0.0.1` starts after it ends: write 10.0.0.1-10.0.0.9",
            "3: allowed-peer-ip `10.0.0.1-::1` mixes IPv4 and IPv6: both ends must be of the same family",
            "4: allowed-peer-ip `10.0.0.1-10.0.0`: `10.0.0` is not an IP address: use an address or a range like \
             10.0.0.0-10.255.255.255",
        ]
    );
}

#[test]
fn external_ip_errors() {
    assert_eq!(
        errors("external-ip=1.2.3.4\nexternal-ip=5.6.7.8\nexternal-ip=1.2.3.4/::1\nexternal-ip=turn.example.org\n"),
        [
            "2: external-ip `5.6.7.8` is a second address without `/private`: coturn takes only one (\"You cannot \
             define external IP more than once\"); for several, map each as external-ip=public/private",
            "3: external-ip `1.2.3.4/::1` maps between IPv4 and IPv6: the public and the private address must be of \
             the same family",
            "4: external-ip `turn.example.org`: `turn.example.org` is not an IP address: use public-ip or \
             public-ip/private-ip, e.g. external-ip=203.0.113.5/10.0.0.5",
        ]
    );
}

#[test]
fn user_errors_never_show_the_password() {
    let e = errors("lt-cred-mech\nrealm=r\nuser=alice\nuser=bob:0xdeadbeef\nuser=carol:\n");
    assert_eq!(
        e,
        [
            "3: user `alice` has no `:` and no password: write user=name:password or user=name:0x<32 hex digits> (a \
             key from turnadmin -k)",
            "4: user `bob`: a key after `0x` must be exactly 32 hex digits (an MD5 key from turnadmin -k -u bob -r \
             <realm> -p <password>)",
            "5: user `carol` has an empty password: write user=name:password or user=name:0x<32 hex digits> (a key \
             from turnadmin -k)",
        ]
    );
    assert!(e.iter().all(|m| !m.contains("deadbeef")));
}

#[test]
fn alternate_server_errors() {
    assert_eq!(
        errors("alternate-server=1.2.3.4:99999\nalternate-server=host.example\n"),
        [
            "1: alternate-server `1.2.3.4:99999` has port `99999`: use a port from 1 to 65535",
            "2: alternate-server `host.example` is not an address with an optional port: use ip[:port] or \
             [ipv6]:port, e.g. alternate-server=192.0.2.1:3478 or alternate-server=[2001:db8::1]:3478",
        ]
    );
}

#[test]
fn number_errors() {
    assert_eq!(
        errors("user-quota=ten\ntotal-quota=-5\nmax-bps=1.5\nstale-nonce=99999999999\nrelay-threads=500\n"),
        [
            "1: user-quota `ten` is not a number: use a whole number of allocations; 0 means unlimited",
            "2: total-quota `-5` is negative: use a whole number of allocations; 0 means unlimited",
            "3: max-bps `1.5` is not a number: use bytes per second; 0 means unlimited",
            "4: stale-nonce `99999999999` is too large: use a whole number of seconds",
            "5: relay-threads `500` is more than 128: use 1 to 128 worker threads, or leave it out for one per core",
        ]
    );
}

#[test]
fn string_errors() {
    assert_eq!(
        errors("realm=\nrest-api-separator=::\nstatic-auth-secret\npidfile=\"\"\n"),
        [
            "1: realm needs a value, e.g. realm=example.org",
            "2: rest-api-separator `::` is more than one character: use one, e.g. rest-api-separator=:",
            "3: static-auth-secret needs a value, e.g. static-auth-secret=<a long random string>",
            "4: pidfile needs a value, e.g. pidfile=/var/run/turnserver.pid",
        ]
    );
    assert_eq!(ok("rest-api-separator=-\n").config.rest_api_separator, '-');
}

#[test]
fn control_characters_are_refused() {
    assert_eq!(errors("realm=a\u{7}b\n"), ["1: realm contains the control character \\u{7}: remove it"]);
}

#[test]
fn combinations_coturn_refuses() {
    assert_eq!(
        errors("bps-capacity=1000\nno-udp-relay\nno-tcp-relay\n"),
        [
            "1: bps-capacity is set but max-bps is not: set max-bps too (coturn refuses this too)",
            "3: no-udp-relay and no-tcp-relay together allow no relay at all: keep at most one of them",
        ]
    );
    assert_eq!(
        errors("no-udp\nno-tcp\n"),
        ["4: no-udp, no-tcp and no-tls together leave no listener: keep at most two of them"],
        "line 4 is the no-tls the helper adds"
    );
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let e = errors("min-port=x\nrealm=\nfingerprint=maybe\nlistening-ip=nope\n");
    assert_eq!(e.len(), 4, "{e:?}");
    let lines: Vec<&str> = e.iter().map(|m| m.split(':').next().unwrap()).collect();
    assert_eq!(lines, ["1", "2", "3", "4"]);
}

// ---- cert and pkey ----

#[test]
fn cert_and_pkey_are_found_and_missing_ones_are_errors() {
    let d = tempdir("tls");
    let (cert, key) = pem_pair(&d);
    let c = load_raw(&format!("cert={}\npkey={}\n", cert.display(), key.display())).unwrap().config;
    assert_eq!((c.cert, c.pkey), (Some(cert), Some(key)));

    let e = load_raw("cert=/nonexistent/cert.pem\npkey=/nonexistent/pkey.pem\n").unwrap_err();
    assert_eq!(
        e.errors.iter().map(short).collect::<Vec<_>>(),
        [
            "1: cert file `/nonexistent/cert.pem` was not found: point cert at a readable PEM file, or set no-tls",
            "2: pkey file `/nonexistent/pkey.pem` was not found: point pkey at a readable PEM file, or set no-tls",
        ]
    );
}

#[test]
fn a_relative_cert_is_searched_like_the_config_file_and_beside_it() {
    let d = tempdir("tls-rel");
    pem_pair(&d);
    let conf = d.join("turnserver.conf");
    std::fs::write(&conf, "cert=cert.pem\npkey=pkey.pem\n").unwrap();
    let c = relay_config::load_file(&conf).unwrap().config;
    assert_eq!(c.cert, Some(d.join("cert.pem")));

    std::fs::write(&conf, "cert=tern-missing-cert.pem\npkey=pkey.pem\n").unwrap();
    let e = relay_config::load_file(&conf).unwrap_err();
    let m = &e.errors[0].message;
    assert!(m.starts_with("cert file `tern-missing-cert.pem` was not found (searched "), "{m}");
    assert!(m.contains(&format!(", /etc/turnserver/, /etc/coturn/, /usr/local/etc/, /usr/local/etc/turnserver/, /usr/local/etc/coturn/, {})", d.display())) && m.ends_with(": point cert at a readable PEM file, or set no-tls"), "{m}");
}

#[test]
fn with_no_tls_a_missing_cert_only_warns() {
    assert_eq!(
        warnings("cert=/nonexistent/cert.pem\n"),
        ["1: cert file `/nonexistent/cert.pem` was not found; no-tls is set, so it is not needed: fix or remove the \
          line"]
    );
}

#[test]
fn a_cert_without_a_key_is_an_error_when_tls_is_on() {
    let d = tempdir("tls-nokey");
    let (cert, _) = pem_pair(&d);
    let e = load_raw(&format!("cert={}\n", cert.display())).unwrap_err();
    assert_eq!(
        e.errors.iter().map(short).collect::<Vec<_>>(),
        ["1: cert is set but pkey is not, and turn_server_pkey.pem was not found: set pkey=<the private key of the \
          certificate>, or set no-tls"]
    );
}
