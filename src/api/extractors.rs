//! Request extractors: the authenticated caller, If-Match revisions and the client address.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use crate::domain::Caller;
use crate::error::Error;

/// The identity behind the bearer token, checked against the database.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(|token| token.trim().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            let token = token.ok_or_else(|| {
                Error::unauthorized(
                    "missing_token",
                    "send an access token: Authorization: Bearer <token>",
                )
            })?;
            let caller = state
                .run(move |state, conn| state.auth.authenticate(conn, &token))
                .await?;
            Ok(Authenticated(caller))
        })
    }
}

/// The revision named by If-Match: `None` when absent or `*`. An ETag that is not one of ours
/// can never match, so it becomes a revision no record has.
pub struct IfMatch(pub Option<i64>);

impl IfMatch {
    fn parse(raw: &str) -> Option<i64> {
        let raw = raw.trim();
        if raw == "*" {
            return None;
        }
        let unquoted = raw.trim_start_matches("W/").trim_matches('"');
        Some(unquoted.parse::<i64>().unwrap_or(-1))
    }
}

impl FromRequest for IfMatch {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let value = req
            .headers()
            .get(header::IF_MATCH)
            .map(|v| v.to_str().map(IfMatch::parse).unwrap_or(Some(-1)));
        std::future::ready(Ok(IfMatch(value.flatten())))
    }
}

pub fn etag(rev: i64) -> String {
    format!("\"{rev}\"")
}

/// Whether If-None-Match already names this revision.
pub fn not_modified(req: &HttpRequest, rev: i64) -> bool {
    let tag = etag(rev);
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == tag || t.trim() == "*")
        })
}

/// The client's address for rate limiting: the peer, or with a trusted proxy the first address
/// of X-Forwarded-For.
pub fn client_address(req: &HttpRequest, trust_proxy: bool) -> String {
    let info = req.connection_info();
    let address = if trust_proxy {
        info.realip_remote_addr()
    } else {
        info.peer_addr()
    };
    address.unwrap_or("unknown").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_our_etags_and_refuses_others() {
        assert_eq!(IfMatch::parse("\"12\""), Some(12));
        assert_eq!(IfMatch::parse("W/\"12\""), Some(12));
        assert_eq!(IfMatch::parse("*"), None);
        assert_eq!(IfMatch::parse("\"abc\""), Some(-1));
    }
}
