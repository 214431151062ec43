//! Handlers, one module per area. Each extracts, calls the domain on the blocking pool and
//! responds; no SQL lives here.

pub mod audit;
pub mod auth;
pub mod health;
pub mod imports;
pub mod materials;
pub mod metrics;
pub mod reorganisation;
pub mod reports;
pub mod resources;
pub mod roster;
pub mod sync;
pub mod users;
pub mod watermelon;

use std::convert::Infallible;

use actix_web::HttpResponse;
use actix_web::body::SizedStream;
use actix_web::http::header::ContentType;
use bytes::Bytes;
use serde::Serialize;

use crate::api::state::AppState;
use crate::db::DbConn;
use crate::error::{Error, Result};

/// Answers 200 with the JSON of what `read` returns (run on the blocking pool).
async fn read_json<T, F>(state: &AppState, read: F) -> Result<HttpResponse>
where
    F: FnOnce(&AppState, &mut DbConn) -> Result<T> + Send + 'static,
    T: Serialize + Send + 'static,
{
    Ok(HttpResponse::Ok().json(state.run(read).await?))
}

/// Answers 200 with the JSON of what `write` returns, once its transaction is committed.
async fn write_json<T, F>(state: &AppState, write: F) -> Result<HttpResponse>
where
    F: FnOnce(&AppState, &mut DbConn) -> Result<T> + Send + 'static,
    T: Serialize + Send + 'static,
{
    Ok(HttpResponse::Ok().json(state.write(write).await?))
}

/// A large answer (a pull page, a WatermelonDB sync) written to JSON on the blocking pool, where
/// the database work ran, into a buffer sized for it up front: no copies as it grows, and no
/// serialisation on the async workers.
fn json_bytes<T: Serialize>(value: &T, size_hint: usize) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(size_hint);
    serde_json::to_writer(&mut body, value).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(body)
}

/// The slices a large answer goes out in.
const RESPONSE_SLICE: usize = 64 * 1024;

/// A large answer, sent in slices of its bytes (no copy) with its length. actix writes a body
/// through the connection's write buffer, which keeps the size it grew to for as long as the
/// connection stays open: a megabyte-sized pull page sent whole held a megabyte per kept-alive
/// connection (64 devices pulling at once: about 60 MiB of the server's peak, by heaptrack).
fn json_response(body: Vec<u8>) -> HttpResponse {
    let body = Bytes::from(body);
    let length = body.len() as u64;
    let slices = (0..body.len()).step_by(RESPONSE_SLICE).map(move |start| {
        let end = (start + RESPONSE_SLICE).min(body.len());
        Ok::<_, Infallible>(body.slice(start..end))
    });
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(SizedStream::new(length, futures_util::stream::iter(slices)))
}
