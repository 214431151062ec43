//! Sync benchmark: the real server (release build) on 127.0.0.1 over a fresh database seeded with
//! a province's year, driven by simulated devices over real HTTP with real tokens. Prints one
//! table per backend (SQLite, and PostgreSQL when available) with the targets next to the
//! figures. A benchmark, not a test: nothing here fails on timing.
//!
//! `cargo bench --bench sync -- --help` lists the flags; `-- --tiny` runs in seconds (CI).

#[path = "sync/disk.rs"]
mod disk;
#[path = "sync/files.rs"]
mod files;
#[path = "sync/load.rs"]
mod load;
#[path = "sync/seed.rs"]
mod seed;
#[path = "sync/server.rs"]
mod server;
#[path = "sync/watermelon.rs"]
mod watermelon;

#[path = "../tests/it/support/postgres.rs"]
mod postgres;
#[path = "../tests/it/support/storage.rs"]
mod storage;

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diemdanh::config::StorageConfig;

use crate::common::{Backends, load_average, ms, percentile, read_options};
use crate::load::{PushDevice, PushRun, Session};
use crate::seed::{DataSet, RawInsert, Sizes};

const USAGE: &str = "\
cargo bench --bench sync -- [flags]

Data set (seeded through the library before the server starts):
  --units N                   administrative units (default 150)
  --people N                  people (default 10000)
  --sessions N                sessions in all (default 500)
  --sessions-per-course N     sessions per course (default 10; 500/10 = 50 courses)
  --trainees-per-session N    trainees enrolled per course (default 40)
