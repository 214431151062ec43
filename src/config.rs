//! Settings from command-line flags and `DIEMDANH_*` environment variables. Every setting has a
//! default so that a fresh clone runs with no configuration; the README lists them all.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Where the data lives. Shared by every command that opens the database.
#[derive(Args, Debug, Clone)]
pub struct StorageConfig {
    /// Directory for the embedded SQLite database and, by default, the material store.
    #[arg(
        long,
        env = "DIEMDANH_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// `postgres://…` to use PostgreSQL; `sqlite://PATH` or a plain path for another SQLite file.
    /// Default: `<data-dir>/diemdanh.db`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Database connections per server process.
    #[arg(
        long,
        env = "DIEMDANH_DB_POOL_SIZE",
        default_value_t = 8,
        global = true
    )]
    pub db_pool_size: u32,

    /// How long a SQLite writer waits for the write lock before giving up (milliseconds).
    #[arg(
        long,
        env = "DIEMDANH_SQLITE_BUSY_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub sqlite_busy_timeout_ms: u32,

    /// PostgreSQL: how long a statement waits for a lock before giving up (milliseconds; 0 waits
    /// for ever). The request answers 503 with Retry-After instead of holding a worker.
    #[arg(
        long,
        env = "DIEMDANH_PG_LOCK_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub pg_lock_timeout_ms: u32,

    /// PostgreSQL: how long one statement may run (milliseconds; 0: no limit). A longer one is
    /// cancelled and the request answers 503 with Retry-After. Migrations are not limited.
    #[arg(
        long,
        env = "DIEMDANH_PG_STATEMENT_TIMEOUT_MS",
        default_value_t = 30000,
        global = true
    )]
    pub pg_statement_timeout_ms: u32,

    #[command(flatten)]
    pub store: StoreConfig,
}

/// Where material files are kept: a local directory (default `<data-dir>/materials`) or an
/// S3-compatible bucket, which several server instances can share.
#[derive(Args, Debug, Clone)]
pub struct StoreConfig {
    /// `s3://BUCKET[/PREFIX]` for S3-compatible storage, or a directory (`file://PATH` or a
    /// path). Default: `<data-dir>/materials`.
    #[arg(long, env = "DIEMDANH_STORE_URL", global = true)]
    pub store_url: Option<String>,

    /// S3 endpoint for a non-AWS service (MinIO, Ceph, Garage…), e.g. `https://s3.example.vn`.
    #[arg(long, env = "DIEMDANH_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// S3 region.
    #[arg(
        long,
        env = "DIEMDANH_S3_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub s3_region: String,

    /// S3 access key id (or `AWS_ACCESS_KEY_ID`).
    #[arg(
        long,
        env = "DIEMDANH_S3_ACCESS_KEY_ID",
        global = true,
        hide_env_values = true
    )]
    pub s3_access_key_id: Option<String>,

    /// S3 secret access key (or `AWS_SECRET_ACCESS_KEY`).
    #[arg(
        long,
        env = "DIEMDANH_S3_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,

    /// Allow a plain-HTTP S3 endpoint (a local test server; never over a public network).
    #[arg(
        long,
        env = "DIEMDANH_S3_ALLOW_HTTP",
        default_value_t = false,
        global = true
    )]
    pub s3_allow_http: bool,
}

