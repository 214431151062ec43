//! Database access: one connection type over SQLite and PostgreSQL, the pool, migrations,
//! write transactions and the revision counter. No HTTP and no business rules live here.

pub mod backup;
pub mod identity;
pub mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::{DatabaseTarget, StorageConfig};
use crate::error::{Error, Result};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Any key will do as long as every diemdanh instance uses the same one: it serialises
/// migrations when several instances start at once on one PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x6469_656d_6461_6e68;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

pub type Backend = <DbConn as Connection>::Backend;
pub type Pool = r2d2::Pool<DbManager>;
pub type PooledConn = r2d2::PooledConnection<DbManager>;

/// Opens connections for the configured backend. The scheme of the URL decides the backend, so a
/// mistyped PostgreSQL URL fails instead of silently creating a SQLite file.
#[derive(Debug, Clone)]
pub struct DbManager {
    target: DatabaseTarget,
    busy_timeout_ms: u32,
    pg_lock_timeout_ms: u32,
    pg_statement_timeout_ms: u32,
    /// A SQLite database's checkpoints, run while the pool lives (see [`Checkpoints`]).
    _checkpoints: Option<Arc<Checkpoints>>,
    /// A SQLite database's in-use lock, held while the pool lives (see [`InUse`]); declared
    /// last, so that it is released after the checkpoints' connection is closed.
    _in_use: Option<Arc<InUse>>,
}

impl DbManager {
    pub fn new(storage: &StorageConfig) -> Self {
        DbManager {
            target: storage.database_target(),
            busy_timeout_ms: storage.sqlite_busy_timeout_ms,
            pg_lock_timeout_ms: storage.pg_lock_timeout_ms,
            pg_statement_timeout_ms: storage.pg_statement_timeout_ms,
            _checkpoints: None,
            _in_use: None,
        }
    }

    pub fn connect(&self) -> Result<DbConn> {
        match &self.target {
            DatabaseTarget::Sqlite(path) => {
                let url = path.to_string_lossy();
                let mut conn = diesel::SqliteConnection::establish(&url)
                    .map_err(|e| Error::Unavailable(format!("cannot open {url}: {e}")))?;
                // WAL lets readers run beside the writer; synchronous=FULL makes every commit
                // durable before a push is acknowledged. No memory map (`mmap_size`): each pooled
                // connection maps the file anew, so the process's RSS counted the database once
                // per connection (8 x 39 MiB in the sync benchmark) for no gain in pull speed
                // once the feed's queries became index range scans.
                // SQLite's own checkpoint, run by the commit that takes the log past a size,
                // only as a safety net: `Checkpoints` runs them beside the writer.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = {};",
                    self.busy_timeout_ms,
                    Checkpoints::SAFETY_NET_PAGES
                ))?;
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseTarget::Postgres(url) => {
                let mut conn = diesel::PgConnection::establish(url)
                    .map_err(|e| Error::Unavailable(format!("cannot reach PostgreSQL: {e}")))?;
                // A stuck lock or a runaway statement ends in an error (503 with Retry-After)
                // rather than holding a worker and a connection for as long as it lasts.
                // Custom plans only: diesel keeps its statements prepared, and after five runs
                // PostgreSQL may switch to a generic plan that cannot see the ids bound to
                // `= ANY($n)`; for a feed query ordered by `rev` that plan walks the `rev` index
                // over every row of the table (seen: a fresh device's pull of one course reading
                // all 7,000 sessions of a convergence run, each case dearer than the last).
                conn.batch_execute(&format!(
                    "SET lock_timeout = {}; SET statement_timeout = {}; \
                     SET plan_cache_mode = force_custom_plan;",
                    self.pg_lock_timeout_ms, self.pg_statement_timeout_ms
                ))?;
                Ok(DbConn::Postgres(conn))
            }
        }
    }
}

impl ManageConnection for DbManager {
    type Connection = DbConn;
    type Error = Error;

