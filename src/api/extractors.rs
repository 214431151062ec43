//! Request extractors: the caller (put there by `middleware::authenticate`), If-Match
//! revisions, large JSON bodies parsed off the workers and the client address; and the answer
//! to If-None-Match (`tagged`).

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, mime, web,
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::api::error;
use crate::api::state::AppState;
use crate::domain::Caller;
use crate::error::Error;

/// The identity behind the bearer token, put there by `authenticate`.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let caller = req.extensions().get::<Caller>().cloned();
        std::future::ready(caller.map(Authenticated).ok_or_else(|| {
            Error::unauthorized(
                "missing_token",
                "send an access token: Authorization: Bearer <token>",
            )
            .into()
        }))
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

/// A large JSON body (a sync push: up to a thousand mutations, about a megabyte), parsed on the
/// blocking pool rather than on the worker that received it. Parsing such a body takes
/// milliseconds, and every request on that worker's connections would wait behind it: another
/// trainer's one-mutation push did, under a device flooding the server with refused batches
/// (issue 20). The same limit and the same errors as `web::Json` (`error::json_error`).
pub struct BulkJson<T>(pub T);

/// A body this small (a phone's push of a few marks) parses in tens of microseconds, less than
/// handing it to another thread and back costs.
const PARSED_IN_PLACE_BYTES: usize = 16 * 1024;

impl<T: DeserializeOwned + Send + 'static> FromRequest for BulkJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = matches!(req.mime_type(), Ok(Some(mime))
            if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON));
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.config.max_json_bytes);
        let body = match (is_json, limit) {
            // Read under `web::PayloadConfig`'s limit, which is the JSON limit (see `api::app`).
            (true, Some(limit)) => Ok((web::Bytes::from_request(req, payload), limit)),
            (false, _) => Err(error::not_json()),
            (true, None) => Err(Error::Internal("no application state".into())),
        };
        Box::pin(async move {
            let (body, limit) = body?;
            let bytes = body.await.map_err(|e| error::bulk_body_error(&e, limit))?;
            let parsed = if bytes.len() <= PARSED_IN_PLACE_BYTES {
                serde_json::from_slice::<T>(&bytes)
            } else {
                web::block(move || serde_json::from_slice::<T>(&bytes))
                    .await
                    .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
            };
            Ok(BulkJson(parsed.map_err(|e| error::unfit_json(&e))?))
        })
    }
}

pub fn etag(rev: i64) -> String {
    format!("\"{rev}\"")
}

/// The start of an answer with the representation tagged `tag`, its ETag set: 304 Not Modified
/// when the client's copy is current (`true`: the answer has no body), else 200 OK.
pub fn tagged(headers: &HeaderMap, tag: &str) -> (HttpResponseBuilder, bool) {
    let not_modified = none_match(headers, tag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response.insert_header((header::ETAG, tag.to_owned()));
    (response, not_modified)
}

/// If-None-Match (weak comparison, as RFC 9110 asks for it).
fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

/// The client's address for rate limiting and the audit trail: the peer, or with a trusted proxy the first address
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

    #[test]
    fn if_none_match_compares_weakly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            header::HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(none_match(&headers, "\"abc\""));
        assert!(!none_match(&headers, "\"abd\""));
    }
}
