//! What a provincial IT office watches, in the Prometheus text format (`GET /metrics`): requests
//! by route and status with their latency, sync outcomes, pull pages, material bytes, the work
//! queues and the database pool, the review backlog. One registry per process; what lives in the
//! database (open quarantine, unresolved conflicts, flagged clocks, the revision counter) is read
//! when the page is asked for, so every instance of a fleet reports the same value for it.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::sync::push::{MutationResult, Status};

/// The content type of the page `encode` writes (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route's pattern (`/api/v1/users/{id}`), never the path: ids would make a series each.
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    result: &'static str,
    /// The refusal's reason code; empty for a mutation that was taken.
    reason: String,
}

/// Which sync protocol served a pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Native,
    WatermelonDb,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::WatermelonDb => "watermelondb",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

/// The queues requests wait in for blocking work (see `api::AppState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkQueue {
    Database,
    Writer,
    Hashing,
}

impl WorkQueue {
    fn label(self) -> &'static str {
        match self {
            WorkQueue::Database => "database",
            WorkQueue::Writer => "writer",
            WorkQueue::Hashing => "hashing",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// What the database holds that an operator should see grow, read when the page is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatabaseFigures {
    pub quarantine_open: i64,
    pub conflicts_unresolved: i64,
    pub devices_clock_flagged: i64,
    pub devices_quarantine_full: i64,
    pub revision: i64,
}

/// The pool's connections at the moment of the scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolFigures {
    pub connections: u32,
    pub idle: u32,
}

type HistogramMaker = fn() -> Histogram;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, HistogramMaker>,
    pushed: Family<PushLabels, Counter>,
    pull_pages: Family<ProtocolLabels, Counter>,
    pull_records: Family<ProtocolLabels, Counter>,
    material_bytes: Counter,
    queue_waiting: Family<QueueLabels, Gauge>,
    queue_wait_seconds: Family<QueueLabels, Histogram, HistogramMaker>,
    pool_connections: Family<PoolLabels, Gauge>,
    quarantine_open: Gauge,
    conflicts_unresolved: Gauge,
    devices_clock_flagged: Gauge,
    devices_quarantine_full: Gauge,
    revision: Gauge,
}

/// 1 ms to about 16 s, doubling: a pull page takes milliseconds, a large import seconds.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("diemdanh");
        let metrics = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_histogram),
            pushed: Family::default(),
            pull_pages: Family::default(),
            pull_records: Family::default(),
            material_bytes: Counter::default(),
            queue_waiting: Family::default(),
            queue_wait_seconds: Family::new_with_constructor(seconds_histogram),
            pool_connections: Family::default(),
            quarantine_open: Gauge::default(),
            conflicts_unresolved: Gauge::default(),
            devices_clock_flagged: Gauge::default(),
            devices_quarantine_full: Gauge::default(),
            revision: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer, by route pattern and method",
            Unit::Seconds,
            metrics.request_seconds.clone(),
        );
        registry.register(
            "sync_push_mutations",
            "Pushed mutations by result, and refused ones by reason",
            metrics.pushed.clone(),
        );
        registry.register(
            "sync_pull_pages",
            "Pull pages served, by protocol",
            metrics.pull_pages.clone(),
        );
        registry.register(
            "sync_pull_records",
            "Records (changes and deletions) served in pull pages, by protocol",
            metrics.pull_records.clone(),
        );
        registry.register_with_unit(
            "material_served",
            "Bytes of material files sent (whole files and ranges)",
            Unit::Bytes,
            metrics.material_bytes.clone(),
        );
        registry.register(
            "work_queue_waiting",
            "Requests waiting for their turn at blocking work, by queue",
            metrics.queue_waiting.clone(),
        );
        registry.register_with_unit(
            "work_queue_wait",
            "Time requests waited for their turn, by queue",
            Unit::Seconds,
            metrics.queue_wait_seconds.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database connections of this process's pool, in use and idle",
            metrics.pool_connections.clone(),
        );
        registry.register(
            "sync_quarantine_open",
            "Refused mutations waiting for an administrator",
            metrics.quarantine_open.clone(),
        );
        registry.register(
            "sync_conflicts_unresolved",
            "Field conflicts no administrator has looked at",
            metrics.conflicts_unresolved.clone(),
        );
        registry.register(
            "devices_clock_flagged",
            "Devices not revoked whose clock was found too far ahead",
            metrics.devices_clock_flagged.clone(),
        );
        registry.register(
            "devices_quarantine_full",
            "Devices not revoked whose last push was refused for a full quarantine",
            metrics.devices_quarantine_full.clone(),
        );
        registry.register(
            "sync_revision",
            "The revision counter: every synced write moves it",
            metrics.revision.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// One answered request. `route` is the matched pattern, or `None` for a path no route has.
    pub fn request(&self, route: Option<String>, method: &str, status: u16, took: Duration) {
        let route = route.unwrap_or_else(|| "unmatched".into());
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method.to_owned(),
                status,
            })
            .inc();
    }

    /// The results of one push, whichever protocol carried it.
    pub fn pushed(&self, results: &[MutationResult]) {
        for result in results {
            let labels = PushLabels {
                result: match result.status {
                    Status::Applied => "applied",
                    Status::Merged => "merged",
                    Status::Duplicate => "duplicate",
                    Status::Rejected => "rejected",
                },
                reason: result.reason.clone().unwrap_or_default(),
            };
            self.pushed.get_or_create(&labels).inc();
        }
    }

    pub fn pulled(&self, protocol: Protocol, records: usize) {
        let labels = ProtocolLabels {
            protocol: protocol.label(),
        };
        self.pull_pages.get_or_create(&labels).inc();
        self.pull_records
            .get_or_create(&labels)
            .inc_by(u64::try_from(records).unwrap_or(u64::MAX));
    }

    pub fn material_sent(&self, bytes: u64) {
        self.material_bytes.inc_by(bytes);
    }

    /// A request starts waiting in a queue; the returned guard records the wait when its turn
    /// comes (or the request is dropped while it waits).
    pub fn waiting(&self, queue: WorkQueue) -> QueueWait<'_> {
        self.queue_waiting
            .get_or_create(&QueueLabels {
                queue: queue.label(),
            })
            .inc();
        QueueWait {
            metrics: self,
            queue,
            since: std::time::Instant::now(),
        }
    }

    /// The page, with the figures read for it.
    pub fn encode(&self, database: DatabaseFigures, pool: PoolFigures) -> String {
        self.quarantine_open.set(database.quarantine_open);
        self.conflicts_unresolved.set(database.conflicts_unresolved);
        self.devices_clock_flagged
            .set(database.devices_clock_flagged);
        self.devices_quarantine_full
            .set(database.devices_quarantine_full);
        self.revision.set(database.revision);
        let in_use = pool.connections.saturating_sub(pool.idle);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(in_use));
        self.pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(pool.idle));
        let mut page = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut page, &self.registry);
        page
    }
}

