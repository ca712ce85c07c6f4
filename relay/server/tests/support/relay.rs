//! A `tern-relay` child process for one test: started from a [`Launch`] on free loopback ports
//! with a scratch directory of its own (log, config file, pidfile, certificate), ready once it
//! answers a Binding request (or logs a given line), killed when dropped. Its log, its exit,
//! signals and /proc readings.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use relay_proto::stun::Message;

use super::client::{Client, Proto, binding_request, random_tid};
use super::ports::{LOCALHOST, LOCALHOST6, free_port, free_port_on, free_range};
use super::tls::TestCert;

/// The realm of every relay these tests start.
pub const REALM: &str = "tern.test";
/// The TURN REST secret of [`Launch::rest_auth`].
pub const SECRET: &str = "tern-test-secret";
/// The long-term users of [`Launch::users`]; each one's password is its name and `-pw`.
pub const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// The built relay binary.
pub fn relay_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tern-relay")
}

/// A scratch directory, removed on drop unless the test is failing (then it is kept, and said
/// where, for its logs).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tern-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for its logs", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// When a started relay counts as ready.
#[derive(Clone, Copy)]
pub enum Ready {
    /// It answers a Binding request on its listening port.
    Binding,
    /// Its log has this text.
    Log(&'static str),
    /// At once (a test that expects the relay to refuse to start).
    Now,
}

/// How to start a relay. Every one listens and relays on 127.0.0.1 (and on [`Launch::listen`]'s
/// addresses) with a free listening port, a free relay port range and the realm [`REALM`], and
/// without TLS unless given a certificate; the rest (auth, policy, limits) is the test's.
pub struct Launch {
    args: Vec<String>,
    config: Option<String>,
    listen: Vec<IpAddr>,
    range: u16,
    port: Option<u16>,
    cert: Option<TestCert>,
    env: Vec<(String, String)>,
    nofile: Option<u32>,
    managed: bool,
    ready: Ready,
}

impl Default for Launch {
    fn default() -> Self {
        Launch::new()
    }
}

impl Launch {
    pub fn new() -> Launch {
        Launch {
            args: Vec::new(),
            config: None,
            listen: Vec::new(),
            range: 100,
            port: None,
            cert: None,
            env: Vec::new(),
            nofile: None,
            managed: false,
            ready: Ready::Binding,
        }
    }

