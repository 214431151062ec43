//! The command line: `serve`, `migrate`, `demo`, backups and restores, account and device
//! administration, and material uploads.

mod accounts;
mod import;
mod serve;
mod units;
mod upload;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rand::Rng;

use crate::auth::password;
use crate::config::{
    DEFAULT_TOMBSTONE_RETENTION_DAYS, LogFormat, ServerConfig, StorageConfig, days_ms,
};
use crate::db::{self, DbConn};
use crate::demo;
use crate::domain::access::Manages;
use crate::domain::users::Users;
use crate::domain::{Caller, Role};
use crate::error::{Error, Result};
use crate::sync::retention;
pub use accounts::{DeviceCommand, UserCommand};
use accounts::{device_command, user_command};
pub use import::ImportCommand;
use import::import_command;
use serve::{load_demo, serve};
pub use units::UnitsCommand;
use units::units_command;
pub use upload::MaterialsCommand;
use upload::materials_command;

#[derive(Parser, Debug)]
#[command(
    name = "diemdanh",
    version,
    about = "Offline-first attendance sync server for field training"
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageConfig,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve {
        #[command(flatten)]
        server: ServerConfig,
        /// Load the demo data set if the database does not have it yet.
        #[arg(long, env = "DIEMDANH_DEMO", default_value_t = false)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to FILE while the server keeps serving
    /// (on PostgreSQL use pg_dump: see deploy/OPERATIONS.md).
    Backup { file: PathBuf },
    /// Replace the SQLite database with the backup FILE. Every diemdanh process on the database
    /// must be stopped; the replaced database is kept beside it. Devices start their pulls over.
    Restore { file: PathBuf },
    /// Start a new epoch: every device starts its pulls over (what it has not pushed yet still
    /// pushes). Run after restoring a PostgreSQL dump with pg_restore.
    NewEpoch,
    /// Load the demo data set (a province, two classes, trainers) and print the demo logins.
    Demo,
    /// Write the demo cadres as an office's XLSX roster, to try `import people` with.
    DemoRoster { file: std::path::PathBuf },
    /// Remove deletion tombstones older than the retention (the server also does this daily).
    PurgeTombstones {
        #[arg(long, env = "DIEMDANH_TOMBSTONE_RETENTION_DAYS", default_value_t = DEFAULT_TOMBSTONE_RETENTION_DAYS)]
        retention_days: u64,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage course materials (files in the configured store).
    #[command(subcommand)]
    Materials(MaterialsCommand),
    /// Reorganise units: merge and rename (units are named by code or id).
    #[command(subcommand)]
    Units(UnitsCommand),
    /// Import rosters from CSV or XLSX files.
    #[command(subcommand)]
    Import(ImportCommand),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { server, demo } => serve(&cli.storage, server, demo),
        Command::Migrate => {
            let pool = db::open(&cli.storage)?;
            let backend = pool.get()?.backend_name();
            println!("database ({backend}) is up to date");
            Ok(())
        }
        Command::Backup { file } => {
            let backup = db::backup::backup(&cli.storage, &file)?;
            println!(
                "backed up to {} ({} bytes, revision {})",
                backup.file.display(),
                backup.bytes,
                backup.revision
            );
            println!("also copy the material store (see \"Backups\" in deploy/OPERATIONS.md)");
            Ok(())
        }
        Command::Restore { file } => {
            let restored = db::backup::restore(&cli.storage, &file)?;
            println!(
                "restored {} into {} (revision {}, epoch {})",
                file.display(),
                restored.database.display(),
                restored.revision,
                restored.epoch.id()
            );
            if let Some(previous) = restored.previous {
                println!("the replaced database is kept as {}", previous.display());
            }
            println!(
                "devices start their pulls over on their next sync; changes they have not \
                 pushed yet still push"
            );
            Ok(())
        }
        Command::NewEpoch => {
            let pool = db::open(&cli.storage)?;
            let epoch = db::identity::start_new_epoch(&mut *pool.get()?)?;
            println!(
                "new epoch {}: devices start their pulls over on their next sync",
                epoch.id()
            );
            Ok(())
        }
        Command::DemoRoster { file } => {
            std::fs::write(&file, demo::roster_xlsx()?).map_err(|e| {
                Error::bad_request("unwritable_file", format!("{}: {e}", file.display()))
            })?;
            println!("demo roster written to {}", file.display());
            Ok(())
        }
        Command::Demo => {
            let pool = db::open(&cli.storage)?;
            load_demo(&mut *pool.get()?)
        }
        Command::PurgeTombstones { retention_days } => {
            let pool = db::open(&cli.storage)?;
            let purged = retention::purge_tombstones(&mut *pool.get()?, days_ms(retention_days))?;
            println!(
                "removed {} tombstones older than {retention_days} days: {purged:?}",
                purged.total()
            );
            Ok(())
        }
        Command::User(command) => user_command(&cli.storage, command),
        Command::Device(command) => device_command(&cli.storage, command),
        Command::Materials(command) => materials_command(&cli.storage, command),
        Command::Units(command) => units_command(&cli.storage, command),
        Command::Import(command) => import_command(&cli.storage, command),
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DIEMDANH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Reads a password from stdin, or generates one and says so.
fn obtain_password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::Internal(format!("cannot read stdin: {e}")))?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        password::check_strength("password", &password)?;
        return Ok((password, false));
    }
    if std::io::stdin().is_terminal() {
        eprintln!("no --password-stdin: generating a password");
    }
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let password = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    Ok((password, true))
}

fn find_user(conn: &mut DbConn, username: &str) -> Result<crate::domain::users::User> {
    Users::find_by_username(conn, username)?.ok_or(Error::NotFound { what: "user" })
}

/// The CLI acts as an administrator with no account or device of its own: its entries in the
/// audit trail name no user, device or address. Tests and benchmarks that act straight through
/// the library act as it does.
pub fn cli_admin() -> Caller {
    Caller {
        user_id: String::new(),
        device_id: String::new(),
        role: Role::Admin,
        person_id: None,
        address: None,
        unit_id: None,
        manages: Manages::Everything,
    }
}