    fn connect(&self) -> Result<DbConn> {
        DbManager::connect(self)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<()> {
        conn.ping().map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

impl DbConn {
    pub fn backend_name(&self) -> &'static str {
        match self {
            DbConn::Sqlite(_) => "sqlite",
            DbConn::Postgres(_) => "postgres",
        }
    }

    /// Asks the database a trivial question: it answers when it is up and reachable.
    pub fn ping(&mut self) -> diesel::QueryResult<()> {
        self.batch_execute("SELECT 1")
    }
}

/// Runs a statement on the backend's own connection instead of through `DbConn`. Through the
/// multi-backend connection, diesel writes a statement's SQL text anew on every execution even
/// when the prepared statement is cached; on the backend's own connection a cached statement is
/// found by its type and only its bind values are collected. Used for the statements a push
/// runs for every mutation; the body is compiled once per backend.
macro_rules! on_backend {
    ($conn:expr, |$backend:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($backend) => $body,
            $crate::db::DbConn::Postgres($backend) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Creates the data directory if needed, runs pending migrations and returns a pool. A SQLite
/// database stays marked in use by this process while the pool lives.
pub fn open(storage: &StorageConfig) -> Result<Pool> {
    let mut manager = DbManager::new(storage);
    if let DatabaseTarget::Sqlite(path) = &storage.database_target() {
        create_parent_dir(path)?;
        manager._in_use = Some(Arc::new(InUse::share(path)?));
    }
    let mut conn = manager.connect()?;
    run_migrations(&mut conn)?;
    if matches!(manager.target, DatabaseTarget::Sqlite(_)) {
        manager._checkpoints = Some(Arc::new(Checkpoints::start(manager.connect()?)?));
    }
    r2d2::Pool::builder()
        .max_size(storage.db_pool_size.max(1))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(Error::from)
}

/// SQLite's checkpoints (copying the write-ahead log back into the database file) on a thread
/// of their own, beside the writer. Left to SQLite, a checkpoint is run by the commit that takes
/// the log past its threshold, inside the single writer's turn: often a turn of a device filing
/// refusals by the thousand, and every push waiting for the writer waited for the checkpoint's
/// writes and syncs too (about 5 ms at p99 under a flood, against about 1.5 ms with this thread;
/// docs/testing.md, "Flood: checkpoints beside the writer"). A passive checkpoint takes no lock
/// a writer or a reader waits for. The thread ends, and closes its connection, when the pool
/// that owns it is dropped.
#[derive(Debug)]
struct Checkpoints {
    /// Dropped to stop the thread at once.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    /// How often the log is copied back: at a flood's write rate, a few MiB of log at a time.
    const EVERY: Duration = Duration::from_millis(200);
    /// SQLite's own checkpoint threshold (pages of log), should this thread fall behind: ten
    /// times SQLite's default, about 40 MiB.
    const SAFETY_NET_PAGES: u32 = 10_000;

    /// Runs the checkpoints on `conn`, a connection of their own to the database.
    fn start(mut conn: DbConn) -> Result<Checkpoints> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoints".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Self::EVERY)
                {
                    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "a checkpoint failed; SQLite's own follows");
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpoints {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A lock on `<database>.lock` next to a SQLite database: every process that opens the database
/// holds it shared, `diemdanh restore` exclusively. So a restore never swaps the file under a
/// process that has it open (whose connections would go on writing to the replaced file, and
/// whose last one to close would delete the new file's WAL by name), and nothing opens the
/// database while a restore runs. The operating system drops the lock when a process ends,
/// however it ends.
#[derive(Debug)]
pub struct InUse {
    /// Locked while this lives; closing it releases the lock.
    _lock: File,
}

impl InUse {
    pub fn lock_path(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    fn open_lock_file(database: &Path) -> Result<File> {
        let path = Self::lock_path(database);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))
    }

    /// Marks the database in use by this process; fails while a restore runs.
    fn share(database: &Path) -> Result<InUse> {
        let file = Self::open_lock_file(database)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(InUse { _lock: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Unavailable(format!(
                "{} is being restored from a backup; try again when the restore is done",
                database.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Unavailable(format!(
                "cannot lock {}: {e}",
                Self::lock_path(database).display()
            ))),
        }
    }

    /// Takes the database for this process alone; `None` while another process has it open.
    pub fn exclusive(database: &Path) -> Result<Option<InUse>> {
        let file = Self::open_lock_file(database)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(InUse { _lock: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Unavailable(format!(
                "cannot lock {}: {e}",
                Self::lock_path(database).display()
            ))),
        }
    }
}

pub(crate) fn create_parent_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        }),
        _ => Ok(()),
    }
}

/// Applies every pending migration of the connection's backend. On PostgreSQL an advisory lock
/// makes concurrent starters wait for the one that migrates.
pub fn run_migrations(conn: &mut DbConn) -> Result<Vec<String>> {
    let applied = match conn {
        DbConn::Sqlite(c) => apply(c, SQLITE_MIGRATIONS)?,
        DbConn::Postgres(c) => {
            // A migration may rebuild an index of a large table, and waits for the instance
            // that migrates first: neither is limited like a request's statements.
            c.batch_execute("SET lock_timeout = 0; SET statement_timeout = 0;")?;
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = apply(c, POSTGRES_MIGRATIONS);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result?
        }
    };
    Ok(applied)
}

fn apply<C>(conn: &mut C, migrations: EmbeddedMigrations) -> Result<Vec<String>>
where
    C: MigrationHarness<C::Backend> + Connection,
{
    let versions = conn
        .run_pending_migrations(migrations)
        .map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
    Ok(versions.iter().map(ToString::to_string).collect())
}

/// Runs `work` in one write transaction. SQLite starts it with `BEGIN IMMEDIATE` so that the
/// write lock is taken up front (waiting up to busy_timeout) instead of failing mid-transaction
/// when a reader upgrades; PostgreSQL uses a plain transaction.
pub fn write_tx<T, F>(conn: &mut DbConn, work: F) -> Result<T>
where
    F: FnOnce(&mut DbConn) -> Result<T>,
{
    write_tx_of(conn, work)
}

/// `write_tx` for work with an error type of its own.
pub fn write_tx_of<T, E, F>(conn: &mut DbConn, work: F) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConn) -> std::result::Result<T, E>,
    E: From<diesel::result::Error>,
{
    type Manager = <DbConn as Connection>::TransactionManager;
    match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConn::Postgres(_) => Manager::begin_transaction(conn)?,
    }
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            // The work's error is the one worth reporting; a failed rollback marks the
            // connection broken and the pool discards it.
            let _ = Manager::rollback_transaction(conn);
            Err(err)
        }
    }
}

