//! Reports over HTTP, as JSON, CSV or XLSX (`format=` or the Accept header). The report and its
//! file are built on the blocking pool; CSV is then sent in chunks as it is written.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::api::extractors::Authenticated;
use crate::api::state::AppState;
use crate::db::DbConn;
use crate::error::{Error, Result};
use crate::reports::course::CourseQuery;
use crate::reports::coverage::CoverageQuery;
use crate::reports::plans::PlanReportQuery;
use crate::reports::render::{self, CsvChunks, Format, Sheet};
use crate::reports::trainer::TrainerQuery;
use crate::reports::{self, Report};

/// A report ready to send.
pub(super) enum Output {
    Json(Vec<u8>),
    Csv(String, Sheet),
    Xlsx(String, Vec<u8>),
}

pub(super) fn accept(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Lays a report out in the chosen format (on the blocking pool).
pub(super) fn output<R: Serialize>(
    format: Format,
    report: &R,
    stem: String,
    sheets: impl FnOnce(&R) -> Vec<Sheet>,
) -> Result<Output> {
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(match format {
        Format::Json => {
            Output::Json(serde_json::to_vec(report).map_err(|e| Error::Internal(e.to_string()))?)
        }
        Format::Csv => {
            let first = sheets(report)
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("a report without sheets".into()))?;
            Output::Csv(stem, first)
        }
        Format::Xlsx => Output::Xlsx(stem, render::xlsx(&sheets(report))?),
    })
}

/// Hands CSV chunks to actix as they are produced.
struct ChunkStream(CsvChunks);

impl futures_core::Stream for ChunkStream {
    type Item = std::result::Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next().map(|chunk| Ok(Bytes::from(chunk))))
    }
}

pub(super) fn respond(output: Output) -> HttpResponse {
    let disposition = |stem: &str, extension: &str| {
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{stem}.{extension}\""),
        )
    };
    match output {
        Output::Json(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Output::Csv(stem, sheet) => HttpResponse::Ok()
            .content_type(render::CSV_MEDIA_TYPE)
            .insert_header(disposition(&stem, "csv"))
            .streaming(ChunkStream(CsvChunks::new(sheet))),
        Output::Xlsx(stem, bytes) => HttpResponse::Ok()
            .content_type(render::XLSX_MEDIA_TYPE)
            .insert_header(disposition(&stem, "xlsx"))
            .body(bytes),
    }
}

/// Builds a report on the blocking pool and answers it in the format the request chose
/// (`format=`, else the Accept header).
async fn answer<R: Report>(
    req: &HttpRequest,
    state: &AppState,
    format: Option<Format>,
    build: impl FnOnce(&mut DbConn) -> Result<R> + Send + 'static,
) -> Result<HttpResponse> {
    let format = Format::choose(format, accept(req).as_deref());
    let output = state
        .run(move |_, conn| {
            let report = build(conn)?;
            output(format, &report, report.file_stem(), |r| r.sheets())
        })
        .await?;
    Ok(respond(output))
}

pub async fn course(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    query: web::Query<CourseQuery>,
) -> Result<HttpResponse> {
    answer(&req, &state, query.format, move |conn| {
        reports::course::report(conn, &caller, &id, &query)
    })
    .await
}

pub async fn coverage(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    query: web::Query<CoverageQuery>,
) -> Result<HttpResponse> {
    answer(&req, &state, query.format, move |conn| {
        reports::coverage::report(conn, &caller, &query)
    })
    .await
}

pub async fn trainer(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    query: web::Query<TrainerQuery>,
) -> Result<HttpResponse> {
    answer(&req, &state, query.format, move |conn| {
        reports::trainer::report(conn, &caller, &id)
    })
    .await
}

pub async fn training_plan(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    query: web::Query<PlanReportQuery>,
) -> Result<HttpResponse> {
    answer(&req, &state, query.format, move |conn| {
        reports::plans::plan(conn, &caller, &id)
    })
    .await
}
