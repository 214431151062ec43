//! How the one error type goes over HTTP: a status and a JSON body
//! `{"code": "snake_case", "message": "...", "details": ...}`.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::error::Error;

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Error::Gone { .. } => StatusCode::GONE,
            Error::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::InsufficientStorage { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Error::RateLimited { .. } | Error::QuarantineFull { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match self {
            // Internal details go to the log, not to the client.
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; the request was logged".to_owned()
            }
            Error::Unavailable(detail) => {
                tracing::warn!(error = %detail, "service unavailable");
                "the service is temporarily unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        };
        let details = match self {
            Error::Validation { details, .. } => json!(details),
            Error::PreconditionFailed { current, .. } => json!({ "current_rev": current }),
            _ => serde_json::Value::Null,
        };
        let mut body = json!({ "code": self.code(), "message": message });
        if !details.is_null() {
            body["details"] = details;
        }
        let mut response = HttpResponse::build(status);
        match self {
            Error::RateLimited { retry_after_secs }
            | Error::QuarantineFull {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Error::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            Error::RangeNotSatisfiable { size } => {
                response.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            }
            // The rest of the body may never come: the connection is not reused.
            Error::RequestTimeout { .. } => {
                response.force_close();
            }
            Error::Unauthorized { .. } => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        response.json(body)
    }
}

pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let mapped = match &err {
        JsonPayloadError::ContentType => not_json(),
        JsonPayloadError::Payload(e) if is_timeout(e) => body_timeout(e),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => too_large(*limit),
        JsonPayloadError::Deserialize(e) => unfit_json(e),
        other => unreadable(other),
    };
    mapped.into()
}

/// A body that is not JSON, for `web::Json` and `extractors::BulkJson` alike.
pub fn not_json() -> Error {
    Error::UnsupportedMediaType {
        message: "the body must be JSON (Content-Type: application/json)".into(),
    }
}

/// A body `extractors::BulkJson` could not read (`web::Bytes`' error), answered as
/// `json_error` answers the same for `web::Json`.
pub fn bulk_body_error(err: &actix_web::Error, limit: usize) -> Error {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => too_large(limit),
        Some(e) if is_timeout(e) => body_timeout(e),
        _ => unreadable(err),
    }
}

/// A body that is JSON but not what the request takes.
pub fn unfit_json(err: &serde_json::Error) -> Error {
    if err.to_string().starts_with("duplicate field") {
        // serde refuses a repeated member of an object it maps onto a struct; the body is
        // ambiguous rather than wrong in one field, so it is a malformed request.
        Error::bad_request(
            "duplicate_key",
            format!("the body names a member twice: {err}"),
        )
    } else if err.is_data() {
        Error::Validation {
            message: format!("the body does not fit the expected shape: {err}"),
            details: vec![],
        }
    } else {
        Error::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {err}"),
        )
    }
}

fn too_large(limit: usize) -> Error {
    Error::PayloadTooLarge {
        message: format!("the body is larger than {limit} bytes"),
    }
}

fn unreadable(err: &dyn std::fmt::Display) -> Error {
    Error::bad_request(
        "unreadable_body",
        format!("the body could not be read: {err}"),
    )
}

/// A request body that could not be read whole: the client paused too long (408), or the body
/// was cut short or garbled (400 with the given code).
pub fn payload_error(err: &PayloadError, code: &'static str) -> Error {
    if is_timeout(err) {
        body_timeout(err)
    } else {
        Error::bad_request(code, format!("the body could not be read whole: {err}"))
    }
}

/// The body pause limit (see `middleware::screen`) reports itself as a timed-out read.
fn is_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

fn body_timeout(err: &PayloadError) -> Error {
    Error::RequestTimeout {
        message: format!("the request body stopped arriving: {err}"),
    }
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Error::bad_request("invalid_query", format!("invalid query string: {err}")).into()
}

pub fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    Error::NotFound { what: "resource" }.into()
}
