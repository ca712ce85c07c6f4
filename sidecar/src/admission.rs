//! Who may open a session, decided once per connection from its HTTP head: the `Origin` check,
//! the auth token (`Authorization: Bearer` or `?token=`), and the client address the limits and
//! logs use. Every transport admits through [`admit`], so a new rule (a JWT, a trusted proxy's
//! `X-Forwarded-For`) goes in here once. Performs no I/O.

use std::net::IpAddr;

use crate::http::Request;
use crate::session::Peer;
use crate::settings::OriginPolicy;
use crate::shared::Shared;

/// A connection that may open a session.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Its id and address.
    pub peer: Peer,
    /// Whether the head carried the right auth token (always true without `--auth-token`).
    pub authed: bool,
}

/// Why a head was refused: the HTTP status and the JSON error body's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// The error code.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// Decides whether the connection from `ip` that sent `req` may open a session.
pub fn admit(sh: &Shared, req: &Request, ip: IpAddr) -> Result<Admitted, Refused> {
    if !origin_allowed(&sh.settings.origins, req) {
        let origin = req.origin.as_deref().unwrap_or_default();
        tracing::info!(%ip, origin, "origin refused");
        return Err(Refused {
            status: 403,
            code: "origin-not-allowed",
            message: format!(
                "origin {origin:?} is not allowed; the operator can allow it with --allowed-origin {origin}"
            ),
        });
    }
    let token = req.bearer().map(str::to_owned).or_else(|| req.query_param("token"));
    let authed = match (&sh.settings.auth_token, token) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(t)) if sh.token_matches(&t) => true,
        (Some(_), Some(_)) => {
            return Err(Refused { status: 401, code: "unauthorized", message: "the auth token is wrong".into() });
        }
    };
    Ok(Admitted { peer: Peer { conn: sh.next_conn_id(), ip }, authed })
}

/// Whether the request's `Origin` passes the policy. Requests without one (non-browser clients)
/// always pass: Origin stops browsers, not scripts.
pub fn origin_allowed(policy: &OriginPolicy, req: &Request) -> bool {
    let Some(origin) = req.origin.as_deref() else { return true };
    match policy {
        OriginPolicy::Any => true,
        OriginPolicy::List(list) => list.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin)),
        OriginPolicy::SameOrigin => {
            let authority = origin.split_once("://").map_or("", |(_, a)| a);
            req.host.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(authority))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: Option<&str>, origin: Option<&str>) -> Request {
        Request { host: host.map(Into::into), origin: origin.map(Into::into), ..Request::default() }
    }

    #[test]
    fn origin_policies() {
        let same = OriginPolicy::SameOrigin;
        assert!(origin_allowed(&same, &req(Some("a:8080"), None)), "non-browser clients send no Origin");
        assert!(origin_allowed(&same, &req(Some("a:8080"), Some("http://a:8080"))));
        assert!(!origin_allowed(&same, &req(Some("a:8080"), Some("http://evil.example"))));
        assert!(!origin_allowed(&same, &req(Some("a:8080"), Some("null"))));
        let list = OriginPolicy::List(vec!["https://app.example/".into()]);
        assert!(origin_allowed(&list, &req(Some("x"), Some("https://app.example"))));
        assert!(!origin_allowed(&list, &req(Some("x"), Some("https://evil.example"))));
        assert!(origin_allowed(&OriginPolicy::Any, &req(None, Some("null"))));
    }
}
