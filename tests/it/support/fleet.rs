//! Real `diemdanh serve` processes (the binary cargo built for the tests) and simulated devices
//! that push attendance and pull over HTTP through them, retrying a cut or failed request with
//! the same body as a phone does. Shared by the multi-instance test (several processes on one
//! PostgreSQL) and the crash loop (`tests/crash`: one process killed and restarted over and
//! over), which both end by proving that nothing acknowledged was lost and that the devices
//! converge. The same fleet runs the container image instead of the binary (`tests/image`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

use diemdanh::config::StorageConfig;
use diemdanh::db::{DbConn, schema::sync_mutations};
use diesel::prelude::*;
use rand::Rng;
use serde_json::{Value, json};

use super::device::{Device, apply, pull_from};
use super::process::spawn_server;
use super::storage::default_storage;
use super::sync::{new_id, upsert_attendance};
use super::{JsonBody, Response, check_against_spec, exchange};

pub const STATUSES: [&str; 4] = ["present", "late", "excused", "absent"];
const ADMIN_PASSWORD: &str = "admin-password-1";
const TRAINER_PASSWORD: &str = "trainer-password-1";

/// How instances are started: the binary cargo built for the tests, or a container of the
/// image (`podman run`, the data directory mounted at `/data`, the host's network).
pub enum Launcher {
    Binary,
    // Constructed by tests/image only; the other suites sharing this module run the binary.
    #[allow(dead_code)]
    Image(String),
}

/// The user the image's server runs as (the Dockerfile's `useradd --uid`).
const IMAGE_UID: u32 = 10001;
/// Podman's settings for this machine's sandbox (tests/image/containers.conf).
const PODMAN_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/image/containers.conf");

pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", PODMAN_CONF);
    cmd
}

/// A `diemdanh serve` process (or its container); killed (SIGKILL) when dropped, also when the
/// test panics.
pub struct Instance {
    pub child: Child,
    pub base: String,
    /// The container's name, when the instance runs in one: killing `podman run` would leave it.
    container: Option<String>,
}

