//! Backups and restores of a SQLite database (PostgreSQL has `pg_dump` and `pg_restore`, then
//! `diemdanh new-epoch`: see deploy/OPERATIONS.md).
//!
//! A backup is `VACUUM INTO`: one read transaction, so a consistent snapshot of every commit
//! before it began, taken while the server keeps writing (WAL readers do not block writers). A
//! restore checks the file is a diemdanh database, brings it to this version's schema, starts a
//! new epoch in it (devices' positions from before are answered 410 `resync_required`), and
//! swaps it in by a rename, keeping the database it replaces beside it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::MigrationHarness;

use super::identity::{self, Epoch};
use super::{DbConn, InUse, SQLITE_MIGRATIONS, create_parent_dir, run_migrations};
use crate::config::{DatabaseTarget, StorageConfig};
use crate::error::{Error, Result};

/// What a backup holds.
#[derive(Debug)]
pub struct Backup {
    pub file: PathBuf,
    pub bytes: u64,
    /// The revision counter in the backup: every change up to it is there.
    pub revision: i64,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub database: PathBuf,
    /// The revision counter of the restored database.
    pub revision: i64,
    pub epoch: Epoch,
    /// Where the database the restore replaced was moved, if there was one.
    pub previous: Option<PathBuf>,
}

fn sqlite_path(storage: &StorageConfig, postgres_steps: &str) -> Result<PathBuf> {
    match storage.database_target() {
        DatabaseTarget::Sqlite(path) => Ok(path),
        DatabaseTarget::Postgres(_) => Err(Error::bad_request(
            "use_postgres_tools",
            format!(
                "the database is PostgreSQL: {postgres_steps} (see \"Backups\" and \"Restore\" in \
                 deploy/OPERATIONS.md)"
            ),
        )),
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn unwritable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::bad_request("unwritable_file", format!("{}: {e}", path.display()))
}

/// Flushes a file, or a directory's entries, to disk.
fn sync_path(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| unwritable(path, e))
}

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes a consistent copy of the database to `file`, while it serves. The copy appears under
/// that name only once complete.
pub fn backup(storage: &StorageConfig, file: &Path) -> Result<Backup> {
    sqlite_path(storage, "back it up with pg_dump")?;
    if file.exists() {
        return Err(Error::bad_request(
            "file_exists",
            format!("{} exists already; name a new file", file.display()),
        ));
    }
    let partial = with_suffix(file, &format!(".partial-{}", uuid::Uuid::new_v4()));
    let pool = super::open(storage)?;
    let written = write_backup(&mut *pool.get()?, &partial, file);
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

fn write_backup(conn: &mut DbConn, partial: &Path, file: &Path) -> Result<Backup> {
    let DbConn::Sqlite(sqlite) = conn else {
        return Err(Error::Internal(
            "a SQLite target opened another backend".into(),
        ));
    };
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(partial.to_string_lossy())
        .execute(sqlite)
        .map_err(|e| unwritable(file, e))?;
    let revision = read_revision(&mut open_file(partial)?)?;
    sync_path(partial)?;
    std::fs::rename(partial, file).map_err(|e| unwritable(file, e))?;
    sync_path(&directory_of(file))?;
    let bytes = std::fs::metadata(file)
        .map_err(|e| unwritable(file, e))?
        .len();
    Ok(Backup {
        file: file.to_path_buf(),
        bytes,
        revision,
    })
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

fn read_revision(conn: &mut diesel::SqliteConnection) -> Result<i64> {
    Ok(
        diesel::sql_query("SELECT value FROM revision_counter WHERE id = 1")
            .get_result::<Value>(conn)?
            .value,
    )
}

/// A plain connection to a database file: no WAL switch, no pool, no in-use lock.
fn open_file(file: &Path) -> Result<diesel::SqliteConnection> {
    diesel::SqliteConnection::establish(&file.to_string_lossy())
        .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", file.display())))
}

fn not_a_backup(file: &Path, why: impl std::fmt::Display) -> Error {
    Error::bad_request(
        "not_a_diemdanh_database",
        format!("{} is not a diemdanh database: {why}", file.display()),
    )
}

/// The file starts like a SQLite database.
fn check_header(file: &Path) -> Result<()> {
    let mut header = [0u8; 16];
    File::open(file)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => not_a_backup(file, "it is too short"),
            _ => Error::bad_request("unreadable_file", format!("{}: {e}", file.display())),
        })?;
    if &header != b"SQLite format 3\0" {
        return Err(not_a_backup(file, "it is not a SQLite file"));
    }
    Ok(())
}

