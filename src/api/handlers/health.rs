use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::api::state::AppState;
use crate::error::Result;

/// Liveness: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse> {
    let backend = state
        .run(|_, conn| {
            conn.ping()?;
            Ok(conn.backend_name())
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "database": backend })))
}
