//! Property: whatever devices do offline and in whatever order their pushes and pulls arrive —
//! with lost responses, duplicated deliveries, skewed clocks and two ids for one trainee — every
//! device ends with the server's view, no acknowledged mutation is missing and no (session,
//! person) pair has two records.
//!
//! CI runs 256 cases per backend; `PROPTEST_CASES=5000 cargo test --test it convergence` runs
//! more. Failing cases are saved in `tests/it/convergence.proptest-regressions` and replayed first.

use std::collections::{BTreeMap, BTreeSet};

use diemdanh::config::QuarantineCap;
use diemdanh::db::DbConn;
use diemdanh::db::schema::sync_mutations;
use diemdanh::domain::collections::Collection;
use diemdanh::domain::{Caller, Role};
use diemdanh::sync::clock::ServerClock;
use diemdanh::sync::pull::{self, PullSettings};
use diemdanh::sync::push::{self, Status};
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::sync::mutation;
use crate::support::{TestApp, id_of};

backend_tests!(devices_converge_whatever_the_order);

const PEOPLE: usize = 4;
const STATUSES: [&str; 4] = ["present", "late", "excused", "absent"];
/// The model pushes through the library: its few refusals never come near a cap.
const NO_QUARANTINE_CAP: QuarantineCap = QuarantineCap {
    per_device: usize::MAX,
    retry_after_secs: 1,
};

#[derive(Debug, Clone)]
enum Action {
    Create {
        device: usize,
        person: usize,
        status: usize,
    },
    Edit {
        device: usize,
        pick: usize,
        status: Option<usize>,
        note: Option<u8>,
    },
    Delete {
        device: usize,
        pick: usize,
    },
    Push {
        device: usize,
        lose_response: bool,
        deliver_twice: bool,
    },
    Pull {
        device: usize,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Each device's clock offset from server time, in seconds (some far in the future).
    skews: Vec<i64>,
    actions: Vec<Action>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..=6).prop_flat_map(|devices| {
        let device = 0..devices;
        let action = prop_oneof![
            3 => (device.clone(), 0..PEOPLE, 0..STATUSES.len()).prop_map(|(device, person, status)| Action::Create { device, person, status }),
            3 => (device.clone(), any::<usize>(), proptest::option::of(0..STATUSES.len()), proptest::option::of(0u8..4))
                .prop_map(|(device, pick, status, note)| Action::Edit { device, pick, status, note }),
            1 => (device.clone(), any::<usize>()).prop_map(|(device, pick)| Action::Delete { device, pick }),
            3 => (device.clone(), any::<bool>(), any::<bool>()).prop_map(|(device, lose_response, deliver_twice)| Action::Push { device, lose_response, deliver_twice }),
            2 => device.prop_map(|device| Action::Pull { device }),
        ];
        (
            proptest::collection::vec(prop_oneof![4 => -86_400i64..60, 1 => 3_600i64..172_800], devices),
            proptest::collection::vec(action, 1..40),
        )
            .prop_map(|(skews, actions)| Scenario { skews, actions })
    })
}

/// What a device holds and has yet to send.
struct Device {
    caller: Caller,
    skew_ms: i64,
    counter: u32,
    last_millis: u64,
    records: BTreeMap<String, Value>,
    outbox: Vec<Value>,
    cursor: Option<String>,
}