Workload:
  --devices A,B,C             concurrent pushing devices, one closed-loop run each (default 1,16,64)
  --reference-devices N       the level compared with the raw limit, replayed, and whose maximum
                              sets the open-loop rate (default 16, or the largest level)
  --batches N                 batches per device per closed-loop run (default 4)
  --min-run-batches N         at least this many batches per run, spread over its devices
                              (default 32, so that one device gives a p99)
  --batch-size N              mutations per push (default 200)
  --open-loop-batches N       batches in the open-loop run (default: the reference run's count,
                              at most 20 s of arrivals but at least 16)
  --pull-devices N            fresh devices pulling at once (default 64)
  --page N                    pull page size (default 1000)
  --material-mib N            size of the material file downloaded (default 50)
  --download-clients A,B      concurrent material downloads, one run each (default 1,16)
  --workers N                 server HTTP workers (default: the server's, one per core)
  --instances N               PostgreSQL: N server processes on the one database, devices spread
                              over them in turn (default 1; SQLite always runs one)
Backends:
  --postgres                  PostgreSQL is required (fail when it is not available)
  --no-postgres               SQLite only
  --no-sqlite                 PostgreSQL only
Presets:
  --tiny                      a data set and workload that finish in seconds (CI)
";

#[derive(Debug, Clone)]
struct Options {
    sizes: Sizes,
    devices: Vec<usize>,
    reference: Option<usize>,
    batches: usize,
    min_run_batches: usize,
    batch_size: usize,
    open_loop_batches: Option<usize>,
    pull_devices: usize,
    page: usize,
    material_mib: usize,
    download_clients: Vec<usize>,
    workers: Option<usize>,
    instances: usize,
    backends: Backends,
}

impl Options {
    fn defaults() -> Options {
        Options {
            sizes: Sizes {
                units: 150,
                people: 10_000,
                sessions: 500,
                sessions_per_course: 10,
                trainees_per_session: 40,
            },
            devices: vec![1, 16, 64],
            reference: None,
            batches: 4,
            min_run_batches: 32,
            batch_size: 200,
            open_loop_batches: None,
            pull_devices: 64,
            page: 1000,
            material_mib: 50,
            download_clients: vec![1, 16],
            workers: None,
            instances: 1,
            backends: Backends::default(),
        }
    }

    fn tiny(self) -> Options {
        Options {
            sizes: Sizes {
                units: 12,
                people: 300,
                sessions: 12,
                sessions_per_course: 3,
                trainees_per_session: 10,
            },
            devices: vec![1, 4],
            reference: None,
            batches: 2,
            min_run_batches: 4,
            batch_size: 20,
            open_loop_batches: None,
            pull_devices: 4,
            page: 100,
            material_mib: 1,
            download_clients: vec![1, 4],
            ..self
        }
    }

    fn parse(args: Vec<String>) -> Result<Options, String> {
        let mut options = Options::defaults();
        // The preset first, so that flags given with it override it.
        if args.iter().any(|a| a == "--tiny") {
            options = options.tiny();
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            let number = |v: String| -> Result<usize, String> {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name}: expected a positive number, got {v:?}"))
            };
            let numbers = |v: String| -> Result<Vec<usize>, String> {
                v.split(',').map(|v| number(v.trim().to_owned())).collect()
            };
            match name.as_str() {
                // cargo bench passes --bench to harness = false targets.
                "--bench" | "--tiny" => {}
                "-h" | "--help" => return Err(String::new()),
                "--units" => options.sizes.units = number(value()?)?,
                "--people" => options.sizes.people = number(value()?)?,
                "--sessions" => options.sizes.sessions = number(value()?)?,
                "--sessions-per-course" => options.sizes.sessions_per_course = number(value()?)?,
                "--trainees-per-session" => options.sizes.trainees_per_session = number(value()?)?,
                "--devices" => options.devices = numbers(value()?)?,
                "--reference-devices" => options.reference = Some(number(value()?)?),
                "--batches" => options.batches = number(value()?)?,
                "--min-run-batches" => options.min_run_batches = number(value()?)?,
                "--batch-size" => options.batch_size = number(value()?)?,
                "--open-loop-batches" => options.open_loop_batches = Some(number(value()?)?),
                "--pull-devices" => options.pull_devices = number(value()?)?,
                "--page" => options.page = number(value()?)?,
                "--material-mib" => options.material_mib = number(value()?)?,
                "--download-clients" => options.download_clients = numbers(value()?)?,
                "--workers" => options.workers = Some(number(value()?)?),
                "--instances" => options.instances = number(value()?)?,
                flag if options.backends.take(flag) => {}
                other => return Err(format!("unknown flag {other}")),
            }
        }
        options.devices.sort_unstable();
        options.devices.dedup();
        let s = &options.sizes;
        if options.instances == 0 {
            return Err("--instances must be at least 1".into());
        }
        if s.units < 2 {
            return Err("--units must be at least 2 (a province and a commune)".into());
        }
        if s.trainees_per_session > s.people {
            return Err("--trainees-per-session cannot exceed --people".into());
        }
        if options.page > 1000 {
            return Err("--page: the server allows at most 1000".into());
        }
        if options.batch_size > 1000 {
            return Err("--batch-size: the server allows at most 1000 mutations per push".into());
        }
        let reference = options.reference_devices();
        if !options.devices.contains(&reference) {
            return Err(format!(
                "--reference-devices {reference} must be one of --devices"
            ));
        }
        let max = options.max_devices();
        // Every device needs a share of one course's slots.
        let courses = s.courses();
        let smallest_course =
            (s.sessions - (courses - 1) * s.sessions_per_course) * s.trainees_per_session;
        if max.div_ceil(courses) > smallest_course {
            return Err(format!(
                "{max} devices leave some without attendance to record: grow the data set"
            ));
        }
        Ok(options)
    }

    fn reference_devices(&self) -> usize {
        self.reference.unwrap_or_else(|| {
            if self.devices.contains(&16) {
                16
            } else {
                self.max_devices()
            }
        })
    }

    fn max_devices(&self) -> usize {
        self.devices.iter().copied().max().unwrap_or(1)
    }

    fn batches_per_device(&self, devices: usize) -> usize {
        self.batches.max(self.min_run_batches.div_ceil(devices))
    }
}

