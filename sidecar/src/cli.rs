//! Command line and environment: flags → [`Settings`].
//!
//! Precedence is flag > environment > `turnserver.conf` (STYLE.md §10.9). Every problem is a
//! sentence that says what to change; the binary prints it and exits with status 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::creds;
use crate::settings::{OriginPolicy, Secret, Settings};

/// tern-sidecar: WebRTC signaling (rooms by code, SDP/ICE relay) with TURN REST credentials for
/// tern-relay or coturn. Serves the JSON protocol at /ws, socket.io v4 at /socket.io/, a
/// screen-cast demo at /, /healthz and /api/turn-credentials.
#[derive(Debug, Parser)]
#[command(name = "tern-sidecar", version, about, long_about = None)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "TERN_SIDECAR_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,

    /// The relay's turnserver.conf: static-auth-secret, listening/external addresses, ports and
    /// TLS settings give the secret and the ICE server list.
    #[arg(short = 'c', long = "config", env = "TERN_SIDECAR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The relay's static-auth-secret (prefer -c or the environment: flags show in `ps`).
    #[arg(long, env = "TERN_SIDECAR_STATIC_AUTH_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub static_auth_secret: Option<String>,

    /// An ICE URI handed to clients (repeatable); replaces the list built from -c.
    #[arg(long = "turn-uri", value_name = "URI")]
    pub turn_uris: Vec<String>,

    /// Host name or address put in the URIs built from -c (e.g. the name on the TLS
    /// certificate).
    #[arg(long, value_name = "HOST")]
    pub turn_host: Option<String>,

    /// Lifetime of issued TURN credentials, in seconds (or with s/m/h).
    #[arg(long, default_value = "3600", value_parser = parse_duration, value_name = "SECONDS")]
    pub credential_ttl: Duration,

    /// Digits in a room code (4 to 12).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(4..=12))]
    pub room_code_length: u8,

    /// How long a room code stays joinable; a room still unpaired then is closed.
    #[arg(long, default_value = "600", value_parser = parse_duration, value_name = "SECONDS")]
    pub room_ttl: Duration,

    /// Members per room, creator included (2 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=16))]
    pub max_room_members: u8,

    /// An origin allowed to open WebSockets, e.g. https://app.example.com (repeatable; '*'
    /// allows all). Without it only same-origin pages and non-browser clients may connect.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Token a member must present before it gets a room or credentials (Authorization:
    /// Bearer, ?token=, socket.io auth {token}, or an auth message); also enables
    /// /api/turn-credentials.
    #[arg(long, env = "TERN_SIDECAR_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub auth_token: Option<String>,

    /// Open connections in total.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Open connections per client address (per /64 for IPv6).
    #[arg(long, default_value_t = 100)]
    pub max_connections_per_ip: usize,

    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    pub max_message_size: u32,

    /// Join attempts per client address per minute.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_joins_per_minute: u32,

    /// Failed joins per minute across all clients before joins pause for the minute.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_joins_per_minute: u32,

    /// Interval between server pings.
    #[arg(long, default_value = "25", value_parser = parse_duration, value_name = "SECONDS")]
    pub ping_interval: Duration,

    /// Time a ping may go unanswered before the peer counts as dead.
    #[arg(long, default_value = "20", value_parser = parse_duration, value_name = "SECONDS")]
    pub ping_timeout: Duration,

    /// Bytes queued for one slow connection before it is disconnected.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_write_buffer: usize,
}

