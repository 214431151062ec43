//! The crash loop: the release binary on 127.0.0.1 over a temporary database, simulated devices
//! pushing attendance all the time, and the server killed with SIGKILL again and again: after a
//! random time, while it starts, and by itself at the fault points inside a push (mid-batch,
//! with the batch written but not committed, committed but not answered). Each time it is
//! started again on the same database and the devices resend the batch that got no answer,
//! under the same mutation ids. At the end every acknowledged mutation is stored exactly once,
//! the database passes its integrity checks, and every device converges to the server's view.
//!
//! Built only with the `fault-points` feature (see Cargo.toml); run by CI with 30 cycles per
//! backend. `DIEMDANH_CRASH_CYCLES=1000` runs a thousand.

#[path = "../it/support/mod.rs"]
// The in-process server of the `it` suite is not used here, only the process fleet.
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diemdanh::db::{self, DbConn};
use diemdanh::fault::{PUSH_AFTER_COMMIT, PUSH_BEFORE_COMMIT, PUSH_MID_BATCH};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rand::Rng;

use serde_json::Value;
use support::device::Device;
use support::fleet::{
    Acked, Fleet, Instance, STATUSES, Starting, World, check_nothing_lost_and_converged,
    join_devices,
};
use support::{Backend, number_from_env};

const DEFAULT_CYCLES: usize = 30;
const TRAINERS: usize = 2;
/// Two devices per trainer.
const DEVICES: usize = 4;
const SESSIONS: usize = 4;
const PEOPLE: usize = 6;
const MAX_BATCH: usize = 8;
/// Every this many pushes a device sends a large batch: a few good mutations and more refusals
/// than a SQLite push files in one turn of the writer (`push::DECIDED_IN_TURN`, 25), so that
/// the push is staged and written over several turns, and a death can land between them.
const LARGE_EVERY: usize = 8;
const LARGE_GOOD: std::ops::RangeInclusive<usize> = 1..=30;
const LARGE_REFUSED: std::ops::RangeInclusive<usize> = 26..=90;
/// The devices' refusals pile up over a thousand cycles: no push here is refused for a full
/// quarantine.
const QUARANTINE_CAP: &str = "10000000";
/// Random kills land this long after the server has answered its first push, at most.
const MAX_UPTIME: Duration = Duration::from_millis(500);
/// Kills of a starting server land this long after it is spawned, at most: before it listens
/// (opening the database, migrations, the tombstone purge) or just after.
const MAX_START: Duration = Duration::from_millis(150);

/// How a cycle's server dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Death {
    /// SIGKILL from outside at a random moment after the server has answered a push.
    Random,
    /// SIGKILL from outside at a random moment of its start.
    Starting,
    /// SIGKILL from itself, at the named fault point.
    FaultPoint(&'static str),
}

/// The kinds of death in turn, so that any 30 cycles have each at least four times.
const ROTATION: [Death; 7] = [
    Death::Random,
    Death::FaultPoint(PUSH_MID_BATCH),
    Death::Random,
    Death::FaultPoint(PUSH_BEFORE_COMMIT),
    Death::Starting,
    Death::FaultPoint(PUSH_AFTER_COMMIT),
    Death::Random,
];

backend_tests!(loses_nothing_acknowledged_across_crashes);

