//! What only the operations tests need: their relay, an HTTP getter for the admin API and the
//! exporter, a Prometheus text reader, and a client with an allocation that trades packets
//! with a peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::client::{Client, Creds, Peer, Via};
use super::relay::{Launch, Relay, wait_until};

impl Launch {
    /// The operations tests' relay: managed ([`Launch::managed`]), 200 relay ports, two workers, loopback
    /// peers allowed.
    pub fn ops() -> Launch {
        Launch::new().managed().range(200).args(&["--relay-threads=2", "--allow-loopback-peers"])
    }
}

impl Relay {
    pub fn scrape(&self) -> String {
        let (status, body) = http(self.metrics_port, "GET", "/metrics", None);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Scrapes until `name` reaches at least `want` (workers publish ten times a second).
    pub fn wait_metric(&self, name: &str, want: f64) -> f64 {
        let mut last = f64::NAN;
        wait_until(Duration::from_secs(5), || {
            last = metric(&self.scrape(), name).unwrap_or(f64::NAN);
            last >= want
        });
        last
    }

    pub fn admin(&self, method: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let (status, body) = http(self.admin_port, method, path, token);
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body:?}"));
        (status, v)
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; (status, body).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// The value of the sample `series` (name plus labels exactly as printed) in a scrape.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// A UDP client with TURN REST credentials for `user` under `secret`, an allocation and a
/// permission for `peer`; and its relayed address.
pub fn allocated(relay: &Relay, secret: &str, user: &str, peer: &Peer) -> (Client, SocketAddr) {
    let mut c = relay.udp().with_creds(Creds::rest(secret, user));
    let relayed = c.allocate();
    c.create_permission(&[peer.addr()]).result().unwrap();
    (c, relayed)
}

/// Sends `n` packets each way between `c` and `peer` through `relayed`; how many arrived
/// (client → peer, peer → client).
pub fn exchange(c: &mut Client, peer: &Peer, relayed: SocketAddr, n: usize) -> (usize, usize) {
    let (mut up, mut down) = (0, 0);
    for i in 0..n {
        let ping = format!("ping {i}");
        c.send_indication(peer.addr(), ping.as_bytes());
        let limit = Duration::from_millis(500);
        if peer.recv_timeout(limit).is_some_and(|(d, from)| from == relayed && d == ping.as_bytes()) {
            up += 1;
        }
        let pong = format!("pong {i}");
        peer.send_to(pong.as_bytes(), relayed);
        if c.recv_data(limit).is_some_and(|(via, d)| via == Via::Peer(peer.addr()) && d == pong.as_bytes()) {
            down += 1;
        }
    }
    (up, down)
}
