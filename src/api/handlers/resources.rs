//! Generic list/create/get/update/delete handlers for every `Resource`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::read_json;
use crate::api::extractors::{Authenticated, IfMatch, etag, tagged};
use crate::api::state::AppState;
use serde_json::Value;

use crate::db::DbConn;
use crate::domain::audit::{Audit, AuditAction, Entry};
use crate::domain::{Caller, Resource, Versioned};
use crate::error::{Error, Result};
use crate::sync::merge::{DELETED_FIELD, Fields};
use crate::sync::records::Collection;
use crate::sync::writer::{self, Expect, ServerChange};

pub async fn list<R: Resource>(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    filter: web::Query<R::Filter>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| R::list(conn, &caller, &filter)).await
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
            let record = write_synced::<R>(
                conn,
                state,
                &caller,
                record,
                Expect::NoLiveRecord(R::EXISTS),
            )?;
            audit::<R>(conn, &caller, AuditAction::Created, None, &record)?;
            Ok(record)
        })
        .await?;
    let rev = record.revision();
    let location = format!("{}/{}", req.path(), record.id());
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
    let (mut response, not_modified) = tagged(req.headers(), &etag(record.revision()));
    Ok(if not_modified {
        response.finish()
    } else {
        response.json(record)
    })
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
            // Read only to say what changed. A refusal is `update`'s to answer; a database that
            // fails (a PostgreSQL transaction is then aborted) fails the request here.
            let before = match R::get(conn, &caller, &id) {
                Ok(record) => Some(record),
                Err(
                    failure @ (Error::Unavailable(_)
                    | Error::Internal(_)
                    | Error::InsufficientStorage { .. }),
                ) => return Err(failure),
                Err(_) => None,
            };
            let record = R::update(conn, &caller, &id, expected, input)?;
            let record = write_synced::<R>(conn, state, &caller, record, expectation(expected))?;
            audit::<R>(
                conn,
                &caller,
                AuditAction::Updated,
                before.as_ref(),
                &record,
            )?;
            Ok(record)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(record.revision())))
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
            let existing = R::find_to_change(conn, &caller, &id, expected)?;
            // Read and decide (every refusal), then write: first the synced records through the
            // one writer (their course still live), then the record's own tombstones.
            let mut removals: Vec<ServerChange> = R::plan_delete(conn, &existing)?
                .into_iter()
                .map(|synced| removal(synced.what, synced.collection, synced.id, Expect::Anything))
                .collect();
            if let Some(collection) = synced(R::COLLECTION) {
                removals.push(removal(
                    R::WHAT,
                    collection,
                    existing.id().to_owned(),
                    expectation(expected),
                ));
            }
            if !removals.is_empty() {
                writer::write_server_changes(conn, &caller, &state.clock, removals)?;
            }
            let record_id = existing.id().to_owned();
            R::delete_found(conn, &caller, existing)?;
            Audit::record_by(
                conn,
                &caller,
                Entry::new(AuditAction::Deleted).about(R::AUDIT, record_id),
            )
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The removal of a synced record, as a server-stamped change.
fn removal(
    what: &'static str,
    collection: Collection,
    record_id: String,
    expect: Expect,
) -> ServerChange {
    let mut fields = Fields::new();
    fields.insert(DELETED_FIELD.to_owned(), Value::Bool(true));
    ServerChange {
        what,
        collection,
        record_id,
        fields,
        expect,
    }
}

/// What an If-Match asks of the stored record.
fn expectation(if_match: Option<i64>) -> Expect {
    if_match.map_or(Expect::Anything, Expect::Revision)
}

/// The collection when it is one devices write (written by the one writer), else None.
fn synced(collection: Option<Collection>) -> Option<Collection> {
    collection.filter(|c| c.device_writable())
}

/// A record of a synced collection, checked but unwritten by `R`, written by the one writer as
/// a server-stamped change (so that it takes part in last-writer-wins like a device's edit) and
/// read back as written. Other records are already written.
fn write_synced<R: Resource>(
    conn: &mut DbConn,
    state: &AppState,
    caller: &Caller,
    record: R::Record,
    expect: Expect,
) -> Result<R::Record> {
    let Some(collection) = synced(R::COLLECTION) else {
        return Ok(record);
    };
    let Value::Object(mut values) =
        serde_json::to_value(&record).map_err(|e| crate::error::Error::Internal(e.to_string()))?
    else {
        return Err(crate::error::Error::Internal(
            "a record is not an object".into(),
        ));
    };
    let mut fields: Fields = collection
        .writable_fields()
        .iter()
        .filter_map(|name| {
            values
                .remove(*name)
                .map(|value| ((*name).to_owned(), value))
        })
        .collect();
    fields.insert(DELETED_FIELD.to_owned(), Value::Bool(false));
    let change = ServerChange {
        what: R::WHAT,
        collection,
        record_id: record.id().to_owned(),
        fields,
        expect,
    };
    // A creation for a pair already held (and removed) revives that record, under its id.
    let written = writer::write_server_changes(conn, caller, &state.clock, vec![change])?;
    let id = written
        .first()
        .map(|applied| applied.record_id.clone())
        .ok_or_else(|| crate::error::Error::Internal("the writer wrote nothing".into()))?;
    R::get(conn, caller, &id)
}

/// Puts a write through the admin API in the audit trail, with the fields it set or changed.
fn audit<R: Resource>(
    conn: &mut DbConn,
    caller: &Caller,
    action: AuditAction,
    before: Option<&R::Record>,
    after: &R::Record,
) -> Result<()> {
    let as_json = |record: &R::Record| serde_json::to_value(record).unwrap_or(Value::Null);
    let entry = Entry::new(action)
        .about(R::AUDIT, after.id())
        .record_fields(before.map(as_json).as_ref(), &as_json(after));
    Audit::record_by(conn, caller, entry)
}
