//! The sync vocabulary the suites share: a device's clock stamps and mutations, pulling the
//! feed to its end, the demo data's classes, and a write held open while another commits.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Backend, BackendTest, TestApp, id_of, item_where};

/// A device's hybrid logical clock stamp: `millis`, a counter, a device name.
pub fn stamp(millis: u64, counter: u32) -> String {
    format!("{millis:013}-{counter:04x}-device")
}

/// A stamp of a minute ago, `offset_ms` later: an edit made offline shortly before its push.
pub fn stamp_a_minute_ago(offset_ms: u64) -> String {
    stamp(now_millis() - 60_000 + offset_ms, 0)
}

pub fn now_millis() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).expect("after 1970")
}

/// One mutation of a native push, with a fresh mutation id.
pub fn mutation(collection: &str, record_id: &str, op: &str, fields: Value, hlc: &str) -> Value {
    json!({
        "mutation_id": uuid::Uuid::new_v4().to_string(),
        "collection": collection,
        "record_id": record_id,
        "op": op,
        "fields": fields,
        "hlc": hlc,
    })
}

/// An `upsert` of an attendance record.
pub fn upsert_attendance(record_id: &str, fields: Value, hlc: &str) -> Value {
    mutation("attendance", record_id, "upsert", fields, hlc)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl TestApp {
    /// Pulls the native feed in pages of `limit` until `has_more` is false: the last cursor
    /// and every change seen, in order.
    #[track_caller]
    pub fn pull_all(
        &self,
        token: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> (String, Vec<Value>) {
        super::device::pull_from(self, token, cursor.map(str::to_owned), limit)
    }
}

/// A scenario on the demo data (`fn name(OnTheDemo { app, demo }: OnTheDemo)` in
/// `backend_tests!`): the app with the demo data loaded, and its classes.
pub struct OnTheDemo {
    pub app: TestApp,
    pub demo: DemoClasses,
}

impl BackendTest for fn(OnTheDemo) {
    fn run(self, backend: Backend) {
        if backend.available() {
            let app = TestApp::start(backend).with_demo();
            let demo = DemoClasses::read(&app);
            self(OnTheDemo { app, demo })
        }
    }
}

/// What the sync suites use of the demo data: its administrator, its three classes, the first
/// session of the province's three-day class and ten of the people enrolled in it.
pub struct DemoClasses {
    pub admin: String,
    /// The province's three-day class (`BD-BTPBT-2026`), taught by both demo trainers.
    pub big_course: String,
    /// The one-day skills class (`TH-KN-2026-BH`).
    pub skills_course: String,
    /// A ward's class, held already (`BD-CD-TN-2026`), which trainer `tuan.le` does not teach.
    pub ward_course: String,
    pub session: String,
    pub people: Vec<String>,
}

impl DemoClasses {
    #[track_caller]
    pub fn read(app: &TestApp) -> DemoClasses {
        let admin = app.demo_token("admin");
        let courses = app.get_ok(&admin, "/api/v1/courses");
        let course = |code: &str| id_of(item_where(&courses, "code", code));
        let big_course = course("BD-BTPBT-2026");
        let sessions = app.get_ok(&admin, &format!("/api/v1/sessions?course_id={big_course}"));
        let enrolled = app.get_ok(
            &admin,
            &format!("/api/v1/enrollments?course_id={big_course}&limit=10"),
        );
        DemoClasses {
            session: sessions["items"][0]["id"]
                .as_str()
                .expect("a session")
                .to_owned(),
            people: enrolled["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["person_id"].as_str().expect("a person").to_owned())
                .collect(),
            skills_course: course("TH-KN-2026-BH"),
            ward_course: course("BD-CD-TN-2026"),
            big_course,
            admin,
        }
    }

    /// The administrator removes the trainer `user_id`'s assignment to the big class.
    #[track_caller]
    pub fn take_off_big_class(&self, app: &TestApp, user_id: &str) {
        let assignments = app.get_ok(
            &self.admin,
            &format!(
                "/api/v1/course-trainers?course_id={}&user_id={user_id}",
                self.big_course
            ),
        );
        let assignment = id_of(&assignments["items"][0]);
        app.delete(
            &self.admin,
            &format!("/api/v1/course-trainers/{assignment}"),
        )
        .expect(204);
    }

    /// The attendance record `id` as the administrator reads it.
    #[track_caller]
    pub fn stored_attendance(&self, app: &TestApp, id: &str) -> Value {
        app.get_ok(&self.admin, &format!("/api/v1/attendance/{id}"))
    }

    /// The first page of the big class's conflict log, as the administrator reads it.
    #[track_caller]
    pub fn big_class_conflicts(&self, app: &TestApp) -> Value {
        app.get_ok(
            &self.admin,
            &format!("/api/v1/sync/conflicts?course_id={}", self.big_course),
        )
    }

    /// The fields of an attendance record of the big class's first session for the
    /// `person`-th enrolled person.
    pub fn attendance(&self, person: usize, status: &str) -> Value {
        json!({"session_id": self.session, "person_id": self.people[person], "status": status})
    }
}

/// How the read made while a write is held open behaves.
pub enum ReadWhileOpen {
    /// It finishes while the write is still open (it only reads).
    Finishes,
    /// It may wait for the open write (on SQLite a read that also records something does):
    /// the write is released after 300 ms, and the read's answer taken after.
    MayWaitForTheWrite,
}

impl ReadWhileOpen {
    /// The answer of `reading`, a read made while a write is held open until `release`: taken
    /// before the write is released when the read finishes on its own, after when it may wait
    /// for the write.
    pub fn answer<T>(
        self,
        reading: std::thread::ScopedJoinHandle<'_, T>,
        release: &Barrier,
    ) -> std::thread::Result<T> {
        match self {
            ReadWhileOpen::Finishes => {
                let answer = reading.join();
                release.wait();
                answer
            }
            ReadWhileOpen::MayWaitForTheWrite => {
                std::thread::sleep(Duration::from_millis(300));
                release.wait();
                reading.join()
            }
        }
    }
}

/// Creates unit `SLOW` in a transaction held open, then, while it is open, has the API commit
/// unit `FAST` (a later revision) and runs `read` as `read_while_open` says; releases the slow
/// write (it commits 300 ms later) and returns what `read` answered once both units committed.
pub fn with_a_commit_held_open<T: Send>(
    app: &TestApp,
    admin: &str,
    read_while_open: ReadWhileOpen,
    read: impl FnOnce() -> T + Send,
) -> T {
    let held_open = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    std::thread::scope(|scope| {
        let pool = app.pool.clone();
        let (held_open_w, release_w) = (held_open.clone(), release.clone());
        let slow = scope.spawn(move || {
            let mut conn = pool.get().unwrap();
            diemdanh::db::write_tx(&mut conn, |conn| {
                let caller = diemdanh::cli::cli_admin();
                let input = serde_json::from_value(
                    json!({"code": "SLOW", "name": "Xã Chậm", "kind": "commune"}),
                )
                .unwrap();
                <diemdanh::domain::units::Units as diemdanh::domain::Resource>::create(
                    conn, &caller, input,
                )?;
                held_open_w.wait();
                release_w.wait();
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .unwrap();
        });
        held_open.wait();
        let fast = scope.spawn(|| {
            let unit = json!({"code": "FAST", "name": "Xã Nhanh", "kind": "commune"});
            app.post(admin, "/api/v1/units", &unit).expect(201)
        });
        let reading = scope.spawn(read);
        let answer = read_while_open.answer(reading, &release);
        slow.join().unwrap();
        fast.join().unwrap();
        answer.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
