//! WatermelonDB's `synchronize()` as a fresh app does it: one first sync of the whole scope,
//! then incremental syncs from the timestamp it was given.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::load;

#[derive(Deserialize)]
struct TableChanges {
    created: Vec<serde::de::IgnoredAny>,
    updated: Vec<serde::de::IgnoredAny>,
    deleted: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct PullReply {
    changes: std::collections::BTreeMap<String, TableChanges>,
    timestamp: i64,
}

/// One `pullChanges` call.
pub struct WatermelonPull {
    pub elapsed: Duration,
    /// Created, updated and deleted records over all tables.
    pub records: usize,
    pub wire_bytes: usize,
    pub timestamp: i64,
}

/// `GET /api/v1/watermelon/sync` from `last_pulled_at` (None: a first sync).
pub fn pull(base: &str, token: &str, last_pulled_at: Option<i64>, gzip: bool) -> WatermelonPull {
    let agent = load::agent();
    let since = last_pulled_at.map_or_else(|| "null".to_owned(), |t| t.to_string());
    let url = format!("{base}/api/v1/watermelon/sync?last_pulled_at={since}&schema_version=1");
    let started = Instant::now();
    let reply = load::get(&agent, &url, token, gzip).unwrap_or_else(|e| panic!("watermelon: {e}"));
    let json = load::plain_body(&reply);
    let elapsed = started.elapsed();
    assert_eq!(
        reply.status,
        200,
        "watermelon pull: {}",
        String::from_utf8_lossy(&json)
    );
    let parsed: PullReply = serde_json::from_slice(&json).expect("a WatermelonDB pull reply");
    WatermelonPull {
        elapsed,
        records: parsed
            .changes
            .values()
            .map(|t| t.created.len() + t.updated.len() + t.deleted.len())
            .sum(),
        wire_bytes: reply.body.len(),
        timestamp: parsed.timestamp,
    }
}