/// A duration: plain seconds, or a number with `ms`, `s`, `m` or `h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration: use seconds, or 500ms, 30s, 10m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    if !(0.001..=31_536_000.0).contains(&secs) {
        return Err(format!("{s:?} is out of range (1ms to 365 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Turns parsed arguments into settings, reading `-c` if given.
pub fn settings(args: Args) -> Result<Settings, String> {
    let conf = match &args.config {
        Some(path) => Some(load_relay_config(path)?),
        None => None,
    };
    let secret = match (&args.static_auth_secret, conf.as_ref().and_then(creds::secret_from_config)) {
        (Some(s), _) if !s.is_empty() => Secret::new(s.clone()),
        (Some(_), _) => return Err("--static-auth-secret is empty".into()),
        (None, Some(s)) => s,
        (None, None) => {
            return Err(match &args.config {
                Some(p) => format!(
                    "{} has no static-auth-secret: tern-sidecar hands out TURN REST credentials, so the relay must run with \
                     use-auth-secret and static-auth-secret",
                    p.display()
                ),
                None => "no TURN secret: pass -c /etc/turnserver.conf (the relay's config) or --static-auth-secret \
                         (or TERN_SIDECAR_STATIC_AUTH_SECRET)"
                    .into(),
            });
        }
    };
    let turn_uris = if !args.turn_uris.is_empty() {
        for u in &args.turn_uris {
            if !["stun:", "stuns:", "turn:", "turns:"].iter().any(|p| u.starts_with(p)) {
                return Err(format!("--turn-uri {u:?} must start with stun:, stuns:, turn: or turns:"));
            }
        }
        args.turn_uris.clone()
    } else if let Some(cfg) = &conf {
        creds::uris_from_config(cfg, args.turn_host.as_deref()).map_err(|e| e.to_string())?
    } else if let Some(h) = &args.turn_host {
        vec![format!("stun:{h}:3478"), format!("turn:{h}:3478?transport=udp"), format!("turn:{h}:3478?transport=tcp")]
    } else {
        return Err("no TURN URIs: pass -c /etc/turnserver.conf, --turn-host HOST (port 3478) or --turn-uri URI".into());
    };
    let origins = if args.allowed_origins.iter().any(|o| o == "*") {
        OriginPolicy::Any
    } else if args.allowed_origins.is_empty() {
        OriginPolicy::SameOrigin
    } else {
        for o in &args.allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(format!(
                    "--allowed-origin {o:?} must be an origin such as https://app.example.com, or '*'"
                ));
            }
        }
        OriginPolicy::List(args.allowed_origins.clone())
    };
    let auth_token = match args.auth_token {
        Some(t) if t.len() < 16 => return Err("--auth-token must be at least 16 characters".into()),
        Some(t) => Some(Secret::new(t)),
        None => None,
    };
    if args.max_connections == 0 || args.max_connections_per_ip == 0 {
        return Err("--max-connections and --max-connections-per-ip must be at least 1".into());
    }
    if args.max_write_buffer < 2 * args.max_message_size as usize {
        return Err("--max-write-buffer must be at least twice --max-message-size".into());
    }
    let mut s = Settings::new(secret, turn_uris);
    s.listen = args.listen;
    s.credential_ttl = args.credential_ttl;
    s.room_code_length = usize::from(args.room_code_length);
    s.room_ttl = args.room_ttl;
    s.max_room_members = usize::from(args.max_room_members);
    s.origins = origins;
    s.auth_token = auth_token;
    s.max_connections = args.max_connections;
    s.max_connections_per_ip = args.max_connections_per_ip;
    s.max_message_size = args.max_message_size as usize;
    s.max_joins_per_minute = args.max_joins_per_minute;
    s.max_failed_joins_per_minute = args.max_failed_joins_per_minute;
    s.ping_interval = args.ping_interval;
    s.ping_timeout = args.ping_timeout;
    s.max_write_buffer = args.max_write_buffer;
    Ok(s)
}

