//! The audit trail over HTTP: a page of entries as JSON, or every matching entry as CSV or XLSX
//! (`format=` or the Accept header), laid out like the reports.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::reports::{accept, output, respond};
use crate::api::extractors::Authenticated;
use crate::api::state::AppState;
use crate::domain::audit::{Audit, AuditFilter};
use crate::error::Result;
use crate::reports::audit;
use crate::reports::render::Format;

/// The filter and the format of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    user_id: Option<String>,
    action: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    format: Option<Format>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let query = query.into_inner();
    let format = Format::choose(query.format, accept(&req).as_deref());
    let filter = AuditFilter {
        user_id: query.user_id,
        action: query.action,
        object_type: query.object_type,
        object_id: query.object_id,
        from: query.from,
        to: query.to,
        limit: query.limit,
        offset: query.offset,
    };
    let stem = "nhat-ky-thao-tac".to_owned();
    let output = state
        .run(move |_, conn| match format {
            Format::Json => output(format, &Audit::list(conn, &caller, &filter)?, stem, |_| {
                Vec::new()
            }),
            Format::Csv | Format::Xlsx => {
                let entries = Audit::export(conn, &caller, &filter)?;
                output(format, &entries, stem, |entries| audit::sheets(entries))
            }
        })
        .await?;
    Ok(respond(output))
}
