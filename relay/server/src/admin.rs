//! The admin HTTP API (`admin-api`, `admin-api-address`, `admin-api-port`, `admin-api-token`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | 200 while every worker runs its loop; 503 naming a stalled worker |
//! | `GET /readyz` | 200 while new allocations are taken; 503 while draining or stopping |
//! | `GET /sessions[?user=NAME]` | the live allocations: id, user, client, relay, transport, age, bytes |
//! | `GET /sessions/ID` | one of them |
//! | `DELETE /sessions/ID` | ends that allocation (404 if there is none) |
//! | `DELETE /sessions?user=NAME` | ends every allocation of that user |
//!
//! `user=NAME` matches the user name exactly, or, with TURN REST credentials, the user part of
//! it (`alice` matches `1700000000:alice`), so one request reaches every credential a user got.
//!
//! It listens on 127.0.0.1 by default. Bound anywhere else it needs `admin-api-token` (the
//! configuration refuses to load otherwise); with a token set, the `/sessions` requests must
//! carry `Authorization: Bearer <token>`. `/healthz` and `/readyz` never ask for it, so load
//! balancers and orchestrators can probe them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use relay_proto::server::SessionInfo;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::control::Workers;
use crate::http::{Handler, Request, Response, percent_decode};
use crate::metrics::{Metrics, user_label};

/// How long a request waits for the workers' answers.
const WORKER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin API works with.
pub(crate) struct Admin {
    pub(crate) workers: Workers,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) token: Option<String>,
    /// `rest-api-separator` when TURN REST credentials are on.
    pub(crate) rest_separator: Option<char>,
}

/// The admin API's request handler.
pub(crate) fn handler(admin: Admin) -> Handler {
    Arc::new(move |req: &Request| admin.handle(req))
}

impl Admin {
    fn handle(&self, req: &Request) -> Response {
        let path = req.path.trim_end_matches('/');
        match (req.method.as_str(), path) {
            ("GET" | "HEAD", "/healthz") => self.healthz(),
            ("GET" | "HEAD", "/readyz") => self.readyz(),
            (_, "/healthz" | "/readyz") => method_not_allowed("GET, HEAD"),
            (m, p) if p == "/sessions" || p.starts_with("/sessions/") => {
                if let Some(denied) = self.check_token(req) {
                    return denied;
                }
                match (m, p.strip_prefix("/sessions/")) {
                    ("GET" | "HEAD", None) => self.list(req.param("user").as_deref()),
                    ("DELETE", None) => match req.param("user") {
                        Some(u) if !u.is_empty() => self.kill_user(&u),
                        _ => error(400, "say which sessions: DELETE /sessions/ID, or DELETE /sessions?user=NAME"),
                    },
                    ("DELETE", Some(id)) => self.kill(id),
                    ("GET" | "HEAD", Some(id)) => self.show(id),
                    (_, None) => method_not_allowed("GET, HEAD, DELETE"),
                    (_, Some(_)) => method_not_allowed("GET, HEAD, DELETE"),
                }
            }
            _ => error(404, "not found: try /healthz, /readyz or /sessions"),
        }
    }

    /// 401 unless the request carries the token (when one is set).
    fn check_token(&self, req: &Request) -> Option<Response> {
        let want = self.token.as_deref()?;
        let given = req.authorization.as_deref().and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
        let ok = given.is_some_and(|g| g.len() == want.len() && bool::from(g.as_bytes().ct_eq(want.as_bytes())));
        if ok {
            return None;
        }
        Some(
            error(401, "this admin API needs its token: send Authorization: Bearer <admin-api-token>")
                .with_header("WWW-Authenticate", "Bearer realm=\"tern-relay admin\""),
        )
    }

    fn healthz(&self) -> Response {
        let stalled = self.metrics.stalled_workers(Instant::now());
        if stalled.is_empty() {
            Response::json(200, &json!({"status": "ok", "workers": self.metrics.workers.len()}))
        } else {
            Response::json(503, &json!({"status": "stalled", "stalled_workers": stalled}))
        }
    }

    fn readyz(&self) -> Response {
        let status = if self.metrics.stopping.load(Ordering::Relaxed) {
            "stopping"
        } else if self.metrics.draining.load(Ordering::Relaxed) {
            "draining"
        } else if !self.metrics.stalled_workers(Instant::now()).is_empty() {
            "stalled"
        } else {
            let body = json!({"status": "ready", "allocations": self.metrics.total_allocations()});
            return Response::json(200, &body);
        };
        Response::json(503, &json!({"status": status, "allocations": self.metrics.total_allocations()}))
    }

    fn sessions(&self) -> Result<Vec<(usize, SessionInfo)>, Response> {
        self.workers.sessions(WORKER_TIMEOUT).ok_or_else(|| error(503, "a worker did not answer in time"))
    }

    fn list(&self, user: Option<&str>) -> Response {
        let all = match self.sessions() {
            Ok(s) => s,
            Err(r) => return r,
        };
        let rows: Vec<Value> = all
            .iter()
            .filter(|(_, s)| user.is_none_or(|u| self.user_matches(&s.username, u)))
            .map(|(w, s)| session_json(*w, s))
            .collect();
        Response::json(200, &json!({"count": rows.len(), "sessions": rows}))
    }

    fn show(&self, id: &str) -> Response {
        let Some((worker, alloc)) = parse_id(id) else { return bad_id(id) };
        let all = match self.sessions() {
            Ok(s) => s,
            Err(r) => return r,
        };
        match all.iter().find(|(w, s)| *w == worker && s.id.as_u64() == alloc) {
            Some((w, s)) => Response::json(200, &session_json(*w, s)),
            None => error(404, "no such session (it may have ended)"),
        }
    }

