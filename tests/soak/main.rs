//! The soak: a long day on one release server. Fifty devices at once (trainers' phones pushing
//! attendance and pulling, tablets syncing through the WatermelonDB endpoint, phones downloading
//! a lecture by ranges, and every device now and then signing in again) against the release
//! binary, on SQLite and on PostgreSQL side by side, while the server's resident memory and
//! open file descriptors are sampled every half second. It fails on any 5xx, on any
//! acknowledged mutation missing at the end or devices that do not converge, and on memory or
//! descriptors that keep growing after the warm-up.
//!
//! `cargo test --release --features fault-points --test soak -- --nocapture` runs 60 seconds per
//! backend (CI); `DIEMDANH_SOAK_SECS=1800` runs the half hour of the README. The feature only
//! shares the crash loop's release build: no fault point is armed here.

#[path = "../it/support/mod.rs"]
// The in-process server of the `it` suite is not used here, only the process fleet.
#[allow(dead_code)]
mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diemdanh::db;
use rand::Rng;
use serde_json::{Value, json};

use support::device::Device;
use support::fleet::{
    Acked, Fleet, Instance, World, check_nothing_lost_and_converged, join_devices,
};
use support::{Backend, number_from_env};

const DEFAULT_SECS: u64 = 60;
const TRAINERS: usize = 10;
const SESSIONS: usize = 8;
const PEOPLE: usize = 60;
/// Devices of each kind; 50 in all.
const PHONES: usize = 40;
const TABLETS: usize = 5;
const READERS: usize = 5;
const MAX_BATCH: usize = 20;
const LECTURE_BYTES: usize = 2 * 1024 * 1024;
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

backend_tests!(holds_a_long_day);

/// What each kind of work did.
#[derive(Default)]
struct Tally {
    pushes: AtomicUsize,
    pulls: AtomicUsize,
    watermelon_syncs: AtomicUsize,
    downloads: AtomicUsize,
    downloaded_bytes: AtomicUsize,
    logins: AtomicUsize,
}

/// The server process's resident memory (KiB) and open descriptors at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample { at, rss_kib, fds })
}

/// The largest value in each quarter of the sampled time.
fn quarter_peaks(samples: &[Sample], value: impl Fn(&Sample) -> u64) -> [u64; 4] {
    let first = samples.first().map_or(0.0, |s| s.at.as_secs_f64());
    let span = samples.last().map_or(0.0, |s| s.at.as_secs_f64()) - first;
    let mut peaks = [0; 4];
    for s in samples {
        let quarter = ((s.at.as_secs_f64() - first) / span * 4.0) as usize;
        let q = quarter.min(3);
        peaks[q] = peaks[q].max(value(s));
    }
    peaks
}

