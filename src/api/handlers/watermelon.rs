//! WatermelonDB's `synchronize()` endpoints: pull and push on one path.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::sync::refused_for_full_quarantine;
use super::{json_bytes, json_response};
use crate::api::extractors::{Authenticated, BulkJson};
use crate::api::state::AppState;
use crate::error::{Error, Result};
use crate::metrics::Protocol;
use crate::sync::push;
use crate::sync::watermelon::{self, Migration};

/// About the size of one raw record in a WatermelonDB pull (an attendance row is ~220 bytes).
const RAW_RECORD_JSON_BYTES: usize = 256;

/// The query of both endpoints. Values arrive as text because WatermelonDB apps commonly
/// interpolate JavaScript values, so `null` comes as the word `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    pub last_pulled_at: Option<String>,
    pub schema_version: Option<String>,
    pub migration: Option<String>,
    /// A pull in pages: the previous page's `cursor` (none for the first page).
    pub cursor: Option<String>,
    /// A pull in pages: at most this many changes per page.
    pub limit: Option<String>,
}

fn is_null(raw: &Option<String>) -> bool {
    raw.as_deref().is_none_or(|v| v.is_empty() || v == "null")
}

fn last_pulled_at(raw: &Option<String>) -> Result<Option<i64>> {
    if is_null(raw) {
        return Ok(None);
    }
    let text = raw.as_deref().unwrap_or_default();
    match text.parse::<i64>() {
        Ok(at) if at > 0 => Ok(Some(at)),
        _ => Err(Error::bad_request(
            "invalid_last_pulled_at",
            "last_pulled_at must be a timestamp this server gave (a number above 0), or null",
        )),
    }
}

/// The page asked for (the cursor, if any, and the limit) when the pull is in pages: `limit`
/// or `cursor` given. A pull after a schema migration is answered at once.
fn pull_page(query: &SyncQuery, migration: bool) -> Result<Option<(Option<String>, i64)>> {
    if query.limit.is_none() && query.cursor.is_none() {
        return Ok(None);
    }
    if migration {
        return Err(Error::bad_request(
            "invalid_query",
            "cursor and limit page a pull without a migration",
        ));
    }
    let limit = match query.limit.as_deref() {
        None => watermelon::DEFAULT_PAGE,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| Error::bad_request("invalid_query", "limit must be a whole number"))?,
    };
    Ok(Some((query.cursor.clone(), limit)))
}

pub async fn pull(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    query: web::Query<SyncQuery>,
) -> Result<HttpResponse> {
    let query = query.into_inner();
    let last_pulled_at = last_pulled_at(&query.last_pulled_at)?;
    let schema_version_valid = query
        .schema_version
        .as_deref()
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|v| v > 0);
    if !is_null(&query.schema_version) && !schema_version_valid {
        return Err(Error::bad_request(
            "invalid_schema_version",
            "schema_version must be a number above 0",
        ));
    }
    let migration = if is_null(&query.migration) {
        None
    } else {
        let parsed = serde_json::from_str::<Migration>(query.migration.as_deref().unwrap_or(""))
            .map_err(|e| {
                Error::bad_request(
                    "invalid_migration",
                    format!("migration must be WatermelonDB's migration object or null: {e}"),
                )
            })?;
        Some(parsed)
    };
    let paged = pull_page(&query, migration.is_some())?;
    let body = state
        .run(move |state, conn| {
            let settings = watermelon::Settings {
                tombstone_retention_ms: state.config.tombstone_retention_ms(),
                cursor_key: state.auth.cursor_key(),
            };
            let response = match (paged, last_pulled_at) {
                (Some((cursor, limit)), None) => {
                    watermelon::first_pull_page(conn, &caller, &settings, cursor.as_deref(), limit)?
                }
                (Some((cursor, limit)), Some(at)) => {
                    watermelon::pull_page(conn, &caller, &settings, at, cursor.as_deref(), limit)?
                }
                (None, _) => {
                    watermelon::pull(conn, &caller, &settings, last_pulled_at, migration.as_ref())?
                }
            };
            state
                .metrics
                .pulled(Protocol::WatermelonDb, response.records());
            json_bytes(&response, response.records() * RAW_RECORD_JSON_BYTES + 1024)
        })
        .await?;
    Ok(json_response(body))
}

/// Applies the changes; answers only after they are committed.
pub async fn push(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    query: web::Query<SyncQuery>,
    BulkJson(body): BulkJson<Value>,
) -> Result<HttpResponse> {
    let query = query.into_inner();
    if !is_null(&query.schema_version)
        || !is_null(&query.migration)
        || query.cursor.is_some()
        || query.limit.is_some()
    {
        return Err(Error::bad_request(
            "invalid_query",
            "a push takes only last_pulled_at",
        ));
    }
    let last_pulled_at = last_pulled_at(&query.last_pulled_at)?.ok_or_else(|| {
        Error::bad_request(
            "invalid_last_pulled_at",
            "a push needs the last_pulled_at of the pull before it",
        )
    })?;
    let max = state.config.max_push_mutations;
    let cap = state.config.quarantine_cap();
    let pusher = caller.clone();
    let response = state
        .write(move |state, conn| {
            // In the writer's turn: the refusals native pushes of the device are still to
            // file are counted as they stand.
            let room = push::Room {
                cap,
                in_flight: &state.filings,
            };
            watermelon::push(
                conn,
                &pusher,
                &state.clock,
                last_pulled_at,
                &body,
                max,
                room,
            )
        })
        .await;
    if let Err(Error::QuarantineFull { .. }) = &response {
        // The push's transaction is rolled back: the flag is written on its own.
        refused_for_full_quarantine(&state, caller).await?;
    }
    Ok(HttpResponse::Ok().json(response?))
}
