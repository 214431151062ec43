//! `GET /metrics`: the operator's page (see `crate::metrics`). Never open on the public port by
//! default: it is served on its own listener (`--metrics-bind`, for a network only the
//! monitoring reaches), or on the public port to a bearer of `--metrics-token`, or not at all.

use std::net::SocketAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::api::state::AppState;
use crate::domain::users::Devices;
use crate::error::{Error, Result};
use crate::metrics::{CONTENT_TYPE, DatabaseFigures, PoolFigures};
use crate::sync::{pull, review};

pub const PATH: &str = "/metrics";

/// Who may read the page, fixed when the server binds.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// The address of the metrics-only listener, if there is one.
    pub listener: Option<SocketAddr>,
    /// SHA-256 of the token that opens the page on the public port, if one is configured.
    pub token_digest: Option<[u8; 32]>,
}

impl MetricsAccess {
    pub fn new(listener: Option<SocketAddr>, token: Option<&str>) -> Self {
        MetricsAccess {
            listener,
            token_digest: token
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }

    fn on_listener(&self, local: SocketAddr) -> bool {
        self.listener == Some(local)
    }

    /// Whether a request that arrived at `local` with this Authorization header may read the
    /// page: on the metrics listener always; on the public port with the token; otherwise the
    /// page does not exist.
    fn admit(&self, local: SocketAddr, authorization: Option<&str>) -> Result<()> {
        if self.on_listener(local) {
            return Ok(());
        }
        let Some(expected) = self.token_digest else {
            return Err(Error::NotFound { what: "route" });
        };
        let presented = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| <[u8; 32]>::from(Sha256::digest(t.trim().as_bytes())));
        // Digests compared, not tokens: the comparison's time says nothing about the token.
        match presented {
            Some(digest) if digest == expected => Ok(()),
            Some(_) => Err(Error::unauthorized(
                "invalid_metrics_token",
                "this token does not open the metrics page",
            )),
            None => Err(Error::unauthorized(
                "missing_token",
                "send the metrics token: Authorization: Bearer <token>",
            )),
        }
    }
}

pub async fn metrics(
    state: web::Data<AppState>,
    access: web::Data<MetricsAccess>,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    access.admit(req.app_config().local_addr(), authorization)?;
    let database = state
        .run(|_, conn| {
            let backlog = review::backlog(conn)?;
            Ok(DatabaseFigures {
                quarantine_open: backlog.quarantine_open,
                conflicts_unresolved: backlog.conflicts_unresolved,
                devices_clock_flagged: Devices::count_clock_flagged(conn)?,
                devices_quarantine_full: Devices::count_quarantine_full(conn)?,
                revision: pull::current_revision(conn)?,
            })
        })
        .await?;
    let pool = state.pool.state();
    let page = state.metrics.encode(
        database,
        PoolFigures {
            connections: pool.connections,
            idle: pool.idle_connections,
        },
    );
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(page))
}

/// Middleware: the metrics listener serves the metrics page and nothing else.
pub async fn only_metrics_on_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<
    ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>,
    actix_web::Error,
> {
    let elsewhere = req.path() != PATH
        && req
            .app_data::<web::Data<MetricsAccess>>()
            .is_some_and(|access| access.on_listener(req.app_config().local_addr()));
    if elsewhere {
        return Ok(req
            .error_response(Error::NotFound { what: "route" })
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    fn listener() -> SocketAddr {
        "10.0.0.5:9100".parse().unwrap()
    }

    #[test]
    fn with_nothing_configured_the_page_does_not_exist() {
        let access = MetricsAccess::new(None, None);
        assert!(matches!(
            access.admit(public(), Some("Bearer anything")),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn the_metrics_listener_needs_no_token() {
        let access = MetricsAccess::new(Some(listener()), None);
        assert!(access.admit(listener(), None).is_ok());
        assert!(matches!(
            access.admit(public(), None),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn the_public_port_opens_to_the_token_only() {
        let access = MetricsAccess::new(None, Some("s3cret-metrics"));
        assert!(
            access
                .admit(public(), Some("Bearer s3cret-metrics"))
                .is_ok()
        );
        assert_eq!(
            access
                .admit(public(), Some("Bearer s3cret-metricz"))
                .unwrap_err()
                .code(),
            "invalid_metrics_token"
        );
        assert_eq!(
            access.admit(public(), None).unwrap_err().code(),
            "missing_token"
        );
    }

    #[test]
    fn an_empty_token_opens_nothing() {
        let access = MetricsAccess::new(None, Some(""));
        assert!(matches!(
            access.admit(public(), Some("Bearer ")),
            Err(Error::NotFound { .. })
        ));
    }
}
