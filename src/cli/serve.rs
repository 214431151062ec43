//! `serve`: migrate, optionally load the demo, start the HTTP server and the daily purge.

use actix_web::web;

use super::init_logging;
use crate::api::{self, AppState};
use crate::auth::Auth;
use crate::config::{ServerConfig, StorageConfig};
use crate::db::{self, DbConn, now_ms};
use crate::demo;
use crate::domain::audit::Audit;
use crate::error::{Error, Result};
use crate::storage::BlobStore;
use crate::sync::retention;

pub(super) fn load_demo(conn: &mut DbConn) -> Result<()> {
    if demo::load(conn)? {
        println!("demo data loaded");
    } else {
        println!("demo data already present");
    }
    Ok(())
}

pub(super) fn serve(storage: &StorageConfig, server: ServerConfig, with_demo: bool) -> Result<()> {
    init_logging(server.log_format);
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    let backend = conn.backend_name();
    if with_demo {
        load_demo(&mut conn)?;
    }
    let auth = Auth::new(&mut conn, &server)?;
    drop(conn);
    let store = BlobStore::open(storage)?;
    spawn_daily_purge(
        pool.clone(),
        server.tombstone_retention_ms(),
        server.audit_retention_ms(),
    );
    let state_location = store.location().to_owned();
    let state = web::Data::new(AppState::new(pool, store, auth, server));
    actix_web::rt::System::new().block_on(async move {
        let listening =
            api::bind(state).map_err(|e| Error::Unavailable(format!("cannot listen: {e}")))?;
        let base = listening
            .addresses
            .first()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        println!(
            "diemdanh is listening on {base} (database: {backend}, data: {}, materials: {})",
            storage.data_dir.display(),
            state_location
        );
        if let Some(address) = listening.metrics_address {
            println!("metrics: http://{address}/metrics");
        }
        if with_demo {
            println!("demo logins:");
            for login in demo::logins() {
                println!(
                    "  {:<8} {:<14} password {}",
                    login.role.as_str(),
                    login.username,
                    login.password
                );
            }
            println!(
                "try: curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' \
                 -d '{{\"username\":\"{}\",\"password\":\"{}\",\"device_name\":\"curl\"}}'",
                demo::ADMIN_USERNAME,
                demo::ADMIN_PASSWORD
            );
        }
        listening
            .server
            .await
            .map_err(|e| Error::Internal(format!("server failed: {e}")))
    })
}

/// Forgets old tombstones and audit entries at start and then once a day. Several instances
/// may do this at once: the deletes are idempotent.
fn spawn_daily_purge(pool: db::Pool, retention_ms: i64, audit_retention_ms: i64) {
    std::thread::spawn(move || {
        loop {
            let pruned = pool.get().map_err(Error::from).and_then(|mut conn| {
                Audit::prune(&mut conn, now_ms().saturating_sub(audit_retention_ms))
            });
            match pruned {
                Ok(0) => {}
                Ok(entries) => tracing::info!(entries, "old audit entries removed"),
                Err(err) => {
                    tracing::warn!(error = %err, "audit pruning failed; will retry tomorrow")
                }
            }
            let outcome = pool
                .get()
                .map_err(Error::from)
                .and_then(|mut conn| retention::purge_tombstones(&mut conn, retention_ms));
            match outcome {
                Ok(purged) if purged.total() > 0 => {
                    tracing::info!(?purged, "old tombstones removed")
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "tombstone purge failed; will retry tomorrow")
                }
            }
            std::thread::sleep(std::time::Duration::from_secs(24 * 3600));
        }
    });
}
