//! Report benchmark: a province-sized data set (150 units, 10,000 people, 500,000 attendance
//! rows by default) written straight through diesel, then the coverage report timed through the
//! library on SQLite and PostgreSQL, with the CSV and XLSX rendering and a course report beside
//! it. Prints the figures next to the target (coverage within 1 s on SQLite). A benchmark, not
//! a test: nothing here fails on timing.
//!
//! `cargo bench --bench reports -- --help` lists the flags; `-- --tiny` runs in seconds (CI).

#[path = "../tests/it/support/postgres.rs"]
mod postgres;
#[path = "../tests/it/support/storage.rs"]
mod storage;

#[allow(dead_code, reason = "the latency figures are the other benchmarks'")]
mod common;

use std::time::{Duration, Instant};

use diemdanh::cli::cli_admin;
use diemdanh::db::schema::{attendance, courses, enrollments, people, sessions, units, users};
use diemdanh::db::{self, DbConn};
use diemdanh::domain::{Caller, text};
use diemdanh::reports::course::{self, CourseQuery};
use diemdanh::reports::coverage::{self, CoverageQuery};
use diemdanh::reports::{Report, render};
use diesel::prelude::*;

use crate::common::{Backends, load_average, read_options};

const USAGE: &str = "\
cargo bench --bench reports -- [flags]

Data set (written straight through diesel):
  --units N          administrative units, the province included (default 150)
  --people N         people (default 10000; about 3 per commune are Secretaries or Deputies)
  --attendance N     attendance rows (default 500000)
  --courses N        courses, 10 sessions each, ending through the year (default 50)
Measurement:
  --runs N           timed runs of each report after one warm-up (default 5)
Backends:
  --postgres         PostgreSQL is required (fail when it is not available)
  --no-postgres      SQLite only
  --no-sqlite        PostgreSQL only
Presets:
  --tiny             a data set that finishes in seconds (CI)
";

const SESSIONS_PER_COURSE: usize = 10;
const YEAR: i32 = 2026;
/// Rows per multi-row INSERT: 13 attendance columns stay under SQLite's 32,766 variables.
const INSERT_ROWS: usize = 2000;

#[derive(Debug, Clone)]
struct Options {
    units: usize,
    people: usize,
    attendance: usize,
    courses: usize,
    runs: usize,
    backends: Backends,
}

impl Options {
    fn parse(args: Vec<String>) -> Result<Options, String> {
        let mut args = args.into_iter();
        let mut options = Options {
            units: 150,
            people: 10_000,
            attendance: 500_000,
            courses: 50,
            runs: 5,
            backends: Backends::default(),
        };
        let number = |value: Option<String>, flag: &str| -> Result<usize, String> {
            value
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} needs a positive number"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--units" => options.units = number(args.next(), "--units")?.max(2),
                "--people" => options.people = number(args.next(), "--people")?,
                "--attendance" => options.attendance = number(args.next(), "--attendance")?,
                "--courses" => options.courses = number(args.next(), "--courses")?,
                "--runs" => options.runs = number(args.next(), "--runs")?,
                flag if options.backends.take(flag) => {}
                "--tiny" => {
                    options.units = 10;
                    options.people = 300;
                    options.attendance = 3_000;
                    options.courses = 5;
                    options.runs = 2;
                }
                "--help" | "-h" => return Err(String::new()),
                // `cargo bench` passes --bench to every bench target.
                "--bench" => {}
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(options)
    }

    /// Trainees per course so that courses × sessions × trainees is the attendance asked for.
    fn trainees_per_course(&self) -> usize {
        (self.attendance / (self.courses * SESSIONS_PER_COURSE)).clamp(1, self.people)
    }
}

