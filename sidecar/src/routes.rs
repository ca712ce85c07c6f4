//! What each HTTP request gets: the demo and its assets, `/healthz`, `/api/turn-credentials`,
//! and the two signaling endpoints, whose upgrades go to [`crate::transport`]. Runs on the
//! connection's short-lived thread, which reads the head with a deadline.

use std::io;
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::admission::{self, Refused};
use crate::creds;
use crate::http::{self, HttpError, Request};
use crate::limits::ConnSlot;
use crate::pool::Pool;
use crate::rooms::random_id;
use crate::shared::Shared;
use crate::transport::ws::{self, Dialect, Handoff};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An embedded page or asset: content type, body.
    Static(&'static str, &'static [u8]),
    /// `/healthz`.
    Health,
    /// `/api/turn-credentials`.
    Credentials,
    /// `/ws`: the JSON protocol.
    Json,
    /// `/socket.io/` with `EIO=4&transport=websocket`.
    SocketIo,
    /// `/socket.io/` asking for something else: the response to give.
    SocketIoRefused(&'static str),
    /// Not GET/HEAD.
    MethodNotAllowed,
    /// Unknown path.
    NotFound,
}

/// Routes a parsed request.
pub fn route(req: &Request) -> Route {
    if req.method != "GET" && req.method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    match req.path.as_str() {
        "/healthz" => Route::Health,
        "/api/turn-credentials" => Route::Credentials,
        "/ws" | "/ws/" => Route::Json,
        "/socket.io" | "/socket.io/" => {
            if req.query_param("EIO").as_deref() != Some("4") {
                Route::SocketIoRefused(
                    "tern-sidecar speaks Engine.IO v4 (socket.io v3/v4 clients): EIO=4 is required; upgrade socket.io-client to v4",
                )
            } else if req.query_param("transport").as_deref() != Some("websocket") {
                Route::SocketIoRefused(
                    "tern-sidecar supports only the websocket transport, not HTTP long-polling: connect with io(url, { transports: ['websocket'] })",
                )
            } else {
                Route::SocketIo
            }
        }
        p => match crate::web::asset(p) {
            Some((ctype, body)) => Route::Static(ctype, body),
            None => Route::NotFound,
        },
    }
}

/// Reads and answers the HTTP head. `slot` counts the connection until it closes (it moves into
/// the transport of an upgraded connection).
pub fn handle_connection(sh: &Arc<Shared>, pool: &Pool, mut stream: TcpStream, ip: IpAddr, slot: ConnSlot) {
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + sh.settings.handshake_timeout;
    let (req, rest) = match http::read_head(&mut stream, deadline) {
        Ok(x) => x,
        Err(HttpError::TooLarge) => {
            let body = http::error_body("head-too-large", "request head too large");
            let _ = http::respond(&mut stream, 431, "application/json", &[], &body, false);
            return;
        }
        Err(HttpError::Malformed(e)) => {
            let body = http::error_body("bad-request", &format!("malformed HTTP request: {e}"));
            let _ = http::respond(&mut stream, 400, "application/json", &[], &body, false);
            return;
        }
        Err(HttpError::Io(e)) => {
            if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
                let body = http::error_body("timeout", "request head not received in time");
                let _ = http::respond(&mut stream, 408, "application/json", &[], &body, false);
            }
            return;
        }
    };
    let head = req.method == "HEAD";
    let json = "application/json";
    let result = match route(&req) {
        Route::Static(ctype, body) => http::respond(&mut stream, 200, ctype, &[], body, head),
        Route::Health => {
            let body = serde_json::json!({
                "status": "ok",
                "connections": sh.conns.total(),
                "rooms": sh.rooms.len(),
                "relayed": sh.stats.relayed.load(Ordering::Relaxed),
                "uptimeSeconds": sh.started.elapsed().as_secs(),
            });
            http::respond(&mut stream, 200, json, &[], body.to_string().as_bytes(), head)
        }
        Route::Credentials => credentials_endpoint(sh, &mut stream, &req, head),
        Route::Json | Route::SocketIo if !req.wants_websocket => {
            let body = http::error_body("upgrade-required", "this endpoint speaks WebSocket only");
            http::respond(&mut stream, 426, json, &[("Upgrade", "websocket")], &body, head)
        }
        r @ (Route::Json | Route::SocketIo) => {
            let dialect = if r == Route::Json { Dialect::Json } else { Dialect::SocketIo };
            match admission::admit(sh, &req, ip) {
                Ok(admitted) => {
                    let conn = Handoff { stream, rest, slot };
                    return ws::upgrade(sh, pool, conn, &req, dialect, admitted);
                }
                Err(r) => refuse_head(&mut stream, &r),
            }
        }
        Route::SocketIoRefused(msg) => {
            // Engine.IO's own error shape, so socket.io-client users see a familiar body.
            let body = serde_json::json!({ "code": 3, "message": msg }).to_string();
            http::respond(&mut stream, 400, json, &[], body.as_bytes(), head)
        }
        Route::MethodNotAllowed => {
            let body = http::error_body("method-not-allowed", "only GET is served");
            http::respond(&mut stream, 405, json, &[("Allow", "GET, HEAD")], &body, head)
        }
        Route::NotFound => {
            let body = http::error_body("not-found", "no such path; try /, /healthz, /ws or /socket.io/");
            http::respond(&mut stream, 404, json, &[], &body, head)
        }
    };
    if let Err(e) = result {
        tracing::debug!(%ip, error = %e, "HTTP response failed");
    }
}

