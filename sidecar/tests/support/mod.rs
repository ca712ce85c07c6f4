//! Test helpers: an in-process sidecar on an ephemeral loopback port and a blocking tungstenite
//! client with bounded reads.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_sidecar::settings::Secret;
use tern_sidecar::{Server, ServerHandle, Settings};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub const SECRET: &str = "test-secret-do-not-leak-7f3a";

/// Settings for tests: loopback, ephemeral port, generous rate limits.
pub fn settings() -> Settings {
    let mut s = Settings::new(
        Secret::new(SECRET),
        vec!["stun:127.0.0.1:3478".into(), "turn:127.0.0.1:3478?transport=udp".into()],
    );
    s.listen = "127.0.0.1:0".parse().unwrap();
    s.max_joins_per_minute = 1000;
    s
}

pub fn start(f: impl FnOnce(&mut Settings)) -> ServerHandle {
    let mut s = settings();
    f(&mut s);
    Server::bind(s).unwrap().spawn().unwrap()
}

pub struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Every text received, to check that the secret never appears.
    pub seen: Vec<String>,
}

impl Client {
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        Self::try_connect(addr, path, &[]).unwrap()
    }

    pub fn try_connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
        use tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut()
                .insert(tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (ws, _) = tungstenite::client(req, MaybeTlsStream::Plain(stream)).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("interrupted handshake"),
        })?;
        Ok(Client { ws, seen: Vec::new() })
    }

    pub fn set_timeout(&mut self, d: Duration) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_mut() {
            s.set_read_timeout(Some(d)).unwrap();
        }
    }

    pub fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).unwrap();
    }

    pub fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_owned())).unwrap();
    }

    /// The next text message, within 5 s.
    pub fn recv_text(&mut self) -> String {
        self.try_recv_text(Duration::from_secs(5)).expect("no message within 5 s")
    }

    /// The next text message within `d`, or `None`.
    pub fn try_recv_text(&mut self, d: Duration) -> Option<String> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.set_timeout(left);
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    self.seen.push(t.to_string());
                    return Some(t.to_string());
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    pub fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_text()).unwrap()
    }

    /// The next message, which must be of type `ty`.
    pub fn expect(&mut self, ty: &str) -> Value {
        let v = self.recv();
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        v
    }

    /// Asserts no text message arrives within `d`.
    pub fn expect_silence(&mut self, d: Duration) {
        if let Some(t) = self.try_recv_text(d) {
            panic!("expected silence, got {t}");
        }
    }

    /// Reads until the connection closes; returns the close code, if any.
    pub fn expect_close(&mut self) -> Option<u16> {
        self.set_timeout(Duration::from_secs(5));
        for _ in 0..100 {
            match self.ws.read() {
                Ok(Message::Close(cf)) => return cf.map(|c| u16::from(c.code)),
                Ok(Message::Text(t)) => self.seen.push(t.to_string()),
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return None,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    panic!("connection did not close within 5 s")
                }
                Err(_) => return None,
            }
        }
        panic!("connection did not close")
    }

    pub fn assert_no_secret(&self) {
        for t in &self.seen {
            assert!(!t.contains(SECRET), "the secret leaked in a frame: {t}");
        }
    }
}

/// A paired room: (creator, joiner, code, creator id, joiner id), both credentials consumed.
pub fn pair(addr: SocketAddr) -> (Client, Client, String, String, String) {
    let mut a = Client::connect(addr, "/ws");
    a.send(serde_json::json!({"type": "create"}));
    let created = a.expect("created");
    let code = created["code"].as_str().unwrap().to_owned();
    let mut b = Client::connect(addr, "/ws");
    b.send(serde_json::json!({"type": "join", "code": code}));
    let joined = b.expect("joined");
    b.expect("credentials");
    a.expect("peer-joined");
    a.expect("credentials");
    let (ida, idb) = (created["id"].as_str().unwrap().to_owned(), joined["id"].as_str().unwrap().to_owned());
    (a, b, code, ida, idb)
}

/// A plain HTTP GET; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Polls `f` every 10 ms for up to `d`.
pub fn eventually(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}
