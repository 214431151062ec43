//! The middlewares every API request passes: `authenticate` (the caller behind the access
//! token) and, inside it, `screen` (what no handler should see: NUL in the query, compressed
//! bodies, bodies that stop arriving).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::rt::time::{Sleep, sleep};
use actix_web::{HttpMessage, web};
use bytes::Bytes;
use futures_core::Stream;

use super::extractors::client_address;
use super::state::AppState;
use crate::domain::Caller;
use crate::error::Error;

/// Routes that answer without an access token.
const PUBLIC_ROUTES: [&str; 2] = ["/api/v1/auth/login", "/api/v1/auth/refresh"];

/// Middleware: every API route except login and refresh needs a valid access token, checked
/// before anything else about the request is read, so that an unauthenticated caller learns
/// nothing from how its body or query would have been judged.
///
/// A refusal is answered here as a response, not returned as an error: an error would skip the
/// outer middleware on its way out, and with it the security headers and the request id.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match caller_of(&req).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
        }
        Ok(None) => {}
        Err(refusal) => return Ok(req.error_response(refusal).map_into_right_body()),
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The caller behind the bearer token, `None` on a route that needs none.
async fn caller_of(req: &ServiceRequest) -> Result<Option<Caller>, Error> {
    let protected = req.match_pattern().is_some_and(|pattern| {
        pattern.starts_with("/api/v1/") && !PUBLIC_ROUTES.contains(&pattern.as_str())
    });
    if !protected {
        return Ok(None);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Error::Internal("application state missing".into()))?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(|token| token.trim().to_owned())
        .ok_or_else(|| {
            Error::unauthorized(
                "missing_token",
                "send an access token: Authorization: Bearer <token>",
            )
        })?;
    let mut caller = state
        .run(move |state, conn| state.auth.authenticate(conn, &token))
        .await?;
    caller.address = Some(client_address(req.request(), state.config.trust_proxy));
    Ok(Some(caller))
}

/// Middleware, inside `authenticate`: refuses what no handler should see. A NUL in the query
/// string (`%00`) never belongs to a filter, and PostgreSQL cannot even compare text with one.
/// Request bodies must not be content-encoded (415): actix inflates each received chunk whole
/// before any body limit is checked, so 64 KiB of gzip become 64 MiB in memory (a gzip bomb),
/// and it reads an encoding it does not know as plain bytes. No client compresses its requests;
/// responses are still compressed.
pub async fn screen(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.query_string().contains("%00") {
        let refusal = Error::bad_request(
            "invalid_query",
            "invalid query string: NUL characters are not allowed",
        );
        return Ok(req.error_response(refusal).map_into_right_body());
    }
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("").trim().to_ascii_lowercase());
    if let Some(encoding) = encoding
        && encoding != "identity"
    {
        let refusal = Error::UnsupportedMediaType {
            message: format!(
                "request bodies must not be compressed (Content-Encoding {encoding:?}); send them as they are"
            ),
        };
        return Ok(req.error_response(refusal).map_into_right_body());
    }
    // A body that stops arriving fails its reader with a timeout (408), so that a client
    // dribbling bytes (slowloris) is cut instead of keeping its connection forever. No database
    // connection is held meanwhile: handlers read their body before they take one.
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let pause = Duration::from_secs(state.config.client_body_timeout_secs);
        if !pause.is_zero() {
            let body = PausedBodyLimit {
                inner: req.take_payload(),
                pause,
                deadline: None,
                timed_out: false,
            };
            req.set_payload(Payload::Stream {
                payload: Box::pin(body),
            });
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A request body that fails with `TimedOut` when the handler has waited `pause` for its next
/// piece. The clock runs only while the handler waits: time it spends elsewhere between pieces
/// (a slow material store) is not the client's pause.
struct PausedBodyLimit {
    inner: Payload,
    pause: Duration,
    /// Set when the handler starts waiting, cleared when a piece comes.
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl Stream for PausedBodyLimit {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(piece) = Pin::new(&mut this.inner).poll_next(cx) {
            this.deadline = None;
            return Poll::Ready(piece);
        }
        let pause = this.pause;
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(sleep(pause)));
        if deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timed_out = true;
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no part of it arrived for {} s", pause.as_secs()),
        )))))
    }
}
