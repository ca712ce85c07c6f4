//! Value parsers: booleans by coturn's spellings, numbers, ports, addresses, peer ranges,
//! `external-ip`, `user` and `alternate-server` forms.
//!
//! Each returns the typed value or a message saying what is wrong and what would be right,
//! naming the option. Stricter than coturn's `atoi` on numbers: garbage is an error, not 0.
//! Messages never repeat a secret.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{ExternalIp, IpRange, User, UserSecret};

/// coturn's `get_bool_value`: empty = true; `0`/`n…`/`N…`/`f…`/`F…`/`off` = false;
/// `1`–`9…`/`y…`/`Y…`/`t…`/`T…`/`on` = true; anything else is an error.
pub(crate) fn boolean(name: &str, v: &str) -> Result<bool, String> {
    let Some(first) = v.chars().next() else { return Ok(true) };
    match first {
        '0' | 'n' | 'N' | 'f' | 'F' => return Ok(false),
        'y' | 'Y' | 't' | 'T' | '1'..='9' => return Ok(true),
        _ => {}
    }
    match v {
        "off" | "OFF" | "Off" => Ok(false),
        "on" | "ON" | "On" => Ok(true),
        _ => Err(format!("{name} `{}` is not a boolean: use on/off, yes/no, true/false or 1/0", shown(v))),
    }
}

/// A whole number in `0..=max` (decimal digits only, surrounding blanks allowed).
pub(crate) fn number(name: &str, v: &str, max: u64, what: &str) -> Result<u64, String> {
    let t = v.trim_matches([' ', '\t']);
    if t.is_empty() {
        return Err(format!("{name} needs a value: {what}"));
    }
    if t.starts_with('-') && t.len() > 1 && t[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} `{}` is negative: {what}", shown(v)));
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        let hint = if t.contains('#') {
            "; a `#` starts a comment only at the start of a line, so put comments on their own line"
        } else {
            ""
        };
        return Err(format!("{name} `{}` is not a number: {what}{hint}", shown(v)));
    }
    match t.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{name} `{}` is too large: {what}", shown(v))),
    }
}

/// A port, 0–65535. coturn's `atoi` once turned 65536 into 0; Tern refuses it.
pub(crate) fn port(name: &str, v: &str) -> Result<u16, String> {
    let what = "use a port number from 0 to 65535";
    let t = v.trim_matches([' ', '\t']);
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && t.parse::<u64>().is_ok_and(|n| n > 65535) {
        return Err(format!("{name} `{}` is out of range: {what}", shown(v)));
    }
    number(name, v, 65535, what).map(|n| n as u16)
}

/// A `u32` count or number of seconds.
pub(crate) fn u32_value(name: &str, v: &str, what: &str) -> Result<u32, String> {
    number(name, v, u64::from(u32::MAX), what).map(|n| n as u32)
}

/// One IP address, IPv4 or IPv6.
pub(crate) fn ip(name: &str, v: &str) -> Result<IpAddr, String> {
    let t = v.trim_matches([' ', '\t']);
    if t.is_empty() {
        return Err(format!("{name} needs an address, e.g. {name}=192.0.2.1 or {name}=2001:db8::1"));
    }
    parse_ip(t).ok_or_else(|| {
        let hint = if t.starts_with('[') {
            "; write IPv6 addresses without brackets here".to_string()
        } else if t.contains('/') {
            format!("; {name} takes one address, not a prefix")
        } else {
            String::new()
        };
        format!(
            "{name} `{}` is not an IP address: use an IPv4 address like 192.0.2.1 or an IPv6 address like 2001:db8::1{hint}",
            shown(v)
        )
    })
}

fn parse_ip(t: &str) -> Option<IpAddr> {
    t.parse::<IpAddr>().ok()
}