impl Device {
    fn stamp(&mut self) -> String {
        let wall = (chrono::Utc::now().timestamp_millis() + self.skew_ms).max(1) as u64;
        if wall > self.last_millis {
            self.last_millis = wall;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        format!(
            "{:013}-{:04x}-{}",
            self.last_millis, self.counter, self.caller.device_id
        )
    }

    fn queue(&mut self, record_id: &str, op: &str, fields: Value) {
        let hlc = self.stamp();
        self.outbox
            .push(mutation("attendance", record_id, op, fields, &hlc));
    }

    fn pick(&self, pick: usize) -> Option<String> {
        let ids: Vec<&String> = self.records.keys().collect();
        (!ids.is_empty()).then(|| ids[pick % ids.len()].clone())
    }
}

/// One case's class: a course, a session, two trainers and six devices of its own, so that a
/// case costs the same whatever ran before it (devices start from nothing and see only it).
struct World {
    session: String,
    people: Vec<String>,
    trainers: Vec<(String, String)>,
}

/// What every case shares: the trainees (people are not scoped by course) and an admin whose
/// token is taken again before it can expire, however long the run.
struct Fixture {
    people: Vec<String>,
    admin: Admin,
    /// Trainers never sign in here; one hash spares an Argon2 run per account.
    trainer_password_hash: String,
}

struct Admin {
    token: String,
    issued: std::time::Instant,
}

/// Well inside the shortest access-token lifetime a test server is given.
const PROGRESS_EVERY: usize = 500;

const TOKEN_REISSUE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

impl Admin {
    fn token(&mut self, app: &TestApp) -> &str {
        if self.issued.elapsed() > TOKEN_REISSUE {
            self.token = app.token("root.admin", "admin-password");
            self.issued = std::time::Instant::now();
        }
        &self.token
    }
}

fn fixture(app: &TestApp) -> Fixture {
    let mut admin = Admin {
        token: app.admin_token(),
        issued: std::time::Instant::now(),
    };
    let people = (0..PEOPLE)
        .map(|i| {
            let body =
                json!({"full_name": format!("Học viên {i}"), "position": "deputy_secretary"});
            id_of(&app.create(admin.token(app), "/api/v1/people", body.clone()))
        })
        .collect();
    Fixture {
        people,
        admin,
        trainer_password_hash: diemdanh::auth::password::hash("trainer-password").unwrap(),
    }
}

fn new_world(app: &TestApp, fixture: &mut Fixture, case: usize) -> World {
    let created = |response: crate::support::Response| {
        response.expect(201).json["id"].as_str().unwrap().to_owned()
    };
    let admin = fixture.admin.token(app).to_owned();
    let post = |path: &str, body: Value| app.post(&admin, path, &body);
    let course = created(post(
        "/api/v1/courses",
        json!({"title": format!("Lớp {case}"), "management_level": "province", "start_date": "2026-12-08", "end_date": "2026-12-10"}),
    ));
    let session = created(post(
        "/api/v1/sessions",
        json!({"course_id": course, "topic": format!("Buổi {case}"), "starts_at": "2026-12-08T08:00:00+07:00", "ends_at": "2026-12-08T11:00:00+07:00"}),
    ));
    for person in &fixture.people {
        post(
            "/api/v1/enrollments",
            json!({"course_id": course, "person_id": person}),
        )
        .expect(201);
    }
    let mut conn = app.pool.get().unwrap();
    let users: Vec<String> = (0..2)
        .map(|k| {
            let user = diemdanh::domain::users::Users::create(
                &mut conn,
                diemdanh::domain::users::NewUser {
                    username: format!("trainer.case{case}.{k}"),
                    display_name: None,
                    role: "trainer".into(),
                    person_id: None,
                    unit_id: None,
                },
                fixture.trainer_password_hash.clone(),
            )
            .unwrap()
            .id;
            post(
                "/api/v1/course-trainers",
                json!({"course_id": course, "user_id": user}),
            )
            .expect(201);
            user
        })
        .collect();
    let trainers = users
        .iter()
        .cycle()
        .take(6)
        .enumerate()
        .map(|(i, user)| {
            let device =
                diemdanh::domain::users::Devices::register(&mut conn, user, &format!("tablet {i}"))
                    .unwrap();
            (user.clone(), device.id)
        })
        .collect();
    World {
        session,
        people: fixture.people.clone(),
        trainers,
    }
}

fn push_outbox(
    conn: &mut DbConn,
    clock: &ServerClock,
    device: &mut Device,
    lose_response: bool,
    deliver_twice: bool,
    acked: &mut BTreeSet<String>,
) {
    if device.outbox.is_empty() {
        return;
    }
    let batch = device.outbox.clone();
    let deliveries = if deliver_twice { 2 } else { 1 };
    let mut outcome = None;
    for _ in 0..deliveries {
        outcome =
            Some(push::push_batch(conn, &device.caller, clock, NO_QUARANTINE_CAP, &batch).unwrap());
    }
    if lose_response {
        return;
    }
    for (sent, result) in batch.iter().zip(outcome.unwrap().results) {
        assert_ne!(
            result.status,
            Status::Rejected,
            "a valid mutation was refused: {result:?}"
        );
        acked.insert(result.mutation_id.clone().unwrap());
        if result.merged_into.is_some() {
            // Drop the local duplicate; the canonical record arrives with the next pull.
            device.records.remove(sent["record_id"].as_str().unwrap());
        }
    }
    device.outbox.clear();
}

fn pull_into(conn: &mut DbConn, settings: &PullSettings, session: &str, device: &mut Device) {
    loop {
        let page = pull::page(
            conn,
            &device.caller,
            settings,
            device.cursor.as_deref(),
            Some(7),
        )
        .unwrap();
        for change in &page.changes {
            if change.collection != Collection::Attendance {
                continue;
            }
            let data = change
                .data
                .as_ref()
                .map(|record| record.to_value().unwrap());
            match data {
                Some(data) if !change.deleted && data["session_id"] == session => {
                    device.records.insert(change.id.clone(), data);
                }
                _ => {
                    device.records.remove(&change.id);
                }
            }
        }
        device.cursor = Some(page.cursor);
        if !page.has_more {
            return;
        }
    }
}

fn view(records: &BTreeMap<String, Value>) -> BTreeMap<String, (Value, Value, Value, Value)> {
    records
        .iter()
        .map(|(id, r)| {
            (
                id.clone(),
                (
                    r["person_id"].clone(),
                    r["status"].clone(),
                    r["note"].clone(),
                    r["rev"].clone(),
                ),
            )
        })
        .collect()
}

fn run_case(app: &TestApp, world: &World, settings: &PullSettings, scenario: &Scenario) {
    let clock = ServerClock::new("server-test", 600_000);
    let mut conn = app.pool.get().unwrap();
    let mut devices: Vec<Device> = scenario
        .skews
        .iter()
        .enumerate()
        .map(|(i, skew)| {
            let (user, device) = &world.trainers[i];
            Device {
                caller: Caller {
                    user_id: user.clone(),
                    device_id: device.clone(),
                    role: Role::Trainer,
                    person_id: None,
                    address: None,
                    unit_id: None,
                    manages: diemdanh::domain::access::Manages::Nothing,
                },
                skew_ms: skew * 1000,
                counter: 0,
                last_millis: 0,
                records: BTreeMap::new(),
                outbox: Vec::new(),
                cursor: None,
            }
        })
        .collect();
    // Devices start with the server's current state (their cursors skip earlier cases).
    for device in &mut devices {
        pull_into(&mut conn, settings, &world.session, device);
    }
    let mut acked = BTreeSet::new();
    for action in &scenario.actions {
        match action.clone() {
            Action::Create {
                device,
                person,
                status,
            } => {
                let id = uuid::Uuid::new_v4().to_string();
                let fields = json!({"session_id": world.session, "person_id": world.people[person], "status": STATUSES[status]});
                devices[device].records.insert(id.clone(), fields.clone());
                devices[device].queue(&id, "upsert", fields);
            }
            Action::Edit {
                device,
                pick,
                status,
                note,
            } => {
                let Some(id) = devices[device].pick(pick) else {
                    continue;
                };
                let mut fields = serde_json::Map::new();
                if let Some(status) = status {
                    fields.insert("status".into(), json!(STATUSES[status]));
                }
                if let Some(note) = note {
                    fields.insert(
                        "note".into(),
                        if note == 0 {
                            Value::Null
                        } else {
                            json!(format!("Ghi chú {note}"))
                        },
                    );
                }
                if fields.is_empty() {
                    continue;
                }
                devices[device].queue(&id, "upsert", Value::Object(fields));
            }
            Action::Delete { device, pick } => {
                let Some(id) = devices[device].pick(pick) else {
                    continue;
                };
                devices[device].records.remove(&id);
                devices[device].queue(&id, "delete", json!({}));
            }
            Action::Push {
                device,
                lose_response,
                deliver_twice,
            } => {
                push_outbox(
                    &mut conn,
                    &clock,
                    &mut devices[device],
                    lose_response,
                    deliver_twice,
                    &mut acked,
                );
            }
            Action::Pull { device } => {
                pull_into(&mut conn, settings, &world.session, &mut devices[device])
            }
        }
    }
    // Back in coverage: everyone pushes what is left (responses arrive now), then pulls.
    for device in &mut devices {
        push_outbox(&mut conn, &clock, device, false, false, &mut acked);
    }
    for device in &mut devices {
        pull_into(&mut conn, settings, &world.session, device);
    }

    let admin = diemdanh::cli::cli_admin();
    let server: Vec<Value> = {
        let filter = diemdanh::domain::attendance::AttendanceFilter {
            session_id: Some(world.session.clone()),
            limit: Some(500),
            ..Default::default()
        };
        let page =
            <diemdanh::domain::attendance::AttendanceRecords as diemdanh::domain::Resource>::list(
                &mut conn, &admin, &filter,
            )
            .unwrap();
        page.items
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect()
    };
    let server_view = view(
        &server
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
            .collect(),
    );
    for (i, device) in devices.iter().enumerate() {
        assert_eq!(
            view(&device.records),
            server_view,
            "device {i} differs from the server"
        );
    }
    let pairs: BTreeSet<&str> = server
        .iter()
        .map(|r| r["person_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        pairs.len(),
        server.len(),
        "a (session, person) pair has two records"
    );
    for mutation_id in &acked {
        let logged: i64 = sync_mutations::table
            .find(mutation_id)
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(
            logged, 1,
            "acknowledged mutation {mutation_id} is not on record"
        );
    }
}

fn devices_converge_whatever_the_order(app: TestApp) {
    let backend = app.backend();
    let fixture = std::cell::RefCell::new(fixture(&app));
    let secret = diemdanh::db::get_setting(&mut app.pool.get().unwrap(), "jwt_secret")
        .unwrap()
        .unwrap();
    let settings = PullSettings {
        cursor_key: secret.as_bytes(),
        tombstone_retention_ms: i64::MAX / 2,
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/convergence.proptest-regressions",
        ))),
        ..Config::default()
    };
    let case = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    runner
        .run(&scenario(), |scenario| {
            let number = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if number > 0 && number.is_multiple_of(PROGRESS_EVERY) {
                // The rate of each stretch shows whether cases get dearer as the run goes on.
                println!(
                    "convergence on {backend:?}: {number} cases after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            let world = new_world(&app, &mut fixture.borrow_mut(), number);
            run_case(&app, &world, &settings, &scenario);
            Ok(())
        })
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let runs = case.into_inner();
    println!(
        "convergence on {backend:?}: {runs} cases (with shrinking and replays) in {seconds:.1} s, {:.1} cases/s",
        runs as f64 / seconds
    );
}
