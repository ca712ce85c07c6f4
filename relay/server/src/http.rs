//! A small blocking HTTP/1.1 server for the operator's endpoints (the Prometheus exporter and
//! the admin API): one accept thread per endpoint, one short-lived thread per connection, at most
//! [`MAX_CONNECTIONS`] at once, one request per connection (`Connection: close`).
//!
//! Nothing here is on the data path. A request must arrive whole within [`REQUEST_DEADLINE`] and
//! its head must fit in [`MAX_HEAD`] bytes; bodies are not read (no endpoint takes one), so a
//! slow or oversized client costs one bounded thread for a few seconds and nothing else.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections served at once per endpoint; more are closed at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its request head.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Largest request head accepted.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The parts of a request the endpoints look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `DELETE`, …
    pub(crate) method: String,
    /// The path, percent-encoding kept (each handler decodes what it takes apart).
    pub(crate) path: String,
    /// The query string without `?` (empty if none).
    pub(crate) query: String,
    /// The `Authorization` header, if any.
    pub(crate) authorization: Option<String>,
}

impl Request {
    /// The decoded value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| percent_decode(&v.replace('+', " ")))
    }
}

/// A response; `Connection: close` and `Content-Length` are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status, "text/plain; charset=utf-8", body.into().into_bytes())
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status, "application/json", body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// What serves requests.
pub(crate) type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Serves `listener` on a thread named `name` until the process ends.
pub(crate) fn spawn(name: &str, listener: TcpListener, handler: Handler) -> io::Result<JoinHandle<()>> {
    let busy = Arc::new(AtomicUsize::new(0));
    let thread_name = name.to_string();
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        for conn in listener.incoming() {
            let stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(target: "relay", endpoint = %thread_name, error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                busy.fetch_sub(1, Ordering::AcqRel);
                continue; // dropped: closes the connection
            }
            // Gives the slot back when the connection's thread ends, or when it fails to start
            // (the closure, and the guard in it, is dropped then).
            let slot = Slot(busy.clone());
            let handler = handler.clone();
            let _ = std::thread::Builder::new().name(format!("{thread_name}-conn")).stack_size(256 * 1024).spawn(
                move || {
                    let _slot = slot;
                    serve_one(stream, &*handler);
                },
            );
        }
    })
}

struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Binds a listener for an operator endpoint, with a message that names the option to change.
pub(crate) fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("{what}: cannot listen on {addr}: {e}"))
}

fn serve_one(mut stream: TcpStream, handler: &(dyn Fn(&Request) -> Response + Send + Sync)) {
    let _ = stream.set_write_timeout(Some(REQUEST_DEADLINE));
    let (response, head_only) = match read_request(&mut stream) {
        Ok(Some(req)) => (handler(&req), req.method == "HEAD"),
        Ok(None) => return,
        Err(status) => (Response::text(status, format!("{}\n", reason(status))), false),
    };
    let _ = stream.write_all(&encode(&response, head_only));
    let _ = stream.flush();
}

/// Reads one request head. `Ok(None)`: the client went away or timed out before sending one.
fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, u16> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        }
        match parse(&buf) {
            Parsed::Complete(r) => return Ok(Some(r)),
            Parsed::Partial if buf.len() < MAX_HEAD => {}
            Parsed::Partial => return Err(431),
            Parsed::Invalid => return Err(400),
        }
    }
}

enum Parsed {
    Complete(Request),
    Partial,
    Invalid,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    }
    let (Some(method), Some(target)) = (req.method, req.path) else { return Parsed::Invalid };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let authorization = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned);
    Parsed::Complete(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        authorization,
    })
}

/// The response's bytes; a HEAD request gets the head only, with the body's length.
fn encode(r: &Response, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (name, value) in &r.headers {
        // Header values come from this process; strip line breaks all the same.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&r.body);
    }
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Decodes `%XX` escapes; `None` if an escape is broken or the result is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_parses_with_its_query_and_token() {
        let raw = b"GET /sessions?user=alice%40example.org&x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k\r\n\r\n";
        let Parsed::Complete(r) = parse(raw) else { panic!("not complete") };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/sessions"));
        assert_eq!(r.param("user").as_deref(), Some("alice@example.org"));
        assert_eq!(r.param("x").as_deref(), Some(""));
        assert_eq!(r.param("y"), None);
        assert_eq!(r.authorization.as_deref(), Some("Bearer t0k"));
        assert!(matches!(parse(b"GET /x HTTP/1.1\r\nHost"), Parsed::Partial));
        assert!(matches!(parse(b"\x16\x03\x01\x02\x00\r\n\r\n"), Parsed::Invalid));
    }

    #[test]
    fn percent_decoding_refuses_broken_escapes() {
        assert_eq!(percent_decode("a%3Ab").as_deref(), Some("a:b"));
        assert_eq!(percent_decode("a%3"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = Response::text(200, "ok\n").with_header("X-A", "b\r\nInjected: 1");
        let s = String::from_utf8(encode(&r, false)).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("Content-Length: 3\r\n") && s.contains("Connection: close\r\n"), "{s}");
        assert!(s.contains("X-A: bInjected: 1\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\nok\n"), "{s}");
        let head = String::from_utf8(encode(&r, true)).unwrap();
        assert!(head.contains("Content-Length: 3\r\n") && head.ends_with("\r\n\r\n"), "{head}");
    }
}