/// `ip` or `ip-ip`, both ends of one family, start ≤ end.
pub(crate) fn range(name: &str, v: &str) -> Result<IpRange, String> {
    let t = v.trim_matches([' ', '\t']);
    if t.is_empty() {
        return Err(format!("{name} needs an address or a range, e.g. {name}=10.0.0.0-10.255.255.255"));
    }
    let prefix = t.split_once('/').and_then(|(addr, len)| cidr(parse_ip(addr)?, len.parse::<u8>().ok()?));
    if let Some(r) = prefix {
        return Err(format!(
            "{name} `{}` is a CIDR prefix, which turnserver.conf does not read: write {}-{}",
            shown(v),
            r.start,
            r.end
        ));
    }
    let (a, b) = match t.split_once('-') {
        Some((a, b)) => (a.trim_matches([' ', '\t']), Some(b.trim_matches([' ', '\t']))),
        None => (t, None),
    };
    let bad = |part: &str| {
        format!(
            "{name} `{}`: `{}` is not an IP address: use an address or a range like 10.0.0.0-10.255.255.255",
            shown(v),
            shown(part)
        )
    };
    let start = parse_ip(a).ok_or_else(|| bad(a))?;
    let Some(b) = b else { return Ok(IpRange { start, end: start }) };
    let end = parse_ip(b).ok_or_else(|| bad(b))?;
    let r = IpRange { start, end };
    if start.is_ipv4() != end.is_ipv4() {
        return Err(format!("{name} `{}` mixes IPv4 and IPv6: both ends must be of the same family", shown(v)));
    }
    if !r.is_ordered() {
        return Err(format!("{name} `{}` starts after it ends: write {end}-{start}", shown(v)));
    }
    Ok(r)
}

/// The range a CIDR prefix covers, if the prefix length fits the family.
fn cidr(a: IpAddr, len: u8) -> Option<IpRange> {
    match a {
        IpAddr::V4(a) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let start = u32::from(a) & mask;
            Some(IpRange { start: Ipv4Addr::from(start).into(), end: Ipv4Addr::from(start | !mask).into() })
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            let start = u128::from(a) & mask;
            Some(IpRange { start: Ipv6Addr::from(start).into(), end: Ipv6Addr::from(start | !mask).into() })
        }
        _ => None,
    }
}

/// `external-ip`: `public` or `public/private`, one family.
pub(crate) fn external_ip(name: &str, v: &str) -> Result<ExternalIp, String> {
    let t = v.trim_matches([' ', '\t']);
    let form = "use public-ip or public-ip/private-ip, e.g. external-ip=203.0.113.5/10.0.0.5";
    if t.is_empty() {
        return Err(format!("{name} needs an address: {form}"));
    }
    let (p, q) = match t.split_once('/') {
        Some((p, q)) => (p, Some(q)),
        None => (t, None),
    };
    let Some(public) = parse_ip(p) else {
        return Err(format!("{name} `{}`: `{}` is not an IP address: {form}", shown(v), shown(p)));
    };
    let Some(q) = q else { return Ok(ExternalIp { public, private: None }) };
    let Some(private) = parse_ip(q) else {
        return Err(format!("{name} `{}`: `{}` is not an IP address: {form}", shown(v), shown(q)));
    };
    if public.is_ipv4() != private.is_ipv4() {
        return Err(format!(
            "{name} `{}` maps between IPv4 and IPv6: the public and the private address must be of the same family",
            shown(v)
        ));
    }
    Ok(ExternalIp { public, private: Some(private) })
}

/// `user`: `name:password` or `name:0x<32 hex digits>`. As in coturn, blanks after the colon
/// are skipped. Messages name the user, never the password.
pub(crate) fn user(name: &str, v: &str) -> Result<User, String> {
    let form = "write user=name:password or user=name:0x<32 hex digits> (a key from turnadmin -k)";
    let Some((uname, rest)) = v.split_once(':') else {
        let who = v.trim();
        return Err(if who.is_empty() {
            format!("{name} needs a value: {form}")
        } else {
            format!("{name} `{}` has no `:` and no password: {form}", shown(who))
        });
    };
    if uname.is_empty() {
        return Err(format!("{name} has no user name before the `:`: {form}"));
    }
    let secret = rest.trim_start_matches([' ', '\t']);
    if secret.is_empty() {
        return Err(format!("{name} `{}` has an empty password: {form}", shown(uname)));
    }
    if let Some(hex) = secret.strip_prefix("0x") {
        let key = decode_hex(hex).filter(|k| k.len() == 16).ok_or_else(|| {
            format!(
                "{name} `{}`: a key after `0x` must be exactly 32 hex digits (an MD5 key from turnadmin -k -u {} -r <realm> -p <password>)",
                shown(uname),
                shown(uname)
            )
        })?;
        return Ok(User { name: uname.to_string(), secret: UserSecret::Key(key) });
    }
    Ok(User { name: uname.to_string(), secret: UserSecret::Password(secret.to_string()) })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let pairs = s.as_bytes().chunks_exact(2);
    // Digits only: from_str_radix would take a `+` sign too.
    if !pairs.remainder().is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pairs.map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok()).collect()
}

