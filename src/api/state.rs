//! What every handler shares (`AppState`: the pool, the material store, the token service, the
//! settings) and the queues requests wait in for blocking work.

use std::sync::Arc;

use actix_web::web;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Auth;
use crate::config::ServerConfig;
use crate::db::{DbConn, Pool, write_tx};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, WorkQueue};
use crate::storage::BlobStore;
use crate::sync::clock::ServerClock;
use crate::sync::push::FilingsInFlight;

/// What every handler shares: the pool, the material store, the token service and the
/// settings. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub store: BlobStore,
    pub auth: Arc<Auth>,
    pub config: Arc<ServerConfig>,
    pub clock: Arc<ServerClock>,
    pub metrics: Arc<Metrics>,
    /// Refusals SQLite pushes are admitted to file and have not filed yet, per device.
    pub filings: Arc<FilingsInFlight>,
    queues: Arc<WorkQueues>,
}

/// Requests wait for blocking work here, in arrival order, instead of on a blocked thread: a
/// thread waiting for a pool connection or SQLite's lock costs memory (each blocking thread grows
/// its own allocator arena) and SQLite's busy handler retries in sleeps, neither fair nor fast.
/// Tokio's semaphore hands permits out first come, first served.
struct WorkQueues {
    /// One permit per pooled connection: database work never waits inside the pool.
    database: Arc<Semaphore>,
    /// One writer at a time. SQLite has a single writer anyway, and on PostgreSQL every write to
    /// a synced table holds the revision counter's row lock until it commits, so writers of one
    /// instance queue here without holding connections that readers need.
    writer: Arc<Semaphore>,
    /// Password hashing takes a core and 19 MiB for a moment: no more at once than cores.
    hashing: Arc<Semaphore>,
    /// SQLite: one large push read and decided beside the writer at a time.
    staging: Arc<Semaphore>,
    /// On PostgreSQL a push reads and decides without the revision counter and takes it only
    /// for its short write phase, so pushes run side by side instead of in the writer's turn.
    /// On SQLite a push reads and decides holding a connection only, and writes in the
    /// writer's turns.
    parallel_pushes: bool,
}

impl AppState {
    pub fn new(pool: Pool, store: BlobStore, auth: Auth, config: ServerConfig) -> Self {
        // Each process stamps with its own node id, so server stamps never tie across instances.
        let node = format!("server-{}", &crate::domain::values::new_id()[24..]);
        let clock = ServerClock::new(node, config.max_clock_drift_ms());
        let connections = usize::try_from(pool.max_size()).unwrap_or(1).max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let parallel_pushes = pool
            .get()
            .is_ok_and(|conn| matches!(*conn, DbConn::Postgres(_)));
        AppState {
            pool,
            store,
            auth: Arc::new(auth),
            config: Arc::new(config),
            clock: Arc::new(clock),
            metrics: Arc::new(Metrics::new()),
            filings: Arc::new(FilingsInFlight::default()),
            queues: Arc::new(WorkQueues {
                database: Arc::new(Semaphore::new(connections)),
                writer: Arc::new(Semaphore::new(1)),
                hashing: Arc::new(Semaphore::new(cores)),
                staging: Arc::new(Semaphore::new(1)),
                parallel_pushes,
            }),
        }
    }
}

impl AppState {
    /// Waits for a turn in one of the queues (the wait is measured for `/metrics`).
    async fn queue(&self, queue: WorkQueue) -> Result<OwnedSemaphorePermit> {
        let semaphore = match queue {
            WorkQueue::Database => &self.queues.database,
            WorkQueue::Writer => &self.queues.writer,
            WorkQueue::Hashing => &self.queues.hashing,
        };
        let _waiting = self.metrics.waiting(queue);
        turn(semaphore).await
    }

    /// Runs blocking database work on actix's blocking pool with a pooled connection, once a
    /// connection is free.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&AppState, &mut DbConn) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.queue(WorkQueue::Database).await?;
        self.run_holding(vec![slot], work).await
    }

    /// Like `run`, inside one write transaction: all of it commits, or none of it.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&AppState, &mut DbConn) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer_turn(move |state, conn| write_tx(conn, |conn| work(state, conn)))
            .await
    }

    /// Whether pushes run side by side in one transaction each (PostgreSQL), rather than
    /// read beside the writer and written in the writer's turns (SQLite).
    pub fn parallel_pushes(&self) -> bool {
        self.queues.parallel_pushes
    }

    /// A large SQLite push's place for reading and deciding beside the writer (one at a time),
    /// kept until its first write begins: however many pushes wait, one decided batch at most
    /// is held in memory for the writer.
    pub async fn staging_turn(&self) -> Result<OwnedSemaphorePermit> {
        turn(&self.queues.staging).await
    }

    /// Runs work that opens its write transactions itself in the writer's turn.
    pub async fn writer_turn<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&AppState, &mut DbConn) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        // Always the writer's turn first, then a connection, so that no two requests wait for
        // each other's permit.
        let turn = self.queue(WorkQueue::Writer).await?;
        let slot = self.queue(WorkQueue::Database).await?;
        self.run_holding(vec![turn, slot], work).await
    }

    /// Runs CPU-heavy work without a connection (password hashing), at most one per core.
    pub async fn compute<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&AppState) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let core = self.queue(WorkQueue::Hashing).await?;
        let state = self.clone();
        web::block(move || {
            let _core = core;
            work(&state)
        })
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
    }

    async fn run_holding<T, F>(&self, permits: Vec<OwnedSemaphorePermit>, work: F) -> Result<T>
    where
        F: FnOnce(&AppState, &mut DbConn) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        // The permits move into the task: a request dropped while its work runs keeps its place
        // until the work is done.
        web::block(move || {
            let _permits = permits;
            let mut conn = state.pool.get()?;
            work(&state, &mut conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
    }
}

/// A permit of one of the queues, once it is free.
async fn turn(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
    Arc::clone(semaphore)
        .acquire_owned()
        .await
        .map_err(|e| Error::Internal(format!("work queue closed: {e}")))
}