impl Instance {
    pub fn kill(&mut self) {
        if let Some(name) = &self.container {
            let _ = podman()
                .args(["rm", "--force", "--time", "0", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Child::kill sends SIGKILL: no graceful shutdown, in-flight requests are cut.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it as an operator does (SIGTERM: in-flight requests finish) and waits for it.
    pub fn stop(&mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) only sends a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let status = self.child.wait().expect("wait for the instance");
        assert!(status.success(), "the instance stopped with {status}");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A started process whose "listening on" line has not been read yet.
pub struct Starting {
    pub child: Child,
    address: mpsc::Receiver<String>,
    log: PathBuf,
    container: Option<String>,
}

impl Starting {
    pub fn wait(mut self) -> Instance {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.address.recv_timeout(Duration::from_millis(100)) {
                Ok(base) => {
                    return Instance {
                        child: self.child,
                        base,
                        container: self.container,
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
pub struct Fleet {
    launcher: Launcher,
    /// PostgreSQL's URL; None: SQLite in `root/data`, one process at a time.
    database_url: Option<String>,
    root: tempfile::TempDir,
    /// Given to every instance before the command, after the database (the store's settings).
    store_args: Vec<String>,
    pub bases: RwLock<Vec<String>>,
    pub agent: ureq::Agent,
    started: AtomicUsize,
    pub pushes: AtomicUsize,
    pub retries: AtomicUsize,
    /// Mutations answered `duplicate`: resent after their first answer was lost.
    pub duplicates: AtomicUsize,
    /// Every 5xx answer (a device retries it): "METHOD path: status body".
    server_errors: Mutex<Vec<String>>,
}

impl Fleet {
    pub fn new(database_url: Option<String>, store_args: Vec<String>) -> Fleet {
        Fleet::launched_by(Launcher::Binary, database_url, store_args)
    }

    pub fn launched_by(
        launcher: Launcher,
        database_url: Option<String>,
        store_args: Vec<String>,
    ) -> Fleet {
        Fleet {
            launcher,
            database_url,
            root: tempfile::tempdir().unwrap(),
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
            duplicates: AtomicUsize::new(0),
            server_errors: Mutex::new(Vec::new()),
        }
    }

    /// The data directory of instance `n`: on PostgreSQL each has its own (nothing on local
    /// disk is shared); on SQLite the database file lives there, so every restart shares it.
    fn data_dir(&self, n: usize) -> PathBuf {
        match self.database_url {
            Some(_) => self.root.path().join(format!("instance-{n}")),
            None => self.root.path().join("data"),
        }
    }

    /// The instances' database, for reading it directly.
    pub fn storage(&self) -> StorageConfig {
        default_storage(self.data_dir(0), self.database_url.clone(), 2)
    }

    /// A `diemdanh` command on the data directory of instance `n` (and the database), with the
    /// environment variables given; for an image, `podman run` of a container named `name`.
    fn diemdanh(&self, n: usize, env: &[(&str, &str)], name: Option<&str>) -> Command {
        let data_dir = self.data_dir(n);
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut cmd = match &self.launcher {
            Launcher::Binary => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_diemdanh"));
                cmd.arg("--data-dir")
                    .arg(&data_dir)
                    .envs(env.iter().copied());
                cmd
            }
            Launcher::Image(image) => {
                // The server in the image runs as its own user, which must own the volume.
                std::os::unix::fs::chown(&data_dir, Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
                let mut cmd = podman();
                cmd.args(["run", "--rm", "--interactive", "--network", "host"])
                    .arg("--volume")
                    .arg(format!("{}:/data", data_dir.display()));
                if let Some(name) = name {
                    cmd.args(["--name", name]);
                }
                for (key, value) in env {
                    cmd.arg("--env").arg(format!("{key}={value}"));
                }
                cmd.arg(image);
                cmd
            }
        };
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        cmd
    }

    /// Starts one instance, with extra environment variables.
    pub fn spawn(&self, env: &[(&str, &str)]) -> Starting {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let log = self.root.path().join(format!("instance-{n}.log"));
        let container = match self.launcher {
            Launcher::Binary => None,
            Launcher::Image(_) => {
                // Unique on the machine: several fleets of one test process start containers.
                static CONTAINERS: AtomicUsize = AtomicUsize::new(0);
                let k = CONTAINERS.fetch_add(1, Ordering::SeqCst);
                Some(format!("diemdanh-test-{}-{k}", std::process::id()))
            }
        };
        let env: Vec<(&str, &str)> = [("DIEMDANH_LOG", "warn")]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        let mut cmd = self.diemdanh(n, &env, container.as_deref());
        cmd.args(&self.store_args)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
            .args(["--db-pool-size", "4"]);
        let (child, address) = spawn_server(cmd, &log);
        Starting {
            child,
            address,
            log,
            container,
        }
    }

    /// Runs the command line on the instances' database: (succeeded, stdout, stderr).
    pub fn command(&self, args: &[&std::ffi::OsStr]) -> (bool, String, String) {
        let output = self
            .diemdanh(0, &[("DIEMDANH_LOG", "warn")], None)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the diemdanh binary");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// An administrator made with the command line, on the instances' database; returns an
    /// access token from a login through the fleet.
    pub fn add_admin(&self) -> String {
        let mut add_admin = self
            .diemdanh(0, &[], None)
            .args([
                "user",
                "add",
                "root.admin",
                "--role",
                "admin",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = add_admin.stdin.take().unwrap();
        writeln!(stdin, "{ADMIN_PASSWORD}").unwrap();
        drop(stdin);
        assert!(add_admin.wait().unwrap().success());
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": "root.admin", "password": ADMIN_PASSWORD, "device_name": "office"})),
        )
        .expect(200)
        .json["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn pick(&self) -> String {
        let bases = self.bases.read().unwrap();
        bases[rand::rng().random_range(0..bases.len())].clone()
    }

    /// One request to one instance; Err when it cannot be reached or the connection is cut.
    pub fn send(
        &self,
        base: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Response, ureq::Error> {
        let url = format!("{base}{path}");
        let json = JsonBody::of(body);
        exchange(&self.agent, method, &url, token, json.bytes(), &[]).and_then(Response::read)
    }

    /// A request through the "load balancer": a random instance, and on a connection error or a
    /// 5xx the same request again on another pick (or on the same address once it is back), as
    /// a device retries. Every answer that is not a 5xx must match the contract; the 5xx are
    /// kept for [`Fleet::server_errors`].
    #[track_caller]
    pub fn call(
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
                    if let Ok(response) = &failed {
                        self.server_errors.lock().unwrap().push(format!(
                            "{method} {path}: {} {}",
                            response.status, response.text
                        ));
                    }
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
    pub fn call_on(
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

    /// The 5xx answers so far: a server error is a bug, even one a retry got past.
    pub fn server_errors(&self) -> Vec<String> {
        self.server_errors.lock().unwrap().clone()
    }

    pub fn created(&self, admin: &str, path: &str, body: Value) -> String {
        self.call("POST", path, Some(admin), Some(&body))
            .expect(201)
            .json["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Uploads `bytes` as the lecture `bai-giang.pdf` of `course` through the instance at
    /// `base`, which must accept it: the material.
    pub fn upload_lecture(&self, base: &str, admin: &str, course: &str, bytes: Vec<u8>) -> Value {
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(format!(
                "{base}/api/v1/courses/{course}/materials?file_name=bai-giang.pdf"
            ))
            .header("Authorization", format!("Bearer {admin}"))
            .header("Content-Type", "application/pdf")
            .body(bytes)
            .unwrap();
        let mut created = self.agent.run(request).unwrap();
        assert_eq!(created.status(), 201);
        serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// A material's content from the instance at `base`, whole or the `range` asked for (a
    /// `Range` header's value): the status and the bytes.
    pub fn download(
        &self,
        base: &str,
        token: &str,
        material: &str,
        range: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let mut request = ureq::http::Request::builder()
            .uri(format!("{base}/api/v1/materials/{material}/content"))
            .header("Authorization", format!("Bearer {token}"));
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        let mut response = self.agent.run(request.body(()).unwrap()).expect("download");
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap();
        (status, body)
    }
}

/// What devices may write to: every session of one course, every enrolled person; and the
/// trainers assigned to the course.
pub struct World {
    pub course: String,
    pub trainers: Vec<String>,
    pub sessions: Vec<String>,
    pub people: Vec<String>,
}

impl World {
    /// One course with its trainers, sessions and enrolled people, made through the API.
    pub fn create(
        fleet: &Fleet,
        admin: &str,
        trainers: usize,
        sessions: usize,
        people: usize,
    ) -> World {
        let course = fleet.created(
            admin,
            "/api/v1/courses",
            json!({"title": "Lớp bồi dưỡng Bí thư", "management_level": "province", "start_date": "2026-12-08", "end_date": "2026-12-10"}),
        );
        let trainers = (0..trainers)
            .map(|t| {
                let username = format!("trainer.{t}");
                let user = fleet.created(
                    admin,
                    "/api/v1/users",
                    json!({"username": username, "role": "trainer", "password": TRAINER_PASSWORD}),
                );
                fleet.created(
                    admin,
                    "/api/v1/course-trainers",
                    json!({"course_id": course, "user_id": user}),
                );
                username
            })
            .collect();
        let sessions = (0..sessions)
            .map(|s| {
                fleet.created(
                    admin,
                    "/api/v1/sessions",
                    json!({"course_id": course, "topic": format!("Chuyên đề {s}"), "starts_at": format!("2026-12-08T{:02}:00:00+07:00", s + 7), "ends_at": format!("2026-12-08T{:02}:50:00+07:00", s + 7)}),
                )
            })
            .collect();
        let people = (0..people)
            .map(|p| {
                let person = fleet.created(
                    admin,
                    "/api/v1/people",
                    json!({"full_name": format!("Học viên Số {p}"), "position": "secretary"}),
                );
                fleet.created(
                    admin,
                    "/api/v1/enrollments",
                    json!({"course_id": course, "person_id": person}),
                );
                person
            })
            .collect();
        World {
            course,
            trainers,
            sessions,
            people,
        }
    }
}

/// A mutation the server answered with 200, and what it set.
pub struct Acked {
    pub mutation_id: String,
    pub key: (String, String),
    pub status: String,
    pub hlc: String,
    /// Refused (and so quarantined), not applied: logged, but it set nothing.
    pub refused: bool,
}

impl Acked {
    /// The attendance upsert that sets this, on `record_id`, under this mutation id.
    pub fn upsert(&self, record_id: &str) -> Value {
        let (session_id, person_id) = &self.key;
        let mut mutation = upsert_attendance(
            record_id,
            json!({"session_id": session_id, "person_id": person_id, "status": self.status}),
            &self.hlc,
        );
        mutation["mutation_id"] = json!(self.mutation_id);
        mutation
    }
}

/// A fleet's devices: trainers of the [`World`] pushing attendance on random pairs.
impl Device {
    /// A trainer's new phone, logged in through the fleet.
    pub fn trainer(fleet: &Fleet, username: &str) -> Device {
        Device::sign_in(fleet, username, TRAINER_PASSWORD, "phone")
    }

    /// Pushes `size` attendance upserts on random (session, person) pairs, the same body again
    /// until an answer comes (a cut connection or a 5xx is retried, as a phone does), and
    /// returns what the server acknowledged: every mutation of the batch.
    pub fn push_batch(&mut self, fleet: &Fleet, world: &World, size: usize) -> Vec<Acked> {
        let sent: Vec<(Acked, Value)> = (0..size)
            .map(|_| {
                let mut rng = rand::rng();
                let key = (
                    world.sessions[rng.random_range(0..world.sessions.len())].clone(),
                    world.people[rng.random_range(0..world.people.len())].clone(),
                );
                let record_id = self.record_of(&key);
                let acked = Acked {
                    mutation_id: new_id(),
                    key,
                    status: STATUSES[rng.random_range(0..STATUSES.len())].to_owned(),
                    hlc: self.stamp(),
                    refused: false,
                };
                let body = acked.upsert(&record_id);
                (acked, body)
            })
            .collect();
        let mutations: Vec<&Value> = sent.iter().map(|(_, body)| body).collect();
        let results = self.send_push(fleet, &mutations);
        sent.into_iter()
            .zip(results)
            .map(|((acked, _), result)| {
                assert_eq!(result["mutation_id"], acked.mutation_id.as_str());
                // A retried batch whose first answer was lost comes back as duplicates.
                match result["status"].as_str().unwrap() {
                    "applied" | "merged" => {}
                    "duplicate" => {
                        fleet.duplicates.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => panic!("{result}"),
                }
                if let Some(into) = result["merged_into"].as_str() {
                    self.ids.insert(acked.key.clone(), into.to_owned());
                }
                acked
            })
            .collect()
    }

    /// Sends `mutations` as one push (counted in the fleet's pushes), merges the server's clock
    /// from the answer and returns one result per mutation, in order.
    pub fn send_push<T: serde::Serialize>(&mut self, fleet: &Fleet, mutations: &[T]) -> Vec<Value> {
        let results = self.push(fleet, mutations);
        fleet.pushes.fetch_add(1, Ordering::SeqCst);
        results
    }
}

/// Waits for the device threads: every device, and the mutations acknowledged to any of them.
pub fn join_devices(
    threads: Vec<std::thread::ScopedJoinHandle<'_, (Device, Vec<Acked>)>>,
) -> (Vec<Device>, Vec<Acked>) {
    let mut devices = Vec::with_capacity(threads.len());
    let mut acked = Vec::new();
    for thread in threads {
        let (device, its_acked) = thread.join().expect("device thread");
        devices.push(device);
        acked.extend(its_acked);
    }
    (devices, acked)
}

/// The three promises' first two, checked after the devices are done: every acknowledged
/// mutation is in the mutation log once and nothing else is; each (session, person) holds one
/// record, with the status of its latest acknowledged stamp; and every device, after a last
/// pull, holds what the server holds and exactly what a fresh pull of its scope gives. Returns
/// the server's view, read from scratch by an administrator.
pub fn check_nothing_lost_and_converged(
    fleet: &Fleet,
    conn: &mut DbConn,
    admin: &str,
    acked: &[Acked],
    devices: &mut [Device],
) -> BTreeMap<(String, String), Value> {
    let (_, admin_changes) = pull_from(fleet, admin, None, 50);
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

    // Every applied mutation here sets the status, so the latest stamp of each pair wins;
    // a refused one set nothing.
    let mut winners: BTreeMap<&(String, String), &Acked> = BTreeMap::new();
    let mut lost = Vec::new();
    for mutation in acked {
        let logged: i64 = sync_mutations::table
            .find(&mutation.mutation_id)
            .count()
            .get_result(conn)
            .unwrap();
        if logged != 1 {
            lost.push(&mutation.mutation_id);
        }
        if mutation.refused {
            continue;
        }
        let winner = winners.entry(&mutation.key).or_insert(mutation);
        if mutation.hlc > winner.hlc {
            *winner = mutation;
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged mutations are not on record, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let logged: i64 = sync_mutations::table.count().get_result(conn).unwrap();
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

    for device in devices {
        device.pull(fleet);
        assert_eq!(attendance(&device.held), server_attendance);
        assert_eq!(device.held, device.fresh_view(fleet));
    }
    server
}

fn attendance(held: &BTreeMap<(String, String), Value>) -> BTreeMap<String, Value> {
    held.iter()
        .filter(|((collection, _), _)| collection == "attendance")
        .map(|((_, id), data)| (id.clone(), data.clone()))
        .collect()
}
