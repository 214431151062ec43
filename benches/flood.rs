//! Flood benchmark: does one device pushing refused mutations by the thousand slow everyone
//! else down? The real server binary on 127.0.0.1 with the demo data set; a trainer's device
//! pushes one-mutation batches (the "probe": the push a trainer's phone makes after marking one
//! trainee) alone, then beside a busy device (the same course's other trainer pushing batches
//! of accepted marks without pause: the yardstick of legitimate load), then while that trainer's
//! devices push batches of refused mutations (attendance of a course they are not assigned to)
//! as fast as the server answers, never waiting for Retry-After (a broken or hostile app).
//! Prints, per backend, the probe's latency (p50, p99) alone, beside the busy device and under
//! flood, and what a flooding batch costs as the quarantine fills up to `--prefill` open
//! entries. A benchmark, not a test: nothing here fails on timing.
//!
//! `cargo bench --bench flood -- --help` lists the flags; `-- --tiny` runs in seconds (CI).
//! `DIEMDANH_BENCH_SERVER=/path/to/diemdanh` measures another build of the server (an older
//! one, for a before/after comparison).

#[allow(
    dead_code,
    reason = "shared with the sync benchmark, which uses all of it"
)]
#[path = "sync/server.rs"]
mod server;

#[path = "../tests/it/support/postgres.rs"]
mod postgres;

#[allow(dead_code, reason = "load_average is the other benchmarks'")]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Backends, ms, percentile, read_options};

const USAGE: &str = "\
cargo bench --bench flood -- [flags]

  --probes N          one-mutation pushes timed alone and again under flood (default 200)
  --flood-batch N     refused mutations per flooding push (default 1000)
  --prefill N         open quarantine entries filed by the flooder before the flood runs
                      (default 12000; spread over as many of its devices as the cap needs)
  --cap N             the server's DIEMDANH_MAX_QUARANTINE_PER_DEVICE (default: the server's)
  --postgres          PostgreSQL is required (fail when it is not available)
  --no-postgres       SQLite only
  --no-sqlite         PostgreSQL only
  --tiny              a run of seconds (CI): 20 probes, pushes of 50, 200 prefilled
";

#[derive(Debug, Clone)]
struct Options {
    probes: usize,
    flood_batch: usize,
    prefill: usize,
    cap: Option<usize>,
    backends: Backends,
}

impl Options {
    fn parse(args: Vec<String>) -> Result<Options, String> {
        let mut options = Options {
            probes: 200,
            flood_batch: 1000,
            prefill: 12_000,
            cap: None,
            backends: Backends::default(),
        };
        if args.iter().any(|a| a == "--tiny") {
            options.probes = 20;
            options.flood_batch = 50;
            options.prefill = 200;
        }
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> Result<usize, String> {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} takes a positive number"))
            };
            match arg.as_str() {
                "--probes" => options.probes = number(arg)?,
                "--flood-batch" => options.flood_batch = number(arg)?,
                "--prefill" => options.prefill = number(arg)?,
                "--cap" => options.cap = Some(number(arg)?),
                flag if options.backends.take(flag) => {}
                "--help" | "-h" => return Err(String::new()),
                "--bench" | "--tiny" => {}
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(options)
    }
}

