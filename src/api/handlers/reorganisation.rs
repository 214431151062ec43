//! Unit reorganisation over HTTP: merge, rename, history.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::write_json;
use crate::api::extractors::{Authenticated, etag};
use crate::api::state::AppState;
use crate::domain::reorganisation::{self, MergeRequest, RenameRequest};
use crate::error::Result;

pub async fn merge(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: web::Json<MergeRequest>,
) -> Result<HttpResponse> {
    write_json(&state, move |_, conn| {
        reorganisation::merge(conn, &caller, body.into_inner())
    })
    .await
}

pub async fn rename(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    body: web::Json<RenameRequest>,
) -> Result<HttpResponse> {
    let request = body.into_inner();
    let unit = state
        .write(move |_, conn| reorganisation::rename(conn, &caller, &id, request))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(unit.rev)))
        .json(unit))
}

pub async fn history(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let events = state
        .run(move |_, conn| reorganisation::history(conn, &caller, &id))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": events })))
}
