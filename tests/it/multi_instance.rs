//! Several stateless instances on one PostgreSQL and one object store: three real server
//! processes start at the same moment on a fresh database (so their migrations race), simulated
//! devices log in, push and pull through whichever instance a random pick gives them, one
//! instance is killed with SIGKILL in the middle of the pushes and restarted, and afterwards every
//! acknowledged mutation is stored once, every device holds the server's view, cursors, access
//! and refresh tokens cross instances, and a material uploaded through one instance downloads
//! (by range) from the others. PostgreSQL only: SQLite is one file for one process.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{RwLock, mpsc};
use std::time::{Duration, Instant};

use diemdanh::config::{StorageConfig, StoreConfig};
use diemdanh::db::{self, schema::sync_mutations};
use diesel::prelude::*;
use rand::Rng;
use serde_json::{Value, json};

use crate::materials::{content, sha256, start_moto};
use crate::support::{Response, check_against_spec, postgres};

const INSTANCES: usize = 3;
const TRAINERS: usize = 3;
/// Two devices per trainer: two phones of one trainer must converge as well as two trainers.
const DEVICES: usize = 6;
const SESSIONS: usize = 3;
const PEOPLE: usize = 4;
const ROUNDS: usize = 12;
const BATCH: usize = 5;
const STATUSES: [&str; 4] = ["present", "late", "excused", "absent"];

/// A `diemdanh serve` process; killed (SIGKILL) when dropped, also when the test panics.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    fn kill(&mut self) {
        // Child::kill sends SIGKILL: no graceful shutdown, in-flight requests are cut.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A started process whose "listening on" line has not been read yet.