/// Reads the relay's `turnserver.conf` with the relay's own parser (`relay-config`), so the
/// sidecar and the relay can never read it differently.
fn load_relay_config(path: &std::path::Path) -> Result<relay_config::Config, String> {
    let loaded = relay_config::load_file(path).map_err(|e| format!("reading the relay config:\n{e}"))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let cfg = loaded.config;
    if !cfg.static_auth_secrets.is_empty() && !cfg.use_auth_secret {
        return Err(format!(
            "{} sets static-auth-secret but not use-auth-secret: the relay would refuse the TURN REST credentials \
             the sidecar hands out; add use-auth-secret",
            path.display()
        ));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let a = Args::try_parse_from(std::iter::once("tern-sidecar").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        settings(a)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn a_minimal_command_line_works() {
        let s = parse(&["--static-auth-secret", "s3cret", "--turn-host", "127.0.0.1"]).unwrap();
        assert_eq!(s.turn_uris[1], "turn:127.0.0.1:3478?transport=udp");
        assert_eq!(s.listen.port(), 8080);
        assert_eq!(s.origins, OriginPolicy::SameOrigin);
    }

    #[test]
    fn bad_flags_say_what_to_do() {
        assert!(parse(&["--turn-host", "h"]).unwrap_err().contains("no TURN secret"));
        assert!(parse(&["--static-auth-secret", "s"]).unwrap_err().contains("no TURN URIs"));
        assert!(
            parse(&["--static-auth-secret", "s", "--turn-uri", "http://x"]).unwrap_err().contains("must start with")
        );
        assert!(
            parse(&["--static-auth-secret", "s", "--turn-host", "h", "--auth-token", "short"])
                .unwrap_err()
                .contains("16")
        );
        assert!(
            parse(&["--static-auth-secret", "s", "--turn-host", "h", "--allowed-origin", "x.com"])
                .unwrap_err()
                .contains("origin")
        );
        assert!(parse(&["--static-auth-secret", "s", "--turn-host", "h", "--room-code-length", "2"]).is_err());
        assert!(parse(&["--static-auth-secret", "s", "--turn-host", "h", "--listen", "nope"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn the_relay_config_gives_secret_and_uris() {
        let dir = std::env::temp_dir().join(format!("tern-sidecar-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("turnserver.conf");
        std::fs::write(
            &conf,
            "listening-ip=192.0.2.10\nlistening-port=3479\nexternal-ip=203.0.113.5\nrealm=example.org\n\
             use-auth-secret\nstatic-auth-secret=conf-secret\nno-tls\n",
        )
        .unwrap();
        let c = conf.to_str().unwrap();
        let s = parse(&["-c", c]).unwrap();
        assert_eq!(s.secret, Secret::new("conf-secret"));
        assert_eq!(
            s.turn_uris,
            ["stun:203.0.113.5:3479", "turn:203.0.113.5:3479?transport=udp", "turn:203.0.113.5:3479?transport=tcp"]
        );
        // Flags win over the file.
        let s = parse(&["-c", c, "--static-auth-secret", "flag-secret", "--turn-uri", "turn:x:1"]).unwrap();
        assert_eq!((s.secret, s.turn_uris), (Secret::new("flag-secret"), vec!["turn:x:1".to_owned()]));
        let s = parse(&["-c", c, "--turn-host", "turn.example.org"]).unwrap();
        assert_eq!(s.turn_uris[0], "stun:turn.example.org:3479");

        // static-auth-secret implies use-auth-secret, as in coturn.
        std::fs::write(&conf, "static-auth-secret=conf-secret\nlistening-ip=192.0.2.10\n").unwrap();
        assert!(parse(&["-c", c]).is_ok());
        std::fs::write(&conf, "use-auth-secret\nlistening-ip=192.0.2.10\n").unwrap();
        assert!(parse(&["-c", c]).unwrap_err().contains("no static-auth-secret"));
        std::fs::write(&conf, "use-auth-secret\nstatic-auth-secret=x\n").unwrap();
        assert!(parse(&["-c", c]).unwrap_err().contains("--turn-host"));
        std::fs::write(&conf, "listening-port=notaport\n").unwrap();
        assert!(parse(&["-c", c]).unwrap_err().contains("reading the relay config"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_never_carry_the_secret() {
        let e = parse(&["--static-auth-secret", "TOPSECRET", "--turn-uri", "http://x"]).unwrap_err();
        assert!(!e.contains("TOPSECRET"));
    }
}
