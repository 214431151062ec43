//! The HTTP layer: thin actix handlers (extract → call the domain → respond), extractors, the
//! error mapping, the route table and the one app builder used by `main` and by the tests.

pub mod error;
pub mod extractors;
mod handlers;
mod middleware;
mod routes;
mod state;
mod webapp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Compress, DefaultHeaders, Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};
use tracing_actix_web::{RequestId, TracingLogger};

pub use routes::route_table;
pub use state::AppState;

use handlers::metrics::MetricsAccess;

/// The application with its middleware and routes.
pub fn app(
    state: web::Data<AppState>,
    metrics_access: web::Data<MetricsAccess>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let json_limit = state.config.max_json_bytes;
    App::new()
        .app_data(state)
        .app_data(metrics_access)
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(error::json_error),
        )
        .app_data(web::PayloadConfig::default().limit(json_limit))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .configure(routes::configure)
        .wrap(from_fn(middleware::screen))
        .wrap(from_fn(middleware::authenticate))
        .wrap(Compress::default())
        .wrap(
            DefaultHeaders::new()
                .add((
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                // Only where a handler set none: material content is `private, no-cache`
                // (see handlers::materials), so devices revalidate their copy by ETag.
                .add((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                // Nothing here is meant to be framed (clickjacking), and no URL of ours, which
                // may carry ids in its query, is sent on to other sites.
                .add((
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("frame-ancestors 'none'"),
                ))
                .add((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
                .add((
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                )),
        )
        .wrap_fn(|req, srv| {
            use actix_web::dev::Service;
            let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
            let response = srv.call(req);
            async move {
                let mut response = response.await?;
                // Material content is marked `identity` so that Compress leaves it alone (see
                // handlers::materials); the marker itself is not worth sending.
                if response
                    .headers()
                    .get(header::CONTENT_ENCODING)
                    .is_some_and(|v| v == "identity")
                {
                    response.headers_mut().remove(header::CONTENT_ENCODING);
                }
                if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                    response
                        .headers_mut()
                        .insert(header::HeaderName::from_static("x-request-id"), id);
                }
                Ok(response)
            }
        })
        .wrap(from_fn(handlers::metrics::only_metrics_on_listener))
        .wrap(from_fn(count_request))
        .wrap(TracingLogger::default())
}

/// Middleware: every answer, whatever answered it (a handler, a middleware's refusal, a 404),
/// counted by route pattern and timed for `/metrics`.
async fn count_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req.match_pattern();
    let method = req.method().clone();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        state.metrics.request(
            route,
            method.as_str(),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// A bound server and where it listens.
pub struct Listening {
    pub server: Server,
    /// The public addresses (the API and the web apps).
    pub addresses: Vec<SocketAddr>,
    /// The metrics-only listener, when `metrics_bind` is set.
    pub metrics_address: Option<SocketAddr>,
}

/// Binds the HTTP server (port 0 picks a free port) and, if configured, the metrics listener.
pub fn bind(state: web::Data<AppState>) -> std::io::Result<Listening> {
    let config = Arc::clone(&state.config);
    let metrics_listener = config
        .metrics_bind
        .as_deref()
        .map(std::net::TcpListener::bind)
        .transpose()?;
    let metrics_address = metrics_listener
        .as_ref()
        .map(std::net::TcpListener::local_addr)
        .transpose()?;
    let metrics_access = web::Data::new(MetricsAccess::new(
        metrics_address,
        config.metrics_token.as_deref(),
    ));
    let mut server = HttpServer::new(move || app(state.clone(), metrics_access.clone()))
        .shutdown_timeout(config.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(config.client_request_timeout_secs))
        .client_disconnect_timeout(Duration::from_secs(config.client_disconnect_timeout_secs))
        .keep_alive(Duration::from_secs(config.keep_alive_secs))
        // A compressed or streamed answer ends with a small chunk written after the body; with
        // Nagle's algorithm it waits for the client's delayed ACK (40 ms on Linux) first.
        .tcp_nodelay(true)
        .bind(config.bind.as_str())?;
    let addresses = server.addrs();
    if let Some(listener) = metrics_listener {
        server = server.listen(listener)?;
    }
    if let Some(workers) = config.workers {
        server = server.workers(workers.max(1));
    }
    Ok(Listening {
        server: server.run(),
        addresses,
        metrics_address,
    })
}