fn loses_nothing_acknowledged_across_crashes(backend: Backend) {
    let pg = backend.fresh_database();
    let cycles = number_from_env("DIEMDANH_CRASH_CYCLES", DEFAULT_CYCLES);
    let fleet = Fleet::new(pg.as_ref().map(|pg| pg.url.clone()), Vec::new());
    let first = start(&fleet, None);
    let admin = fleet.add_admin();
    let world = World::create(&fleet, &admin, TRAINERS, SESSIONS, PEOPLE);

    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let large = LargePushes::default();
    let mut deaths: BTreeMap<Death, usize> = BTreeMap::new();
    let (devices, acked, last) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..DEVICES)
            .map(|d| {
                let (fleet, world, stop, large) = (&fleet, &world, &stop, &large);
                scope.spawn(move || {
                    run_device(fleet, world, &world.trainers[d % TRAINERS], stop, large)
                })
            })
            .collect();
        let mut current = Some(first);
        for cycle in 0..cycles {
            let death = ROTATION[cycle % ROTATION.len()];
            let mut rng = rand::rng();
            match death {
                Death::Random => {
                    let mut instance = current.take().unwrap_or_else(|| start(&fleet, None));
                    // Once this server has answered a push, so that the kill lands among pushes.
                    let pushes = fleet.pushes.load(Ordering::SeqCst);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while fleet.pushes.load(Ordering::SeqCst) == pushes {
                        assert!(Instant::now() < deadline, "cycle {cycle}: no push answered");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(MAX_UPTIME.mul_f64(rng.random()));
                    instance.kill();
                }
                Death::Starting => {
                    let mut starting = spawn(&fleet, None);
                    std::thread::sleep(MAX_START.mul_f64(rng.random()));
                    let _ = starting.child.kill();
                    let _ = starting.child.wait();
                }
                Death::FaultPoint(point) => {
                    let armed = format!("{point}@{}", rng.random_range(1..=3));
                    let mut instance = start(&fleet, Some(&armed));
                    let status = wait_for_exit(&mut instance, Duration::from_secs(60))
                        .unwrap_or_else(|| panic!("cycle {cycle}: {armed} was never reached"));
                    assert_eq!(
                        status.signal(),
                        Some(libc::SIGKILL),
                        "cycle {cycle}: the server armed with {armed} ended otherwise: {status}"
                    );
                }
            }
            *deaths.entry(death).or_default() += 1;
        }
        // The last server stays up while every device finishes the batch it has in hand.
        drop(current);
        let last = start(&fleet, None);
        stop.store(true, Ordering::SeqCst);
        let (devices, acked) = join_devices(threads);
        (devices, acked, last)
    });
    let elapsed = started.elapsed();
    let mut devices = devices;
    assert_eq!(fleet.server_errors(), Vec::<String>::new());

    let pool = db::open(&fleet.storage()).unwrap();
    let mut conn = pool.get().unwrap();
    check_nothing_lost_and_converged(&fleet, &mut conn, &admin, &acked, &mut devices);
    let refused = check_refusals_filed_once(&mut conn, &acked);
    let integrity = check_integrity(&mut conn);
    drop(last);

    let pushes = fleet.pushes.load(Ordering::SeqCst);
    let duplicates = fleet.duplicates.load(Ordering::SeqCst);
    let retries = fleet.retries.load(Ordering::SeqCst);
    assert!(
        pushes > cycles,
        "the devices barely pushed: {pushes} pushes"
    );
    let deaths: Vec<String> = deaths.iter().map(|(d, n)| format!("{d:?}: {n}")).collect();
    eprintln!(
        "crash loop ({backend:?}): {cycles} SIGKILLs and restarts survived with nothing lost in \
         {:.1} s ({}); {DEVICES} devices, {} mutations acknowledged in {pushes} pushes, {duplicates} \
         answered as duplicates of a commit whose answer was cut, {retries} requests retried; \
         {} large pushes ({refused} refusals acknowledged in all, each filed once), {} of them \
         resumed after a cut between their turns; {integrity}",
        elapsed.as_secs_f64(),
        deaths.join(", "),
        acked.len(),
        large.pushed.load(Ordering::SeqCst),
        large.resumed.load(Ordering::SeqCst),
    );
}

/// The large pushes of all devices: how many were acknowledged, and how many of those had
/// been cut between their turns (their answer holds refusals filed by an earlier, unanswered
/// attempt beside refusals filed by the last one).
#[derive(Default)]
struct LargePushes {
    pushed: AtomicUsize,
    resumed: AtomicUsize,
}

/// Pushes batches of random size, now and then a large one, and pulls now and then, until told
/// to stop.
fn run_device(
    fleet: &Fleet,
    world: &World,
    username: &str,
    stop: &AtomicBool,
    large: &LargePushes,
) -> (Device, Vec<Acked>) {
    let mut device = Device::trainer(fleet, username);
    let mut acked = Vec::new();
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        if round % LARGE_EVERY == 0 {
            let (answered, resumed) = push_large_batch(&mut device, fleet, world);
            acked.extend(answered);
            large.pushed.fetch_add(1, Ordering::SeqCst);
            large
                .resumed
                .fetch_add(usize::from(resumed), Ordering::SeqCst);
        } else {
            let size = rand::rng().random_range(1..=MAX_BATCH);
            acked.extend(device.push_batch(fleet, world, size));
        }
        if round % 5 == 0 {
            device.pull(fleet);
        }
        std::thread::sleep(Duration::from_millis(rand::rng().random_range(0..5)));
    }
    (device, acked)
}

