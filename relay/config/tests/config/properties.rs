//! Property tests: range membership against a reference compare, coturn's booleans, ports, and
//! "no input panics the parser; a configuration that loads prints back into itself".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use proptest::prelude::*;
use relay_config::options::OPTIONS;
use relay_config::{Config, ConfigError, Outcome, parse_command_line_in};

fn cli(args: &[String]) -> Result<Config, ConfigError> {
    let mut all = vec!["-n".to_string(), "--no-tls".to_string()];
    all.extend_from_slice(args);
    match parse_command_line_in(&all, Path::new("/nonexistent")) {
        Ok(Outcome::Run(l)) => Ok(l.config),
        Ok(o) => panic!("{o:?}"),
        Err(e) => Err(e),
    }
}

/// Membership by big-endian byte order: what comparing the addresses as integers means.
fn reference_contains(start: &[u8], end: &[u8], x: &[u8]) -> bool {
    start <= x && x <= end
}

/// coturn's get_bool_value, transcribed.
fn reference_bool(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    match b.first() {
        None => Some(true),
        Some(b'0' | b'n' | b'N' | b'f' | b'F') => Some(false),
        Some(b'y' | b'Y' | b't' | b'T') => Some(true),
        Some(c) if (b'1'..=b'9').contains(c) => Some(true),
        _ if ["off", "OFF", "Off"].contains(&s) => Some(false),
        _ if ["on", "ON", "On"].contains(&s) => Some(true),
        _ => None,
    }
}

/// Addresses that cluster around a few prefixes, so ranges and probes often overlap.
fn v6() -> impl Strategy<Value = Ipv6Addr> {
    (0u8..4, any::<u16>(), any::<u16>(), 0u8..3)
        .prop_map(|(hi, a, b, lo)| Ipv6Addr::new(0x2001, 0xdb8, u16::from(hi), 0, 0, u16::from(lo), a, b))
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    (0u8..3, any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Ipv4Addr::new(10, a, b, c))
}

/// One plausible config line: a known option, a separator, and a value that is often right.
fn line() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = OPTIONS.iter().map(|o| o.name).collect();
    let values = prop_oneof![
        Just(String::new()),
        Just("on".to_string()),
        Just("off".to_string()),
        Just("maybe".to_string()),
        (0u32..70000).prop_map(|n| n.to_string()),
        v4().prop_map(|a| a.to_string()),
        v6().prop_map(|a| a.to_string()),
        (v4(), v4()).prop_map(|(a, b)| format!("{a}-{b}")),
        (v4(), v4()).prop_map(|(a, b)| format!("{a}/{b}")),
        (v4(), 0u16..4000).prop_map(|(a, p)| format!("{a}:{p}")),
        "[a-z]{1,6}:[ -~]{0,6}",
        "\"[ -~]{0,8}\"?",
        "[ -~]{0,12}",
    ];
    let sep = prop_oneof![Just("="), Just(" "), Just(" = "), Just("\t"), Just("==")];
    (proptest::sample::select(names), sep, values, any::<bool>())
        .prop_map(|(n, s, v, bare)| if bare { n.to_string() } else { format!("{n}{s}{v}") })
}

proptest! {
    #[test]
    fn ipv6_range_membership_matches_an_integer_compare(a in v6(), b in v6(), x in v6()) {
        let (s, e) = if a <= b { (a, b) } else { (b, a) };
        let c = cli(&[format!("--denied-peer-ip={s}-{e}")]).unwrap();
        let r = c.denied_peer_ips[0];
        prop_assert_eq!(r.contains(IpAddr::V6(x)), reference_contains(&s.octets(), &e.octets(), &x.octets()));
        prop_assert!(!r.contains(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        if a != b {
            prop_assert!(cli(&[format!("--denied-peer-ip={e}-{s}")]).is_err(), "a reversed range must not load");
        }
    }

    #[test]
    fn ipv4_range_membership_matches_an_integer_compare(a in v4(), b in v4(), x in v4()) {
        let (s, e) = if a <= b { (a, b) } else { (b, a) };
        let c = cli(&[format!("--allowed-peer-ip={s}-{e}")]).unwrap();
        let r = c.allowed_peer_ips[0];
        prop_assert_eq!(r.contains(IpAddr::V4(x)), reference_contains(&s.octets(), &e.octets(), &x.octets()));
        prop_assert!(!r.contains(IpAddr::V6(x.to_ipv6_mapped())));
    }

    #[test]
    fn booleans_match_coturns_get_bool_value(v in "[ -~]{0,6}") {
        match (cli(&[format!("--fingerprint={v}")]), reference_bool(&v)) {
            (Ok(c), Some(b)) => prop_assert_eq!(c.fingerprint, b),
            (Err(_), None) => {}
            (got, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", v, got.map(|c| c.fingerprint), want),
        }
    }

    #[test]
    fn ports_load_exactly_when_they_fit_in_16_bits(n in 0u64..200_000) {
        let r = cli(&[format!("--listening-port={n}")]);
        prop_assert_eq!(r.is_ok(), n <= 65535);
        if let Ok(c) = r {
            prop_assert_eq!(u64::from(c.listening_port), n);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        relay_config::fuzzing::turnserver_conf(&data);
    }

    #[test]
    fn plausible_files_never_panic_and_print_back_into_themselves(lines in proptest::collection::vec(line(), 0..24)) {
        // The entry point asserts the round trip for every file that loads.
        relay_config::fuzzing::turnserver_conf(lines.join("\n").as_bytes());
    }
}