impl Default for StoreConfig {
    /// The local directory under the data dir, as with no configuration.
    fn default() -> Self {
        StoreConfig {
            store_url: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
        }
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StorageConfig {
    pub fn database_target(&self) -> DatabaseTarget {
        match self.database_url.as_deref().map(str::trim) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                DatabaseTarget::Postgres(url.to_owned())
            }
            Some(url) if !url.is_empty() => {
                DatabaseTarget::Sqlite(PathBuf::from(url.trim_start_matches("sqlite://")))
            }
            _ => DatabaseTarget::Sqlite(self.data_dir.join("diemdanh.db")),
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings of the HTTP server.
#[derive(Args, Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[arg(long, env = "DIEMDANH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "DIEMDANH_WORKERS")]
    pub workers: Option<usize>,

    /// Secret that signs access tokens. Default: a random secret generated once and kept in the
    /// database, so every instance on the same database shares it.
    #[arg(long, env = "DIEMDANH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "DIEMDANH_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a refresh token, in days: longer than a field trip without signal.
    #[arg(long, env = "DIEMDANH_REFRESH_TOKEN_TTL_DAYS", default_value_t = 60)]
    pub refresh_token_ttl_days: u64,

    /// Seconds after a refresh during which the same refresh token may be presented again (its
    /// answer was lost on a weak link) and is answered with a new chain instead of signing the
    /// device out. 0: every reuse signs the device out.
    #[arg(long, env = "DIEMDANH_REFRESH_RETRY_GRACE_SECS", default_value_t = 60)]
    pub refresh_retry_grace_secs: u64,

    /// Failed logins allowed per account from one client address within the login window
    /// before that address gets 429; past as many failures from any address, the account is
    /// slowed down (1, 2, 4… seconds between attempts).
    #[arg(long, env = "DIEMDANH_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Longest wait between two login attempts of a slowed-down account, in seconds.
    #[arg(long, env = "DIEMDANH_LOGIN_MAX_DELAY_SECS", default_value_t = 60)]
    pub login_max_delay_secs: u64,

    /// Failed logins allowed per client address within the login window before 429.
    #[arg(long, env = "DIEMDANH_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 20)]
    pub login_max_failures_per_ip: u32,

    /// Length of the login rate-limit window, in seconds.
    #[arg(long, env = "DIEMDANH_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,

    /// Use the first address of `X-Forwarded-For` as the client address (only behind a proxy
    /// you trust).
    #[arg(long, env = "DIEMDANH_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,

    /// Largest JSON request body accepted, in bytes.
    #[arg(long, env = "DIEMDANH_MAX_JSON_BYTES", default_value_t = 1024 * 1024)]
    pub max_json_bytes: usize,

    /// Device clock stamps further than this ahead of server time are re-stamped and the device
    /// flagged, so that a wrong clock cannot win every conflict.
    #[arg(long, env = "DIEMDANH_MAX_CLOCK_DRIFT_SECS", default_value_t = 600)]
    pub max_clock_drift_secs: u64,

    /// Largest material file accepted by an upload, in bytes (413 above).
    #[arg(long, env = "DIEMDANH_MAX_MATERIAL_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_material_bytes: u64,

    /// Most mutations accepted in one push.
    #[arg(long, env = "DIEMDANH_MAX_PUSH_MUTATIONS", default_value_t = 1000)]
    pub max_push_mutations: usize,

    /// Most refused mutations one device may hold open in quarantine. A push that would file
    /// more answers 429 `quarantine_full` (nothing of it is applied) and flags the device until
    /// an administrator has dealt with its entries. Never less than one push's worth
    /// (`DIEMDANH_MAX_PUSH_MUTATIONS`), so that an emptied quarantine takes any batch.
    #[arg(
        long,
        env = "DIEMDANH_MAX_QUARANTINE_PER_DEVICE",
        default_value_t = 5000
    )]
    pub max_quarantine_per_device: usize,