/// Pushes a large batch: good attendance upserts, in order, with refusals (attendance of a
/// session that does not exist: `unknown_session`) among them, the same body again until an
/// answer comes. What was acknowledged, and whether the answer shows that an earlier attempt
/// committed some of its turns but not all (refusals answered from the log beside refusals
/// filed now).
fn push_large_batch(device: &mut Device, fleet: &Fleet, world: &World) -> (Vec<Acked>, bool) {
    let mut rng = rand::rng();
    let good = rng.random_range(LARGE_GOOD);
    let refused = rng.random_range(LARGE_REFUSED);
    let mut sent: Vec<(Acked, Value)> = Vec::with_capacity(good + refused);
    for _ in 0..good + refused {
        let mutation_id = uuid::Uuid::new_v4().to_string();
        let hlc = device.stamp();
        let status = STATUSES[rng.random_range(0..STATUSES.len())];
        let person = world.people[rng.random_range(0..world.people.len())].clone();
        // As many refusals among the good mutations as chance puts there, `refused` in all.
        let refusals_left = refused - sent.iter().filter(|(a, _)| a.refused).count();
        let goods_left = good - sent.iter().filter(|(a, _)| !a.refused).count();
        let is_refused = rng.random_range(0..refusals_left + goods_left) < refusals_left;
        let (key, record_id) = if is_refused {
            let nowhere = uuid::Uuid::new_v4().to_string();
            ((nowhere, person), uuid::Uuid::new_v4().to_string())
        } else {
            let key = (
                world.sessions[rng.random_range(0..world.sessions.len())].clone(),
                person,
            );
            let record_id = device.record_of(&key);
            (key, record_id)
        };
        let acked = Acked {
            mutation_id,
            key,
            status: status.to_owned(),
            hlc,
            refused: is_refused,
        };
        let body = acked.upsert(&record_id);
        sent.push((acked, body));
    }
    let mutations: Vec<&Value> = sent.iter().map(|(_, body)| body).collect();
    let results = device.send_push(fleet, &mutations);
    let (mut refusals_logged_before, mut refusals_filed_now) = (false, false);
    let acked = sent
        .into_iter()
        .zip(results)
        .map(|((acked, _), result)| {
            assert_eq!(result["mutation_id"], acked.mutation_id.as_str());
            let duplicate = result["status"] == "duplicate";
            if duplicate {
                fleet.duplicates.fetch_add(1, Ordering::SeqCst);
            }
            let status = if duplicate {
                &result["original_status"]
            } else {
                &result["status"]
            };
            if acked.refused {
                assert_eq!(
                    (status.as_str(), result["reason"].as_str()),
                    (Some("rejected"), Some("unknown_session")),
                    "{result}"
                );
                refusals_logged_before |= duplicate;
                refusals_filed_now |= !duplicate;
            } else {
                assert!(
                    matches!(status.as_str(), Some("applied" | "merged")),
                    "{result}"
                );
                if let Some(into) = result["merged_into"].as_str() {
                    device.ids.insert(acked.key.clone(), into.to_owned());
                }
            }
            acked
        })
        .collect();
    (acked, refusals_logged_before && refusals_filed_now)
}