/// Checks the copy of a backup, brings it to this version's schema and starts a new epoch in
/// it; leaves it standing alone (no WAL beside it).
fn prepare(copy: &Path, source: &Path) -> Result<(i64, Epoch)> {
    let mut sqlite = open_file(copy)?;
    let check = diesel::sql_query("SELECT quick_check AS line FROM pragma_quick_check")
        .load::<Line>(&mut sqlite)
        .map_err(|e| not_a_backup(source, e))?;
    if check.iter().map(|l| l.line.as_str()).ne(["ok"]) {
        let first = check.first().map_or("", |l| l.line.as_str());
        return Err(not_a_backup(source, format!("it is damaged ({first})")));
    }
    let tables = diesel::sql_query(
        "SELECT count(*) AS value FROM sqlite_master WHERE type = 'table' \
         AND name IN ('__diesel_schema_migrations', 'revision_counter', 'server_settings')",
    )
    .get_result::<Value>(&mut sqlite)
    .map_err(|e| not_a_backup(source, e))?;
    if tables.value != 3 {
        return Err(not_a_backup(source, "it lacks diemdanh's tables"));
    }
    let known: Vec<String> =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map_err(|e| Error::Internal(format!("embedded migrations: {e}")))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
    let applied = sqlite
        .applied_migrations()
        .map_err(|e| not_a_backup(source, e))?;
    if let Some(unknown) = applied
        .iter()
        .map(ToString::to_string)
        .find(|v| !known.contains(v))
    {
        return Err(Error::bad_request(
            "backup_of_a_newer_version",
            format!(
                "{} was written by a newer diemdanh (migration {unknown}); restore it with that \
                 version",
                source.display()
            ),
        ));
    }
    let revision = read_revision(&mut sqlite).map_err(|e| not_a_backup(source, e))?;
    let mut conn = DbConn::Sqlite(sqlite);
    run_migrations(&mut conn)?;
    let epoch = identity::start_new_epoch(&mut conn)?;
    let DbConn::Sqlite(mut sqlite) = conn else {
        unreachable!("made a SQLite connection above")
    };
    // Checkpoints a WAL the backup came with and removes it: the restored file stands alone.
    sqlite.batch_execute("PRAGMA journal_mode = DELETE")?;
    Ok((revision, epoch))
}

/// Replaces the SQLite database with the backup `source`. Refused while any diemdanh process
/// has the database open; the database it replaces is kept as `<database>.before-restore-<time>`.
pub fn restore(storage: &StorageConfig, source: &Path) -> Result<Restored> {
    let database = sqlite_path(
        storage,
        "restore the dump with pg_restore, then run `diemdanh new-epoch`",
    )?;
    check_header(source)?;
    create_parent_dir(&database)?;
    // The copy is this process's own until it is renamed: it is checked and prepared before
    // the database is taken, so that a bad backup is found with the server still running.
    let copy = with_suffix(&database, &format!(".restoring-{}", uuid::Uuid::new_v4()));
    let remove_copy = || {
        for leftover in [
            copy.clone(),
            with_suffix(&copy, "-wal"),
            with_suffix(&copy, "-shm"),
        ] {
            let _ = std::fs::remove_file(leftover);
        }
    };
    let prepared = std::fs::copy(source, &copy)
        .map_err(|e| Error::bad_request("unreadable_file", format!("{}: {e}", source.display())))
        .and_then(|_| prepare(&copy, source))
        .and_then(|prepared| sync_path(&copy).map(|()| prepared));
    let (revision, epoch) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            remove_copy();
            return Err(e);
        }
    };
    let Some(_alone) = InUse::exclusive(&database)? else {
        remove_copy();
        return Err(Error::conflict(
            "database_in_use",
            format!(
                "{} is open in another diemdanh process (a server or a command): stop it, then \
                 restore",
                database.display()
            ),
        ));
    };
    let previous = if database.exists() {
        let aside = with_suffix(
            &database,
            &format!(
                ".before-restore-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ),
        );
        std::fs::rename(&database, &aside).map_err(|e| unwritable(&database, e))?;
        // The replaced database's last commits may still be in its WAL: it goes with it. The
        // shared-memory index is rebuilt from the WAL by whoever opens it next.
        let wal = with_suffix(&database, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, with_suffix(&aside, "-wal")).map_err(|e| unwritable(&wal, e))?;
        }
        let shm = with_suffix(&database, "-shm");
        if shm.exists() {
            std::fs::remove_file(&shm).map_err(|e| unwritable(&shm, e))?;
        }
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&copy, &database).map_err(|e| unwritable(&database, e))?;
    sync_path(&directory_of(&database))?;
    Ok(Restored {
        database,
        revision,
        epoch,
        previous,
    })
}