/// `write_tx_of` for work whose durability can wait: on SQLite the commit is not synced to disk
/// (`synchronous = NORMAL` for this transaction; the write-ahead log keeps the database
/// consistent), so it becomes durable with the next synced commit on the database or the next
/// checkpoint, whichever comes first. For the middle parts of a write that is answered only
/// after a synced commit of its own: every frame before it in the log is synced with it.
/// PostgreSQL commits as `write_tx_of` does.
pub fn write_tx_synced_later<T, E, F>(conn: &mut DbConn, work: F) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConn) -> std::result::Result<T, E>,
    E: From<diesel::result::Error>,
{
    let unsynced = matches!(conn, DbConn::Sqlite(_));
    if unsynced {
        conn.batch_execute("PRAGMA synchronous = NORMAL")?;
    }
    let result = write_tx_of(conn, work);
    if unsynced {
        // A connection left unsynced would weaken every later commit on it; setting a pragma
        // fails only on a connection that no longer works.
        conn.batch_execute("PRAGMA synchronous = FULL")?;
    }
    result
}

/// Allocates the next server revision. The counter row stays locked until the transaction ends,
/// so revisions become visible in commit order on both backends.
pub fn next_revision(conn: &mut DbConn) -> Result<i64> {
    use schema::revision_counter::dsl::*;
    let rev = diesel::update(revision_counter.filter(id.eq(1)))
        .set(value.eq(value + 1))
        .returning(value)
        .get_result::<i64>(conn)?;
    Ok(rev)
}

/// Allocates `count` consecutive revisions at once (a writer's batch, a roster import): one
/// counter update instead of one per row, with the same commit-order guarantee. With a count
/// of 0 it only takes the counter's row lock.
pub fn next_revisions(conn: &mut DbConn, count: usize) -> Result<std::ops::RangeInclusive<i64>> {
    use schema::revision_counter::dsl::*;
    let count = i64::try_from(count).map_err(|e| Error::Internal(e.to_string()))?;
    let last = diesel::update(revision_counter.filter(id.eq(1)))
        .set(value.eq(value + count))
        .returning(value)
        .get_result::<i64>(conn)?;
    Ok(last - count + 1..=last)
}

/// Takes the revision counter's row lock for the rest of the transaction without moving the
/// counter: a unit of work that will write revisions (a push's write phase, server-stamped
/// changes) orders itself with every other before it reads what it decides on.
pub fn lock_revision_counter(conn: &mut DbConn) -> Result<()> {
    next_revisions(conn, 0).map(|_| ())
}

/// The last revision handed out: every synced write moves it.
pub fn current_revision(conn: &mut DbConn) -> Result<i64> {
    use schema::revision_counter::dsl::*;
    Ok(revision_counter
        .filter(id.eq(1))
        .select(value)
        .get_result(conn)?)
}

/// Server time in Unix milliseconds: the only clock trusted for stored times.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn get_setting(conn: &mut DbConn, name: &str) -> Result<Option<String>> {
    use schema::server_settings::dsl::*;
    Ok(server_settings
        .filter(key.eq(name))
        .select(value)
        .get_result::<String>(conn)
        .optional()?)
}