/// Every refusal acknowledged is filed in the quarantine exactly once, logged as refused, and
/// the quarantine holds nothing else; every mutation acknowledged as applied is logged as such.
/// A filing and its log entry are written in one transaction: a push cut between its turns
/// leaves neither half of a refusal alone. Returns how many refusals were checked.
fn check_refusals_filed_once(conn: &mut DbConn, acked: &[Acked]) -> usize {
    use diemdanh::db::schema::sync_quarantine;
    use diemdanh::sync::push::Status;
    let filed: Vec<String> = sync_quarantine::table
        .select(sync_quarantine::mutation_id)
        .load(conn)
        .unwrap();
    let mut filed_count: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &filed {
        *filed_count.entry(id).or_default() += 1;
    }
    // The log's owner decodes its compact results.
    let ids: Vec<&str> = acked.iter().map(|a| a.mutation_id.as_str()).collect();
    let logged = diemdanh::sync::mutation_log::results(conn, &ids).unwrap();
    let mut refused = 0;
    for mutation in acked {
        let result = &logged[&mutation.mutation_id];
        let filed = filed_count
            .remove(mutation.mutation_id.as_str())
            .unwrap_or(0);
        if mutation.refused {
            refused += 1;
            assert_eq!(result.status, Status::Rejected, "{}", mutation.mutation_id);
            assert_eq!(
                filed, 1,
                "refusal {} filed {filed} times",
                mutation.mutation_id
            );
        } else {
            assert_ne!(result.status, Status::Rejected, "{}", mutation.mutation_id);
            assert_eq!(filed, 0, "applied mutation {} filed", mutation.mutation_id);
        }
    }
    assert!(
        filed_count.is_empty(),
        "quarantine entries of no acknowledged refusal: {:?}",
        filed_count.keys().take(5).collect::<Vec<_>>()
    );
    refused
}

/// Starts a server, its fault point armed if one is given (`<name>@<pass>`).
fn spawn(fleet: &Fleet, fault_point: Option<&str>) -> Starting {
    // Long-lived tokens: a thousand cycles outlast the default 15 minutes.
    let mut env = vec![
        ("DIEMDANH_ACCESS_TOKEN_TTL_SECS", "86400"),
        ("DIEMDANH_MAX_QUARANTINE_PER_DEVICE", QUARANTINE_CAP),
    ];
    if let Some(armed) = fault_point {
        env.push(("DIEMDANH_FAULT_POINT", armed));
    }
    fleet.spawn(&env)
}

/// A server behind the "load balancer" once it listens: the devices' requests go to it.
fn start(fleet: &Fleet, fault_point: Option<&str>) -> Instance {
    let instance = spawn(fleet, fault_point).wait();
    *fleet.bases.write().unwrap() = vec![instance.base.clone()];
    instance
}

fn wait_for_exit(instance: &mut Instance, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = instance.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The database's own consistency checks, after all the crashes; says what was checked.
fn check_integrity(conn: &mut DbConn) -> String {
    match conn {
        DbConn::Sqlite(conn) => {
            // Every page, every index against its table, every constraint.
            let report: Vec<String> =
                diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check")
                    .load::<Line>(conn)
                    .unwrap()
                    .into_iter()
                    .map(|l| l.line)
                    .collect();
            assert_eq!(report, ["ok"], "PRAGMA integrity_check");
            let broken = diesel::sql_query("SELECT count(*) AS n FROM pragma_foreign_key_check")
                .get_result::<Count>(conn)
                .unwrap()
                .n;
            assert_eq!(broken, 0, "rows whose foreign key points nowhere");
            "PRAGMA integrity_check: ok, foreign_key_check: no rows".to_owned()
        }
        DbConn::Postgres(conn) => {
            // amcheck (shipped with PostgreSQL): every B-tree index is well formed and holds
            // exactly the table's rows (heapallindexed), and no table page is corrupt.
            diesel::sql_query("CREATE EXTENSION IF NOT EXISTS amcheck")
                .execute(conn)
                .unwrap();
            let indexes = diesel::sql_query(
                "SELECT count(bt_index_check(c.oid, true))::bigint AS n FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_am a ON a.oid = c.relam \
                 JOIN pg_namespace s ON s.oid = c.relnamespace \
                 WHERE a.amname = 'btree' AND s.nspname = 'public'",
            )
            .get_result::<Count>(conn)
            .unwrap()
            .n;
            assert!(indexes > 10, "only {indexes} indexes checked");
            let corrupt = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_class c \
                 JOIN pg_namespace s ON s.oid = c.relnamespace, verify_heapam(c.oid) \
                 WHERE c.relkind = 'r' AND s.nspname = 'public'",
            )
            .get_result::<Count>(conn)
            .unwrap()
            .n;
            assert_eq!(corrupt, 0, "verify_heapam found corruption");
            format!(
                "amcheck: {indexes} B-tree indexes hold exactly their tables' rows, verify_heapam: no corruption"
            )
        }
    }
}