fn main() {
    let options = read_options(USAGE, Options::parse, |o| o.backends);
    if cfg!(debug_assertions) {
        eprintln!("warning: built without optimisations; run through `cargo bench` for figures");
    }
    println!(
        "diemdanh sync benchmark: {} units, {} people, {} courses, {} sessions x {} trainees \
         ({} attendance slots); pushes of {} mutations by {:?} devices; pull pages of {}; \
         {} CPU cores",
        options.sizes.units,
        options.sizes.people,
        options.sizes.courses(),
        options.sizes.sessions,
        options.sizes.trainees_per_session,
        options.sizes.sessions * options.sizes.trainees_per_session,
        options.batch_size,
        options.devices,
        options.page,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    if options.backends.sqlite {
        let table = run_backend(&options, Backend::Sqlite);
        print!("{table}");
    }
    if options.backends.postgres() {
        let table = run_backend(&options, Backend::Postgres);
        print!("{table}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

fn progress(message: &str) {
    eprintln!("  .. {message}");
}

/// A fresh database: a temp dir (SQLite) and, for PostgreSQL, an empty database.
struct Database {
    dir: tempfile::TempDir,
    pg: Option<postgres::PgDatabase>,
}

impl Database {
    /// None when PostgreSQL is asked for and not available (and not required).
    fn fresh(backend: Backend) -> Option<Database> {
        let dir = tempfile::Builder::new()
            .prefix("diemdanh-bench-")
            .tempdir()
            .expect("temp dir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres::fresh_database()?),
        };
        Some(Database { dir, pg })
    }

    fn url(&self) -> Option<&str> {
        self.pg.as_ref().map(|pg| pg.url.as_str())
    }

    fn storage(&self) -> StorageConfig {
        storage::default_storage(
            self.dir.path().to_path_buf(),
            self.url().map(str::to_owned),
            8,
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What is known before the first request.
struct Before {
    raw_rows: usize,
    /// The time each way of inserting `raw_rows` took, each on a fresh database.
    raw: Vec<(RawInsert, Duration)>,
    seed: Duration,
    rss_idle: u64,
    /// The machine's one-minute load average when the backend's run began: other work on the
    /// box skews every figure.
    load: String,
}

/// Everything measured on one backend.
struct Figures {
    before: Before,
    runs: Vec<(usize, PushRun)>,
    reference: usize,
    open_rate: f64,
    open: PushRun,
    replay: PushRun,
    on_disk: disk::OnDisk,
    expected_scope: usize,
    pull: load::PullRun,
    pull_gzip: load::PullRun,
    pull_many: load::PullRun,
    pull_many_min: usize,
    pull_devices: usize,
    watermelon_first: watermelon::WatermelonPull,
    watermelon_first_gzip: watermelon::WatermelonPull,
    watermelon_incremental: watermelon::WatermelonPull,
    watermelon_batch: usize,
    material_bytes: usize,
    upload: Duration,
    /// (clients, diemdanh, the static-file handler): time for all of them to finish.
    downloads: Vec<(usize, Duration, Duration)>,
    rss_after: u64,
    rss_peak: u64,
    instances: usize,
}

fn run_backend(options: &Options, backend: Backend) -> String {
    eprintln!("{}:", backend.name());
    // The raw limits first, each on a separate fresh database of the same kind, with no server
    // running: row at a time, and one multi-row INSERT per transaction (the one writer's way).
    let reference = options.reference_devices();
    let raw_rows = reference * options.batches_per_device(reference) * options.batch_size;
    let mut raw = Vec::new();
    for how in [RawInsert::RowAtATime, RawInsert::MultiRow] {
        let Some(raw_db) = Database::fresh(backend) else {
            return format!(
                "\n{}: not available (no TEST_DATABASE_URL, no initdb/pg_ctl): skipped\n",
                backend.name()
            );
        };
        progress(&format!(
            "raw limit, {}: {raw_rows} attendance rows through diesel, {} per transaction",
            how.name(),
            options.batch_size
        ));
        let pool = diemdanh::db::open(&raw_db.storage()).expect("open the raw database");
        let took =
            seed::raw_insert_limit(&pool, raw_rows, options.batch_size, how).expect("raw inserts");
        raw.push((how, took));
    }

    let db = Database::fresh(backend).expect("a second database");
    progress("seeding the data set through the library");
    let seeding = Instant::now();
    let data = {
        let pool = diemdanh::db::open(&db.storage()).expect("open the database");
        seed::seed(&pool, &options.sizes).expect("seed the data set")
    };
    let seed_time = seeding.elapsed();
    progress(&format!(
        "seeded in {:.1} s; starting the server",
        seed_time.as_secs_f64()
    ));

    // SQLite is one file for one process; PostgreSQL takes as many instances as asked for, each
    // with a directory of its own for its logs.
    let instances = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => options.instances,
    };
    let servers: Vec<server::Server> = (0..instances)
        .map(|i| {
            let dir = match i {
                0 => db.path().to_path_buf(),
                _ => db.path().join(format!("instance-{i}")),
            };
            std::fs::create_dir_all(&dir).expect("an instance directory");
            server::Server::start(&dir, db.url(), options.workers)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle = largest_memory(&servers).0;
    let before = Before {
        raw_rows,
        raw,
        seed: seed_time,
        rss_idle,
        load: load_average(),
    };
    let figures = measure(options, &servers, &data, &db.storage(), before);
    drop(servers);
    drop(db);
    table(options, backend, &figures)
}

fn measure(
    options: &Options,
    servers: &[server::Server],
    data: &DataSet,
    storage: &StorageConfig,
    before: Before,
) -> Figures {
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let base = bases[0].as_str();
    let pairs = &data.pairs;
    let max = options.max_devices();
    // Where the server's memory and CPU go, phase by phase.
    // With several instances: CPU summed over them, memory of the largest.
    let cpu = || servers.iter().map(server::Server::cpu).sum::<Duration>();
    let last = std::cell::Cell::new((Instant::now(), cpu()));
    let memory = |after: &str| {
        let (rss, peak) = largest_memory(servers);
        let (then, cpu_then) = last.get();
        let (now, cpu) = (Instant::now(), cpu());
        last.set((now, cpu));
        eprintln!(
            "     server: RSS {} (peak so far {}) after {after}; {:.1} CPU s in {:.1} s",
            mib(rss),
            mib(peak),
            (cpu - cpu_then).as_secs_f64(),
            (now - then).as_secs_f64(),
        );
    };
    progress(&format!("signing in {max} trainer devices"));
    let mut devices = push_devices(&bases, data, max);
    memory("the logins");

    let mut runs = Vec::new();
    let reference = options.reference_devices();
    let mut reference_jobs = Vec::new();
    for &count in &options.devices {
        let per_device = options.batches_per_device(count);
        let jobs: Vec<(String, Vec<Arc<Vec<u8>>>)> = devices[..count]
            .iter_mut()
            .map(|device| {
                let bodies = (0..per_device)
                    .map(|_| device.next_batch(pairs, options.batch_size))
                    .collect();
                (device.session.token.clone(), bodies)
            })
            .collect();
        progress(&format!(
            "push, closed loop: {count} devices x {per_device} batches"
        ));
        let run = load::closed_loop(&bases, &jobs);
        report_problems(&format!("push by {count} devices"), &run);
        memory("the push");
        if count == reference {
            reference_jobs = jobs;
        }
        runs.push((count, run));
    }

    let reference_run = &runs
        .iter()
        .find(|(count, _)| *count == reference)
        .expect("reference run")
        .1;
    let open_rate = reference_run.batches_per_sec() / 2.0;
    // As many batches as the reference run, but no more than about 20 s of arrivals (and at
    // least 16, for a p99): a slow backend must not stretch the run to many minutes.
    let open_batches = options.open_loop_batches.unwrap_or_else(|| {
        let in_20_secs = (open_rate * 20.0) as usize;
        reference_run.batches.min(in_20_secs.max(16))
    });
    let open_jobs: Vec<(String, Arc<Vec<u8>>)> = (0..open_batches)
        .map(|i| {
            let device = &mut devices[i % reference];
            (
                device.session.token.clone(),
                device.next_batch(pairs, options.batch_size),
            )
        })
        .collect();
    progress(&format!(
        "push, open loop: {open_batches} batches at {open_rate:.1} batches/s"
    ));
    let open = load::open_loop(&bases, open_jobs, open_rate, 64);
    report_problems("open-loop push", &open);
    memory("the open-loop push");

    progress(&format!("replay of the {reference}-device run's batches"));
    let replay = load::closed_loop(&bases, &reference_jobs);
    report_problems("replayed push", &replay);
    memory("the replay");

    fill_missing(base, data, storage, options.batch_size);
    let on_disk = disk::measure(storage);
    progress(&format!(
        "on disk: attendance {} rows, {} bytes; mutation log {} rows, {} bytes",
        on_disk.attendance_rows, on_disk.attendance_bytes, on_disk.log_rows, on_disk.log_bytes
    ));
    let expected_scope = data.scope_without_attendance + pairs.len();
    refresh_planner_statistics(storage);

    progress("pull: one fresh device, then one with gzip");
    let pull_login = |n: usize| {
        load::login(
            base,
            seed::PULL_TRAINER,
            seed::TRAINER_PASSWORD,
            &format!("pull tablet {n}"),
        )
        .token
    };
    let pull = load::pull_scope(base, &pull_login(0), options.page, false);
    let pull_gzip = load::pull_scope(base, &pull_login(1), options.page, true);
    check_scope("pull", pull.records, expected_scope);
    check_scope("gzip pull", pull_gzip.records, expected_scope);
    memory("the single pulls");
    progress(&format!(
        "pull: {} fresh devices at once",
        options.pull_devices
    ));
    let tokens: Vec<String> = (0..options.pull_devices)
        .map(|n| pull_login(2 + n))
        .collect();
    memory("the pull logins");
    let (pull_many, per_device) = load::pull_together(&bases, tokens, options.page);
    let pull_many_min = per_device.iter().copied().min().unwrap_or(0);
    check_scope("concurrent pull", pull_many_min, expected_scope);
    memory("the concurrent pull");

    progress("WatermelonDB: first sync of the same scope, then an incremental one");
    let watermelon_token = |n: usize| {
        load::login(
            base,
            seed::PULL_TRAINER,
            seed::TRAINER_PASSWORD,
            &format!("watermelon app {n}"),
        )
        .token
    };
    let watermelon_first = watermelon::pull(base, &watermelon_token(0), None, false);
    check_scope(
        "WatermelonDB first sync",
        watermelon_first.records,
        expected_scope,
    );
    let watermelon_first_gzip = watermelon::pull(base, &watermelon_token(1), None, true);
    // What a training day brings: one trainer's batch of attendance, then the app syncs.
    let batch = devices[0].next_batch(pairs, options.batch_size);
    let agent = load::agent();
    let (reply, _) = load::push(
        &agent,
        &format!("{}/api/v1/sync/push", bases[0]),
        &devices[0].session.token,
        &batch,
    );
    let reply = reply.expect("a push before the incremental sync");
    assert_eq!(reply.status, 200, "push before the incremental sync");
    let watermelon_incremental = watermelon::pull(
        base,
        &watermelon_token(0),
        Some(watermelon_first.timestamp),
        false,
    );
    memory("the WatermelonDB syncs");

    progress(&format!(
        "materials: a {} MiB upload, then downloads by {:?} clients at once",
        options.material_mib, options.download_clients
    ));
    let material = files::content(options.material_mib << 20);
    let admin = load::login(base, seed::ADMIN, seed::TRAINER_PASSWORD, "benchmark admin");
    let (material_id, upload) = files::upload(base, &admin.token, &material);
    let static_dir = tempfile::tempdir().expect("a directory for the static-file server");
    std::fs::write(static_dir.path().join("video.mp4"), &material).expect("the static file");
    let static_base = files::static_file_server(static_dir.path());
    let reader = pull_login(10_000);
    let downloads = options
        .download_clients
        .iter()
        .map(|&clients| {
            let ours = files::download_together(
                &format!("{base}/api/v1/materials/{material_id}/content"),
                Some(&reader),
                clients,
                material.len(),
            );
            let plain = files::download_together(
                &format!("{static_base}/video.mp4"),
                None,
                clients,
                material.len(),
            );
            (clients, ours, plain)
        })
        .collect();
    memory("the material transfers");

    let (rss_after, rss_peak) = largest_memory(servers);
    Figures {
        before,
        runs,
        reference,
        open_rate,
        open,
        replay,
        on_disk,
        expected_scope,
        pull,
        pull_gzip,
        pull_many,
        pull_many_min,
        pull_devices: options.pull_devices,
        watermelon_first,
        watermelon_first_gzip,
        watermelon_incremental,
        watermelon_batch: options.batch_size,
        material_bytes: material.len(),
        upload,
        downloads,
        rss_after,
        rss_peak,
        instances: servers.len(),
    }
}

/// Signs in `count` devices, each a course's own trainer; the devices of one course share its
/// slots between them.
/// (VmRSS, VmHWM) of the instance using the most: the targets are per process.
fn largest_memory(servers: &[server::Server]) -> (u64, u64) {
    servers
        .iter()
        .map(server::Server::memory)
        .fold((0, 0), |(rss, peak), (r, p)| (rss.max(r), peak.max(p)))
}

/// Signs in `count` devices, each a course's own trainer, device `d` on instance `d % n`; the
/// devices of one course share its slots between them.
fn push_devices(bases: &[String], data: &DataSet, count: usize) -> Vec<PushDevice> {
    let courses = data.courses.len();
    let mut by_course: Vec<Vec<usize>> = vec![Vec::new(); courses];
    for (index, pair) in data.pairs.iter().enumerate() {
        by_course[pair.course].push(index);
    }
    (0..count)
        .map(|d| {
            let course = d % courses;
            let sharing = (0..count).filter(|x| x % courses == course).count();
            let rank = d / courses;
            let share: Vec<usize> = by_course[course]
                .iter()
                .enumerate()
                .filter(|(i, _)| i % sharing == rank)
                .map(|(_, &pair)| pair)
                .collect();
            let session: Session = load::login(
                &bases[d % bases.len()],
                &data.courses[course].trainer,
                seed::TRAINER_PASSWORD,
                &format!("push phone {d}"),
            );
            PushDevice::new(session, share)
        })
        .collect()
}

/// Records attendance for the slots that have none yet (untimed): those no device was given,
/// and those whose creating batch failed for good. The database says which, read through the
/// library beside the running server. The pulled scope is then the whole year whatever happened.
/// PostgreSQL plans from statistics that autovacuum refreshes about once a minute; the pushes
/// above filled the attendance table, seeded empty, seconds ago. A server in service has had
/// that analyze long before its devices pull, so the benchmark runs it now instead of timing
/// plans made for an empty table (which made a fresh device's pull 2.5x slower). SQLite plans
/// without statistics here (nothing runs ANALYZE), so nothing changes for it.
fn refresh_planner_statistics(storage: &StorageConfig) {
    let pool = diemdanh::db::open(storage).expect("open the database beside the server");
    let mut conn = pool.get().expect("a connection");
    if let diemdanh::db::DbConn::Postgres(_) = &*conn {
        diesel::connection::SimpleConnection::batch_execute(&mut *conn, "ANALYZE")
            .expect("ANALYZE");
    }
}

fn fill_missing(base: &str, data: &DataSet, storage: &StorageConfig, batch_size: usize) {
    use diemdanh::db::schema::attendance;
    use diesel::{QueryDsl, RunQueryDsl};
    let recorded: std::collections::HashSet<String> = {
        let pool = diemdanh::db::open(storage).expect("open the database beside the server");
        let mut conn = pool.get().expect("a connection");
        attendance::table
            .select(attendance::id)
            .load::<String>(&mut *conn)
            .expect("read attendance ids")
            .into_iter()
            .collect()
    };
    let missing: Vec<usize> = (0..data.pairs.len())
        .filter(|&i| !recorded.contains(&data.pairs[i].record_id))
        .collect();
    if missing.is_empty() {
        return;
    }
    progress(&format!(
        "recording the {} slots that have no attendance yet (not timed)",
        missing.len()
    ));
    let session = load::login(
        base,
        seed::PULL_TRAINER,
        seed::TRAINER_PASSWORD,
        "office laptop",
    );
    let token = session.token.clone();
    let mut filler = PushDevice::new(session, missing);
    let mut bodies = Vec::new();
    while filler.made < filler.share.len() {
        let size = batch_size.min(filler.share.len() - filler.made);
        bodies.push(filler.next_batch(&data.pairs, size));
    }
    let run = load::closed_loop(&[base.to_owned()], &[(token, bodies)]);
    report_problems("recording the missing slots", &run);
}

fn report_problems(what: &str, run: &PushRun) {
    let outcome = &run.outcome;
    if outcome.failed_requests > 0 || outcome.rejected > 0 || outcome.retries > 0 {
        eprintln!(
            "warning: {what}: {} batches sent again, {} failed for good, {} rejected mutations",
            outcome.retries, outcome.failed_requests, outcome.rejected,
        );
        for problem in [&outcome.first_problem, &outcome.first_rejection]
            .into_iter()
            .flatten()
        {
            eprintln!("  first: {problem}");
        }
    }
}

fn check_scope(what: &str, got: usize, expected: usize) {
    // A page may repeat a person ahead of a new enrollment: at least the scope, never less.
    if got < expected {
        eprintln!("warning: {what} brought {got} records, expected at least {expected}");
    }
}

// ----- report -----

fn per_sec(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// Resends, failures and refusals of a push run, when there were any.
fn troubles(outcome: &load::Outcome) -> String {
    let mut out = String::new();
    if outcome.retries > 0 {
        let _ = write!(out, "; {} resent", outcome.retries);
    }
    if outcome.failed_requests > 0 {
        let _ = write!(out, "; {} batches failed", outcome.failed_requests);
    }
    if outcome.rejected > 0 {
        let _ = write!(out, "; {} rejected", outcome.rejected);
    }
    out
}

fn latencies(latencies: &[Duration]) -> String {
    format!(
        "p50 {} / p99 {}",
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.99))
    )
}

fn table(options: &Options, backend: Backend, f: &Figures) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |a: String, b: String, c: &str, d: &str| rows.push([a, b, c.into(), d.into()]);
    let raw_rate = |way: RawInsert| {
        f.before
            .raw
            .iter()
            .find(|(how, _)| *how == way)
            .map_or(0.0, |(_, took)| per_sec(f.before.raw_rows, *took))
    };
    for (how, took) in &f.before.raw {
        row(
            format!(
                "raw limit, {}: {} rows, tx of {}",
                how.name(),
                f.before.raw_rows,
                options.batch_size
            ),
            format!("{} rows/s", thousands(per_sec(f.before.raw_rows, *took))),
            "",
            "",
        );
    }
    // Push is weighed against the multi-row limit: the way the one writer writes, at the same
    // durability. The row-at-a-time figure stays beside it for comparison with older runs.
    let (row_rate, multi_rate) = (
        raw_rate(RawInsert::RowAtATime),
        raw_rate(RawInsert::MultiRow).max(1e-9),
    );
    let mut reference_rate = 0.0;
    for (count, run) in &f.runs {
        let rate = per_sec(run.outcome.committed(), run.elapsed);
        let mut measured = format!(
            "{} mut/s ({:.2} x multi-row raw, {:.2} x row-at-a-time); {}",
            thousands(rate),
            rate / multi_rate,
            rate / row_rate.max(1e-9),
            latencies(&run.latencies)
        );
        measured.push_str(&troubles(&run.outcome));
        let label = format!(
            "push, {count} device{}, {} batches",
            if *count == 1 { "" } else { "s" },
            run.batches
        );
        if *count == f.reference {
            reference_rate = rate;
            row(
                label,
                measured,
                ">= 0.4 x multi-row raw",
                verdict(rate >= 0.4 * multi_rate),
            );
        } else if *count == options.max_devices() {
            let (p50, p99) = (
                percentile(&run.latencies, 0.5),
                percentile(&run.latencies, 0.99),
            );
            row(label, measured, "p99 <= 2 x p50", verdict(p99 <= 2 * p50));
        } else {
            row(label, measured, "", "");
        }
    }
    let open_p99 = percentile(&f.open.latencies, 0.99);
    row(
        format!(
            "push, open loop at {:.1} batches/s ({} batches)",
            f.open_rate, f.open.batches
        ),
        format!(
            "{}{}",
            latencies(&f.open.latencies),
            troubles(&f.open.outcome)
        ),
        "p99 <= 50 ms",
        verdict(open_p99 <= Duration::from_millis(50)),
    );
    let replay_rate = per_sec(f.replay.outcome.duplicate, f.replay.elapsed);
    row(
        format!("replayed push, {} devices (duplicates)", f.reference),
        format!(
            "{} mut/s ({:.2} x first push); {}",
            thousands(replay_rate),
            replay_rate / reference_rate.max(1e-9),
            latencies(&f.replay.latencies)
        ) + &troubles(&f.replay.outcome),
        ">= 3 x first push",
        verdict(replay_rate >= 3.0 * reference_rate),
    );
    let disk = &f.on_disk;
    row(
        format!(
            "on disk per attendance record ({} records, {} log entries)",
            disk.attendance_rows, disk.log_rows
        ),
        format!(
            "{:.0} B: attendance {:.0} B + mutation log {:.0} B ({:.0} B per log entry)",
            disk.per_record(),
            disk.attendance_bytes as f64 / disk.attendance_rows.max(1) as f64,
            disk.log_bytes as f64 / disk.attendance_rows.max(1) as f64,
            disk.log_bytes as f64 / disk.log_rows.max(1) as f64,
        ),
        "<= 250 B",
        verdict(disk.per_record() <= 250.0),
    );
    for (label, pull) in [
        (
            format!("pull, 1 fresh device ({} records)", f.pull.records),
            &f.pull,
        ),
        (
            format!("pull, {} fresh devices at once", f.pull_devices),
            &f.pull_many,
        ),
    ] {
        let rate = per_sec(pull.records, pull.elapsed);
        row(
            label,
            format!(
                "{} rec/s; page {}",
                thousands(rate),
                latencies(&pull.latencies)
            ),
            ">= 150,000 rec/s",
            verdict(rate >= 150_000.0),
        );
    }
    let ratio = f.pull.wire_bytes as f64 / f.pull_gzip.wire_bytes.max(1) as f64;
    row(
        "pull bytes on the wire, plain / gzip".into(),
        format!(
            "{} / {} ({:.1}x smaller); gzip pull {} rec/s, page {}",
            mib(f.pull.wire_bytes as u64),
            mib(f.pull_gzip.wire_bytes as u64),
            ratio,
            thousands(per_sec(f.pull_gzip.records, f.pull_gzip.elapsed)),
            latencies(&f.pull_gzip.latencies)
        ),
        ">= 5x smaller",
        verdict(ratio >= 5.0),
    );
    let first = &f.watermelon_first;
    row(
        format!("WatermelonDB first sync ({} records)", first.records),
        format!(
            "{} rec/s ({}); {} on the wire, {} with gzip ({:.1}x smaller)",
            thousands(per_sec(first.records, first.elapsed)),
            ms(first.elapsed),
            mib(first.wire_bytes as u64),
            mib(f.watermelon_first_gzip.wire_bytes as u64),
            first.wire_bytes as f64 / f.watermelon_first_gzip.wire_bytes.max(1) as f64
        ),
        "",
        "",
    );
    row(
        format!(
            "WatermelonDB incremental sync after a push of {}",
            f.watermelon_batch
        ),
        format!(
            "{} records in {}",
            f.watermelon_incremental.records,
            ms(f.watermelon_incremental.elapsed)
        ),
        "",
        "",
    );
    let material_mib = f.material_bytes as f64 / f64::from(1 << 20);
    row(
        format!("material upload, {material_mib:.0} MiB"),
        format!("{:.0} MiB/s", material_mib / f.upload.as_secs_f64()),
        "",
        "",
    );
    for (clients, ours, plain) in &f.downloads {
        let total = material_mib * *clients as f64;
        let (ours, plain) = (total / ours.as_secs_f64(), total / plain.as_secs_f64());
        row(
            format!(
                "material download, {clients} client{} at once",
                if *clients == 1 { "" } else { "s" }
            ),
            format!(
                "{ours:.0} MiB/s ({:.2} x static files: {plain:.0} MiB/s)",
                ours / plain
            ),
            ">= 0.8 x static files",
            verdict(ours >= 0.8 * plain),
        );
    }
    row(
        "server RSS, idle after start".into(),
        mib(f.before.rss_idle),
        "<= 30 MiB",
        verdict(f.before.rss_idle <= 30 << 20),
    );
    row(
        "server RSS, peak (VmHWM)".into(),
        format!("{} (after the run: {})", mib(f.rss_peak), mib(f.rss_after)),
        "<= 200 MiB",
        verdict(f.rss_peak <= 200 << 20),
    );

    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([["measure", "measured", "target", "result"][i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}{} (data set seeded in {:.1} s; pull scope {} records, {} each in the concurrent pull; \
         load average {} before, {} after)",
        backend.name(),
        match f.instances {
            1 => String::new(),
            n => format!(", {n} instances (RSS: the largest)"),
        },
        f.before.seed.as_secs_f64(),
        f.expected_scope,
        f.pull_many_min,
        f.before.load,
        load_average(),
    );
    let line = |out: &mut String, cells: [&str; 4]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut out, ["measure", "measured", "target", "result"]);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, [&rule[0], &rule[1], &rule[2], &rule[3]]);
    for r in &rows {
        line(&mut out, [&r[0], &r[1], &r[2], &r[3]]);
    }
    out
}
