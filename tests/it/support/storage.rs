//! The storage settings of the test servers and of the benchmarks' direct database access (the
//! benchmarks include this file by path).

use std::path::PathBuf;

use diemdanh::config::{StorageConfig, StoreConfig};

/// The storage settings a server started without flags has (the command line's defaults for the
/// timeouts, see `config.rs`), on this data directory and database, with this many connections;
/// the material store in the data directory.
pub fn default_storage(
    data_dir: PathBuf,
    database_url: Option<String>,
    db_pool_size: u32,
) -> StorageConfig {
    StorageConfig {
        data_dir,
        database_url,
        db_pool_size,
        sqlite_busy_timeout_ms: 5000,
        pg_lock_timeout_ms: 5000,
        pg_statement_timeout_ms: 30000,
        store: StoreConfig::default(),
    }
}
