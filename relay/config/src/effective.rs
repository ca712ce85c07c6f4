//! The effective configuration printed back in `turnserver.conf` form, for `--check-config`.
//!
//! Every supported option gets a line with its effective value (defaults included), in the
//! order of [`crate::Config`]. Unset options are comments. Secrets (static auth secrets, user
//! passwords and keys) are hidden unless the caller asks for them; with them shown, reading
//! the output back gives the same [`Config`] (a property test holds us to it).

use std::fmt::Write;

use crate::conf_file::strip_quotes;
use crate::{Config, IpRange, Loaded, UserSecret, Verbosity};

/// Whether secrets appear in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Shown as comments saying how many there are.
    Hidden,
    /// Written out, so the output reads back into the same configuration.
    Shown,
}

/// `--check-config`'s report: a header, then the configuration with secrets hidden.
pub(crate) fn check_report(loaded: &Loaded) -> String {
    let mut out = String::from("# tern-relay --check-config: the configuration is valid.\n");
    match &loaded.config_file {
        Some(f) => {
            let _ = writeln!(out, "# Read from {} and the command line.", f.display());
        }
        None => out.push_str("# Read from the command line only.\n"),
    }
    for n in &loaded.notices {
        let _ = writeln!(out, "# Note: {n}");
    }
    out.push_str("# The effective configuration follows; secrets are not shown.\n\n");
    out.push_str(&to_turnserver_conf(&loaded.config, Secrets::Hidden));
    out
}

/// Prints `config` in turnserver.conf form.
pub fn to_turnserver_conf(c: &Config, secrets: Secrets) -> String {
    let mut w = Out(String::new());
    w.section("Listeners and relays");
    w.val("listening-port", c.listening_port);
    w.val("tls-listening-port", c.tls_listening_port);
    w.list("listening-ip", &c.listening_ips, "every address");
    w.list("relay-ip", &c.relay_ips, "the listening addresses");
    let ext: Vec<String> = c
        .external_ips
        .iter()
        .map(|e| match e.private {
            Some(p) => format!("{}/{p}", e.public),
            None => e.public.to_string(),
        })
        .collect();
    w.list("external-ip", &ext, "no mapping");
    match c.relay_threads {
        Some(n) => w.val("relay-threads", n),
        None => w.unset("relay-threads", "one per core"),
    }
    w.val("min-port", c.min_port);
    w.val("max-port", c.max_port);
    w.flag("no-udp", c.no_udp);
    w.flag("no-tcp", c.no_tcp);
    w.flag("no-tls", c.no_tls);
    w.flag("no-udp-relay", c.no_udp_relay);
    w.flag("no-tcp-relay", c.no_tcp_relay);

    w.section("Authentication");
    match &c.realm {
        Some(r) => w.text("realm", r),
        None => w.unset("realm", "the host's domain name"),
    }
    if c.use_auth_secret && c.lt_cred_mech {
        w.comment("lt-cred-mech=on (implied by use-auth-secret)");
    } else {
        w.flag("lt-cred-mech", c.lt_cred_mech);
    }
    w.flag("use-auth-secret", c.use_auth_secret);
    match secrets {
        Secrets::Shown => c.static_auth_secrets.iter().for_each(|s| w.text("static-auth-secret", s)),
        Secrets::Hidden if c.static_auth_secrets.is_empty() => w.unset("static-auth-secret", "none"),
        Secrets::Hidden => w.comment(&format!("static-auth-secret: {} set, not shown", c.static_auth_secrets.len())),
    }
    for u in &c.users {
        match (secrets, &u.secret) {
            (Secrets::Shown, UserSecret::Password(p)) => w.text("user", &format!("{}:{p}", u.name)),
            (Secrets::Shown, UserSecret::Key(k)) => w.text("user", &format!("{}:0x{}", u.name, hex(k))),
            (Secrets::Hidden, _) => w.comment(&format!("user={}:<not shown>", u.name)),
        }
    }
    w.flag("no-auth", c.no_auth);
    w.text("rest-api-separator", &c.rest_api_separator.to_string());

    w.section("Lifetimes, in seconds");
    w.val("stale-nonce", c.stale_nonce);
    w.val("max-allocate-lifetime", c.max_allocate_lifetime);
    w.val("channel-lifetime", c.channel_lifetime);
    w.val("permission-lifetime", c.permission_lifetime);
    w.val("max-allocate-timeout", c.max_allocate_timeout);

    w.section("Protocol");
    w.flag("fingerprint", c.fingerprint);
    w.flag("rfc5766-channel-numbers", c.rfc5766_channel_numbers);
    w.val("unauthorized-ratelimit-rps", c.unauthorized_ratelimit_rps);
    w.flag("stun-only", c.stun_only);
    w.flag("no-stun", c.no_stun);
    let alt: Vec<String> = c.alternate_servers.iter().map(|s| s.to_string()).collect();
    w.list("alternate-server", &alt, "none");
    w.flag("software-attribute", c.software_attribute);

    w.section("TLS");
    match &c.cert {
        Some(p) => w.text("cert", &p.to_string_lossy()),
        None => w.unset("cert", "none"),
    }
    match &c.pkey {
        Some(p) => w.text("pkey", &p.to_string_lossy()),
        None => w.unset("pkey", "none"),
    }
    match &c.cipher_list {
        Some(s) => w.text("cipher-list", s),
        None => w.unset("cipher-list", "the TLS library's default"),
    }
    w.flag("no-tlsv1", c.no_tlsv1);
    w.flag("no-tlsv1_1", c.no_tlsv1_1);
    w.flag("no-tlsv1_2", c.no_tlsv1_2);

    w.section("Logging and process");
    match &c.log_file {
        Some(s) => w.text("log-file", s),
        None => w.unset("log-file", "coturn's search of /var/log, /var/tmp, /tmp and ."),
    }
    w.flag("simple-log", c.simple_log);
    w.flag("no-stdout-log", c.no_stdout_log);
    w.flag("syslog", c.syslog);
    match c.verbosity {
        Verbosity::Normal => w.flag("verbose", false),
        Verbosity::Verbose => w.flag("verbose", true),
        Verbosity::Extra => w.flag("Verbose", true),
    }
    match &c.pidfile {
        Some(p) => w.text("pidfile", &p.to_string_lossy()),
        None => w.unset("pidfile", "none"),
    }
    match &c.proc_user {
        Some(s) => w.text("proc-user", s),
        None => w.unset("proc-user", "keep the starting user"),
    }
    match &c.proc_group {
        Some(s) => w.text("proc-group", s),
        None => w.unset("proc-group", "keep the starting group"),
    }

    w.section("Peers and quotas");
    w.flag("allow-loopback-peers", c.allow_loopback_peers);
    w.flag("no-multicast-peers", c.no_multicast_peers);
    w.list("denied-peer-ip", &ranges(&c.denied_peer_ips), "none");
    w.list("allowed-peer-ip", &ranges(&c.allowed_peer_ips), "none");
    w.val("user-quota", c.user_quota);
    w.val("total-quota", c.total_quota);
    w.val("max-bps", c.max_bps);
    w.val("bps-capacity", c.bps_capacity);

    w.section("Operations");
    w.flag("prometheus", c.prometheus);
    w.val("prometheus-port", c.prometheus_port);
    match c.prometheus_address {
        Some(a) => w.val("prometheus-address", a),
        None => w.unset("prometheus-address", "every IPv4 address"),
    }
    w.text("prometheus-path", &c.prometheus_path);
    w.flag("prometheus-username-labels", c.prometheus_username_labels);
    w.val("drain-min-allocations", c.drain_min_allocations);
    w.val("relay-coalesce-us", c.relay_coalesce_us);
    w.flag("allow-private-peers", c.allow_private_peers);
    w.val("drain-timeout", c.drain_timeout);
    let alt: Vec<String> = c.drain_alternate_servers.iter().map(|s| s.to_string()).collect();
    w.list("drain-alternate-server", &alt, "alternate-server, else 508");
    w.flag("admin-api", c.admin_api);
    w.val("admin-api-address", c.admin_api_address);
    w.val("admin-api-port", c.admin_api_port);
    match (secrets, &c.admin_api_token) {
        (_, None) => w.unset("admin-api-token", "none"),
        (Secrets::Shown, Some(t)) => w.text("admin-api-token", t),
        (Secrets::Hidden, Some(_)) => w.comment("admin-api-token: set, not shown"),
    }
    w.text("log-format", c.log_format.as_str());
    w.0
}

