//! The command line: `serve`, `migrate`, `demo`, backups and restores, account and device
//! administration, and material uploads.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::web;
use clap::{Parser, Subcommand};
use rand::Rng;

use crate::api::{self, AppState};
use crate::auth::{Auth, password};
use crate::config::{LogFormat, ServerConfig, StorageConfig, days_ms};
use crate::db::{self, DbConn, now_ms, write_tx};
use crate::demo;
use crate::domain::access::Manages;
use crate::domain::audit::Audit;
use crate::domain::imports;
use crate::domain::materials::{self, Materials, StoredContent, UploadMeta};
use crate::domain::reorganisation::{self, MergeRequest, RenameRequest};
use crate::domain::units::UnitInput;
use crate::domain::users::{Devices, NewUser, Users};
use crate::domain::values::new_id;
use crate::domain::{Caller, Resource, Role};
use crate::error::{Error, Result};
use crate::storage::BlobStore;
use crate::sync::clock::ServerClock;
use crate::sync::retention;
use crate::sync::writer;

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
        #[arg(long, env = "DIEMDANH_TOMBSTONE_RETENTION_DAYS", default_value_t = 180)]
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

#[derive(Subcommand, Debug)]
pub enum UnitsCommand {
    /// Merge units into an existing unit (--into) or a new one (--new-code and --new-name) from a
    /// date: their sub-units and people move to it; past attendance stays with the old units.
    Merge {
        /// The units that end.
        #[arg(required = true)]
        sources: Vec<String>,
        /// The existing unit that takes them in.
        #[arg(long, conflicts_with_all = ["new_code", "new_name"])]
        into: Option<String>,
        /// Code of a new unit to create for the merge.
        #[arg(long, requires = "new_name")]
        new_code: Option<String>,
        /// Name of the new unit.
        #[arg(long, requires = "new_code")]
        new_name: Option<String>,
        /// Kind of the new unit.
        #[arg(long, default_value = "commune", value_parser = crate::domain::units::KINDS)]
        kind: String,
        /// The first day of the merged unit (YYYY-MM-DD).
        #[arg(long)]
        date: String,
    },
    /// Rename a unit; the old name stays in its history.
    Rename {
        unit: String,
        name: String,
        /// The first day of the new name (default today).
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import people (STT, Họ và tên, Ngày sinh, Giới tính, Chức vụ, Đơn vị, Số điện thoại).
    /// Without --apply this is a dry run: it prints the per-row report and writes nothing.
    People {
        /// The .csv or .xlsx file.
        file: std::path::PathBuf,
        /// Also enroll every imported person in this course.
        #[arg(long = "course")]
        course_id: Option<String>,
        /// Write the changes (in one transaction; refused when any row has an error).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MaterialsCommand {
    /// Upload files to a course, each as a new material (identical content is stored once).
    Add {
        /// The course's id.
        #[arg(long)]
        course: String,
        /// Title (one file only; default: the file name without its extension).
        #[arg(long)]
        title: Option<String>,
        /// pdf, slides, video, audio, document or other (default: from the file's type).
        #[arg(long)]
        kind: Option<String>,
        /// Language tag (default: vi).
        #[arg(long)]
        language: Option<String>,
        /// Largest file accepted, in bytes (as the server's upload limit).
        #[arg(long, env = "DIEMDANH_MAX_MATERIAL_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
        max_material_bytes: u64,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Delete stored files that no material uses any more (replaced or deleted), and temporary
    /// files left by a crash.
    Gc {
        /// Keep files written less than this many hours ago (an upload in progress may be
        /// about to use them).
        #[arg(long, default_value_t = 24)]
        min_age_hours: u64,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a strong password is generated and printed.
    Add {
        username: String,
        #[arg(long, value_parser = ["admin", "organiser", "trainer", "trainee"])]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// The person a trainee account belongs to (required for trainees).
        #[arg(long)]
        person_id: Option<String>,
        /// The unit an organiser plans for, with the units below it (required for organisers).
        #[arg(long)]
        unit_id: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password; the user's devices are signed out.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and sign out its devices.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// List accounts.
    List,
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// List devices (of one user, or all).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Sign a device out: its tokens stop working on the next request.
    Revoke { device_id: String },
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

fn load_demo(conn: &mut DbConn) -> Result<()> {
    if demo::load(conn)? {
        println!("demo data loaded");
    } else {
        println!("demo data already present");
    }
    Ok(())
}

fn serve(storage: &StorageConfig, server: ServerConfig, with_demo: bool) -> Result<()> {
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
/// audit trail name no user, device or address.
fn cli_admin() -> Caller {
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

fn user_command(storage: &StorageConfig, command: UserCommand) -> Result<()> {
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    match command {
        UserCommand::Add {
            username,
            role,
            display_name,
            person_id,
            unit_id,
            password_stdin,
        } => {
            let (plain, generated) = obtain_password(password_stdin)?;
            let hash = password::hash(&plain)?;
            let user = write_tx(&mut conn, |conn| {
                Users::create_by(
                    conn,
                    &cli_admin(),
                    NewUser {
                        username,
                        display_name,
                        role,
                        person_id,
                        unit_id,
                    },
                    hash,
                )
            })?;
            println!("created {} {} ({})", user.role, user.username, user.id);
            if generated {
                println!("password: {plain}");
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let user = find_user(&mut conn, &username)?;
            let (plain, generated) = obtain_password(password_stdin)?;
            let hash = password::hash(&plain)?;
            write_tx(&mut conn, |conn| {
                Users::reset_password(conn, &cli_admin(), &user.id, &hash)
            })?;
            println!(
                "password of {} changed; its devices are signed out",
                user.username
            );
            if generated {
                println!("password: {plain}");
            }
        }
        UserCommand::Disable { username } => set_disabled(&mut conn, &username, true)?,
        UserCommand::Enable { username } => set_disabled(&mut conn, &username, false)?,
        UserCommand::List => {
            let filter = crate::domain::users::UserFilter {
                limit: Some(crate::domain::MAX_PAGE_SIZE),
                ..Default::default()
            };
            let mut offset = 0;
            loop {
                let page = Users::list(
                    &mut conn,
                    &cli_admin(),
                    &crate::domain::users::UserFilter {
                        offset: Some(offset),
                        ..filter.clone()
                    },
                )?;
                for user in &page.items {
                    let state = if user.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        user.id, user.username, user.role, state, user.display_name
                    );
                }
                offset += page.items.len() as i64;
                if page.items.is_empty() || offset >= page.total {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn set_disabled(conn: &mut DbConn, username: &str, disabled: bool) -> Result<()> {
    let user = find_user(conn, username)?;
    let changes = crate::domain::users::UserChanges {
        disabled: Some(disabled),
        ..Default::default()
    };
    let user = write_tx(conn, |conn| {
        Users::change(conn, &cli_admin(), &user.id, changes)
    })?;
    println!(
        "{} is {}",
        user.username,
        if user.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        }
    );
    Ok(())
}

fn device_command(storage: &StorageConfig, command: DeviceCommand) -> Result<()> {
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    match command {
        DeviceCommand::List { user } => {
            let user_id = user
                .map(|name| find_user(&mut conn, &name).map(|u| u.id))
                .transpose()?;
            let filter = crate::domain::users::DeviceFilter {
                user_id,
                limit: Some(crate::domain::MAX_PAGE_SIZE),
                offset: None,
            };
            for device in Devices::list(&mut conn, &cli_admin(), &filter)?.items {
                let state = if device.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    device.id, device.user_id, state, device.name
                );
            }
        }
        DeviceCommand::Revoke { device_id } => {
            let id = crate::domain::values::path_id(&device_id, "device")?;
            write_tx(&mut conn, |conn| Devices::revoke(conn, &cli_admin(), &id))?;
            println!("device {id} revoked");
        }
    }
    Ok(())
}

fn materials_command(storage: &StorageConfig, command: MaterialsCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the I/O runtime: {e}")))?;
    match command {
        MaterialsCommand::Add {
            course,
            title,
            kind,
            language,
            max_material_bytes,
            files,
        } => add_materials(
            storage,
            &runtime,
            AddMaterials {
                course,
                title,
                kind,
                language,
                limit: max_material_bytes,
            },
            &files,
        ),
        MaterialsCommand::Gc {
            min_age_hours,
            dry_run,
        } => {
            let pool = db::open(storage)?;
            let store = BlobStore::open(storage)?;
            let referenced = Materials::referenced_hashes(&mut *pool.get()?)?;
            let min_age = Duration::from_secs(min_age_hours.saturating_mul(3600));
            let collected =
                runtime.block_on(store.collect_garbage(&referenced, min_age, dry_run))?;
            println!(
                "{} {} unused files ({} bytes) from {}; kept {} in use and {} newer than \
                 {min_age_hours} h",
                if dry_run { "would delete" } else { "deleted" },
                collected.deleted,
                collected.deleted_bytes,
                store.location(),
                collected.kept,
                collected.too_young
            );
            Ok(())
        }
    }
}

/// What `materials add` applies to every file.
struct AddMaterials {
    course: String,
    title: Option<String>,
    kind: Option<String>,
    language: Option<String>,
    limit: u64,
}

fn add_materials(
    storage: &StorageConfig,
    runtime: &tokio::runtime::Runtime,
    options: AddMaterials,
    files: &[PathBuf],
) -> Result<()> {
    let AddMaterials {
        course,
        title,
        kind,
        language,
        limit,
    } = options;
    if title.is_some() && files.len() > 1 {
        return Err(Error::bad_request(
            "title_needs_one_file",
            "--title names one file; without it each file's name becomes its title",
        ));
    }
    let pool = db::open(storage)?;
    let store = BlobStore::open(storage)?;
    let mut conn = pool.get()?;
    for path in files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::bad_request("not_a_file", format!("{} is not a file", path.display()))
            })?;
        let meta = UploadMeta {
            id: None,
            title: title.clone(),
            kind: kind.clone(),
            language: language.clone(),
            file_name: file_name.clone(),
        };
        let content_type = materials::content_type_for(&file_name);
        Materials::check_upload(
            &mut conn,
            &cli_admin(),
            Materials::upload_input(&course, &meta, content_type, None),
        )?;
        let blob = runtime.block_on(upload_file(&store, path, limit))?;
        let content = StoredContent {
            sha256: blob.sha256.clone(),
            size_bytes: i64::try_from(blob.size)
                .map_err(|_| Error::Internal("file size out of range".into()))?,
        };
        let input = Materials::upload_input(&course, &meta, content_type, Some(&content));
        let material = write_tx(&mut conn, |conn| {
            Materials::create(conn, &cli_admin(), input)
        })?;
        println!(
            "added {} \"{}\" ({} bytes, sha256 {}{})",
            material.id,
            material.title,
            blob.size,
            blob.sha256,
            if blob.deduplicated {
                ", content already stored"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Streams one file into the store, with a progress line on stderr.
async fn upload_file(
    store: &BlobStore,
    path: &Path,
    limit: u64,
) -> Result<crate::storage::StoredBlob> {
    let cannot_read = |e: std::io::Error| {
        Error::bad_request(
            "unreadable_file",
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    let total = file.metadata().map_err(cannot_read)?.len();
    crate::storage::check_announced_size(Some(total), limit)?;
    let mut progress = Progress::new(&path.display().to_string(), total);
    let mut upload = store.begin(limit).await?;
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) => {
                upload.abort().await;
                return Err(cannot_read(e));
            }
        };
        upload.write(&buffer[..read]).await?;
        progress.update(upload.size());
    }
    if upload.size() == 0 {
        upload.abort().await;
        return Err(Error::bad_request(
            "empty_file",
            format!("{} is empty", path.display()),
        ));
    }
    let blob = upload.finish().await?;
    progress.done(blob.size);
    Ok(blob)
}

/// A progress line for large files: redrawn in place on a terminal, a line per tenth otherwise
/// (logs stay readable).
struct Progress {
    name: String,
    total: u64,
    started: Instant,
    last_drawn: Option<Instant>,
    last_tenth: u64,
    terminal: bool,
}

impl Progress {
    /// Files smaller than this finish too fast for a progress line to help.
    const MIN_BYTES: u64 = 8 * 1024 * 1024;

    fn new(name: &str, total: u64) -> Progress {
        Progress {
            name: name.to_owned(),
            total,
            started: Instant::now(),
            last_drawn: None,
            last_tenth: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, done: u64) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{}: {:.1} / {:.1} MiB ({:.0}%), {:.1} MiB/s",
            self.name,
            mib(done),
            mib(self.total),
            100.0 * done as f64 / self.total.max(1) as f64,
            mib(done) / secs
        )
    }

    fn update(&mut self, done: u64) {
        if self.total < Self::MIN_BYTES {
            return;
        }
        let mut stderr = std::io::stderr();
        if self.terminal {
            if self
                .last_drawn
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            {
                return;
            }
            self.last_drawn = Some(Instant::now());
            let _ = write!(stderr, "\r{}\x1b[K", self.line(done));
        } else {
            let tenth = done * 10 / self.total.max(1);
            if tenth > self.last_tenth {
                self.last_tenth = tenth;
                let _ = writeln!(stderr, "{}", self.line(done));
            }
        }
    }

    fn done(&mut self, done: u64) {
        if self.total >= Self::MIN_BYTES && self.terminal {
            let _ = writeln!(std::io::stderr(), "\r{}\x1b[K", self.line(done));
        }
    }
}

fn import_command(storage: &StorageConfig, command: ImportCommand) -> Result<()> {
    let ImportCommand::People {
        file,
        course_id,
        apply,
    } = command;
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::bad_request("unreadable_file", format!("{}: {e}", file.display())))?;
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    // Progress on stderr, rewritten in place, so that large files show they are moving.
    let mut progress = |done: usize, total: usize| {
        if total >= 1000 {
            eprint!("\rchecking rows: {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    };
    let report = write_tx(&mut conn, |conn| {
        let checked = imports::check(
            conn,
            &cli_admin(),
            &bytes,
            course_id.as_deref(),
            &mut progress,
        )?;
        if !apply {
            return Ok(checked.report);
        }
        print_problems(&checked.report);
        let (report, enrollments) = imports::apply(conn, checked)?;
        let clock = ServerClock::for_own_writes(format!("cli-{}", &new_id()[24..]));
        writer::enroll(conn, &cli_admin(), &clock, enrollments)?;
        imports::record_applied(conn, &cli_admin(), &report)?;
        Ok(report)
    })?;
    if !apply {
        print_problems(&report);
    }
    let s = &report.summary;
    println!(
        "{} rows: {} new, {} updated, {} unchanged, {} duplicate rows, {} possible duplicates, \
         {} with errors, {} enrollments",
        s.rows,
        s.created,
        s.updated,
        s.unchanged,
        s.duplicate_rows,
        s.possible_duplicates,
        s.errors,
        s.enrolled
    );
    if report.dry_run {
        println!("dry run: nothing was written; run again with --apply to import");
    } else {
        println!("imported");
    }
    Ok(())
}

fn print_problems(report: &imports::ImportReport) {
    for problem in &report.problems {
        println!(
            "row {}\t{}\t{}\t{}",
            problem.row, problem.field, problem.code, problem.message
        );
    }
}

fn units_command(storage: &StorageConfig, command: UnitsCommand) -> Result<()> {
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    match command {
        UnitsCommand::Merge {
            sources,
            into,
            new_code,
            new_name,
            kind,
            date,
        } => {
            let effective_date = date.clone();
            let outcome = write_tx(&mut conn, |conn| {
                let source_ids = sources
                    .iter()
                    .map(|s| reorganisation::find_unit(conn, s).map(|u| u.id))
                    .collect::<Result<Vec<_>>>()?;
                let target_id = into
                    .as_deref()
                    .map(|u| reorganisation::find_unit(conn, u).map(|u| u.id))
                    .transpose()?;
                let target = match (new_code, new_name) {
                    (Some(code), Some(name)) => Some(UnitInput {
                        id: None,
                        code,
                        name,
                        kind,
                        parent_id: None,
                        valid_from: None,
                        valid_to: None,
                        merged_into_id: None,
                    }),
                    _ => None,
                };
                reorganisation::merge(
                    conn,
                    &cli_admin(),
                    MergeRequest {
                        source_ids,
                        target_id,
                        target,
                        effective_date: date,
                    },
                )
            })?;
            println!(
                "merged {} into {} ({}) from {}: {} units and {} people moved",
                outcome
                    .sources
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                outcome.target.name,
                outcome.target.code,
                effective_date,
                outcome.units_moved,
                outcome.people_moved
            );
        }
        UnitsCommand::Rename { unit, name, date } => {
            let unit = write_tx(&mut conn, |conn| {
                let id = reorganisation::find_unit(conn, &unit)?.id;
                reorganisation::rename(
                    conn,
                    &cli_admin(),
                    &id,
                    RenameRequest {
                        name,
                        effective_date: date,
                    },
                )
            })?;
            println!("{} is now called {}", unit.code, unit.name);
        }
    }
    Ok(())
}
