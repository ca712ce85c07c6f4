//! Building a [`Config`] from entries: each option's value lands in its field, then coturn's
//! derived defaults and the whole-configuration checks run.
//!
//! Entries are applied in the order given: the file's, then the command line's, so the command
//! line overrides scalars and appends to lists. `user` entries wait until everything else is
//! known (coturn's pass 2: it needs the realm and whether `use-auth-secret` is on). Every
//! problem is collected; nothing stops at the first error. Performs no I/O except looking for
//! the `cert` and `pkey` files when the context asks for it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::conf_file::Entry;
use crate::diag::{Diagnostic, Origin};
use crate::options::{self, Arg, OptionSpec, Status};
use crate::values::{self, boolean, number, port, shown, u32_value};
use crate::{Config, LogFormat, Verbosity, search};

/// The `static-auth-secret` of `conf/turnserver.conf`, which must not reach production.
pub const DEV_STATIC_AUTH_SECRET: &str = "tern-dev-secret-change-me";

/// What the builder may look at besides the entries.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The directory relative paths count from.
    pub(crate) cwd: PathBuf,
    /// The config file read, if any (its directory is searched for `cert`/`pkey` too).
    pub(crate) config_file: Option<PathBuf>,
    /// Whether to look for the `cert`/`pkey` files (off for fuzzing).
    pub(crate) check_files: bool,
}

/// The outcome of a build.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) config: Config,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) notices: Vec<Diagnostic>,
    pub(crate) errors: Vec<Diagnostic>,
}

pub(crate) struct Builder {
    ctx: Ctx,
    cfg: Config,
    lt_cred_mech: Option<(bool, Origin)>,
    no_auth: Option<(bool, Origin)>,
    use_auth_secret: Option<(bool, Origin)>,
    users: Vec<Entry>,
    first_user: Option<Origin>,
    single_external_ip: Option<Origin>,
    cert: Option<(String, Origin)>,
    pkey: Option<(String, Origin)>,
    set_at: HashMap<&'static str, Origin>,
    warned: HashSet<&'static str>,
    warnings: Vec<Diagnostic>,
    notices: Vec<Diagnostic>,
    errors: Vec<Diagnostic>,
}

impl Builder {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Builder {
            ctx,
            cfg: Config::default(),
            lt_cred_mech: None,
            no_auth: None,
            use_auth_secret: None,
            users: Vec::new(),
            first_user: None,
            single_external_ip: None,
            cert: None,
            pkey: None,
            set_at: HashMap::new(),
            warned: HashSet::new(),
            warnings: Vec::new(),
            notices: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Applies one option. Unknown names warn (coturn's "Bad configuration format").
    pub(crate) fn apply(&mut self, e: Entry) {
        if e.name.is_empty() {
            self.warn(
                e.origin,
                "this line has no option name before the `=` and is ignored: add the name, or remove the line",
            );
            return;
        }
        let Some(spec) = options::find(&e.name) else {
            let hint = match options::suggest(&e.name) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "check the spelling, or remove the line".to_string(),
            };
            self.warn(
                e.origin,
                format!(
                    "unknown option `{}` is ignored, as coturn does (\"Bad configuration format\"): {hint}",
                    shown(&e.name)
                ),
            );
            return;
        };
        if let Some(c) = e.value.chars().find(|c| c.is_control() && *c != '\t') {
            self.error(
                e.origin,
                format!("{} contains the control character {}: remove it", spec.name, c.escape_default()),
            );
            return;
        }
        if spec.status != Status::Supported {
            self.unsupported(spec, &e);
            return;
        }
        match spec.name {
            "user" => self.users.push(e),
            "version" => self.warn(e.origin, "version only works on the command line, as --version: remove the line"),
            name => {
                self.set_at.insert(name, e.origin.clone());
                if let Err(message) = self.set(spec, &e.value, &e.origin) {
                    self.error(e.origin, message);
                }
            }
        }
    }

    /// Resolves users, derives coturn's defaults and checks the configuration as a whole.
    pub(crate) fn finish(mut self) -> Built {
        self.resolve_users();
        self.derive_auth();
        self.check_whole();
        if self.ctx.check_files {
            self.find_tls_files();
        } else {
            self.cfg.cert = self.cert.take().map(|(p, _)| PathBuf::from(p));
            self.cfg.pkey = self.pkey.take().map(|(p, _)| PathBuf::from(p));
        }
        Built { config: self.cfg, warnings: self.warnings, notices: self.notices, errors: self.errors }
    }

