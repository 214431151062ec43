//! What attendance costs on disk after the pushes: the attendance table with its indexes, and the
//! mutation log (with the table of stamp nodes) with its indexes, per attendance record. Read
//! through a connection of the benchmark's own beside the running server.
//!
//! SQLite: the pages `dbstat` counts for those tables and their indexes (the database as this
//! connection sees it, the WAL's newer pages included; free space inside a page counts, as it
//! does on disk). PostgreSQL: `pg_total_relation_size` (heap, indexes, TOAST, free space map),
//! dead row versions the status changes left included, as autovacuum finds them.

use diemdanh::config::StorageConfig;
use diemdanh::db::DbConn;
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};

/// The tables the mutation log is stored in (`sync_nodes` exists from migration 000201 on).
const LOG_TABLES: [&str; 2] = ["sync_mutations", "sync_nodes"];

#[derive(Debug, Clone, Copy)]
pub struct OnDisk {
    pub attendance_rows: u64,
    pub log_rows: u64,
    pub attendance_bytes: u64,
    pub log_bytes: u64,
}

impl OnDisk {
    /// Bytes per attendance record, its share of the log included.
    pub fn per_record(&self) -> f64 {
        (self.attendance_bytes + self.log_bytes) as f64 / self.attendance_rows.max(1) as f64
    }
}

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

pub fn measure(storage: &StorageConfig) -> OnDisk {
    let pool = diemdanh::db::open(storage).expect("open the database beside the server");
    let mut conn = pool.get().expect("a connection");
    let conn: &mut DbConn = &mut conn;
    let rows = |conn: &mut DbConn, table: &str| -> u64 {
        bytes(conn, &format!("SELECT COUNT(*) AS bytes FROM {table}"))
    };
    let attendance_rows = rows(conn, "attendance");
    let log_rows = rows(conn, "sync_mutations");
    let size = |conn: &mut DbConn, table: &str| -> u64 {
        let sql = match conn {
            DbConn::Sqlite(_) => format!(
                "SELECT COALESCE(SUM(pgsize), 0) AS bytes FROM dbstat WHERE name IN \
                 (SELECT name FROM sqlite_schema WHERE tbl_name = '{table}')"
            ),
            DbConn::Postgres(_) => format!(
                "SELECT COALESCE(pg_total_relation_size(to_regclass('{table}')), 0)::BIGINT \
                 AS bytes"
            ),
        };
        bytes(conn, &sql)
    };
    let attendance_bytes = size(conn, "attendance");
    let log_bytes = LOG_TABLES.iter().map(|table| size(conn, table)).sum();
    OnDisk {
        attendance_rows,
        log_rows,
        attendance_bytes,
        log_bytes,
    }
}

fn bytes(conn: &mut DbConn, sql: &str) -> u64 {
    let query = diesel::sql_query(sql);
    let row: Bytes = match conn {
        DbConn::Sqlite(conn) => query.get_result(conn),
        DbConn::Postgres(conn) => query.get_result(conn),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    u64::try_from(row.bytes).unwrap_or_default()
}