fn main() {
    let options = read_options(USAGE, Options::parse, |o| o.backends);
    if cfg!(debug_assertions) {
        eprintln!("warning: built without optimisations; run through `cargo bench` for figures");
    }
    let trainees = options.trainees_per_course();
    println!(
        "diemdanh report benchmark: {} units, {} people, {} courses x {} sessions x {} trainees \
         = {} attendance rows; {} timed runs after a warm-up; {} CPU cores",
        options.units,
        options.people,
        options.courses,
        SESSIONS_PER_COURSE,
        trainees,
        options.courses * SESSIONS_PER_COURSE * trainees,
        options.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    if options.backends.sqlite {
        run_backend(&options, false);
    }
    if options.backends.postgres() {
        run_backend(&options, true);
    }
}

fn run_backend(options: &Options, use_postgres: bool) {
    let name = if use_postgres { "PostgreSQL" } else { "SQLite" };
    let dir = tempfile::Builder::new()
        .prefix("diemdanh-bench-reports-")
        .tempdir()
        .expect("temp dir");
    let pg = if use_postgres {
        match postgres::fresh_database() {
            Some(pg) => Some(pg),
            None => {
                println!("\n{name}: not available, skipped");
                return;
            }
        }
    } else {
        None
    };
    let storage = storage::default_storage(
        dir.path().to_path_buf(),
        pg.as_ref().map(|pg| pg.url.clone()),
        1,
    );
    let pool = db::open(&storage).expect("open database");
    let mut conn = pool.get().expect("connection");
    let load_before = load_average();
    let started = Instant::now();
    let seeded = seed(&mut conn, options);
    let seeding = started.elapsed();
    if let DbConn::Postgres(c) = &mut *conn {
        // Fresh statistics, as autovacuum would have them on a database in use.
        diesel::connection::SimpleConnection::batch_execute(c, "ANALYZE").expect("analyze");
    }

    // The seeded administrator, acting through the library as the command line does.
    let admin = Caller {
        user_id: seeded.admin.clone(),
        ..cli_admin()
    };
    let query = CoverageQuery {
        from: Some(format!("{YEAR}-01-01")),
        to: Some(format!("{YEAR}-12-31")),
        ..CoverageQuery::default()
    };
    let mut report = None;
    let coverage = time(options.runs, || {
        report = Some(coverage::report(&mut conn, &admin, &query).expect("coverage"));
    });
    let report = report.expect("ran");
    let csv = time(options.runs, || {
        let bytes: usize = render::CsvChunks::new(report.sheets().remove(0))
            .map(|c| c.len())
            .sum();
        assert!(bytes > 0);
    });
    let xlsx = time(options.runs, || {
        render::xlsx(&report.sheets()).expect("xlsx");
    });
    let json = time(options.runs, || {
        serde_json::to_vec(&report).expect("json");
    });
    let course = time(options.runs, || {
        course::report(
            &mut conn,
            &admin,
            &seeded.first_course,
            &CourseQuery::default(),
        )
        .expect("course report");
    });
    let load_after = load_average();

    println!(
        "\n{name} ({} rows of attendance written in {:.1} s)",
        seeded.attendance,
        seeding.as_secs_f64()
    );
    println!(
        "  coverage: {} cadres in {} units, {} trained ({:.1} %), {} courses",
        report.total.cadres,
        report.units.len(),
        report.total.trained,
        report.total.percent.unwrap_or(0.0),
        report.total.courses,
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>9}   target",
        "", "min", "median", "max"
    );
    row(
        "coverage report (query + roll-up)",
        &coverage,
        Some("< 1 s on SQLite"),
    );
    row("  as CSV (rendered)", &csv, None);
    row("  as XLSX (rendered)", &xlsx, None);
    row("  as JSON (serialised)", &json, None);
    row(
        &format!("course report ({} trainees)", options.trainees_per_course()),
        &course,
        None,
    );
    println!("  load average (1 min): {load_before} before, {load_after} after");
}

fn time(runs: usize, mut work: impl FnMut()) -> Vec<Duration> {
    work();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn row(label: &str, times: &[Duration], target: Option<&str>) {
    let ms = |d: &Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "  {label:<34} {:>9} {:>9} {:>9}   {}",
        ms(&times[0]),
        ms(&times[times.len() / 2]),
        ms(&times[times.len() - 1]),
        target.unwrap_or("")
    );
}

struct Seeded {
    admin: String,
    first_course: String,
    attendance: usize,
}