    fn set(&mut self, spec: &OptionSpec, v: &str, origin: &Origin) -> Result<(), String> {
        let n = spec.name;
        let c = &mut self.cfg;
        match n {
            "listening-port" => c.listening_port = port(n, v)?,
            "tls-listening-port" => c.tls_listening_port = port(n, v)?,
            "min-port" => c.min_port = port(n, v)?,
            "max-port" => c.max_port = port(n, v)?,
            "prometheus-port" => c.prometheus_port = port(n, v)?,
            "listening-ip" => {
                let ip = values::ip(n, v)?;
                self.push_ip(n, ip, origin, |c| &mut c.listening_ips);
            }
            "relay-ip" => {
                let ip = values::ip(n, v)?;
                self.push_ip(n, ip, origin, |c| &mut c.relay_ips);
            }
            "external-ip" => {
                let e = values::external_ip(n, v)?;
                if e.private.is_none() {
                    if self.single_external_ip.is_some() {
                        return Err(format!(
                            "external-ip `{}` is a second address without `/private`: coturn takes only one (\"You \
                             cannot define external IP more than once\"); for several, map each as \
                             external-ip=public/private",
                            shown(v)
                        ));
                    }
                    self.single_external_ip = Some(origin.clone());
                }
                self.cfg.external_ips.push(e);
            }
            "relay-threads" => {
                let what = "use 1 to 128 worker threads, or leave it out for one per core";
                let t = number(n, v, u64::MAX, what)?;
                if t > 128 {
                    return Err(format!("{n} `{}` is more than 128: {what}", shown(v)));
                }
                c.relay_threads = Some(t.max(1) as usize);
            }
            "verbose" => {
                let b = boolean(n, v)?;
                if c.verbosity != Verbosity::Extra {
                    c.verbosity = if b { Verbosity::Verbose } else { Verbosity::Normal };
                }
            }
            "Verbose" => {
                if boolean(n, v)? {
                    c.verbosity = Verbosity::Extra;
                }
            }
            "fingerprint" => c.fingerprint = boolean(n, v)?,
            "rfc5766-channel-numbers" => c.rfc5766_channel_numbers = boolean(n, v)?,
            // Tern limits unauthenticated answers by default; the flag asks for what it does.
            "unauthorized-ratelimit" => {
                if !boolean(n, v)? {
                    c.unauthorized_ratelimit_rps = 0;
                }
            }
            "unauthorized-ratelimit-rps" => {
                c.unauthorized_ratelimit_rps =
                    u32_value(n, v, "use a whole number of answers per second; 0 turns it off")?
            }
            "stun-only" => c.stun_only = boolean(n, v)?,
            "no-stun" => c.no_stun = boolean(n, v)?,
            "lt-cred-mech" => self.lt_cred_mech = Some((boolean(n, v)?, origin.clone())),
            "no-auth" => self.no_auth = Some((boolean(n, v)?, origin.clone())),
            "use-auth-secret" => self.use_auth_secret = Some((boolean(n, v)?, origin.clone())),
            "static-auth-secret" => c.static_auth_secrets.push(string(n, v, "<a long random string>")?),
            "realm" => c.realm = Some(string(n, v, "example.org")?),
            "user-quota" => c.user_quota = u32_value(n, v, "use a whole number of allocations; 0 means unlimited")?,
            "total-quota" => c.total_quota = u32_value(n, v, "use a whole number of allocations; 0 means unlimited")?,
            "max-bps" => c.max_bps = number(n, v, u64::MAX, "use bytes per second; 0 means unlimited")?,
            "bps-capacity" => c.bps_capacity = number(n, v, u64::MAX, "use bytes per second; 0 means unlimited")?,
            "no-udp" => c.no_udp = boolean(n, v)?,
            "no-tcp" => c.no_tcp = boolean(n, v)?,
            "no-tls" => c.no_tls = boolean(n, v)?,
            "no-udp-relay" => c.no_udp_relay = boolean(n, v)?,
            "no-tcp-relay" => c.no_tcp_relay = boolean(n, v)?,
            "stale-nonce" => c.stale_nonce = lifetime(n, v, 600)?,
            "max-allocate-lifetime" => c.max_allocate_lifetime = lifetime(n, v, 3600)?,
            "channel-lifetime" => c.channel_lifetime = lifetime(n, v, 600)?,
            "permission-lifetime" => c.permission_lifetime = lifetime(n, v, 300)?,
            "max-allocate-timeout" => c.max_allocate_timeout = u32_value(n, v, "use a whole number of seconds")?,
            "cert" => self.cert = Some((string(n, v, "/etc/turnserver/cert.pem")?, origin.clone())),
            "pkey" => self.pkey = Some((string(n, v, "/etc/turnserver/pkey.pem")?, origin.clone())),
            "cipher-list" => c.cipher_list = Some(string(n, v, "DEFAULT")?),
            "no-tlsv1" => c.no_tlsv1 = boolean(n, v)?,
            "no-tlsv1_1" => c.no_tlsv1_1 = boolean(n, v)?,
            "no-tlsv1_2" => c.no_tlsv1_2 = boolean(n, v)?,
            "no-stdout-log" => c.no_stdout_log = boolean(n, v)?,
            "log-file" => c.log_file = Some(string(n, v, "/var/log/turnserver.log")?),
            "syslog" => c.syslog = boolean(n, v)?,
            "simple-log" => c.simple_log = boolean(n, v)?,
            "alternate-server" => c.alternate_servers.push(values::server(n, v, 3478)?),
            "no-software-attribute" => c.software_attribute = !boolean(n, v)?,
            "software-attribute" => c.software_attribute = boolean(n, v)?,
            "rest-api-separator" => {
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(sep), None) => c.rest_api_separator = sep,
                    (None, _) => return Err(format!("{n} needs a value: one character, e.g. {n}=:")),
                    _ => return Err(format!("{n} `{}` is more than one character: use one, e.g. {n}=:", shown(v))),
                }
            }
            "allow-loopback-peers" => c.allow_loopback_peers = boolean(n, v)?,
            "no-multicast-peers" => c.no_multicast_peers = boolean(n, v)?,
            "denied-peer-ip" => c.denied_peer_ips.push(values::range(n, v)?),
            "allowed-peer-ip" => c.allowed_peer_ips.push(values::range(n, v)?),
            "pidfile" => c.pidfile = Some(PathBuf::from(string(n, v, "/var/run/turnserver.pid")?)),
            "proc-user" => c.proc_user = Some(string(n, v, "turnserver")?),
            "proc-group" => c.proc_group = Some(string(n, v, "turnserver")?),
            "prometheus" => c.prometheus = boolean(n, v)?,
            "prometheus-address" => c.prometheus_address = Some(values::ip(n, v)?),
            "prometheus-path" => {
                if !v.starts_with('/') || v.contains(|ch: char| ch.is_whitespace() || ch == '?' || ch == '#') {
                    return Err(format!("{n} `{}` is not a URL path: use one like {n}=/metrics", shown(v)));
                }
                c.prometheus_path = v.to_string();
            }
            "prometheus-username-labels" => c.prometheus_username_labels = boolean(n, v)?,
            "drain-min-allocations" => {
                c.drain_min_allocations = u32_value(n, v, "use a whole number of allocations, e.g. 0")?;
            }
            "allow-private-peers" => c.allow_private_peers = boolean(n, v)?,
            "relay-coalesce-us" => {
                let us = u32_value(n, v, "use a whole number of microseconds, at most 1000; 0 turns it off")?;
                if us > 1000 {
                    return Err(format!(
                        "relay-coalesce-us={us} would hold datagrams for over a millisecond: use at most 1000 (50 is a good value), or 0 to turn it off"
                    ));
                }
                c.relay_coalesce_us = us;
            }
            "drain-timeout" => c.drain_timeout = u32_value(n, v, "use a whole number of seconds; 0 means no limit")?,
            "drain-alternate-server" => c.drain_alternate_servers.push(values::server(n, v, 3478)?),
            "admin-api" => c.admin_api = boolean(n, v)?,
            "admin-api-address" => c.admin_api_address = values::ip(n, v)?,
            "admin-api-port" => c.admin_api_port = port(n, v)?,
            "admin-api-token" => c.admin_api_token = Some(string(n, v, "<a long random string>")?),
            "log-format" => {
                c.log_format = match v {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(format!("{n} `{}` is not a log format: use {n}=text or {n}=json", shown(v))),
                }
            }
            _ => return Err(format!("{n} is marked supported but Tern has no setter for it: this is a bug in Tern")),
        }
        Ok(())
    }

    /// Adds a listening or relay address once; a repeat is dropped with a warning.
    fn push_ip(&mut self, name: &str, ip: IpAddr, origin: &Origin, list: fn(&mut Config) -> &mut Vec<IpAddr>) {
        let l = list(&mut self.cfg);
        if l.contains(&ip) {
            self.warn(origin.clone(), format!("{name} {ip} is listed twice: keep one line"));
        } else {
            l.push(ip);
        }
    }

    /// An option Tern accepts but does not act on: one warning per option, none when a flag
    /// asks for what Tern does anyway. A bad boolean is still an error, as in coturn.
    fn unsupported(&mut self, spec: &'static OptionSpec, e: &Entry) {
        if spec.arg == Arg::Flag {
            match boolean(spec.name, &e.value) {
                Err(m) => return self.error(e.origin.clone(), m),
                Ok(b) if b == spec.value_tern_already_has() => return,
                Ok(_) => {}
            }
        }
        if !self.warned.insert(spec.name) {
            return;
        }
        let n = spec.name;
        let message = match spec.status {
            Status::NoOp(why) => {
                format!("{n}={} is ignored: {why}; remove it to silence this warning", shown(&e.value))
            }
            Status::Unavailable(why) => format!("{n} is ignored: {why}; remove it to silence this warning"),
            Status::Removed(what) => format!(
                "{n} is not a coturn option any more (coturn 4.17 says \"Bad configuration format\") and is ignored: \
                 {what}"
            ),
            Status::NotYet | Status::Supported => {
                format!("{n} is not supported by Tern yet and is ignored: remove it to silence this warning")
            }
        };
        self.warn(e.origin.clone(), message);
    }

    /// coturn's pass 2: users, once the realm and the auth mode are known.
    fn resolve_users(&mut self) {
        let rest_on =
            self.use_auth_secret.as_ref().is_some_and(|(b, _)| *b) || !self.cfg.static_auth_secrets.is_empty();
        let mut users = Vec::new();
        for e in std::mem::take(&mut self.users) {
            if rest_on {
                if self.warned.insert("user") {
                    self.warn(
                        e.origin,
                        "user is ignored while use-auth-secret or static-auth-secret is set, as in coturn: remove \
                         the user lines, or the secret to use lt-cred-mech",
                    );
                }
                continue;
            }
            match values::user("user", &e.value) {
                Err(m) => self.error(e.origin, m),
                Ok(u) => match users.iter().position(|x: &crate::User| x.name == u.name) {
                    Some(i) => {
                        self.warn(
                            e.origin,
                            format!(
                                "user `{}` is defined again and replaces the earlier one: keep one",
                                shown(&u.name)
                            ),
                        );
                        users[i] = u;
                    }
                    None => {
                        self.first_user.get_or_insert(e.origin);
                        users.push(u);
                    }
                },
            }
        }
        self.cfg.users = users;
    }

    /// coturn's rules for lt-cred-mech, no-auth and use-auth-secret (`main()` in mainrelay.c).
    fn derive_auth(&mut self) {
        let explicit_lt = self.lt_cred_mech.as_ref().is_some_and(|(b, _)| *b);
        let explicit_rest = self.use_auth_secret.as_ref().is_some_and(|(b, _)| *b);
        // A static-auth-secret turns the REST API on by itself in coturn.
        let rest = explicit_rest || !self.cfg.static_auth_secrets.is_empty();
        let mut lt = explicit_lt || rest;
        let anon_origin = self.no_auth.as_ref().filter(|(b, _)| *b).map(|(_, o)| o.clone());
        let mut anon = anon_origin.is_some();
        if let (true, Some(origin)) = (lt, &anon_origin) {
            let other = if explicit_lt {
                "lt-cred-mech"
            } else if explicit_rest {
                "use-auth-secret"
            } else {
                "static-auth-secret"
            };
            self.error(
                origin.clone(),
                format!("no-auth and {other} cannot be used together (coturn refuses this too): keep one of them"),
            );
        }
        if !lt && !anon {
            if let Some(first) = self.users_origin() {
                self.warn(
                    first,
                    "user accounts are defined but lt-cred-mech is not set: turning lt-cred-mech on, as coturn \
                     does; add lt-cred-mech to say so",
                );
                lt = true;
            } else {
                anon = true;
            }
        }
        if let (true, Some(origin), false) = (anon, &anon_origin, self.cfg.users.is_empty()) {
            self.warn(
                origin.clone(),
                "no-auth is set, so the user accounts are ignored, as in coturn: remove no-auth to use them",
            );
            self.cfg.users.clear();
        }
        if explicit_lt && rest {
            let origin = self.lt_cred_mech.as_ref().map_or(Origin::CommandLine, |(_, o)| o.clone());
            self.warn(
                origin,
                "lt-cred-mech and use-auth-secret are both set: the shared secret wins and static users are not \
                 used (coturn warns too); keep only one of them",
            );
        }
        if rest && self.cfg.static_auth_secrets.is_empty() {
            let origin = self.use_auth_secret.as_ref().map_or(Origin::CommandLine, |(_, o)| o.clone());
            self.error(
                origin,
                "use-auth-secret is set but no static-auth-secret is: add static-auth-secret=<a long random string> \
                 (Tern has no database to read turn_secret from)",
            );
        }
        if lt && !anon && self.cfg.realm.is_none() {
            self.warn(
                self.whole(),
                "long-term credentials are on but realm is not set: set realm=<your domain> (coturn would use the \
                 host's domain name)",
            );
        }
        if self.cfg.static_auth_secrets.iter().any(|s| s == DEV_STATIC_AUTH_SECRET) {
            let origin = self.set_at.get("static-auth-secret").cloned().unwrap_or(Origin::CommandLine);
            self.notices.push(Diagnostic::new(
                origin,
                "static-auth-secret is the development secret of conf/turnserver.conf: change it before anyone else \
                 can reach this relay",
            ));
        }
        self.cfg.lt_cred_mech = lt && !anon;
        self.cfg.no_auth = anon;
        self.cfg.use_auth_secret = rest;
    }

    /// Checks that need more than one option.
    fn check_whole(&mut self) {
        let c = &self.cfg;
        if c.min_port > c.max_port {
            let origin = self.origin_of(&["min-port", "max-port"]);
            let (min, max) = (c.min_port, c.max_port);
            self.error(origin, format!("min-port {min} is above max-port {max}: min-port must not be above max-port"));
        }
        let c = &self.cfg;
        if c.bps_capacity > 0 && c.max_bps == 0 {
            let origin = self.origin_of(&["bps-capacity"]);
            self.error(origin, "bps-capacity is set but max-bps is not: set max-bps too (coturn refuses this too)");
        }
        let c = &self.cfg;
        if c.no_udp_relay && c.no_tcp_relay {
            let origin = self.origin_of(&["no-tcp-relay", "no-udp-relay"]);
            self.error(
                origin,
                "no-udp-relay and no-tcp-relay together allow no relay at all: keep at most one of them",
            );
        }
        let c = &self.cfg;
        if c.no_udp && c.no_tcp && c.no_tls {
            let origin = self.origin_of(&["no-tls", "no-tcp", "no-udp"]);
            self.error(origin, "no-udp, no-tcp and no-tls together leave no listener: keep at most two of them");
        }
        let c = &self.cfg;
        if !c.relay_ips.is_empty() {
            let unmapped: Vec<IpAddr> =
                c.external_ips.iter().filter_map(|e| e.private).filter(|p| !c.relay_ips.contains(p)).collect();
            for p in unmapped {
                let origin = self.origin_of(&["external-ip"]);
                self.warn(
                    origin,
                    format!("external-ip maps {p}, which is not a relay-ip, so the mapping is never used: add relay-ip={p} or fix the mapping"),
                );
            }
        }
        let c = &self.cfg;
        if c.admin_api && !c.admin_api_address.is_loopback() && c.admin_api_token.is_none() {
            let origin = self.origin_of(&["admin-api-address", "admin-api"]);
            let addr = c.admin_api_address;
            self.error(
                origin,
                format!(
                    "admin-api-address {addr} is not a loopback address, so the admin API needs a token: set \
                     admin-api-token=<a long random string>, or admin-api-address=127.0.0.1"
                ),
            );
        }
        if self.cfg.allow_loopback_peers {
            let origin = self.origin_of(&["allow-loopback-peers"]);
            self.notices.push(Diagnostic::new(
                origin,
                "allow-loopback-peers lets clients reach this host's loopback services through the relay: use it for \
                 local development only",
            ));
        }
    }

    /// `cert` and `pkey`: searched like the config file; coturn's default names when TLS is on.
    fn find_tls_files(&mut self) {
        let tls_on = !self.cfg.no_tls;
        let cert = self.find_file("cert", self.cert.clone(), "turn_server_cert.pem", tls_on);
        let pkey = self.find_file("pkey", self.pkey.clone(), "turn_server_pkey.pem", tls_on);
        match (&cert, &pkey, tls_on) {
            (Some(_), None, true) if self.pkey.is_none() => self.error(
                self.origin_of(&["cert"]),
                "cert is set but pkey is not, and turn_server_pkey.pem was not found: set pkey=<the private key of \
                 the certificate>, or set no-tls",
            ),
            (None, None, true) if self.cert.is_none() && self.pkey.is_none() => self.warn(
                self.whole(),
                "TLS is on (no no-tls) but cert is not set and turn_server_cert.pem was not found, so there will be \
                 no TLS listener: set cert and pkey, or set no-tls",
            ),
            _ => {}
        }
        self.cfg.cert = cert;
        self.cfg.pkey = pkey;
    }

    fn find_file(
        &mut self,
        name: &str,
        given: Option<(String, Origin)>,
        default: &str,
        tls_on: bool,
    ) -> Option<PathBuf> {
        let dir = self.ctx.config_file.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        let Some((path, origin)) = given else {
            return if tls_on { search::find(default, &self.ctx.cwd, dir.as_deref()) } else { None };
        };
        if let Some(found) = search::find(&path, &self.ctx.cwd, dir.as_deref()) {
            return Some(found);
        }
        let mut places = search::searched(&self.ctx.cwd);
        if let Some(d) = &dir {
            places.push_str(&format!(", {}", d.display()));
        }
        let where_ = if path.starts_with('/') { String::new() } else { format!(" (searched {places})") };
        if tls_on {
            self.error(
                origin,
                format!(
                    "{name} file `{}` was not found{where_}: point {name} at a readable PEM file, or set no-tls",
                    shown(&path)
                ),
            );
        } else {
            self.warn(origin, format!("{name} file `{}` was not found{where_}; no-tls is set, so it is not needed: fix or remove the line", shown(&path)));
        }
        None
    }

    fn users_origin(&self) -> Option<Origin> {
        self.first_user.clone().filter(|_| !self.cfg.users.is_empty())
    }

    /// The origin of the first of `names` that was set, or the whole configuration.
    fn origin_of(&self, names: &[&str]) -> Origin {
        names.iter().find_map(|n| self.set_at.get(n).cloned()).unwrap_or_else(|| self.whole())
    }

    fn whole(&self) -> Origin {
        Origin::Whole { file: self.ctx.config_file.clone() }
    }

    fn warn(&mut self, origin: Origin, message: impl Into<String>) {
        self.warnings.push(Diagnostic::new(origin, message));
    }

    fn error(&mut self, origin: Origin, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(origin, message));
    }
}

/// A string value that must not be empty.
fn string(name: &str, v: &str, example: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err(format!("{name} needs a value, e.g. {name}={example}"));
    }
    Ok(v.to_string())
}

/// A lifetime in seconds; bare means coturn's default (its `get_int_value`).
fn lifetime(name: &str, v: &str, default: u32) -> Result<u32, String> {
    if v.is_empty() {
        return Ok(default);
    }
    u32_value(name, v, "use a whole number of seconds")
}