    /// More command-line flags, after the ones the launch writes itself.
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Launch {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// TURN REST auth with [`SECRET`].
    pub fn rest_auth(self) -> Launch {
        self.args(&["--use-auth-secret", &format!("--static-auth-secret={SECRET}")])
    }

    /// Long-term credentials for [`USERS`].
    pub fn users(self) -> Launch {
        let users: Vec<String> = USERS.iter().map(|u| format!("--user={u}:{u}-pw")).collect();
        self.args(&["--lt-cred-mech"]).args(&users)
    }

    /// Also listen and relay on these local addresses (the listening port and the relay range
    /// are picked free on them too).
    pub fn listen(mut self, ips: &[IpAddr]) -> Launch {
        self.listen.extend_from_slice(ips);
        self
    }

    /// A relay port range of `n` ports (100 unless set).
    pub fn range(mut self, n: u16) -> Launch {
        self.range = n;
        self
    }

    /// This listening port rather than a free one.
    pub fn port(mut self, port: u16) -> Launch {
        self.port = Some(port);
        self
    }

    /// A config file with this text, given with `-c` (else `-n`).
    pub fn config(mut self, text: impl Into<String>) -> Launch {
        self.config = Some(text.into());
        self
    }

    /// TLS with `cert` (written to the scratch directory as `cert.pem` and `pkey.pem`) on a
    /// TLS listening port of its own.
    pub fn cert(mut self, cert: &TestCert) -> Launch {
        self.cert = Some(cert.clone());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Start under `ulimit -n nofile`.
    pub fn nofile(mut self, nofile: u32) -> Launch {
        self.nofile = Some(nofile);
        self
    }

    /// As a service manager runs it: a log file of its own (which SIGHUP reopens) instead of
    /// stdout, a pidfile, and ports on 127.0.0.1 for the exporter and the admin API (which the
    /// test still has to switch on).
    pub fn managed(mut self) -> Launch {
        self.managed = true;
        self
    }

    pub fn ready(mut self, ready: Ready) -> Launch {
        self.ready = ready;
        self
    }

    /// Starts the relay and waits until it is ready. A relay that exits first (a port was
    /// taken between the check and its bind) is started again on other ports, three times.
    pub fn start(self) -> Relay {
        let dir = TempDir::new("relay");
        let p = |name: &str| dir.0.join(name);
        let mut relay = Relay {
            child: None,
            port: 0,
            addr: SocketAddr::new(LOCALHOST, 0),
            min_port: 0,
            max_port: 0,
            tls: SocketAddr::new(LOCALHOST, 0),
            metrics_port: 0,
            admin_port: 0,
            log: if self.managed { p("relay.log") } else { p("stdout.log") },
            stdout: p("stdout.log"),
            stderr: p("stderr.log"),
            config: p("turnserver.conf"),
            pidfile: p("relay.pid"),
            cert: p("cert.pem"),
            pkey: p("pkey.pem"),
            dir,
        };
        if let Some(text) = &self.config {
            std::fs::write(&relay.config, text).unwrap();
        }
        if let Some(cert) = &self.cert {
            cert.write(&relay.dir.0);
        }
        for attempt in 0..3 {
            relay.spawn(&self);
            if relay.wait_ready(self.ready) {
                return relay;
            }
            eprintln!("tern-relay exited at start-up (attempt {attempt}):\n{}", relay.output());
        }
        panic!("tern-relay did not start");
    }

    /// Runs the relay to its end (it must exit within 10 s) and returns its output.
    pub fn run_to_exit(self) -> Output {
        let mut relay = self.ready(Ready::Now).start();
        let Some(status) = relay.wait_exit(Duration::from_secs(10)) else {
            panic!("tern-relay did not exit:\n{}", relay.output());
        };
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        Output { status, stdout: read(&relay.stdout), stderr: read(&relay.stderr) }
    }
}

/// A running `tern-relay`, killed when dropped.
pub struct Relay {
    child: Option<Child>,
    /// The listening port, for UDP and TCP.
    pub port: u16,
    /// 127.0.0.1 at the listening port.
    pub addr: SocketAddr,
    pub min_port: u16,
    pub max_port: u16,
    /// The TLS listener, when the launch had a certificate.
    pub tls: SocketAddr,
    /// The exporter's and the admin API's ports, when the launch was [`Launch::managed`].
    pub metrics_port: u16,
    pub admin_port: u16,
    /// What [`Relay::log_text`] reads: stdout, or the log file of a managed relay.
    pub log: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub config: PathBuf,
    pub pidfile: PathBuf,
    pub cert: PathBuf,
    pub pkey: PathBuf,
    pub dir: TempDir,
}

impl Relay {
    fn spawn(&mut self, l: &Launch) {
        let ips: Vec<IpAddr> = std::iter::once(LOCALHOST).chain(l.listen.iter().copied()).collect();
        self.port = l.port.unwrap_or_else(|| free_port_on(&ips));
        self.addr = SocketAddr::new(LOCALHOST, self.port);
        (self.min_port, self.max_port) = free_range(l.range, &ips);
        let mut args = match l.config {
            Some(_) => vec!["-c".to_owned(), self.config.display().to_string()],
            None => vec!["-n".to_owned()],
        };
        for ip in &ips {
            args.push(format!("--listening-ip={ip}"));
            args.push(format!("--relay-ip={ip}"));
        }
        args.push(format!("--listening-port={}", self.port));
        args.push(format!("--min-port={}", self.min_port));
        args.push(format!("--max-port={}", self.max_port));
        args.push(format!("--realm={REALM}"));
        if l.cert.is_some() {
            self.tls = SocketAddr::new(LOCALHOST, free_port());
            args.push(format!("--tls-listening-port={}", self.tls.port()));
            args.push(format!("--cert={}", self.cert.display()));
            args.push(format!("--pkey={}", self.pkey.display()));
        } else {
            args.push("--no-tls".to_owned());
        }
        if l.managed {
            (self.metrics_port, self.admin_port) = (free_port(), free_port());
            args.push(format!("--log-file={}", self.log.display()));
            args.push("--no-stdout-log".to_owned());
            args.push(format!("--pidfile={}", self.pidfile.display()));
            args.push(format!("--prometheus-port={}", self.metrics_port));
            args.push("--prometheus-address=127.0.0.1".to_owned());
            args.push(format!("--admin-api-port={}", self.admin_port));
        }
        args.extend(l.args.iter().cloned());
        let mut cmd = match l.nofile {
            // `exec` keeps the PID: the child is the relay itself, not a shell around it.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(relay_bin());
                c
            }
            None => Command::new(relay_bin()),
        };
        let child = cmd
            .args(&args)
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir.0)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&self.stdout).unwrap())
            .stderr(std::fs::File::create(&self.stderr).unwrap())
            .spawn()
            .expect("start tern-relay");
        self.child = Some(child);
    }

    /// True once ready, false if the process exited first; panics after 20 s.
    fn wait_ready(&mut self, ready: Ready) -> bool {
        if let Ready::Now = ready {
            return true;
        }
        let probe = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        probe.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.try_wait().is_some() {
                return false;
            }
            let up = match ready {
                Ready::Log(text) => {
                    std::thread::sleep(Duration::from_millis(20));
                    self.log_text().contains(text)
                }
                Ready::Binding | Ready::Now => {
                    let _ = probe.send_to(&binding_request(random_tid().0), self.addr);
                    let mut buf = [0u8; 1500];
                    probe.recv(&mut buf).is_ok_and(|n| Message::parse(&buf[..n]).is_ok())
                }
            };
            if up {
                return true;
            }
        }
        panic!("tern-relay was not ready within 20 s:\n{}", self.output());
    }

    /// What the relay logged so far.
    pub fn log_text(&self) -> String {
        read(&self.log)
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        read(&self.stderr)
    }

    /// Everything it wrote so far (stdout, stderr and log file), for failure messages.
    pub fn output(&self) -> String {
        let mut s = format!("--- stdout:\n{}--- stderr:\n{}", read(&self.stdout), self.stderr());
        if self.log != self.stdout {
            s.push_str(&format!("--- {}:\n{}", self.log.display(), self.log_text()));
        }
        s
    }

    /// 127.0.0.1's IPv6 sibling: ::1 at the listening port.
    pub fn addr6(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST6, self.port)
    }

    /// A client of this relay over `proto`; its failures show the relay's log.
    pub fn client(&self, proto: Proto) -> Client {
        let mut c = Client::new(proto, self.addr);
        c.relay_log = Some(self.log.clone());
        c
    }

    pub fn udp(&self) -> Client {
        self.client(Proto::Udp)
    }

    pub fn tcp(&self) -> Client {
        self.client(Proto::Tcp)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's PID.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(limit, || {
            status = self.try_wait();
            status.is_some()
        });
        status
    }

    /// Waits up to `limit` until the log has `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || self.log_text().contains(needle))
    }

    /// Open descriptors of the process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }

    /// Resident memory, KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// User plus system CPU time, in clock ticks (USER_HZ, 100 on Linux).
    pub fn cpu_ticks(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        let rest = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the relay binary with exactly `args` to its end (it must exit within 10 s).
pub fn run_to_exit(args: &[String]) -> Output {
    let mut child = Command::new(relay_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern-relay");
    if !wait_until(Duration::from_secs(10), || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.code().is_some(), "tern-relay {args:?} did not exit; stderr:\n{}", lossy(&out.stderr));
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file's text; empty if it cannot be read.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Whether `f` holds within `limit`, asking every 25 ms.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until `f` holds, or panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(wait_until(limit, f), "timed out waiting for {what}");
}