/// `alternate-server`: `ip[:port]`, `[ip6]:port`, `[ip6]` or a bare IPv6 address; the port
/// defaults to `default_port`.
pub(crate) fn server(name: &str, v: &str, default_port: u16) -> Result<SocketAddr, String> {
    let t = v.trim_matches([' ', '\t']);
    let form = format!("use ip[:port] or [ipv6]:port, e.g. {name}=192.0.2.1:3478 or {name}=[2001:db8::1]:3478");
    if t.is_empty() {
        return Err(format!("{name} needs an address: {form}"));
    }
    let bad = || format!("{name} `{}` is not an address with an optional port: {form}", shown(v));
    let (host, port_text) = if let Some(rest) = t.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            _ => (h, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if t.matches(':').count() > 1 {
        (t, None)
    } else {
        match t.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (t, None),
        }
    };
    let ip = parse_ip(host).ok_or_else(bad)?;
    if t.starts_with('[') && ip.is_ipv4() {
        return Err(bad());
    }
    let port = match port_text {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(format!("{name} `{}` has port `{}`: use a port from 1 to 65535", shown(v), shown(p)));
            }
        },
    };
    Ok(SocketAddr::new(ip, port))
}

/// The value as shown in a message: control characters escaped, very long values cut.
pub(crate) fn shown(v: &str) -> String {
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        if i == 80 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_coturn_spellings() {
        for t in ["", "1", "2", "9x", "y", "yes", "Y", "t", "true", "T", "on", "ON", "On"] {
            assert_eq!(boolean("f", t), Ok(true), "{t:?}");
        }
        for f in ["0", "00", "n", "no", "N", "nope", "f", "false", "F", "off", "OFF", "Off"] {
            assert_eq!(boolean("f", f), Ok(false), "{f:?}");
        }
        assert_eq!(
            boolean("fingerprint", "maybe"),
            Err("fingerprint `maybe` is not a boolean: use on/off, yes/no, true/false or 1/0".into())
        );
        for bad in ["oN", "enable", "-1", " yes", "o"] {
            assert!(boolean("x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_refuse_what_atoi_would_wrap() {
        assert_eq!(port("p", "0"), Ok(0));
        assert_eq!(port("p", "65535"), Ok(65535));
        assert_eq!(
            port("listening-port", "65536"),
            Err("listening-port `65536` is out of range: use a port number from 0 to 65535".into())
        );
        assert_eq!(port("min-port", "-1"), Err("min-port `-1` is negative: use a port number from 0 to 65535".into()));
        assert_eq!(
            port("min-port", "49152 # dev"),
            Err("min-port `49152 # dev` is not a number: use a port number from 0 to 65535; a `#` starts a comment \
                 only at the start of a line, so put comments on their own line"
                .into())
        );
        assert_eq!(
            port("p", "99999999999999999999999"),
            Err("p `99999999999999999999999` is too large: use a port number from 0 to 65535".into())
        );
    }

    #[test]
    fn ranges_accept_one_address_or_two_of_one_family() {
        let r = range("denied-peer-ip", "10.0.0.0-10.255.255.255").unwrap();
        assert_eq!(r.start, "10.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(r.end, "10.255.255.255".parse::<IpAddr>().unwrap());
        let one = range("allowed-peer-ip", "2001:db8::1").unwrap();
        assert_eq!(one.start, one.end);
        assert_eq!(
            range("denied-peer-ip", "10.0.0.9-10.0.0.1"),
            Err("denied-peer-ip `10.0.0.9-10.0.0.1` starts after it ends: write 10.0.0.1-10.0.0.9".into())
        );
        assert_eq!(
            range("denied-peer-ip", "10.0.0.1-::1"),
            Err("denied-peer-ip `10.0.0.1-::1` mixes IPv4 and IPv6: both ends must be of the same family".into())
        );
        assert_eq!(
            range("denied-peer-ip", "10.0.0.0/8"),
            Err("denied-peer-ip `10.0.0.0/8` is a CIDR prefix, which turnserver.conf does not read: write \
                 10.0.0.0-10.255.255.255"
                .into())
        );
        assert_eq!(
            range("denied-peer-ip", "fc00::/7"),
            Err("denied-peer-ip `fc00::/7` is a CIDR prefix, which turnserver.conf does not read: write \
                 fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .into())
        );
        assert_eq!(
            range("denied-peer-ip", "10.0.0.1-x"),
            Err("denied-peer-ip `10.0.0.1-x`: `x` is not an IP address: use an address or a range like \
                 10.0.0.0-10.255.255.255"
                .into())
        );
    }

    #[test]
    fn external_ip_takes_public_or_public_slash_private() {
        let e = external_ip("external-ip", "203.0.113.5/127.0.0.1").unwrap();
        assert_eq!(e.public, "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!(e.private, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(external_ip("external-ip", "203.0.113.5").unwrap().private, None);
        assert_eq!(
            external_ip("external-ip", "203.0.113.5/::1"),
            Err("external-ip `203.0.113.5/::1` maps between IPv4 and IPv6: the public and the private address must \
                 be of the same family"
                .into())
        );
        assert_eq!(
            external_ip("external-ip", "turn.example.org"),
            Err("external-ip `turn.example.org`: `turn.example.org` is not an IP address: use public-ip or \
                 public-ip/private-ip, e.g. external-ip=203.0.113.5/10.0.0.5"
                .into())
        );
    }

    #[test]
    fn users_take_a_password_or_a_32_digit_key() {
        let u = user("user", "ninefingers:0xbc807ee29df3c9ffa736523fb2c4e8ee").unwrap();
        assert_eq!(u.name, "ninefingers");
        assert_eq!(u.secret, UserSecret::Key(decode_hex("bc807ee29df3c9ffa736523fb2c4e8ee").unwrap()));
        let p = user("user", "alice: secret:with:colons").unwrap();
        assert_eq!(p.secret, UserSecret::Password("secret:with:colons".into()));
        assert_eq!(
            user("user", "alice:0x1234"),
            Err("user `alice`: a key after `0x` must be exactly 32 hex digits (an MD5 key from turnadmin -k -u alice \
                 -r <realm> -p <password>)"
                .into())
        );
        assert_eq!(
            user("user", "alice"),
            Err("user `alice` has no `:` and no password: write user=name:password or user=name:0x<32 hex digits> \
                 (a key from turnadmin -k)"
                .into())
        );
        assert_eq!(
            user("user", "alice:"),
            Err("user `alice` has an empty password: write user=name:password or user=name:0x<32 hex digits> (a \
                 key from turnadmin -k)"
                .into())
        );
        assert!(user("user", ":pw").is_err());
        assert!(user("user", "a:0x+b807ee29df3c9ffa736523fb2c4e8e").is_err(), "a sign is not a hex digit");
    }

    #[test]
    fn alternate_servers_take_the_coturn_forms() {
        let s = |v| server("alternate-server", v, 3478);
        assert_eq!(s("1.2.3.4:5678"), Ok("1.2.3.4:5678".parse().unwrap()));
        assert_eq!(s("5.6.7.8"), Ok("5.6.7.8:3478".parse().unwrap()));
        assert_eq!(
            s("[2001:db8:85a3:8d3:1319:8a2e:370:7348]:3478"),
            Ok("[2001:db8:85a3:8d3:1319:8a2e:370:7348]:3478".parse().unwrap())
        );
        assert_eq!(s("[2001:db8::1]"), Ok("[2001:db8::1]:3478".parse().unwrap()));
        assert_eq!(s("2001:db8::1"), Ok("[2001:db8::1]:3478".parse().unwrap()));
        assert_eq!(
            s("1.2.3.4:99999"),
            Err("alternate-server `1.2.3.4:99999` has port `99999`: use a port from 1 to 65535".into())
        );
        assert_eq!(s("1.2.3.4:0"), Err("alternate-server `1.2.3.4:0` has port `0`: use a port from 1 to 65535".into()));
        assert!(s("[1.2.3.4]:80").is_err());
        assert!(s("host.example:80").is_err());
    }

    #[test]
    fn shown_escapes_control_characters_and_cuts_long_values() {
        assert_eq!(shown("a\tb\u{1b}"), "a\\tb\\u{1b}");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 81);
    }
}