/// A deterministic id for the n-th record of a kind (UUID-shaped, as the service stores them).
fn uuid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-7000-8000-{n:012x}")
}

/// Multi-row INSERTs are not available through the MultiConnection; each backend's own
/// connection takes them.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(INSERT_ROWS) {
            let insert = diesel::insert_into($table).values(chunk);
            match &mut *$conn {
                DbConn::Sqlite(c) => insert.execute(c),
                DbConn::Postgres(c) => insert.execute(c),
            }
            .expect("insert");
        }
    };
}

fn seed(conn: &mut DbConn, options: &Options) -> Seeded {
    let now = db::now_ms();
    let admin = uuid(1, 0);
    db::write_tx(conn, |conn| {
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&admin),
                users::username.eq("bench.admin"),
                users::display_name.eq("Benchmark"),
                users::role.eq("admin"),
                users::password_hash.eq("not a hash: nobody logs in"),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;

        let unit_rows: Vec<_> = (0..options.units)
            .map(|u| {
                let name = if u == 0 {
                    "Tỉnh Benchmark".to_owned()
                } else {
                    format!("Xã Số {u}")
                };
                (
                    units::id.eq(uuid(2, u)),
                    units::code.eq(format!("{u:05}")),
                    units::name_key.eq(text::fold(&name)),
                    units::name.eq(name),
                    units::kind.eq(if u == 0 { "province" } else { "commune" }),
                    units::parent_id.eq((u > 0).then(|| uuid(2, 0))),
                    units::rev.eq(u as i64 + 1),
                    units::created_at.eq(now),
                    units::updated_at.eq(now),
                )
            })
            .collect();
        insert_rows!(conn, units::table, unit_rows);

        let communes = options.units - 1;
        let given = [
            "An", "Bình", "Châu", "Dũng", "Hà", "Lan", "Minh", "Ngọc", "Phúc", "Yến",
        ];
        let people_rows: Vec<_> = (0..options.people)
            .map(|p| {
                let slot = p / communes;
                let position = match slot {
                    0 => "secretary",
                    1 | 2 => "deputy_secretary",
                    3..=12 => "committee_member",
                    _ => "member",
                };
                let name = format!("Nguyễn Văn {} {p}", given[p % given.len()]);
                (
                    people::id.eq(uuid(3, p)),
                    people::name_key.eq(text::fold(&name)),
                    people::sort_key.eq(text::person_sort_key(&name)),
                    people::full_name.eq(name),
                    people::birth_date.eq(format!(
                        "{}-{:02}-{:02}",
                        1985 + p % 15,
                        1 + p % 12,
                        1 + p % 28
                    )),
                    people::phone.eq(format!("09{p:08}")),
                    people::position.eq(position),
                    people::unit_id.eq(uuid(2, 1 + p % communes)),
                    people::rev.eq(1000 + p as i64),
                    people::created_at.eq(now),
                    people::updated_at.eq(now),
                )
            })
            .collect();
        insert_rows!(conn, people::table, people_rows);

        let course_rows: Vec<_> = (0..options.courses)
            .map(|c| {
                let day = 1 + (c * 360 / options.courses.max(1)) as u32;
                let date = chrono::NaiveDate::from_yo_opt(YEAR, day.min(360))
                    .expect("date")
                    .format("%Y-%m-%d")
                    .to_string();
                let title = format!("Lớp bồi dưỡng số {c}");
                (
                    courses::id.eq(uuid(4, c)),
                    courses::title_key.eq(text::fold(&title)),
                    courses::title.eq(title),
                    courses::management_level.eq("province"),
                    courses::start_date.eq(date.clone()),
                    courses::end_date.eq(date),
                    courses::rev.eq(100_000 + c as i64),
                    courses::created_at.eq(now),
                    courses::updated_at.eq(now),
                )
            })
            .collect();
        insert_rows!(conn, courses::table, course_rows);
        let start = chrono::NaiveDate::from_ymd_opt(YEAR, 1, 1)
            .expect("date")
            .and_hms_opt(1, 0, 0)
            .expect("time")
            .and_utc()
            .timestamp_millis();
        let session_rows: Vec<_> = (0..options.courses * SESSIONS_PER_COURSE)
            .map(|s| {
                let c = s / SESSIONS_PER_COURSE;
                let at = start + (c * 7 + s % SESSIONS_PER_COURSE) as i64 * 86_400_000;
                (
                    sessions::id.eq(uuid(5, s)),
                    sessions::course_id.eq(uuid(4, c)),
                    sessions::topic.eq(format!("Chuyên đề {}", s % SESSIONS_PER_COURSE + 1)),
                    sessions::starts_at.eq(at),
                    sessions::ends_at.eq(at + 3 * 3_600_000),
                    sessions::rev.eq(200_000 + s as i64),
                    sessions::created_at.eq(now),
                    sessions::updated_at.eq(now),
                )
            })
            .collect();
        insert_rows!(conn, sessions::table, session_rows);

        // Course c takes a window of people, so the windows cover everyone a few times.
        let trainees = options.trainees_per_course();
        let trainee = |c: usize, k: usize| (c * trainees * 7 / 10 + k) % options.people;
        let enrollment_rows: Vec<_> = (0..options.courses)
            .flat_map(|c| (0..trainees).map(move |k| (c, k)))
            .map(|(c, k)| {
                let n = c * trainees + k;
                (
                    enrollments::id.eq(uuid(6, n)),
                    enrollments::course_id.eq(uuid(4, c)),
                    enrollments::person_id.eq(uuid(3, trainee(c, k))),
                    enrollments::status.eq("enrolled"),
                    enrollments::rev.eq(300_000 + n as i64),
                    enrollments::created_at.eq(now),
                    enrollments::updated_at.eq(now),
                )
            })
            .collect();
        insert_rows!(conn, enrollments::table, enrollment_rows);
        Ok::<_, diemdanh::error::Error>(())
    })
    .expect("seed");

    // Attendance in transactions of 50,000 rows, as a year of syncing would have written it.
    let trainees = options.trainees_per_course();
    let total = options.courses * SESSIONS_PER_COURSE * trainees;
    let status_of = |person: usize, session: usize| {
        // A spread that differs per person and session: about 75 % present, 7 % late, 8 %
        // excused, 10 % absent; one person in four is mostly away, so some cadres complete no
        // course and the report has names to list.
        let present = if person.is_multiple_of(4) { 400 } else { 750 };
        match (person * 2_654_435_761 + session * 40_503) % 1000 {
            n if n < present => "present",
            750..820 => "late",
            820..900 => "excused",
            _ => "absent",
        }
    };
    let mut written = 0;
    while written < total {
        let end = (written + 50_000).min(total);
        let rows: Vec<_> = (written..end)
            .map(|n| {
                let session = n / trainees;
                let c = session / SESSIONS_PER_COURSE;
                let k = n % trainees;
                let person = (c * trainees * 7 / 10 + k) % options.people;
                let status = status_of(person, session);
                (
                    attendance::id.eq(uuid(7, n)),
                    attendance::session_id.eq(uuid(5, session)),
                    attendance::person_id.eq(uuid(3, person)),
                    attendance::status.eq(status),
                    attendance::recorded_by.eq(admin.clone()),
                    attendance::rev.eq(1_000_000 + n as i64),
                    attendance::created_at.eq(now),
                    attendance::updated_at.eq(now),
                )
            })
            .collect();
        db::write_tx(conn, |conn| {
            insert_rows!(conn, attendance::table, rows);
            Ok::<_, diemdanh::error::Error>(())
        })
        .expect("attendance");
        written = end;
        eprintln!("  .. attendance {written}/{total}");
    }
    // Keep the counter ahead of the revisions written by hand.
    diesel::update(diemdanh::db::schema::revision_counter::table)
        .set(diemdanh::db::schema::revision_counter::value.eq(2_000_000 + total as i64))
        .execute(conn)
        .expect("revision counter");
    Seeded {
        admin,
        first_course: uuid(4, 0),
        attendance: total,
    }
}