fn main() {
    let options = read_options(USAGE, Options::parse, |o| o.backends);
    println!(
        "diemdanh flood benchmark: {} one-mutation probes; flooding pushes of {} refused \
         mutations; {} open quarantine entries before the flood; server {}{}",
        options.probes,
        options.flood_batch,
        options.prefill,
        std::env::var("DIEMDANH_BENCH_SERVER").unwrap_or_else(|_| "of this build".into()),
        if cfg!(debug_assertions) {
            " (debug profile)"
        } else {
            ""
        },
    );
    if options.backends.sqlite {
        run(&options, None);
    }
    if options.backends.postgres() {
        match postgres::fresh_database() {
            Some(pg) => run(&options, Some(&pg.url)),
            None => println!("\nPostgreSQL: not available: skipped"),
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// A GET (no body) or a POST of a JSON body: the status and the JSON answer.
fn call(agent: &ureq::Agent, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    send(agent, url, token, body.map(Value::to_string))
}

/// `call` with a body already written as JSON text.
fn send(agent: &ureq::Agent, url: &str, token: Option<&str>, body: Option<String>) -> (u16, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let response = match body {
        Some(body) => {
            let mut request = agent.post(url).header("Content-Type", "application/json");
            if let Some(bearer) = &bearer {
                request = request.header("Authorization", bearer);
            }
            request.send(body)
        }
        None => {
            let mut request = agent.get(url);
            if let Some(bearer) = &bearer {
                request = request.header("Authorization", bearer);
            }
            request.call()
        }
    };
    let mut response = response.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

struct Signed {
    token: String,
    device: String,
}

fn login(base: &str, username: &str, password: &str, device: &str) -> Signed {
    let (status, answer) = call(
        &agent(),
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(&json!({"username": username, "password": password, "device_name": device})),
    );
    assert_eq!(status, 200, "login {username}: {answer}");
    Signed {
        token: answer["access_token"].as_str().unwrap().to_owned(),
        device: answer["device_id"].as_str().unwrap().to_owned(),
    }
}

/// The demo's ids the devices write about.
#[derive(Clone)]
struct Demo {
    /// A session of the course the probing trainer takes the roll of, and one of its trainees.
    probe_session: String,
    probe_person: String,
    /// A session of a course the flooding trainer is not assigned to.
    foreign_session: String,
    /// Every (session, person) of the probed course but the probe's: what a busy device of its
    /// other trainer marks, legitimately (never the probe's record, which the probe alone
    /// writes).
    marks: Vec<(String, String)>,
}

fn demo_ids(base: &str, admin: &str) -> Demo {
    let agent = agent();
    let get = |path: &str| {
        let (status, page) = call(&agent, &format!("{base}{path}"), Some(admin), None);
        assert_eq!(status, 200, "{path}: {page}");
        page
    };
    let courses = get("/api/v1/courses");
    let course = |big: bool| {
        courses["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| (c["code"] == "BD-BTPBT-2026") == big)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (big, small) = (course(true), course(false));
    let ids = |path: String, field: &str| -> Vec<String> {
        get(&path)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item[field].as_str().unwrap().to_owned())
            .collect()
    };
    let sessions = ids(format!("/api/v1/sessions?course_id={big}&limit=500"), "id");
    let people = ids(
        format!("/api/v1/enrollments?course_id={big}&limit=500"),
        "person_id",
    );
    Demo {
        probe_session: sessions[0].clone(),
        probe_person: people[0].clone(),
        foreign_session: ids(format!("/api/v1/sessions?course_id={small}"), "id")[0].clone(),
        marks: sessions
            .iter()
            .flat_map(|session| {
                people
                    .iter()
                    .map(move |person| (session.clone(), person.clone()))
            })
            // The first pair is the probe's.
            .skip(1)
            .collect(),
    }
}

/// A device's stamps: wall-clock milliseconds and a counter, as sync.md says.
fn stamp(device: &str, counter: &mut u32) -> String {
    *counter = counter.wrapping_add(1);
    let millis = chrono::Utc::now().timestamp_millis();
    format!("{millis:013}-{:04x}-{device}", *counter & 0xffff)
}

fn mutation(record: &str, fields: Value, hlc: String) -> Value {
    json!({
        "mutation_id": uuid::Uuid::new_v4().to_string(),
        "collection": "attendance",
        "record_id": record,
        "op": "upsert",
        "fields": fields,
        "hlc": hlc,
    })
}

/// A batch of refused mutations: attendance of a course the flooding trainer does not teach.
fn refused_batch(demo: &Demo, device: &str, size: usize, counter: &mut u32) -> Value {
    let mutations: Vec<Value> = (0..size)
        .map(|_| {
            mutation(
                &uuid::Uuid::new_v4().to_string(),
                json!({"session_id": demo.foreign_session, "person_id": demo.probe_person, "status": "present"}),
                stamp(device, counter),
            )
        })
        .collect();
    json!({ "mutations": mutations })
}

/// A busy device's batch: `size` marks of the probed course's (session, person) pairs from
/// `from` on (each pair under the record id the device gave it), statuses going round, all
/// of them applied or merged.
fn accepted_batch(
    demo: &Demo,
    records: &[String],
    device: &str,
    from: usize,
    size: usize,
    counter: &mut u32,
) -> Value {
    let mutations: Vec<Value> = (from..from + size)
        .map(|n| {
            let pair = n % demo.marks.len();
            let (session, person) = &demo.marks[pair];
            mutation(
                &records[pair],
                json!({"session_id": session, "person_id": person, "status": STATUSES[(n / demo.marks.len()) % STATUSES.len()]}),
                stamp(device, counter),
            )
        })
        .collect();
    json!({ "mutations": mutations })
}

/// The statuses a device's marks go round.
const STATUSES: [&str; 4] = ["present", "late", "excused", "absent"];

/// What a device pushing without pause was answered: how long each push answered 200 and
/// each refused 429 took.
#[derive(Default)]
struct Flood {
    accepted: Vec<Duration>,
    refused_full: Vec<Duration>,
    /// When each push answered 200 (a flooding push filed) was sent and answered.
    filing: Vec<(Instant, Instant)>,
}

/// Probes (`probing`) while another device pushes `batches`, then what `more` writes, back to
/// back, never waiting for Retry-After: the probes, and what the device's pushes were
/// answered. The batches are written before (a phone's CPU is not the server's, and writing a
/// thousand mutations' JSON here took about as long as the server's refusing it, on the same
/// two cores); `more` writes others should the pushing outlast them.
fn probed_beside(
    base: &str,
    token: &str,
    mut batches: Vec<String>,
    mut more: impl FnMut() -> String + Send + 'static,
    probing: impl FnOnce() -> Vec<Probed>,
) -> (Vec<Probed>, Flood) {
    let stop = Arc::new(AtomicBool::new(false));
    let pushing = {
        let (stop, url, token) = (Arc::clone(&stop), push_url(base), token.to_owned());
        thread::spawn(move || {
            let agent = self::agent();
            let mut answered = Flood::default();
            while !stop.load(Ordering::Relaxed) {
                let body = batches.pop().unwrap_or_else(&mut more);
                let started = Instant::now();
                let (status, answer) = send(&agent, &url, Some(&token), Some(body));
                let took = started.elapsed();
                match status {
                    200 => {
                        answered.accepted.push(took);
                        answered.filing.push((started, Instant::now()));
                    }
                    429 => answered.refused_full.push(took),
                    _ => panic!("a push without pause: {status} {answer}"),
                }
            }
            answered
        })
    };
    // Let the pushes get going before the first probe.
    thread::sleep(Duration::from_millis(200));
    let probes = probing();
    stop.store(true, Ordering::Relaxed);
    (probes, pushing.join().expect("the pushing thread"))
}

fn push_url(base: &str) -> String {
    format!("{base}/api/v1/sync/push")
}

/// A probe push: when it was sent and how long its answer took.
#[derive(Clone, Copy)]
struct Probed {
    sent: Instant,
    took: Duration,
}

impl Probed {
    /// Whether the push was in flight at some time between `from` and `to`.
    fn overlaps(&self, (from, to): (Instant, Instant)) -> bool {
        self.sent < to && from < self.sent + self.took
    }
}

fn latencies(probes: &[Probed]) -> Vec<Duration> {
    probes.iter().map(|probe| probe.took).collect()
}

/// The probe: `count` one-mutation pushes of one record, one after the other.
fn probe(
    base: &str,
    device: &Signed,
    demo: &Demo,
    record: &str,
    count: usize,
    counter: &mut u32,
) -> Vec<Probed> {
    let agent = agent();
    (0..count)
        .map(|i| {
            let body = json!({"mutations": [mutation(
                record,
                json!({"session_id": demo.probe_session, "person_id": demo.probe_person, "status": STATUSES[i % STATUSES.len()]}),
                stamp(&device.device, counter),
            )]});
            let sent = Instant::now();
            let (status, answer) = call(&agent, &push_url(base), Some(&device.token), Some(&body));
            let took = sent.elapsed();
            assert_eq!(status, 200, "probe push: {answer}");
            Probed { sent, took }
        })
        .collect()
}

fn run(options: &Options, database_url: Option<&str>) {
    let backend = if database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    eprintln!("{backend}:");
    let dir = tempfile::Builder::new()
        .prefix("diemdanh-flood-")
        .tempdir()
        .expect("temp dir");
    let mut settings = vec![("DIEMDANH_DEMO", "true".to_owned())];
    if let Some(cap) = options.cap {
        settings.push(("DIEMDANH_MAX_QUARANTINE_PER_DEVICE", cap.to_string()));
    }
    let server = server::Server::start_with(dir.path(), database_url, None, &settings);
    let base = server.base.clone();
    let admin = login(&base, "admin", "diemdanh-admin", "bench admin");
    let demo = demo_ids(&base, &admin.token);
    let prober = login(&base, "hoa.nguyen", "demo-trainer-1", "probe phone");
    let record = uuid::Uuid::new_v4().to_string();
    let mut counter = 0;

    // Warm-up (connections, caches, the record's creation), then the probe alone.
    probe(&base, &prober, &demo, &record, 5, &mut counter);
    eprintln!("  .. {} probes alone", options.probes);
    let alone = probe(&base, &prober, &demo, &record, options.probes, &mut counter);

    // The yardstick: the course's other trainer marks it on a busy tablet, batches of as many
    // accepted marks as a flooding push holds refusals, without pause.
    eprintln!("  .. {} probes beside a busy device", options.probes);
    let busy = login(&base, "tuan.le", "demo-trainer-2", "busy tablet");
    let (beside_busy, busy_pushes) = {
        let marking = demo.clone();
        let size = options.flood_batch.min(marking.marks.len());
        let records: Vec<String> = (0..marking.marks.len())
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let (mut busy_counter, mut from) = (0, 0);
        let mut batch = move || {
            let body = accepted_batch(
                &marking,
                &records,
                &busy.device,
                from,
                size,
                &mut busy_counter,
            );
            from += size;
            body.to_string()
        };
        let batches = (0..options.probes.max(64)).map(|_| batch()).collect();
        probed_beside(&base, &busy.token, batches, batch, || {
            probe(&base, &prober, &demo, &record, options.probes, &mut counter)
        })
    };

    // The flooder fills the quarantine, device after device when the server caps each one.
    eprintln!("  .. prefilling {} quarantine entries", options.prefill);
    let agent = agent();
    let mut prefill = Flood::default();
    let mut filed = 0;
    let mut flooder_counter = 0;
    let mut devices = 0;
    while filed < options.prefill {
        devices += 1;
        let device = login(
            &base,
            "tuan.le",
            "demo-trainer-2",
            &format!("flood phone {devices}"),
        );
        loop {
            let size = options.flood_batch.min(options.prefill - filed);
            let body = refused_batch(&demo, &device.device, size, &mut flooder_counter);
            let started = Instant::now();
            let (status, answer) = call(&agent, &push_url(&base), Some(&device.token), Some(&body));
            let took = started.elapsed();
            match status {
                200 => {
                    prefill.accepted.push(took);
                    filed += size;
                }
                429 => {
                    prefill.refused_full.push(took);
                    break;
                }
                _ => panic!("flooding push: {status} {answer}"),
            }
            if filed >= options.prefill {
                break;
            }
        }
    }
    let open = {
        let (status, page) = call(
            &agent,
            &format!("{base}/api/v1/sync/quarantine?status=open&limit=1"),
            Some(&admin.token),
            None,
        );
        assert_eq!(status, 200, "{page}");
        page["total"].as_i64().unwrap_or(0)
    };

    // The flood: the last flooding device pushes without pause while the probe runs.
    eprintln!("  .. {} probes under flood", options.probes);
    let flooder = login(&base, "tuan.le", "demo-trainer-2", "flood phone (flood)");
    let (flooded, flood) = {
        let flooding = demo.clone();
        let size = options.flood_batch;
        let mut flood_counter = 0;
        let mut batch =
            move || refused_batch(&flooding, &flooder.device, size, &mut flood_counter).to_string();
        let batches = (0..options.probes.max(64)).map(|_| batch()).collect();
        probed_beside(&base, &flooder.token, batches, batch, || {
            probe(&base, &prober, &demo, &record, options.probes, &mut counter)
        })
    };
    drop(server);

    let (during_filing, during_refusals): (Vec<Probed>, Vec<Probed>) = flooded
        .iter()
        .partition(|probe| flood.filing.iter().any(|span| probe.overlaps(*span)));
    let (alone, busy, flooded) = (
        latencies(&alone),
        latencies(&beside_busy),
        latencies(&flooded),
    );
    let (alone50, alone99) = (percentile(&alone, 0.5), percentile(&alone, 0.99));
    let (busy50, busy99) = (percentile(&busy, 0.5), percentile(&busy, 0.99));
    let (flood50, flood99) = (percentile(&flooded, 0.5), percentile(&flooded, 0.99));
    println!("\n{backend}");
    println!(
        "  one-mutation push, alone                 p50 {:>9}  p99 {:>9}",
        ms(alone50),
        ms(alone99)
    );
    println!(
        "  one-mutation push, beside a busy device  p50 {:>9}  p99 {:>9}   ({:.2}x, {:.2}x alone)",
        ms(busy50),
        ms(busy99),
        ratio(busy50, alone50),
        ratio(busy99, alone99),
    );
    println!(
        "  one-mutation push, under flood           p50 {:>9}  p99 {:>9}   ({:.2}x, {:.2}x alone; target: at most 2x) ({:.2}x, {:.2}x beside the busy device)",
        ms(flood50),
        ms(flood99),
        ratio(flood50, alone50),
        ratio(flood99, alone99),
        ratio(flood50, busy50),
        ratio(flood99, busy99),
    );
    for (when, probes) in [
        ("while a flooding push was filed", &during_filing),
        ("while flooding pushes were refused 429", &during_refusals),
    ] {
        let probes = latencies(probes);
        println!(
            "    {when}: {} probes, p50 {}, p99 {}",
            probes.len(),
            ms(percentile(&probes, 0.5)),
            ms(percentile(&probes, 0.99)),
        );
    }
    println!(
        "  prefill: {} flooding pushes of {} refused mutations over {} device(s) filed, {} refused \
         429 (device full); open entries after: {open}",
        prefill.accepted.len(),
        options.flood_batch,
        devices,
        prefill.refused_full.len(),
    );
    if let (Some(first), Some(last)) = (prefill.accepted.first(), prefill.accepted.last()) {
        println!(
            "  a filed flooding push: first {}, last (quarantine near {open} open) {}",
            ms(*first),
            ms(*last)
        );
    }
    println!(
        "  the busy device: {} pushes of {} accepted marks (p50 {})",
        busy_pushes.accepted.len(),
        options.flood_batch.min(demo.marks.len()),
        ms(percentile(&busy_pushes.accepted, 0.5)),
    );
    println!(
        "  during the flood: {} flooding pushes filed (p50 {}), {} refused 429 (p50 {})",
        flood.accepted.len(),
        ms(percentile(&flood.accepted, 0.5)),
        flood.refused_full.len(),
        ms(percentile(&flood.refused_full, 0.5)),
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