fn ranges(rs: &[IpRange]) -> Vec<String> {
    rs.iter().map(|r| if r.start == r.end { r.start.to_string() } else { format!("{}-{}", r.start, r.end) }).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Out(String);

impl Out {
    fn section(&mut self, title: &str) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        let _ = writeln!(self.0, "# ---- {title} ----");
    }

    fn val(&mut self, name: &str, v: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{name}={v}");
    }

    fn flag(&mut self, name: &str, on: bool) {
        let _ = writeln!(self.0, "{name}={}", if on { "on" } else { "off" });
    }

    /// A string value, quoted when reading it back would change it otherwise.
    fn text(&mut self, name: &str, v: &str) {
        let plain =
            !v.is_empty() && !v.starts_with([' ', '\t', '=', '"']) && !v.ends_with([' ', '\t']) && strip_quotes(v) == v;
        if plain {
            let _ = writeln!(self.0, "{name}={v}");
        } else {
            let _ = writeln!(self.0, "{name}=\"{v}\"");
        }
    }

    fn list<T: std::fmt::Display>(&mut self, name: &str, items: &[T], empty: &str) {
        if items.is_empty() {
            self.unset(name, empty);
        }
        for i in items {
            self.text(name, &i.to_string());
        }
    }

    fn unset(&mut self, name: &str, default: &str) {
        let _ = writeln!(self.0, "#{name}= (not set: {default})");
    }

    fn comment(&mut self, text: &str) {
        let _ = writeln!(self.0, "# {text}");
    }
}