struct Starting {
    child: Child,
    address: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Starting {
    fn wait(mut self) -> Instance {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.address.recv_timeout(Duration::from_millis(100)) {
                Ok(base) => {
                    return Instance {
                        child: self.child,
                        base,
                    };
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "an instance exited ({status}) before listening:\n{}",
                            std::fs::read_to_string(&self.log).unwrap_or_default()
                        );
                    }
                }
                // Disconnected: its stdout closed, so it exited (or it is too slow to start).
                Err(_) => panic!(
                    "an instance did not report its address ({:?}):\n{}",
                    self.child.try_wait(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }
}

/// The shared configuration of the instances and the addresses the "load balancer" (a random
/// pick) currently sends requests to.
struct Fleet {
    database_url: String,
    root: PathBuf,
    store_args: Vec<String>,
    bases: RwLock<Vec<String>>,
    agent: ureq::Agent,
    started: AtomicUsize,
    pushes: AtomicUsize,
    retries: AtomicUsize,
    /// Set once the killed instance is back behind the "load balancer".
    restarted: AtomicBool,
}

impl Fleet {
    /// Starts one instance with a data directory of its own: nothing on local disk is shared.
    fn spawn(&self) -> Starting {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let data_dir = self.root.join(format!("instance-{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = data_dir.join("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_diemdanh"));
        cmd.arg("--data-dir")
            .arg(&data_dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(&self.store_args)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
            .args(["--db-pool-size", "4"])
            .env("DIEMDANH_LOG", "warn");
        // Should the test process die without unwinding, its servers go too.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&log).unwrap()));
        let mut child = cmd.spawn().expect("start the diemdanh binary");
        let stdout = child.stdout.take().unwrap();
        let (found, address) = mpsc::channel();
        let out_log = log.clone();
        // Drained so that the pipe never fills; the "listening on" line carries the address.
        std::thread::spawn(move || {
            let mut out = File::options().append(true).open(out_log).ok();
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1)
                    && let Some(sender) = found.take()
                {
                    let _ = sender.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                if let Some(out) = out.as_mut() {
                    let _ = writeln!(out, "{line}");
                }
            }
        });
        Starting {
            child,
            address,
            log,
        }
    }

    fn pick(&self) -> String {
        let bases = self.bases.read().unwrap();
        bases[rand::rng().random_range(0..bases.len())].clone()
    }

    /// One request to one instance; Err when it cannot be reached or the connection is cut.
    fn send(
        &self,
        base: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Response, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = match body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(body).unwrap())
                    .unwrap(),
            )?,
            None => self.agent.run(request.body(()).unwrap())?,
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Response {
            status,
            headers,
            text,
            json,
        })
    }

    /// A request through the "load balancer": a random instance, and on a connection error or a
    /// 5xx the same request again on another pick, as a device retries. Every answer that is not
    /// a 5xx must match the contract.
    #[track_caller]
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let base = self.pick();
            match self.send(&base, method, path, token, body) {
                Ok(response) if response.status < 500 => {
                    check_against_spec(method, path, &response);
                    return response;
                }
                failed => {
                    self.retries.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        Instant::now() < deadline,
                        "{method} {path}: no instance answered: {failed:?}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// A request to one named instance, which must answer.
    #[track_caller]
    fn call_on(
        &self,
        base: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let response = self
            .send(base, method, path, token, body)
            .unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"));
        check_against_spec(method, path, &response);
        response
    }

    fn created(&self, admin: &str, path: &str, body: Value) -> String {
        self.call("POST", path, Some(admin), Some(&body))
            .expect(201)
            .json["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every page after `cursor`, each page from whichever instance the pick gives.
    fn pull_all(&self, token: &str, cursor: Option<String>) -> (String, Vec<Value>) {
        let mut cursor = cursor;
        let mut changes = Vec::new();
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/sync/pull?limit=50&cursor={c}"),
                None => "/api/v1/sync/pull?limit=50".to_owned(),
            };
            let page = self.call("GET", &path, Some(token), None).expect(200).json;
            changes.extend(page["changes"].as_array().unwrap().iter().cloned());
            cursor = Some(page["cursor"].as_str().unwrap().to_owned());
            if !page["has_more"].as_bool().unwrap() {
                return (cursor.unwrap(), changes);
            }
        }
    }
}

/// What devices may write to: every session of one course, every enrolled person.
struct World {
    sessions: Vec<String>,
    people: Vec<String>,
}

/// A mutation the server answered with 200, and what it set.
struct Acked {
    mutation_id: String,
    key: (String, String),
    status: String,
    hlc: String,
}

/// A simulated phone: its clock, what it holds, and which record id it uses for each
/// (session, person).
struct Device {
    token: String,
    device_id: String,
    millis: u64,
    counter: u32,
    cursor: Option<String>,
    held: BTreeMap<(String, String), Value>,
    ids: BTreeMap<(String, String), String>,
}

impl Device {
    fn stamp(&mut self) -> String {
        let wall = chrono::Utc::now().timestamp_millis() as u64;
        if wall > self.millis {
            (self.millis, self.counter) = (wall, 0);
        } else {
            self.counter += 1;
        }
        format!(
            "{:013}-{:04x}-{}",
            self.millis, self.counter, self.device_id
        )
    }

    /// The merge of `server_hlc` from api-spec/sync.md, so later stamps follow the server's.
    fn merge_server_clock(&mut self, server: &str) {
        let mut parts = server.splitn(3, '-');
        let remote: u64 = parts.next().unwrap().parse().unwrap();
        let remote_counter = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let wall = chrono::Utc::now().timestamp_millis() as u64;
        let next = self.millis.max(remote).max(wall);
        self.counter = if next == self.millis && next == remote {
            self.counter.max(remote_counter) + 1
        } else if next == self.millis {
            self.counter + 1
        } else if next == remote {
            remote_counter + 1
        } else {
            0
        };
        self.millis = next;
    }

    fn pull(&mut self, fleet: &Fleet) {
        let (cursor, changes) = fleet.pull_all(&self.token, self.cursor.take());
        self.cursor = Some(cursor);
        for change in changes {
            let key = (
                change["collection"].as_str().unwrap().to_owned(),
                change["id"].as_str().unwrap().to_owned(),
            );
            if change["deleted"].as_bool().unwrap() {
                self.held.remove(&key);
                continue;
            }
            let data = &change["data"];
            if key.0 == "attendance" {
                // From now on the device edits the server's record for the pair.
                let pair = (
                    data["session_id"].as_str().unwrap().to_owned(),
                    data["person_id"].as_str().unwrap().to_owned(),
                );
                self.ids.insert(pair, key.1.clone());
            }
            self.held.insert(key, data.clone());
        }
    }
}

/// One device's life: log in somewhere, push batches anywhere (retrying elsewhere), pull now
/// and then, and pull once more at the end.
fn run_device(fleet: &Fleet, world: &World, username: &str) -> (Device, Vec<Acked>) {
    let login = fleet
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": username, "password": "trainer-password-1", "device_name": "phone"})),
        )
        .expect(200)
        .json;
    let mut device = Device {
        token: login["access_token"].as_str().unwrap().to_owned(),
        device_id: login["device_id"].as_str().unwrap().to_owned(),
        millis: 0,
        counter: 0,
        cursor: None,
        held: BTreeMap::new(),
        ids: BTreeMap::new(),
    };
    let mut acked = Vec::new();
    // At least ROUNDS pushes, and a few more once the killed instance is back, so that pushes
    // surround the kill and the restart whatever the machine's speed.
    let mut after_restart = 0;
    let mut round = 0;
    while round < ROUNDS || after_restart < 3 {
        if fleet.restarted.load(Ordering::SeqCst) {
            after_restart += 1;
        }
        round += 1;
        let mut sent = Vec::new();
        let mutations: Vec<Value> = (0..BATCH)
            .map(|_| {
                let mut rng = rand::rng();
                let key = (
                    world.sessions[rng.random_range(0..SESSIONS)].clone(),
                    world.people[rng.random_range(0..PEOPLE)].clone(),
                );
                let status = STATUSES[rng.random_range(0..STATUSES.len())];
                // A pair this device has not seen gets an id of its own: when another device
                // created the pair first, the server merges the two.
                let record_id = device
                    .ids
                    .entry(key.clone())
                    .or_insert_with(|| uuid::Uuid::new_v4().to_string())
                    .clone();
                let hlc = device.stamp();
                let mutation_id = uuid::Uuid::new_v4().to_string();
                sent.push((mutation_id.clone(), key.clone(), status, hlc.clone()));
                json!({
                    "mutation_id": mutation_id,
                    "collection": "attendance",
                    "record_id": record_id,
                    "op": "upsert",
                    "fields": {"session_id": key.0, "person_id": key.1, "status": status},
                    "hlc": hlc,
                })
            })
            .collect();
        let answer = fleet
            .call(
                "POST",
                "/api/v1/sync/push",
                Some(&device.token),
                Some(&json!({ "mutations": mutations })),
            )
            .expect(200)
            .json;
        fleet.pushes.fetch_add(1, Ordering::SeqCst);
        device.merge_server_clock(answer["server_hlc"].as_str().unwrap());
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), sent.len());
        for (result, (mutation_id, key, status, hlc)) in results.iter().zip(sent) {
            assert_eq!(result["mutation_id"], mutation_id.as_str());
            // A retried batch whose first answer was lost comes back as duplicates.
            assert!(
                ["applied", "merged", "duplicate"].contains(&result["status"].as_str().unwrap()),
                "{result}"
            );
            if let Some(into) = result["merged_into"].as_str() {
                device.ids.insert(key.clone(), into.to_owned());
            }
            acked.push(Acked {
                mutation_id,
                key,
                status: status.to_owned(),
                hlc,
            });
        }
        if round % 3 == 0 {
            device.pull(fleet);
        }
        std::thread::sleep(Duration::from_millis(rand::rng().random_range(10..40)));
    }
    (device, acked)
}