    fn kill(&self, id: &str) -> Response {
        let Some((worker, alloc)) = parse_id(id) else { return bad_id(id) };
        if worker >= self.workers.len() {
            return error(404, "no such session");
        }
        match self.workers.kill(worker, alloc, WORKER_TIMEOUT) {
            Some(true) => Response::json(200, &json!({"killed": 1})),
            Some(false) => error(404, "no such session (it may have ended)"),
            None => error(503, "the worker did not answer in time"),
        }
    }

    /// Ends the user's allocations that are live now, one by one.
    fn kill_user(&self, user: &str) -> Response {
        let all = match self.sessions() {
            Ok(s) => s,
            Err(r) => return r,
        };
        let mut killed = 0;
        for (w, s) in all.iter().filter(|(_, s)| self.user_matches(&s.username, user)) {
            match self.workers.kill(*w, s.id.as_u64(), WORKER_TIMEOUT) {
                Some(true) => killed += 1,
                Some(false) => {} // ended meanwhile
                None => return error(503, "a worker did not answer in time"),
            }
        }
        Response::json(200, &json!({"killed": killed}))
    }

    fn user_matches(&self, username: &str, wanted: &str) -> bool {
        username == wanted || (self.rest_separator.is_some() && user_label(username, self.rest_separator) == wanted)
    }
}

/// A session's id in the API: `<worker>-<allocation>`.
fn session_id(worker: usize, s: &SessionInfo) -> String {
    format!("{worker}-{}", s.id.as_u64())
}

fn parse_id(id: &str) -> Option<(usize, u64)> {
    let id = percent_decode(id)?;
    let (w, a) = id.split_once('-')?;
    Some((w.parse().ok()?, a.parse().ok()?))
}

fn bad_id(id: &str) -> Response {
    error(400, &format!("{id:?} is not a session id: ids look like 0-4294967297 (see GET /sessions)"))
}

fn session_json(worker: usize, s: &SessionInfo) -> Value {
    json!({
        "id": session_id(worker, s),
        "worker": worker,
        "user": s.username,
        "transport": s.tuple.transport.as_str(),
        "client": s.tuple.client.to_string(),
        "server": s.tuple.server.to_string(),
        "relay": s.relays.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "public_relay": s.public_relays.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "age_seconds": s.age.as_secs(),
        "expires_in_seconds": s.expires_in.as_secs(),
        "bytes_to_peer": s.bytes_to_peer,
        "bytes_from_peer": s.bytes_from_peer,
        "packets_to_peer": s.packets_to_peer,
        "packets_from_peer": s.packets_from_peer,
        "permissions": s.permissions,
        "channels": s.channels,
    })
}

fn error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"error": message}))
}

fn method_not_allowed(allow: &'static str) -> Response {
    error(405, &format!("method not allowed here: use {allow}")).with_header("Allow", allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(token: Option<&str>) -> Admin {
        Admin {
            workers: Workers::new(Vec::new()),
            metrics: Arc::new(Metrics::new(0, Instant::now())),
            token: token.map(str::to_owned),
            rest_separator: Some(':'),
        }
    }

    fn req(method: &str, path: &str, auth: Option<&str>) -> Request {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            authorization: auth.map(str::to_owned),
        }
    }

    #[test]
    fn the_token_guards_sessions_but_not_the_probes() {
        let a = admin(Some("s3cret"));
        assert_eq!(a.handle(&req("GET", "/sessions", None)).status, 401);
        assert_eq!(a.handle(&req("GET", "/sessions", Some("Bearer wrong!"))).status, 401);
        assert_eq!(a.handle(&req("GET", "/sessions", Some("Bearer s3cret"))).status, 200);
        assert_eq!(a.handle(&req("GET", "/healthz", None)).status, 200);
        assert_eq!(a.handle(&req("GET", "/readyz", None)).status, 200);
        assert_eq!(admin(None).handle(&req("GET", "/sessions", None)).status, 200);
    }

    #[test]
    fn readyz_turns_503_while_draining() {
        let a = admin(None);
        a.metrics.draining.store(true, Ordering::Relaxed);
        let r = a.handle(&req("GET", "/readyz", None));
        assert_eq!(r.status, 503);
        assert!(String::from_utf8_lossy(&r.body).contains("draining"));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let a = admin(None);
        assert_eq!(a.handle(&req("DELETE", "/sessions/nope", None)).status, 400);
        assert_eq!(a.handle(&req("DELETE", "/sessions/0-1", None)).status, 404, "no worker 0 here");
        assert_eq!(a.handle(&req("DELETE", "/sessions", None)).status, 400);
        assert_eq!(a.handle(&req("POST", "/sessions", None)).status, 405);
        assert_eq!(a.handle(&req("GET", "/nothing", None)).status, 404);
        assert_eq!(parse_id("3-4294967297"), Some((3, 4294967297)));
        assert_eq!(parse_id("3"), None);
    }

    #[test]
    fn a_user_matches_its_rest_credentials() {
        let a = admin(None);
        assert!(a.user_matches("1700000000:alice", "alice"));
        assert!(a.user_matches("1700000000:alice", "1700000000:alice"));
        assert!(!a.user_matches("1700000000:alice", "1700000000"));
        assert!(!a.user_matches("1700000000:alicia", "alice"));
        assert!(!Admin { rest_separator: None, ..admin(None) }.user_matches("1700000000:alice", "alice"));
    }
}