/// Stores `candidate` under `name` unless a value is already there, and returns the stored value.
/// Safe when several instances race: the primary key decides and every loser reads the winner.
pub fn get_or_init_setting(conn: &mut DbConn, name: &str, candidate: &str) -> Result<String> {
    use schema::server_settings::dsl::*;
    if let Some(existing) = get_setting(conn, name)? {
        return Ok(existing);
    }
    let inserted = diesel::insert_into(server_settings)
        .values((key.eq(name), value.eq(candidate)))
        .execute(conn);
    match inserted {
        Ok(_) | Err(diesel::result::Error::DatabaseError(_, _)) => {}
        Err(e) => return Err(e.into()),
    }
    get_setting(conn, name)?.ok_or_else(|| Error::Internal(format!("setting {name} vanished")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_storage(dir: &Path) -> StorageConfig {
        StorageConfig {
            data_dir: dir.to_path_buf(),
            database_url: None,
            db_pool_size: 2,
            sqlite_busy_timeout_ms: 1000,
            pg_lock_timeout_ms: 5000,
            pg_statement_timeout_ms: 30000,
            store: Default::default(),
        }
    }

    /// The value of the SQLite pragma `name` on `conn`, as text.
    fn pragma(conn: &mut DbConn, name: &str) -> String {
        #[derive(QueryableByName)]
        struct Pragma {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let DbConn::Sqlite(c) = conn else {
            panic!("expected sqlite")
        };
        diesel::sql_query(format!(
            "SELECT CAST({name} AS TEXT) AS value FROM pragma_{name}"
        ))
        .get_result::<Pragma>(c)
        .unwrap()
        .value
    }

    #[test]
    fn sqlite_connections_are_durable_and_enforce_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&sqlite_storage(dir.path())).unwrap();
        let mut conn = pool.get().unwrap();
        assert_eq!(pragma(&mut conn, "journal_mode"), "wal");
        assert_eq!(pragma(&mut conn, "synchronous"), "2");
        assert_eq!(pragma(&mut conn, "foreign_keys"), "1");
    }

    #[test]
    fn the_log_is_copied_back_into_the_database_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let storage = sqlite_storage(dir.path());
        let pool = open(&storage).unwrap();
        let DatabaseTarget::Sqlite(database) = storage.database_target() else {
            panic!("expected sqlite")
        };
        let before = std::fs::metadata(&database).unwrap().len();
        let mut conn = pool.get().unwrap();
        conn.batch_execute("CREATE TABLE filler (bytes BLOB NOT NULL)")
            .unwrap();
        // 8 MiB of log, far below SQLite's own threshold (`SAFETY_NET_PAGES`): only the
        // checkpoint thread copies it back.
        for _ in 0..64 {
            conn.batch_execute(
                "INSERT INTO filler (bytes) WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 32) \
                 SELECT randomblob(4096) FROM n",
            )
            .unwrap();
        }
        let grown = before + 6 * 1024 * 1024;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&database).unwrap().len() < grown {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was not copied back within 5 s: the database file is {} bytes",
                std::fs::metadata(&database).unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn revisions_increase_and_roll_back_with_their_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&sqlite_storage(dir.path())).unwrap();
        let mut conn = pool.get().unwrap();
        let first = write_tx(&mut conn, next_revision).unwrap();
        let failed: Result<i64> = write_tx(&mut conn, |c| {
            next_revision(c)?;
            Err(Error::conflict("test", "roll back"))
        });
        assert!(failed.is_err());
        let second = write_tx(&mut conn, next_revision).unwrap();
        assert_eq!(second, first + 1);
    }

    #[test]
    fn a_write_synced_later_commits_and_leaves_the_connection_synced() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&sqlite_storage(dir.path())).unwrap();
        let mut conn = pool.get().unwrap();
        let inside = write_tx_synced_later(&mut conn, |c| {
            next_revision(c)?;
            Ok::<_, Error>(pragma(c, "synchronous"))
        })
        .unwrap();
        assert_eq!(inside, "1", "NORMAL while the work runs");
        assert_eq!(pragma(&mut conn, "synchronous"), "2", "FULL again after it");
        let failed: Result<()> = write_tx_synced_later(&mut conn, |c| {
            next_revision(c)?;
            Err(Error::conflict("test", "roll back"))
        });
        assert!(failed.is_err());
        assert_eq!(
            pragma(&mut conn, "synchronous"),
            "2",
            "FULL again after a failure"
        );
        let last = write_tx(&mut conn, next_revision).unwrap();
        assert_eq!(last, 2, "the first write committed, the failed one did not");
    }

    #[test]
    fn a_setting_is_initialised_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&sqlite_storage(dir.path())).unwrap();
        let mut conn = pool.get().unwrap();
        assert_eq!(
            get_or_init_setting(&mut conn, "k", "first").unwrap(),
            "first"
        );
        assert_eq!(
            get_or_init_setting(&mut conn, "k", "second").unwrap(),
            "first"
        );
    }
}
