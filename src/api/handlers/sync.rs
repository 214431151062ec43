//! The sync protocol over HTTP: push a batch, pull pages, and the administrators' review lists.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{json_bytes, json_response, read_json, write_json};
use crate::api::extractors::{Authenticated, BulkJson};
use crate::api::state::AppState;
use crate::config::QuarantineCap;
use crate::domain::Caller;
use crate::domain::values::path_id;
use crate::error::{Error, Result};
use crate::fault;
use crate::metrics::Protocol;
use crate::sync::{pull, push, review};

/// About the size of one change in a pull page (an attendance record is 450-500 bytes).
const CHANGE_JSON_BYTES: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Applies a batch; answers only after it is committed. On SQLite the batch is read and decided
/// holding a connection only, then written in the writer's turns (`push::stage_push`).
pub async fn push(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    BulkJson(body): BulkJson<push::PushRequest>,
) -> Result<HttpResponse> {
    let mutations = body.into_mutations(state.config.max_push_mutations)?;
    let cap = state.config.quarantine_cap();
    let pusher = caller.clone();
    let written = if state.parallel_pushes() {
        state
            .run(move |state, conn| push::push_batch(conn, &pusher, &state.clock, cap, &mutations))
            .await
    } else {
        push_in_turns(&state, pusher, cap, mutations).await
    };
    if let Err(Error::QuarantineFull { .. }) = &written {
        refused_for_full_quarantine(&state, caller).await?;
    }
    let outcome = written?;
    fault::point(fault::PUSH_AFTER_COMMIT);
    state.metrics.pushed(&outcome.results);
    Ok(HttpResponse::Ok().json(outcome))
}

/// After a push refused for a full quarantine (nothing of it written): flags the device for
/// administrators. A device flagged already pushed refusals again without waiting for
/// `Retry-After`: its answer waits `push::FULL_AGAIN_PAUSE`, so that an app pushing in a loop
/// leaves the server to the other devices.
pub(super) async fn refused_for_full_quarantine(state: &AppState, caller: Caller) -> Result<()> {
    let flagged_now = state
        .write(move |_, conn| push::note_full_quarantine(conn, &caller))
        .await?;
    if !flagged_now {
        actix_web::rt::time::sleep(push::FULL_AGAIN_PAUSE).await;
    }
    Ok(())
}

/// A SQLite push. A batch of a few mutations is read, decided and written in one writer's turn
/// (its reading takes about as long as its writing); a larger one is read and decided beside
/// the writer, one such batch at a time (it keeps its place until its first write begins, so
/// that one decided batch at most waits for the writer), then written a turn at a time.
async fn push_in_turns(
    state: &AppState,
    caller: Caller,
    cap: QuarantineCap,
    mutations: Vec<serde_json::Value>,
) -> Result<push::PushOutcome> {
    let (mut staged, mut staging) = if mutations.len() <= push::DECIDED_IN_TURN {
        let step = state
            .writer_turn(move |state, conn| {
                let staged =
                    push::stage_push(conn, caller, &state.clock, cap, mutations, &state.filings)?;
                push::write_staged(conn, staged, &state.clock, &state.filings)
            })
            .await?;
        match step {
            push::Step::More(next) => (*next, None),
            push::Step::Done(outcome) => return Ok(outcome),
        }
    } else {
        let staging = state.staging_turn().await?;
        let staged = state
            .run(move |state, conn| {
                push::stage_push(conn, caller, &state.clock, cap, mutations, &state.filings)
            })
            .await?;
        (staged, Some(staging))
    };
    loop {
        let place = staging.take();
        let step = state
            .writer_turn(move |state, conn| {
                drop(place);
                push::write_staged(conn, staged, &state.clock, &state.filings)
            })
            .await?;
        staged = match step {
            push::Step::More(next) => *next,
            push::Step::Done(outcome) => return Ok(outcome),
        };
    }
}

pub async fn pull(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    query: web::Query<PullQuery>,
) -> Result<HttpResponse> {
    let query = query.into_inner();
    let body = state
        .run(move |state, conn| {
            let settings = pull::PullSettings {
                cursor_key: state.auth.cursor_key(),
                tombstone_retention_ms: state.config.tombstone_retention_ms(),
            };
            let page = pull::page(
                conn,
                &caller,
                &settings,
                query.cursor.as_deref(),
                query.limit,
            )?;
            state.metrics.pulled(Protocol::Native, page.changes.len());
            json_bytes(&page, page.changes.len() * CHANGE_JSON_BYTES + 1024)
        })
        .await?;
    Ok(json_response(body))
}

pub async fn list_quarantine(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    filter: web::Query<review::ReviewFilter>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| {
        review::list_quarantine(conn, &caller, &filter)
    })
    .await
}

pub async fn dismiss_quarantined(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    write_json(&state, move |_, conn| {
        review::dismiss(conn, &caller, &path_id(&id, "quarantined mutation")?)
    })
    .await
}

pub async fn list_conflicts(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    filter: web::Query<review::ReviewFilter>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| {
        review::list_conflicts(conn, &caller, &filter)
    })
    .await
}

pub async fn reapply_quarantined(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    body: web::Json<review::Reapply>,
) -> Result<HttpResponse> {
    let correction = body.into_inner();
    let (item, result) = state
        .write(move |state, conn| {
            review::reapply(
                conn,
                &caller,
                &state.clock,
                &path_id(&id, "quarantined mutation")?,
                correction,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "quarantined": item, "result": result })))
}

pub async fn resolve_conflict(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    body: web::Json<review::Resolution>,
) -> Result<HttpResponse> {
    write_json(&state, move |state, conn| {
        let id = path_id(&id, "conflict")?;
        review::resolve_conflict(conn, &caller, &state.clock, &id, body.into_inner())
    })
    .await
}