fn refuse_head(stream: &mut TcpStream, r: &Refused) -> io::Result<()> {
    let body = http::error_body(r.code, &r.message);
    http::respond(stream, r.status, "application/json", &[], &body, false)
}

fn credentials_endpoint(sh: &Shared, stream: &mut TcpStream, req: &Request, head: bool) -> io::Result<()> {
    let json = "application/json";
    let s = &sh.settings;
    if s.auth_token.is_none() {
        let body = http::error_body(
            "disabled",
            "the credentials endpoint is off: start tern-sidecar with --auth-token TOKEN (or the TERN_SIDECAR_AUTH_TOKEN \
             environment variable) and send 'Authorization: Bearer TOKEN'",
        );
        return http::respond(stream, 403, json, &[], &body, head);
    }
    if !req.bearer().is_some_and(|t| sh.token_matches(t)) {
        let body =
            http::error_body("unauthorized", "send 'Authorization: Bearer TOKEN' with the sidecar's --auth-token");
        return http::respond(stream, 401, json, &[("WWW-Authenticate", "Bearer realm=\"tern-sidecar\"")], &body, head);
    }
    let user = req
        .query_param("username")
        .filter(|u| {
            !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        })
        .or_else(random_id)
        .unwrap_or_default();
    let r = creds::rest_response(&s.secret, &s.turn_uris, &user, s.credential_ttl, creds::unix_now());
    let body = serde_json::to_vec(&r).unwrap_or_default();
    http::respond(stream, 200, json, &[], &body, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_head_routes_to_socket_io() {
        let head = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a:1\r\nUpgrade: WebSocket\r\n\
Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(route(&Request::parse(head).unwrap().unwrap()), Route::SocketIo);
    }

    #[test]
    fn routes() {
        let r =
            |m: &str, p: &str| route(&Request::parse(format!("{m} {p} HTTP/1.1\r\n\r\n").as_bytes()).unwrap().unwrap());
        assert_eq!(r("GET", "/healthz"), Route::Health);
        assert_eq!(r("POST", "/healthz"), Route::MethodNotAllowed);
        assert_eq!(r("GET", "/ws"), Route::Json);
        assert_eq!(r("GET", "/api/turn-credentials?service=turn"), Route::Credentials);
        assert!(matches!(r("GET", "/"), Route::Static("text/html; charset=utf-8", _)));
        assert_eq!(r("GET", "/nope"), Route::NotFound);
        let Route::SocketIoRefused(m) = r("GET", "/socket.io/?EIO=4&transport=polling&t=x") else { panic!() };
        assert!(m.contains("transports: ['websocket']"));
        let Route::SocketIoRefused(m) = r("GET", "/socket.io/?EIO=3&transport=websocket") else { panic!() };
        assert!(m.contains("EIO=4"));
    }
}