/// A request's place in a work queue, from its arrival to its turn.
pub struct QueueWait<'a> {
    metrics: &'a Metrics,
    queue: WorkQueue,
    since: std::time::Instant,
}

impl Drop for QueueWait<'_> {
    fn drop(&mut self) {
        let labels = QueueLabels {
            queue: self.queue.label(),
        };
        self.metrics.queue_waiting.get_or_create(&labels).dec();
        self.metrics
            .queue_wait_seconds
            .get_or_create(&labels)
            .observe(self.since.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status, reason: Option<&str>) -> MutationResult {
        MutationResult {
            mutation_id: None,
            status,
            record_id: None,
            merged_into: None,
            rev: None,
            original_status: None,
            reason: reason.map(str::to_owned),
            message: None,
        }
    }

    #[test]
    fn pushed_mutations_are_counted_by_result_and_reason() {
        let metrics = Metrics::new();
        metrics.pushed(&[
            result(Status::Applied, None),
            result(Status::Applied, None),
            result(Status::Rejected, Some("not_assigned")),
        ]);
        let page = metrics.encode(DatabaseFigures::default(), PoolFigures::default());
        assert!(
            page.contains(r#"diemdanh_sync_push_mutations_total{result="applied",reason=""} 2"#),
            "{page}"
        );
        assert!(
            page.contains(
                r#"diemdanh_sync_push_mutations_total{result="rejected",reason="not_assigned"} 1"#
            ),
            "{page}"
        );
    }

    #[test]
    fn a_queue_wait_ends_when_its_guard_is_dropped() {
        let metrics = Metrics::new();
        let wait = metrics.waiting(WorkQueue::Writer);
        let during = metrics.encode(DatabaseFigures::default(), PoolFigures::default());
        assert!(
            during.contains(r#"diemdanh_work_queue_waiting{queue="writer"} 1"#),
            "{during}"
        );
        drop(wait);
        let after = metrics.encode(DatabaseFigures::default(), PoolFigures::default());
        assert!(
            after.contains(r#"diemdanh_work_queue_waiting{queue="writer"} 0"#),
            "{after}"
        );
        assert!(
            after.contains(r#"diemdanh_work_queue_wait_seconds_count{queue="writer"} 1"#),
            "{after}"
        );
    }
}