fn holds_a_long_day(backend: Backend) {
    let pg = backend.fresh_database();
    let length = Duration::from_secs(number_from_env("DIEMDANH_SOAK_SECS", DEFAULT_SECS));
    let fleet = Fleet::new(pg.as_ref().map(|pg| pg.url.clone()), Vec::new());
    // Tokens outlive the run: the devices' own sign-ins are part of the load, not its failure.
    let server: Instance = fleet
        .spawn(&[("DIEMDANH_ACCESS_TOKEN_TTL_SECS", "86400")])
        .wait();
    *fleet.bases.write().unwrap() = vec![server.base.clone()];
    let pid = server.child.id();
    let admin = fleet.add_admin();
    let world = World::create(&fleet, &admin, TRAINERS, SESSIONS, PEOPLE);
    let lecture = upload_lecture(&fleet, &server.base, &admin, &world.course);

    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let samples = Mutex::new(Vec::new());
    let started = Instant::now();
    let (devices, acked) = std::thread::scope(|scope| {
        let (fleet, world, tally, stop) = (&fleet, &world, &tally, &stop);
        let phones: Vec<_> = (0..PHONES)
            .map(|d| {
                scope.spawn(move || {
                    run_phone(fleet, world, &world.trainers[d % TRAINERS], tally, stop)
                })
            })
            .collect();
        for t in 0..TABLETS {
            scope.spawn(move || run_tablet(fleet, &world.trainers[t % TRAINERS], tally, stop));
        }
        for r in 0..READERS {
            let lecture = lecture.as_str();
            scope.spawn(move || {
                run_reader(fleet, &world.trainers[r % TRAINERS], lecture, tally, stop)
            });
        }
        let samples = &samples;
        scope.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(s) = sample(pid, started.elapsed()) {
                    samples.lock().unwrap().push(s);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        std::thread::sleep(length);
        stop.store(true, Ordering::SeqCst);
        join_devices(phones)
    });
    let elapsed = started.elapsed();
    assert_eq!(fleet.server_errors(), Vec::<String>::new(), "no 5xx");

    let pool = db::open(&fleet.storage()).unwrap();
    let mut conn = pool.get().unwrap();
    let mut devices = devices;
    check_nothing_lost_and_converged(&fleet, &mut conn, &admin, &acked, &mut devices);

    let samples = samples.into_inner().unwrap();
    assert!(samples.len() >= 8, "too few samples: {}", samples.len());
    let rss = quarter_peaks(&samples, |s| s.rss_kib);
    let fds = quarter_peaks(&samples, |s| s.fds as u64);
    // The first quarter is the warm-up (allocator arenas, the pool, caches filling). After
    // it, a server that keeps what it should let go grows quarter after quarter; one that
    // does not stays near its second-quarter peak.
    let rss_limit = rss[1] + rss[1] / 4 + 16 * 1024;
    assert!(
        rss[3] <= rss_limit,
        "memory keeps growing: peaks per quarter {rss:?} KiB (limit {rss_limit})"
    );
    assert!(
        fds[3] <= fds[1] + 16,
        "file descriptors keep growing: peaks per quarter {fds:?}"
    );
    let secs = elapsed.as_secs_f64();
    let count = |c: &AtomicUsize| c.load(Ordering::SeqCst);
    eprintln!(
        "soak ({backend:?}): {:.0} s, {} devices; {} pushes ({} mutations acknowledged, {:.0}/s), \
         {} pulls, {} WatermelonDB syncs, {} downloads ({:.1} MiB), {} sign-ins, {} requests \
         retried, no 5xx, nothing lost; server RSS peaks per quarter {:?} MiB, open \
         descriptors peaks {:?}",
        secs,
        PHONES + TABLETS + READERS,
        count(&tally.pushes),
        acked.len(),
        acked.len() as f64 / secs,
        count(&tally.pulls),
        count(&tally.watermelon_syncs),
        count(&tally.downloads),
        count(&tally.downloaded_bytes) as f64 / 1048576.0,
        count(&tally.logins),
        count(&fleet.retries),
        rss.map(|kib| kib / 1024),
        fds,
    );
    drop(server);
}

/// A lecture of the course, for the readers to download.
fn upload_lecture(fleet: &Fleet, base: &str, admin: &str, course: &str) -> String {
    let bytes: Vec<u8> = (0..LECTURE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let material = fleet.upload_lecture(base, admin, course, bytes);
    material["id"].as_str().unwrap().to_owned()
}

/// A short pause between two things a person does, so that fifty devices make a busy day
/// rather than a benchmark.
fn pause() {
    std::thread::sleep(Duration::from_millis(rand::rng().random_range(20..120)));
}

/// A trainer's phone: pushes batches, pulls, and now and then signs in again as a new device
/// (a phone replaced or its app reinstalled).
fn run_phone(
    fleet: &Fleet,
    world: &World,
    username: &str,
    tally: &Tally,
    stop: &AtomicBool,
) -> (Device, Vec<Acked>) {
    let mut device = Device::trainer(fleet, username);
    tally.logins.fetch_add(1, Ordering::SeqCst);
    let mut acked = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let roll = rand::rng().random_range(0..100);
        if roll < 60 {
            let size = rand::rng().random_range(1..=MAX_BATCH);
            acked.extend(device.push_batch(fleet, world, size));
            tally.pushes.fetch_add(1, Ordering::SeqCst);
        } else if roll < 97 {
            device.pull(fleet);
            tally.pulls.fetch_add(1, Ordering::SeqCst);
        } else {
            device = Device::trainer(fleet, username);
            tally.logins.fetch_add(1, Ordering::SeqCst);
        }
        pause();
    }
    (device, acked)
}

/// A tablet syncing through the WatermelonDB endpoint: a first sync, then each one from the
/// timestamp of the last.
fn run_tablet(fleet: &Fleet, username: &str, tally: &Tally, stop: &AtomicBool) {
    let mut token = Device::trainer(fleet, username).token;
    tally.logins.fetch_add(1, Ordering::SeqCst);
    let mut last_pulled_at = Value::Null;
    while !stop.load(Ordering::SeqCst) {
        if rand::rng().random_range(0..100) < 3 {
            token = Device::trainer(fleet, username).token;
            tally.logins.fetch_add(1, Ordering::SeqCst);
            last_pulled_at = Value::Null;
        }
        let path =
            format!("/api/v1/watermelon/sync?last_pulled_at={last_pulled_at}&schema_version=1");
        let answer = fleet
            .call("GET", &path, Some(&token), None)
            .expect(200)
            .json;
        last_pulled_at = json!(answer["timestamp"]);
        tally.watermelon_syncs.fetch_add(1, Ordering::SeqCst);
        pause();
    }
}

/// A phone downloading the lecture, whole or by the ranges a resumed download asks for.
fn run_reader(fleet: &Fleet, username: &str, lecture: &str, tally: &Tally, stop: &AtomicBool) {
    let mut token = Device::trainer(fleet, username).token;
    tally.logins.fetch_add(1, Ordering::SeqCst);
    while !stop.load(Ordering::SeqCst) {
        if rand::rng().random_range(0..100) < 3 {
            token = Device::trainer(fleet, username).token;
            tally.logins.fetch_add(1, Ordering::SeqCst);
        }
        let start = rand::rng().random_range(0..LECTURE_BYTES);
        let base = fleet.bases.read().unwrap()[0].clone();
        let range = format!("bytes={start}-");
        let (status, body) = fleet.download(&base, &token, lecture, Some(&range));
        assert_eq!(status, 206, "a range of the lecture");
        assert_eq!(body.len(), LECTURE_BYTES - start);
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, b)| *b == ((start + i) * 7 % 251) as u8),
            "the range holds the lecture's bytes"
        );
        tally.downloads.fetch_add(1, Ordering::SeqCst);
        tally
            .downloaded_bytes
            .fetch_add(body.len(), Ordering::SeqCst);
        pause();
    }
}
