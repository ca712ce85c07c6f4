//! The option table: every option coturn's `turnserver` knows (its example config, plus
//! section B and C of `turnserver-conf-options.md`), with how it is written and what Tern does
//! with it.
//!
//! This is the one place that says which options Tern supports. To support an option, flip its
//! [`Status`] here, give it a field in [`crate::Config`] and a branch in `build.rs`, and change its
//! `# Tern:` line in `conf/turnserver.full.conf` (a test keeps the file and this table in step).
//! Rows follow the order of coturn's example config, then section B, then section C.

/// How an option takes its value (coturn's `long_options[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A boolean flag: bare means on; `name=value` takes coturn's boolean spellings. On the
    /// command line only `--name` or `--name=value` (getopt's optional argument).
    Flag,
    /// Needs a value: `name=value` / `name value` in a file, `--name=value` / `--name value`.
    Required,
    /// May take a value (`--name=value` only, on the command line); bare means the default.
    Optional,
}

/// coturn's groups in its manual (`README.turnserver`), used to lay out `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// "User database settings".
    UserDatabase,
    /// "Flags".
    Flags,
    /// "Options with required values".
    Options,
}

impl Group {
    /// All groups, in the order `--help` prints them.
    pub const ALL: [Group; 3] = [Group::UserDatabase, Group::Flags, Group::Options];

    /// The heading coturn's manual gives the group.
    pub fn heading(self) -> &'static str {
        match self {
            Group::UserDatabase => "User database settings",
            Group::Flags => "Flags",
            Group::Options => "Options with values",
        }
    }
}

/// What Tern does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Takes effect (lands in [`crate::Config`]).
    Supported,
    /// Accepted without a warning: what it asks for is already what Tern does (the reason says
    /// why). A flag set to the opposite value gets the warning of an unsupported option.
    NoOp(&'static str),
    /// Accepted with one warning: not supported yet; the line is ignored.
    NotYet,
    /// Accepted with one warning: Tern does not have the part it configures (the reason).
    Unavailable(&'static str),
    /// No longer known to coturn 4.17 (it logs "Bad configuration format" and goes on); accepted
    /// with one warning that says what to do instead.
    Removed(&'static str),
}

impl Status {
    /// The label `conf/turnserver.full.conf` and `--help` show, e.g. `not supported yet`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Supported => "supported",
            Status::NoOp(_) => "no-op",
            Status::NotYet => "not supported yet",
            Status::Unavailable(_) => "not in Tern",
            Status::Removed(_) => "removed from coturn",
        }
    }

    /// The reason that goes with the label, if any.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Status::Supported | Status::NotYet => None,
            Status::NoOp(r) | Status::Unavailable(r) | Status::Removed(r) => Some(r),
        }
    }
}

/// One option of `turnserver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The long name: the name in `turnserver.conf`, and `--name` on the command line.
    pub name: &'static str,
    /// The short alias (`-p`), if coturn has one.
    pub short: Option<char>,
    /// How it takes its value.
    pub arg: Arg,
    /// Whether repeating it adds to a list (otherwise the last one wins).
    pub repeatable: bool,
    /// coturn's group, for `--help`.
    pub group: Group,
    /// What Tern does with it.
    pub status: Status,
    /// The value's placeholder in `--help`, e.g. `<port>`; empty for flags.
    pub hint: &'static str,
    /// One line saying what it does, with coturn's default.
    pub summary: &'static str,
}

impl OptionSpec {
    /// Whether the short alias takes a value (coturn's getopt string
    /// `c:d:p:L:E:X:i:m:l:r:u:b:B:e:M:J:N:O:q:Q:s:C:K:A:vVofhznaS`). Note `-K`: the long form is
    /// a flag, but coturn's short form needs a value.
    pub fn short_takes_value(&self) -> bool {
        self.arg != Arg::Flag || self.short == Some('K')
    }

    /// For a flag that Tern does not support: the value that asks for what Tern does anyway,
    /// so setting it needs no warning (`stun-only=false`, `no-cli`).
    pub(crate) fn value_tern_already_has(&self) -> bool {
        matches!(self.status, Status::NoOp(_)) || TERN_ALREADY_DOES.contains(&self.name)
    }
}

