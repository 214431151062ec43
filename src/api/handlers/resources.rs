//! Generic list/create/get/update/delete handlers for every `Resource`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::AppState;
use crate::api::extractors::{Authenticated, IfMatch, etag, not_modified};
use crate::db::DbConn;
use crate::domain::Resource;
use crate::error::Result;
use crate::sync::records::{self, Collection};

pub async fn list<R: Resource>(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    filter: web::Query<R::Filter>,
) -> Result<HttpResponse> {
    let filter = filter.into_inner();
    let page = state
        .run(move |_, conn| R::list(conn, &caller, &filter))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn create<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    input: web::Json<R::Input>,
) -> Result<HttpResponse> {
    let input = input.into_inner();
    let record = state
        .write(move |state, conn| {
            let record = R::create(conn, &caller, input)?;
            stamp(conn, state, R::COLLECTION, R::id(&record))?;
            Ok(record)
        })
        .await?;
    let rev = R::revision(&record);
    let location = format!("{}/{}", req.path(), R::id(&record));
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(rev)))
        .insert_header((header::LOCATION, location))
        .json(record))
}

pub async fn get<R: Resource>(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let record = state.run(move |_, conn| R::get(conn, &caller, &id)).await?;
    let rev = R::revision(&record);
    if not_modified(&req, rev) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag(rev)))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(rev)))
        .json(record))
}

pub async fn update<R: Resource>(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    IfMatch(expected): IfMatch,
    input: web::Json<R::Input>,
) -> Result<HttpResponse> {
    let input = input.into_inner();
    let record = state
        .write(move |state, conn| {
            let record = R::update(conn, &caller, &id, expected, input)?;
            stamp(conn, state, R::COLLECTION, R::id(&record))?;
            Ok(record)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(R::revision(&record))))
        .json(record))
}

pub async fn delete<R: Resource>(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse> {
    state
        .write(move |state, conn| {
            R::delete(conn, &caller, &id, expected)?;
            let id = crate::domain::values::parse_id(&id).unwrap_or_default();
            stamp(conn, state, R::COLLECTION, &id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Admin edits take part in last-writer-wins with the server's clock, like a device's edits.
pub(super) fn stamp(conn: &mut DbConn, state: &AppState, collection: &str, id: &str) -> Result<()> {
    match Collection::parse(collection) {
        Some(collection) => records::stamp_server_write(conn, collection, id, &state.clock),
        None => Ok(()),
    }
}