const BURST_BATCHES: usize = 6;
const BURST_BATCH: usize = 50;

/// Mutations per second when every device pushes batches back to back (each an edit of pairs
/// the device already holds).
fn push_rate(fleet: &Fleet, devices: &mut [Device]) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for device in devices.iter_mut() {
            scope.spawn(move || {
                let pairs: Vec<String> = device.ids.values().cloned().collect();
                for _ in 0..BURST_BATCHES {
                    let mutations: Vec<Value> = (0..BURST_BATCH)
                        .map(|_| {
                            let mut rng = rand::rng();
                            json!({
                                "mutation_id": uuid::Uuid::new_v4().to_string(),
                                "collection": "attendance",
                                "record_id": pairs[rng.random_range(0..pairs.len())],
                                "op": "upsert",
                                "fields": {"status": STATUSES[rng.random_range(0..STATUSES.len())]},
                                "hlc": device.stamp(),
                            })
                        })
                        .collect();
                    let answer = fleet
                        .call(
                            "POST",
                            "/api/v1/sync/push",
                            Some(&device.token),
                            Some(&json!({ "mutations": mutations })),
                        )
                        .expect(200)
                        .json;
                    for result in answer["results"].as_array().unwrap() {
                        assert_ne!(result["status"], "rejected", "{result}");
                    }
                }
            });
        }
    });
    (devices.len() * BURST_BATCHES * BURST_BATCH) as f64 / started.elapsed().as_secs_f64()
}

fn attendance(held: &BTreeMap<(String, String), Value>) -> BTreeMap<String, Value> {
    held.iter()
        .filter(|((collection, _), _)| collection == "attendance")
        .map(|((_, id), data)| (id.clone(), data.clone()))
        .collect()
}

