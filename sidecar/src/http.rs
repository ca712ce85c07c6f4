//! HTTP/1.1 as the sidecar needs it: reading and parsing a request head with `httparse`, and
//! writing small responses (the `101` of a WebSocket upgrade among them). Knows no route;
//! [`crate::routes`] decides what a request gets.
//!
//! A head is at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers and must arrive within the
//! handshake timeout (slowloris); bodies are never read: no route takes one.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers accepted.
pub const MAX_HEADERS: usize = 48;

/// The parts of a request head the server uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// `Host`.
    pub host: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// Whether `Upgrade: websocket` and `Connection: upgrade` are present.
    pub wants_websocket: bool,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// Bytes of the head.
    pub head_len: usize,
}

/// Why a head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The head is not HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// Too many headers or too many bytes.
    #[error("request head too large")]
    TooLarge,
    /// The client closed or went quiet before the head was complete.
    #[error("request head incomplete: {0}")]
    Io(#[from] io::Error),
}

impl Request {
    /// Parses `buf`; `Ok(None)` while the head is incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<Request>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooLarge),
            Err(e) => return Err(HttpError::Malformed(e)),
        };
        let target = req.path.unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut r = Request {
            method: req.method.unwrap_or("").to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            head_len: n,
            ..Request::default()
        };
        let (mut upgrade, mut connection_upgrade) = (false, false);
        for h in req.headers.iter() {
            let value = || String::from_utf8_lossy(h.value).trim().to_owned();
            match h.name.to_ascii_lowercase().as_str() {
                "host" => r.host = Some(value()),
                "origin" => r.origin = Some(value()),
                "authorization" => r.authorization = Some(value()),
                "upgrade" => upgrade |= value().eq_ignore_ascii_case("websocket"),
                "connection" => {
                    connection_upgrade |= value().split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                }
                "sec-websocket-key" => r.ws_key = Some(value()),
                "sec-websocket-version" => r.ws_version = Some(value()),
                _ => {}
            }
        }
        r.wants_websocket = upgrade && connection_upgrade;
        Ok(Some(r))
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    }

    /// The token of an `Authorization: Bearer` header.
    pub fn bearer(&self) -> Option<&str> {
        let a = self.authorization.as_deref()?;
        let (scheme, token) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

/// Reads a head from `stream` by `deadline`. Returns the request and any bytes read past it.
pub fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<(Request, Vec<u8>), HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Io(io::ErrorKind::TimedOut.into()));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(req) = Request::parse(&buf)? {
            if req.head_len > MAX_HEAD {
                return Err(HttpError::TooLarge);
            }
            let rest = buf.split_off(req.head_len);
            return Ok((req, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::TooLarge);
        }
    }
}

/// Writes a complete response and asks the client to close.
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    ctype: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
        reason(status),
        body.len()
    )?;
    for (k, v) in extra {
        write!(out, "{k}: {v}\r\n")?;
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// A JSON error body: `{"error":{"code":…,"message":…}}`.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "error": { "code": code, "message": message } }).to_string().into_bytes()
}

/// A small complete response for refusals made before any parsing.
pub fn quick_response(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = error_body(code, message);
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 5\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The `101 Switching Protocols` answer to a valid upgrade.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
        .into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_upgrade_head() {
        let head = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a:1\r\nUpgrade: WebSocket\r\n\
Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Origin: http://a:1\r\n\r\nEXTRA";
        let r = Request::parse(head).unwrap().unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/socket.io/"));
        assert!(r.wants_websocket);
        assert_eq!(r.origin.as_deref(), Some("http://a:1"));
        assert_eq!(r.head_len, head.len() - 5);
        assert_eq!(
            String::from_utf8(switching_protocols(r.ws_key.as_deref().unwrap())).unwrap().lines().nth(3),
            Some("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn partial_and_bad_heads() {
        assert!(Request::parse(b"GET / HTTP/1.1\r\nHost: a").unwrap().is_none());
        assert!(matches!(Request::parse(b"\x00\x01 / HTTP/1.1\r\n\r\n"), Err(HttpError::Malformed(_))));
        let many: String = (0..60).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(Request::parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Err(HttpError::TooLarge)));
    }

    #[test]
    fn query_and_bearer() {
        let r = Request::parse(b"GET /ws?token=a%2Fb+c&x=%zz&y=%4 HTTP/1.1\r\nAuthorization: Bearer  t0k \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.query_param("token").as_deref(), Some("a/b c"));
        assert_eq!(r.query_param("x").as_deref(), Some("%zz"));
        assert_eq!(r.query_param("y").as_deref(), Some("%4"));
        assert_eq!(r.bearer(), Some("t0k"));
    }
}