/// Unsupported flags whose "on" is what Tern does anyway (coturn's default is on too).
const TERN_ALREADY_DOES: &[&str] = &["drop-invalid-packets"];

/// Looks an option up by its exact long name (names are case-sensitive: `verbose` ≠ `Verbose`).
pub fn find(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// Looks an option up by its short alias.
pub fn find_short(c: char) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

/// The known name closest to `name`, for "did you mean" (same name in another case, or at
/// most two edits away).
pub fn suggest(name: &str) -> Option<&'static str> {
    if let Some(o) = OPTIONS.iter().find(|o| o.name.eq_ignore_ascii_case(name)) {
        return Some(o.name);
    }
    let limit = if name.len() <= 4 { 1 } else { 2 };
    OPTIONS
        .iter()
        .map(|o| (edit_distance(name, o.name), o.name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance over bytes (names are ASCII); gives up early on long inputs.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 || a.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[allow(clippy::too_many_arguments)] // one table row, named by the struct fields it fills
const fn o(
    name: &'static str,
    short: Option<char>,
    arg: Arg,
    repeatable: bool,
    group: Group,
    status: Status,
    hint: &'static str,
    summary: &'static str,
) -> OptionSpec {
    OptionSpec { name, short, arg, repeatable, group, status, hint, summary }
}

const fn flag(name: &'static str, short: Option<char>, status: Status, summary: &'static str) -> OptionSpec {
    o(name, short, Arg::Flag, false, Group::Flags, status, "", summary)
}

const fn val(
    name: &'static str,
    short: Option<char>,
    status: Status,
    hint: &'static str,
    summary: &'static str,
) -> OptionSpec {
    o(name, short, Arg::Required, false, Group::Options, status, hint, summary)
}

const fn list(
    name: &'static str,
    short: Option<char>,
    status: Status,
    hint: &'static str,
    summary: &'static str,
) -> OptionSpec {
    o(name, short, Arg::Required, true, Group::Options, status, hint, summary)
}

const fn db(name: &'static str, short: Option<char>, hint: &'static str, summary: &'static str) -> OptionSpec {
    o(name, short, Arg::Required, false, Group::UserDatabase, NOT_YET, hint, summary)
}

const fn lifetime(name: &'static str, summary: &'static str) -> OptionSpec {
    o(name, None, Arg::Optional, false, Group::Options, SUPPORTED, "<seconds>", summary)
}

const NOT_YET: Status = Status::NotYet;
const SUPPORTED: Status = Status::Supported;

const NO_DTLS: &str = "Tern has no DTLS";
const NO_CLI: &str = "Tern has no telnet CLI";
const NO_OLD_TLS: &str = "rustls offers TLS 1.2 and 1.3 only";

/// Every option `turnserver` knows, in the order of coturn's example config, then section B,
/// then section C of the options reference.
pub static OPTIONS: &[OptionSpec] = &[
    // ---- A: coturn's example turnserver.conf, in its order ----
    val("listening-device", Some('d'), NOT_YET, "<device>", "Bind the listeners to this network device (Linux)."),
    val("listening-port", Some('p'), SUPPORTED, "<port>", "TURN listener port for UDP and TCP (default 3478)."),
    val("tls-listening-port", None, SUPPORTED, "<port>", "TURN listener port for TLS (default 5349)."),
    val("alt-listening-port", None, NOT_YET, "<port>", "Alternative port for RFC 5780 (default listening-port + 1)."),
    val("alt-tls-listening-port", None, NOT_YET, "<port>", "Alternative TLS port (default tls-listening-port + 1)."),
    val("tcp-proxy-port", None, NOT_YET, "<port>", "Extra TCP listener behind HAProxy's PROXY protocol v2."),
    list(
        "listening-ip",
        Some('L'),
        SUPPORTED,
        "<ip>",
        "Listener address; repeat for several (default: every address).",
    ),
    list("aux-server", None, NOT_YET, "<ip:port>", "Auxiliary STUN/TURN listener endpoint."),
    flag("udp-self-balance", None, NOT_YET, "Balance UDP clients over the aux servers with 300 ALTERNATE-SERVER."),
    val("relay-device", Some('i'), NOT_YET, "<device>", "Bind the relay sockets to this network device (Linux)."),
    list("relay-ip", Some('E'), SUPPORTED, "<ip>", "Local address for relay endpoints; repeat for several."),
    list(
        "external-ip",
        Some('X'),
        SUPPORTED,
        "<public-ip[/private-ip]>",
        "Public address reported in XOR-RELAYED-ADDRESS when behind NAT.",
    ),
    val("relay-threads", Some('m'), SUPPORTED, "<number>", "Number of relay worker threads (default: one per core)."),
    val("cpus", None, NOT_YET, "<number>", "Override the CPU count used for the default relay-threads."),
    val("min-port", None, SUPPORTED, "<port>", "Lowest relay port (default 49152)."),
    val("max-port", None, SUPPORTED, "<port>", "Highest relay port (default 65535)."),
    val("sock-buf-size", None, NOT_YET, "<bytes>", "UDP socket buffer size (default 2097152)."),
    flag(
        "udp-recvmmsg",
        None,
        Status::NoOp("Tern always reads UDP with recvmmsg batches"),
        "Batched recvmmsg(2) on the shared UDP sockets (coturn: on).",
    ),
    flag("udp-recvmmsg-log", None, NOT_YET, "Log recvmmsg batch statistics every 10 s."),
    flag(
        "udp-gso",
        None,
        Status::NoOp("Tern uses UDP GSO wherever a route accepts it"),
        "UDP GSO on the relay send path (needs multiplex-peer).",
    ),
    flag("multiplex-peer", None, NOT_YET, "Non-standard: one shared relay socket per thread, demultiplexed by peer."),
    val("multiplex-peer-port", None, NOT_YET, "<port>", "Base port of the multiplex-peer sockets (default 3480)."),
    val("multiplex-peer-max-peers", None, NOT_YET, "<number>", "Peers per allocation in multiplex-peer mode (256)."),
    flag("verbose", Some('v'), SUPPORTED, "Moderate verbose logging."),
    flag("Verbose", Some('V'), SUPPORTED, "Extra verbose logging."),
    flag("fingerprint", Some('f'), SUPPORTED, "Add FINGERPRINT to the messages."),
    flag("lt-cred-mech", Some('a'), SUPPORTED, "Long-term credentials (default: on when users are defined)."),
    flag("no-auth", Some('z'), SUPPORTED, "Anonymous access (default when no users and no secret are set)."),
    flag(
        "unauthorized-ratelimit",
        None,
        SUPPORTED,
        "Rate-limit UDP 401 responses per source address (Tern: always on).",
    ),
    val(
        "unauthorized-ratelimit-rps",
        None,
        SUPPORTED,
        "<number>",
        "401/438 answers per UDP source per second (Tern default 10; 0 = off).",
    ),
    flag(
        "stateless-nonce",
        None,
        Status::NoOp("Tern's nonces are always stateless HMAC cookies"),
        "Stateless HMAC nonces (coturn 4.17: on).",
    ),
    val("stateless-nonce-secret", None, NOT_YET, "<secret>", "Shared key for stateless nonces across a fleet."),
    flag("prometheus", None, SUPPORTED, "Prometheus exporter on prometheus-port, path /metrics."),
    flag(
        "prometheus-username-labels",
        None,
        SUPPORTED,
        "Per-user series for the live allocations (small deployments).",
    ),
    val("prometheus-port", None, SUPPORTED, "<port>", "Prometheus exporter port (default 9641)."),
    flag("use-auth-secret", None, SUPPORTED, "TURN REST API: time-limited credentials from static-auth-secret."),
    list("static-auth-secret", None, SUPPORTED, "<secret>", "Shared secret of the TURN REST API; repeat for several."),
    val("server-name", None, NOT_YET, "<name>", "Server name for OAuth (default: the realm)."),
    flag("oauth", None, NOT_YET, "RFC 7635 third-party (OAuth) authorization."),
    list("user", Some('u'), SUPPORTED, "<name:password>", "Static long-term user, name:password or name:0x<key>."),
    db("userdb", Some('b'), "<file>", "SQLite user database."),
    db("psql-userdb", Some('e'), "<conn-string>", "PostgreSQL user database."),
    db("mysql-userdb", Some('M'), "<conn-string>", "MySQL user database."),
    db("secret-key-file", None, "<file>", "AES key file for an encrypted MySQL password."),
    db("mongo-userdb", Some('J'), "<uri>", "MongoDB user database."),
    db("redis-userdb", Some('N'), "<conn-string>", "Redis user database."),
    val("redis-statsdb", Some('O'), NOT_YET, "<conn-string>", "Redis database for allocation status and events."),
    val("realm", Some('r'), SUPPORTED, "<realm>", "Default realm (coturn's default: the host's domain name)."),
    flag("check-origin-consistency", None, NOT_YET, "All requests of a session must carry the same ORIGIN."),
    val("user-quota", Some('q'), SUPPORTED, "<number>", "Concurrent allocations per user (0 = unlimited)."),
    val("total-quota", Some('Q'), SUPPORTED, "<number>", "Concurrent allocations in total (0 = unlimited)."),
    val("max-bps", Some('s'), SUPPORTED, "<bytes/s>", "Bandwidth per session, each direction (0 = unlimited)."),
    val("bps-capacity", Some('B'), SUPPORTED, "<bytes/s>", "Bandwidth of the whole server (0 = unlimited)."),
    flag("no-udp", None, SUPPORTED, "No UDP client listener."),
    flag("no-tcp", None, SUPPORTED, "No TCP client listener."),
    flag("no-tls", None, SUPPORTED, "No TLS client listener."),
    flag("dtls", None, Status::Unavailable(NO_DTLS), "Start the DTLS listeners."),
    flag("no-dtls", None, Status::NoOp(NO_DTLS), "No DTLS listener (deprecated in coturn 4.17)."),
    flag("no-udp-relay", None, SUPPORTED, "Refuse UDP relay allocations."),
    flag("no-tcp-relay", None, SUPPORTED, "Refuse RFC 6062 TCP relay allocations."),
    o(
        "stale-nonce",
        None,
        Arg::Optional,
        false,
        Group::Flags,
        SUPPORTED,
        "<seconds>",
        "Nonce lifetime (default 600; 0 = unlimited).",
    ),
    lifetime("max-allocate-lifetime", "Cap on the allocation lifetime a client may ask for (default 3600)."),
    lifetime("channel-lifetime", "Channel binding lifetime (default 600; do not change in production)."),
    lifetime("permission-lifetime", "Permission lifetime (default 300; do not change in production)."),
    val("cert", None, SUPPORTED, "<file>", "TLS certificate chain, PEM (searched like the config file)."),
    val("pkey", None, SUPPORTED, "<file>", "TLS private key, PEM (searched like the config file)."),
    flag("raw-public-keys", None, NOT_YET, "RFC 7250 raw public keys."),
    val("pkey-pwd", None, NOT_YET, "<password>", "Password of an encrypted private key."),
    val("cipher-list", None, SUPPORTED, "<ciphers>", "Allowed TLS cipher list (OpenSSL syntax)."),
    val("CA-file", None, NOT_YET, "<file>", "CA bundle; makes the server verify client certificates."),
    val("ec-curve-name", None, NOT_YET, "<curve>", "ECDH curve."),
    flag("dh566", None, NOT_YET, "566-bit predefined DH parameters."),
    flag("dh1066", None, NOT_YET, "1066-bit predefined DH parameters."),
    val("dh-file", None, NOT_YET, "<file>", "Custom DH parameters, PEM."),
    flag("no-stdout-log", None, SUPPORTED, "Do not also log to stdout."),
    val("log-file", Some('l'), SUPPORTED, "<file>", "Log file; \"stdout\", \"-\" and \"syslog\" are special."),
    flag("syslog", None, SUPPORTED, "Log to syslog."),
    val("syslog-facility", None, NOT_YET, "<facility>", "Syslog facility, e.g. LOG_LOCAL1."),
    flag("simple-log", None, SUPPORTED, "Log file name as given: no date or PID, no rollover."),
    val("log-min-level", None, NOT_YET, "<level>", "Lowest level logged: debug, info, warning or error."),
    flag("new-log-timestamp", None, NOT_YET, "ISO-8601 timestamps (coturn 4.17: on)."),
    val("new-log-timestamp-format", None, NOT_YET, "<format>", "strftime(3) format of the timestamps."),
    flag("log-binding", None, NOT_YET, "Log STUN Binding requests."),
    list("alternate-server", None, SUPPORTED, "<ip[:port]>", "Redirect Allocate with 300 ALTERNATE-SERVER."),
    list("tls-alternate-server", None, NOT_YET, "<ip[:port]>", "Alternate server for TLS clients."),
    list("udp-alternate-server", None, NOT_YET, "<ip[:port]>", "Alternate server for UDP clients."),
    list("tcp-alternate-server", None, NOT_YET, "<ip[:port]>", "Alternate server for TCP clients."),
    flag("stun-only", Some('S'), SUPPORTED, "STUN only: ignore TURN requests."),
    flag("no-software-attribute", None, SUPPORTED, "Do not send SOFTWARE (already the default)."),
    flag("no-stun", None, SUPPORTED, "TURN only: ignore STUN Binding requests."),
    val("rest-api-separator", Some('C'), SUPPORTED, "<char>", "Separator in TURN REST user names (default ':')."),
    flag("allow-loopback-peers", None, SUPPORTED, "Allow loopback peers (development only)."),
    flag("no-multicast-peers", None, SUPPORTED, "Deny multicast and broadcast peers."),
    val("max-allocate-timeout", None, SUPPORTED, "<seconds>", "Time allowed to complete an allocation (60)."),
    val("drain-min-allocations", None, SUPPORTED, "<number>", "In drain mode, exit at this many allocations."),
    list("denied-peer-ip", None, SUPPORTED, "<ip[-ip]>", "Deny peers in this address or range."),
    list("allowed-peer-ip", None, SUPPORTED, "<ip[-ip]>", "Allow peers in this address or range (beats denied)."),
    val("pidfile", None, SUPPORTED, "<file>", "Write the process id here."),
    flag("secure-stun", None, NOT_YET, "Require authentication for STUN Binding."),
    flag("mobility", None, NOT_YET, "RFC 8016 mobility."),
    flag("keep-address-family", Some('K'), NOT_YET, "Deprecated: relay in the client's address family."),
    val(
        "allocation-default-address-family",
        Some('A'),
        NOT_YET,
        "<ipv4|ipv6|keep>",
        "Relay family when the client does not ask.",
    ),
    val("proc-user", None, SUPPORTED, "<user>", "Drop privileges to this user once the sockets are bound."),
    val("proc-group", None, SUPPORTED, "<group>", "Drop privileges to this group once the sockets are bound."),
    flag("cli", None, Status::Unavailable(NO_CLI), "Enable the telnet admin CLI."),
    val("cli-ip", None, Status::Unavailable(NO_CLI), "<ip>", "Telnet CLI address."),
    val("cli-port", None, Status::Unavailable(NO_CLI), "<port>", "Telnet CLI port."),
    val("cli-password", None, Status::Unavailable(NO_CLI), "<password>", "Telnet CLI password."),
    flag("web-admin", None, NOT_YET, "HTTPS web admin interface."),
    val("web-admin-ip", None, NOT_YET, "<ip>", "Web admin address."),
    val("web-admin-port", None, NOT_YET, "<port>", "Web admin port."),
    flag("web-admin-listen-on-workers", None, NOT_YET, "Serve the web admin on the TURN ports too."),
    val("acme-redirect", None, NOT_YET, "<url>", "Redirect ACME HTTP challenges on the TURN ports."),
    flag(
        "server-relay",
        None,
        Status::Unavailable("Tern always checks permissions on relayed packets"),
        "Non-standard: skip the permission check on relay endpoints.",
    ),
    val("cli-max-output-sessions", None, Status::Unavailable(NO_CLI), "<number>", "Sessions shown by the CLI."),
    val(
        "ne",
        None,
        Status::Removed("the network engine choice is gone from coturn; delete the line"),
        "<1|2|3>",
        "Network engine (removed).",
    ),
    flag("tlsv1", None, Status::Unavailable(NO_OLD_TLS), "Allow TLS 1.0."),
    flag("tlsv1_1", None, Status::Unavailable(NO_OLD_TLS), "Allow TLS 1.1."),
    flag("no-tlsv1_2", None, SUPPORTED, "Require TLS 1.3."),
    flag("rfc5780", None, NOT_YET, "RFC 5780 NAT behaviour discovery."),
    flag("stun-backward-compatibility", None, NOT_YET, "Also send MAPPED-ADDRESS in Binding responses."),
    flag("rfc3489-compatibility", None, NOT_YET, "Answer RFC 3489 Binding requests (no magic cookie)."),
    flag("rfc5766-channel-numbers", None, SUPPORTED, "Accept channel numbers 0x5000-0x7FFF."),
    flag("respond-http-unsupported", None, NOT_YET, "Answer HTTP on the TURN TCP ports with 400."),
    flag("include-reason-string", None, NOT_YET, "Detailed reason phrases in error responses."),
    // ---- B: accepted by coturn 4.17.1 but not in its example file ----
    flag("daemon", Some('o'), NOT_YET, "Fork to the background."),
    db("db", None, "<file>", "Alias of userdb."),
    db("sql-userdb", None, "<conn-string>", "Alias of psql-userdb."),
    flag("no-cli", None, Status::NoOp(NO_CLI), "No telnet CLI (deprecated in coturn 4.17)."),
    flag("no-rfc5780", None, Status::NoOp("Tern does no RFC 5780 discovery"), "No RFC 5780 (a no-op in coturn 4.17)."),
    flag(
        "response-origin-only-with-rfc5780",
        None,
        Status::NoOp("Tern does no RFC 5780 discovery"),
        "RESPONSE-ORIGIN only with RFC 5780 (a no-op in coturn 4.17).",
    ),
    flag("software-attribute", None, SUPPORTED, "Send the SOFTWARE attribute (debugging)."),
    flag("no-auth-pings", None, NOT_YET, "No health pings to the user database."),
    flag("no-dynamic-ip-list", None, NOT_YET, "Ignore the database's peer allow/deny tables."),
    flag("no-dynamic-realms", None, NOT_YET, "Ignore the database's realm options."),
    val("prometheus-address", None, SUPPORTED, "<ip>", "Prometheus exporter address (default: every IPv4 address)."),
    val("prometheus-path", None, SUPPORTED, "<path>", "Prometheus exporter path (default /metrics)."),
    flag("prometheus-tls", None, NOT_YET, "Serve the Prometheus exporter over HTTPS."),
    val("prometheus-cert", None, NOT_YET, "<file>", "Certificate of the HTTPS exporter (default: cert)."),
    val("prometheus-key", None, NOT_YET, "<file>", "Key of the HTTPS exporter (default: pkey)."),
    flag("drop-invalid-packets", None, NOT_YET, "Drop malformed packets early (coturn: on)."),
    flag("drop-invalid-packets-log", None, NOT_YET, "Log dropped malformed packets."),
    flag("udp-sendmmsg-log", None, NOT_YET, "Log sendmmsg/GSO batch statistics."),
    flag("version", None, SUPPORTED, "Print the version and exit (command line only)."),
    // ---- C: found in real configs, no longer known to coturn 4.17.1 ----
    flag("no-tlsv1", None, SUPPORTED, "No TLS 1.0 (always so with rustls)."),
    flag("no-tlsv1_1", None, SUPPORTED, "No TLS 1.1 (always so with rustls)."),
    flag("no-sslv2", None, Status::Removed("SSLv2 is never offered; delete the line"), "No SSLv2."),
    flag("no-sslv3", None, Status::Removed("SSLv3 is never offered; delete the line"), "No SSLv3."),
    flag(
        "no-stun-backward-compatibility",
        None,
        Status::Removed("it is the default now; delete the line"),
        "No MAPPED-ADDRESS, no RFC 3489.",
    ),
    flag(
        "no-loopback-peers",
        None,
        Status::Removed("loopback peers are denied unless allow-loopback-peers is set; delete the line"),
        "Deny loopback peers.",
    ),
    flag(
        "prod",
        None,
        Status::Removed("SOFTWARE is only sent with software-attribute; delete the line"),
        "Production mode: hide SOFTWARE.",
    ),
    val(
        "secret-ts-exp-time",
        None,
        Status::Removed("a TURN REST user name's timestamp is its expiry time; delete the line"),
        "<seconds>",
        "REST credential expiry window.",
    ), // ---- D: Tern's own options (coturn does not know them) ----
    val("log-format", None, SUPPORTED, "<text|json>", "Log line format: text (default) or json, one object a line."),
    val(
        "drain-timeout",
        None,
        SUPPORTED,
        "<seconds>",
        "Drain (SIGUSR1) exits after this long anyway (3600; 0 = never).",
    ),
    list("drain-alternate-server", None, SUPPORTED, "<ip[:port]>", "In drain mode, redirect Allocate here with 300."),
    flag("admin-api", None, SUPPORTED, "Admin HTTP API: sessions, kill, /healthz, /readyz."),
    val("admin-api-address", None, SUPPORTED, "<ip>", "Admin API address (default 127.0.0.1)."),
    val("admin-api-port", None, SUPPORTED, "<port>", "Admin API port (default 9642)."),
    val("admin-api-token", None, SUPPORTED, "<token>", "Bearer token of the admin API; required off loopback."),
    val(
        "relay-coalesce-us",
        None,
        SUPPORTED,
        "<microseconds>",
        "After a small turn, sleep this long so the next turn finds several datagrams, while that measurably saves CPU (default 50; 0 = off: the lowest latency, it adds ~0.1-0.2 ms a hop when on).",
    ),
    flag(
        "allow-private-peers",
        None,
        SUPPORTED,
        "Allow private, shared and documentation-range peers unless denied (coturn's default; Tern denies them).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_appears_once() {
        for (i, a) in OPTIONS.iter().enumerate() {
            assert!(OPTIONS[i + 1..].iter().all(|b| b.name != a.name), "{} is listed twice", a.name);
        }
    }

    #[test]
    fn the_table_holds_coturn_sections_a_b_and_c() {
        // 125 rows in section A (the example config), 19 in B, 8 more in C (`ne` is in A), and
        // Tern's own 7 in D.
        assert_eq!(OPTIONS.len(), 161);
    }

    #[test]
    fn short_aliases_match_coturn_usage() {
        let want = [
            ('p', "listening-port"),
            ('L', "listening-ip"),
            ('E', "relay-ip"),
            ('X', "external-ip"),
            ('m', "relay-threads"),
            ('a', "lt-cred-mech"),
            ('z', "no-auth"),
            ('u', "user"),
            ('r', "realm"),
            ('q', "user-quota"),
            ('Q', "total-quota"),
            ('s', "max-bps"),
            ('B', "bps-capacity"),
            ('v', "verbose"),
            ('V', "Verbose"),
            ('o', "daemon"),
            ('f', "fingerprint"),
            ('S', "stun-only"),
            ('l', "log-file"),
            ('b', "userdb"),
            ('e', "psql-userdb"),
            ('M', "mysql-userdb"),
            ('J', "mongo-userdb"),
            ('N', "redis-userdb"),
            ('O', "redis-statsdb"),
            ('C', "rest-api-separator"),
            ('K', "keep-address-family"),
            ('A', "allocation-default-address-family"),
            ('d', "listening-device"),
            ('i', "relay-device"),
        ];
        for (c, name) in want {
            assert_eq!(find_short(c).map(|o| o.name), Some(name), "-{c}");
        }
        let shorts = OPTIONS.iter().filter(|o| o.short.is_some()).count();
        assert_eq!(shorts, want.len(), "an option has a short alias coturn does not have");
    }

    #[test]
    fn short_options_take_values_as_coturn_getopt_string_says() {
        let getopt = "d:p:L:E:X:i:m:l:r:u:b:B:e:M:J:N:O:q:Q:s:C:K:A:vVofzaS";
        let mut chars = getopt.chars().peekable();
        while let Some(c) = chars.next() {
            let takes = chars.peek() == Some(&':');
            if takes {
                chars.next();
            }
            let spec = find_short(c).unwrap_or_else(|| panic!("-{c} missing"));
            assert_eq!(spec.short_takes_value(), takes, "-{c}");
        }
    }

    #[test]
    fn suggestions_find_near_misses() {
        assert_eq!(suggest("listen-port"), None);
        assert_eq!(suggest("listening-prot"), Some("listening-port"));
        assert_eq!(suggest("ca-file"), Some("CA-file"));
        assert_eq!(suggest("min_port"), Some("min-port"));
        assert_eq!(suggest("zzzz"), None);
    }
}