    /// The Retry-After, in seconds, of a push refused for a full quarantine: an administrator
    /// has to act before it can succeed, so the device need not try often.
    #[arg(
        long,
        env = "DIEMDANH_QUARANTINE_FULL_RETRY_SECS",
        default_value_t = 600
    )]
    pub quarantine_full_retry_secs: u64,

    /// How long deletions are remembered for devices; an older pull cursor must start over.
    #[arg(long, env = "DIEMDANH_TOMBSTONE_RETENTION_DAYS", default_value_t = DEFAULT_TOMBSTONE_RETENTION_DAYS)]
    pub tombstone_retention_days: u64,

    /// How long audit trail entries are kept; older ones are pruned at start and daily.
    #[arg(long, env = "DIEMDANH_AUDIT_RETENTION_DAYS", default_value_t = 730)]
    pub audit_retention_days: u64,

    /// Seconds a client has to send a request's line and headers, counted from its first
    /// byte; a slower one (slowloris) gets 408 and the connection is closed.
    #[arg(
        long,
        env = "DIEMDANH_CLIENT_REQUEST_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub client_request_timeout_secs: u64,

    /// Longest pause, in seconds, between two pieces of a request body; a longer one gets 408
    /// and the connection is closed. A pause, not a total, so that a large upload over a slow
    /// link is never cut while it keeps moving.
    #[arg(long, env = "DIEMDANH_CLIENT_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub client_body_timeout_secs: u64,

    /// Seconds an idle keep-alive connection stays open between requests.
    #[arg(long, env = "DIEMDANH_KEEP_ALIVE_SECS", default_value_t = 15)]
    pub keep_alive_secs: u64,

    /// Seconds a connection answered before its body was read (413, 408, 415…) lingers so that
    /// the client can read the answer, before it is closed.
    #[arg(
        long,
        env = "DIEMDANH_CLIENT_DISCONNECT_TIMEOUT_SECS",
        default_value_t = 5
    )]
    pub client_disconnect_timeout_secs: u64,

    /// Seconds given to in-flight requests to finish after SIGTERM/SIGINT.
    #[arg(long, env = "DIEMDANH_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// A second address that serves `GET /metrics` (Prometheus) and nothing else, with no
    /// token: bind it where only the monitoring can reach (e.g. `10.0.0.5:9100`).
    #[arg(long, env = "DIEMDANH_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// A bearer token that opens `GET /metrics` on the public port. Without it (and by
    /// default) the public port has no metrics page.
    #[arg(long, env = "DIEMDANH_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Log line format.
    #[arg(long, env = "DIEMDANH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServerConfig {
    pub fn max_clock_drift_ms(&self) -> u64 {
        self.max_clock_drift_secs.saturating_mul(1000)
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn refresh_token_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_token_ttl_days * 24 * 3600)
    }

    pub fn refresh_retry_grace(&self) -> Duration {
        Duration::from_secs(self.refresh_retry_grace_secs)
    }

    pub fn login_window(&self) -> Duration {
        Duration::from_secs(self.login_window_secs)
    }

    pub fn login_max_delay(&self) -> Duration {
        Duration::from_secs(self.login_max_delay_secs)
    }

    /// How long deletions are remembered for devices, in milliseconds.
    pub fn tombstone_retention_ms(&self) -> i64 {
        days_ms(self.tombstone_retention_days)
    }

    /// How old an audit entry may get, in milliseconds.
    pub fn audit_retention_ms(&self) -> i64 {
        days_ms(self.audit_retention_days)
    }

    /// How much a device may hold in quarantine: at least one push's worth.
    pub fn quarantine_cap(&self) -> QuarantineCap {
        QuarantineCap {
            per_device: self.max_quarantine_per_device.max(self.max_push_mutations),
            retry_after_secs: self.quarantine_full_retry_secs,
        }
    }
}

/// A retention in days as milliseconds, saturating: a huge setting keeps everything.
/// How long deletions are remembered unless configured: the server and `purge-tombstones` agree.
pub const DEFAULT_TOMBSTONE_RETENTION_DAYS: u64 = 180;

pub fn days_ms(days: u64) -> i64 {
    i64::try_from(days)
        .unwrap_or(i64::MAX)
        .saturating_mul(86_400_000)
}

/// The most open quarantine entries one device may hold, and when a push refused for a full
/// quarantine should come again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineCap {
    pub per_device: usize,
    pub retry_after_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(url: Option<&str>) -> StorageConfig {
        StorageConfig {
            data_dir: PathBuf::from("/srv/dd"),
            database_url: url.map(str::to_owned),
            db_pool_size: 4,
            sqlite_busy_timeout_ms: 5000,
            pg_lock_timeout_ms: 5000,
            pg_statement_timeout_ms: 30000,
            store: StoreConfig::default(),
        }
    }

    #[test]
    fn database_target_follows_the_url_scheme() {
        assert_eq!(
            storage(None).database_target(),
            DatabaseTarget::Sqlite(PathBuf::from("/srv/dd/diemdanh.db"))
        );
        assert_eq!(
            storage(Some("postgres://u@h/db")).database_target(),
            DatabaseTarget::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            storage(Some("postgresql://u@h/db")).database_target(),
            DatabaseTarget::Postgres("postgresql://u@h/db".into())
        );
        assert_eq!(
            storage(Some("sqlite:///tmp/x.db")).database_target(),
            DatabaseTarget::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(
            storage(Some("  ")).database_target(),
            DatabaseTarget::Sqlite(PathBuf::from("/srv/dd/diemdanh.db"))
        );
    }
}