fn apply(changes: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut held = BTreeMap::new();
    for change in changes {
        let key = (
            change["collection"].as_str().unwrap().to_owned(),
            change["id"].as_str().unwrap().to_owned(),
        );
        if change["deleted"].as_bool().unwrap() {
            held.remove(&key);
        } else {
            held.insert(key, change["data"].clone());
        }
    }
    held
}

#[test]
fn three_instances_share_one_postgres_and_one_store() {
    let Some(pg) = postgres::fresh_database() else {
        eprintln!("PostgreSQL not available: skipping the multi-instance test");
        return;
    };
    let moto = start_moto();
    let store_args = match &moto {
        Some(moto) => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let bucket = agent
                .put(format!("{}/materials", moto.endpoint))
                .send_empty()
                .unwrap();
            assert_eq!(bucket.status(), 200);
            vec![
                "--store-url".to_owned(),
                "s3://materials/fleet".to_owned(),
                "--s3-endpoint".to_owned(),
                moto.endpoint.clone(),
                "--s3-access-key-id".to_owned(),
                "test".to_owned(),
                "--s3-secret-access-key".to_owned(),
                "test".to_owned(),
                "--s3-allow-http".to_owned(),
            ]
        }
        // start_moto said why: the materials part is skipped, each instance keeps its own dir.
        None => Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet {
        database_url: pg.url.clone(),
        root: dir.path().to_path_buf(),
        store_args,
        bases: RwLock::new(Vec::new()),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into(),
        started: AtomicUsize::new(0),
        pushes: AtomicUsize::new(0),
        retries: AtomicUsize::new(0),
        restarted: AtomicBool::new(false),
    };

    // All three are spawned before any is waited for: their migrations run at the same moment
    // on an empty database. Without the advisory lock two would create the same tables and all
    // but one would exit before listening.
    let starting: Vec<Starting> = (0..INSTANCES).map(|_| fleet.spawn()).collect();
    let mut instances: Vec<Instance> = starting.into_iter().map(Starting::wait).collect();
    *fleet.bases.write().unwrap() = instances.iter().map(|i| i.base.clone()).collect();
    let storage = StorageConfig {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(pg.url.clone()),
        db_pool_size: 2,
        sqlite_busy_timeout_ms: 5000,
        store: StoreConfig::default(),
    };
    let pool = db::open(&storage).unwrap();
    let mut conn = pool.get().unwrap();
    assert_eq!(
        db::run_migrations(&mut conn).unwrap(),
        Vec::<String>::new(),
        "the schema is complete after the racing starts"
    );

    // An administrator from the command line, then everything else through the API.
    let mut add_admin = Command::new(env!("CARGO_BIN_EXE_diemdanh"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", &pg.url, "user", "add", "root.admin"])
        .args(["--role", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add_admin
        .stdin
        .take()
        .unwrap()
        .write_all(b"admin-password-1\n")
        .unwrap();
    assert!(add_admin.wait().unwrap().success());
    let admin = fleet
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": "root.admin", "password": "admin-password-1", "device_name": "office"})),
        )
        .expect(200)
        .json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let course = fleet.created(
        &admin,
        "/api/v1/courses",
        json!({"title": "Lớp bồi dưỡng Bí thư", "management_level": "province", "start_date": "2026-12-08", "end_date": "2026-12-10"}),
    );
    let trainers: Vec<String> = (0..TRAINERS)
        .map(|t| {
            let username = format!("trainer.{t}");
            let user = fleet.created(
                &admin,
                "/api/v1/users",
                json!({"username": username, "role": "trainer", "password": "trainer-password-1"}),
            );
            fleet.created(
                &admin,
                "/api/v1/course-trainers",
                json!({"course_id": course, "user_id": user}),
            );
            username
        })
        .collect();
    let sessions: Vec<String> = (0..SESSIONS)
        .map(|s| {
            fleet.created(
                &admin,
                "/api/v1/sessions",
                json!({"course_id": course, "topic": format!("Chuyên đề {s}"), "starts_at": format!("2026-12-08T0{}:00:00+07:00", s + 7), "ends_at": format!("2026-12-08T0{}:50:00+07:00", s + 7)}),
            )
        })
        .collect();
    let people: Vec<String> = (0..PEOPLE)
        .map(|p| {
            let person = fleet.created(
                &admin,
                "/api/v1/people",
                json!({"full_name": format!("Học viên Số {p}"), "position": "secretary"}),
            );
            fleet.created(
                &admin,
                "/api/v1/enrollments",
                json!({"course_id": course, "person_id": person}),
            );
            person
        })
        .collect();
    let world = World { sessions, people };

    // Devices push and pull through random instances while one instance is killed and
    // restarted in the middle.
    let started = Instant::now();
    let (outcomes, pushes_at_kill) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..DEVICES)
            .map(|d| {
                let (fleet, world, trainer) = (&fleet, &world, &trainers[d % TRAINERS]);
                scope.spawn(move || run_device(fleet, world, trainer))
            })
            .collect();
        let total = DEVICES * ROUNDS;
        let deadline = Instant::now() + Duration::from_secs(30);
        while fleet.pushes.load(Ordering::SeqCst) < total / 3 {
            assert!(Instant::now() < deadline, "the devices made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        let pushes_at_kill = fleet.pushes.load(Ordering::SeqCst);
        let retries_before = fleet.retries.load(Ordering::SeqCst);
        instances[1].kill();
        // The load balancer has not noticed yet: requests still go to the dead address until a
        // device has had to retry elsewhere.
        let deadline = Instant::now() + Duration::from_secs(10);
        while fleet.retries.load(Ordering::SeqCst) == retries_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        instances[1] = fleet.spawn().wait();
        fleet.bases.write().unwrap()[1] = instances[1].base.clone();
        fleet.restarted.store(true, Ordering::SeqCst);
        let outcomes: Vec<(Device, Vec<Acked>)> = threads
            .into_iter()
            .map(|t| t.join().expect("device thread"))
            .collect();
        (outcomes, pushes_at_kill)
    });
    let elapsed = started.elapsed();
    let retries = fleet.retries.load(Ordering::SeqCst);
    let pushes = fleet.pushes.load(Ordering::SeqCst);
    assert!(pushes_at_kill < pushes, "the kill came after the last push");
    assert!(retries > 0, "no request met the killed instance");

    // The server's view, read from scratch by an administrator.
    let (_, admin_changes) = fleet.pull_all(&admin, None);
    let server = apply(&admin_changes);
    let server_attendance = attendance(&server);
    let pairs: BTreeSet<(String, String)> = server_attendance
        .values()
        .map(|r| {
            (
                r["session_id"].as_str().unwrap().to_owned(),
                r["person_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs.len(),
        server_attendance.len(),
        "one record per (session, person)"
    );

    // Every acknowledged mutation is on record once, and each pair holds the status of its
    // latest stamp (every mutation here sets the status, so the latest one wins).
    let (mut devices, acked): (Vec<Device>, Vec<Vec<Acked>>) = outcomes.into_iter().unzip();
    let acked: Vec<Acked> = acked.into_iter().flatten().collect();
    assert_eq!(acked.len(), pushes * BATCH);
    let mut winners: BTreeMap<&(String, String), &Acked> = BTreeMap::new();
    for mutation in &acked {
        let logged: i64 = sync_mutations::table
            .find(&mutation.mutation_id)
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(
            logged, 1,
            "mutation {} is not on record",
            mutation.mutation_id
        );
        let winner = winners.entry(&mutation.key).or_insert(mutation);
        if mutation.hlc > winner.hlc {
            *winner = mutation;
        }
    }
    let logged: i64 = sync_mutations::table.count().get_result(&mut conn).unwrap();
    assert_eq!(logged as usize, acked.len(), "no mutation stored twice");
    assert_eq!(pairs.len(), winners.len(), "every pair written is there");
    for record in server_attendance.values() {
        let pair = (
            record["session_id"].as_str().unwrap().to_owned(),
            record["person_id"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            record["status"].as_str(),
            Some(winners[&pair].status.as_str()),
            "pair {pair:?} lost its latest write"
        );
    }

    // Every device, after a last pull through any instance, holds what the server holds, and
    // exactly what a fresh pull of its own scope gives.
    for device in &mut devices {
        device.pull(&fleet);
        assert_eq!(attendance(&device.held), server_attendance);
        let (_, fresh) = fleet.pull_all(&device.token, None);
        assert_eq!(device.held, apply(&fresh));
    }

    // A cursor from one instance continues on each other, the restarted one included.
    let bases = fleet.bases.read().unwrap().clone();
    let first = fleet
        .call_on(
            &bases[0],
            "GET",
            "/api/v1/sync/pull?limit=5",
            Some(&admin),
            None,
        )
        .expect(200)
        .json;
    let mut paged: Vec<Value> = first["changes"].as_array().unwrap().clone();
    let mut cursor = first["cursor"].as_str().unwrap().to_owned();
    let mut page_count = 1;
    loop {
        let base = &bases[page_count % INSTANCES];
        let page = fleet
            .call_on(
                base,
                "GET",
                &format!("/api/v1/sync/pull?limit=5&cursor={cursor}"),
                Some(&admin),
                None,
            )
            .expect(200)
            .json;
        paged.extend(page["changes"].as_array().unwrap().iter().cloned());
        cursor = page["cursor"].as_str().unwrap().to_owned();
        page_count += 1;
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert!(page_count > INSTANCES, "the pages crossed every instance");
    assert_eq!(apply(&paged), server);

    // A token from A works on B; its refresh token rotates on C; a replay of the old refresh
    // token on A is seen as reuse (the refresh state is shared, not per instance).
    let login = fleet
        .call_on(
            &bases[0],
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": trainers[0], "password": "trainer-password-1", "device_name": "tablet"})),
        )
        .expect(200)
        .json;
    let access = login["access_token"].as_str().unwrap();
    fleet
        .call_on(&bases[1], "GET", "/api/v1/me", Some(access), None)
        .expect(200);
    let refreshed = fleet
        .call_on(
            &bases[2],
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": login["refresh_token"]})),
        )
        .expect(200)
        .json;
    assert_eq!(refreshed["device_id"], login["device_id"]);
    let renewed = refreshed["access_token"].as_str().unwrap();
    fleet
        .call_on(&bases[0], "GET", "/api/v1/me", Some(renewed), None)
        .expect(200);
    let replay = fleet.call_on(
        &bases[0],
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(&json!({"refresh_token": login["refresh_token"]})),
    );
    assert_eq!(replay.expect(401).code(), "refresh_token_reused");
    let signed_out = fleet.call_on(&bases[1], "GET", "/api/v1/me", Some(renewed), None);
    assert_eq!(signed_out.expect(401).code(), "device_revoked");

    if moto.is_some() {
        material_uploaded_on_one_downloads_from_all(&fleet, &bases, &admin, &course);
    }

    // Pushes without pauses, through three instances and then through one: the figures behind
    // the capacity note in deploy/OPERATIONS.md. Printed, not asserted: the machine is shared.
    let through_three = push_rate(&fleet, &mut devices);
    *fleet.bases.write().unwrap() = vec![bases[0].clone()];
    let through_one = push_rate(&fleet, &mut devices);
    eprintln!(
        "multi-instance: back-to-back pushes of {BURST_BATCH} mutations from {DEVICES} devices: \
         {through_three:.0} mutations/s through {INSTANCES} instances, {through_one:.0} through one"
    );

    let mutations = acked.len();
    eprintln!(
        "multi-instance: {DEVICES} devices, {mutations} mutations in {pushes} pushes over \
         {INSTANCES} instances in {:.1} s with pauses, one SIGKILL and restart (after push \
         {pushes_at_kill}), {retries} retried requests",
        elapsed.as_secs_f64()
    );
}

/// Uploaded through one instance to the shared store, downloaded whole and by range from every
/// other.
fn material_uploaded_on_one_downloads_from_all(
    fleet: &Fleet,
    bases: &[String],
    admin: &str,
    course: &str,
) {
    let bytes = content(300_000, 7);
    let request = ureq::http::Request::builder()
        .method("POST")
        .uri(format!(
            "{}/api/v1/courses/{course}/materials?file_name=bai-giang.pdf",
            bases[0]
        ))
        .header("Authorization", format!("Bearer {admin}"))
        .header("Content-Type", "application/pdf")
        .body(bytes.clone())
        .unwrap();
    let mut created = fleet.agent.run(request).unwrap();
    assert_eq!(created.status(), 201);
    let material: Value =
        serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(material["sha256"], sha256(&bytes));
    let path = format!(
        "/api/v1/materials/{}/content",
        material["id"].as_str().unwrap()
    );
    for base in &bases[1..] {
        let download = |range: Option<&str>| {
            let mut request = ureq::http::Request::builder()
                .uri(format!("{base}{path}"))
                .header("Authorization", format!("Bearer {admin}"));
            if let Some(range) = range {
                request = request.header("Range", range);
            }
            let mut response = fleet.agent.run(request.body(()).unwrap()).unwrap();
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .unwrap();
            (status, body)
        };
        let (status, whole) = download(None);
        assert_eq!((status, sha256(&whole)), (200, sha256(&bytes)));
        let (status, piece) = download(Some("bytes=100000-100099"));
        assert_eq!((status, piece.as_slice()), (206, &bytes[100_000..100_100]));
    }
}
