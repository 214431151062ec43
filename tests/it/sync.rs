//! The sync protocol over HTTP on the demo data: idempotent pushes, field-level merge, natural
//! keys, quarantine, and scoped, paged, resumable pulls whose cursor never skips a commit.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use diemdanh::sync::push;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::device::{Device, Persona, apply, apply_onto};
use crate::support::sync::{
    DemoClasses, OnTheDemo, ReadWhileOpen, mutation, new_id, now_millis, stamp, upsert_attendance,
    with_a_commit_held_open,
};
use crate::support::{Backend, TestApp, id_of, item_fields, item_where, items, string_pairs_of};

backend_tests!(
    pushes_are_idempotent_even_when_replayed_in_parallel,
    edits_merge_field_by_field_and_conflicts_are_logged,
    a_resolved_conflict_is_written_everywhere_and_leaves_no_new_conflict,
    duplicate_natural_keys_end_as_one_record,
    refused_mutations_are_quarantined_and_the_rest_applied,
    a_device_beyond_its_quarantine_cap_is_refused_whole_and_loses_nothing,
    a_large_batch_racing_its_copies_is_applied_and_filed_once,
    two_large_refused_batches_at_once_never_take_a_device_beyond_its_cap,
    a_full_device_is_refused_for_a_new_refusal_anywhere_in_a_large_batch_and_only_then,
    pulls_are_scoped_paged_and_follow_scope_changes,
    every_page_shape_sends_each_change_once_in_order,
    bad_cursors_are_refused,
    a_cursor_never_skips_a_commit_held_open,
    old_tombstones_are_purged_unless_still_referenced,
    many_devices_push_at_once,
    admin_import_and_push_writes_of_one_record_meet_the_same_rules,
    a_withdrawn_trainee_loses_the_course_and_every_device_agrees,
    a_trainer_enrolls_only_people_of_the_course_roster,
    a_fresh_device_receives_each_record_once,
    a_course_assigned_later_is_backfilled_in_pages,
    a_trainer_moved_to_another_class_loses_the_old_one_in_pages_of_the_limit,
    a_class_given_back_during_its_removal_comes_back_whole,
    a_second_class_taken_away_during_the_first_ones_removal_goes_too,
);

fn pushes_are_idempotent_even_when_replayed_in_parallel(OnTheDemo { app, demo }: OnTheDemo) {
    let trainer = app.demo_token("tuan.le");
    let id = new_id();
    let first = upsert_attendance(&id, demo.attendance(0, "present"), &stamp(now_millis(), 0));
    let results = app.push(&trainer, std::slice::from_ref(&first));
    assert_eq!(results[0]["status"], "applied", "{results:?}");
    let rev = results[0]["rev"].clone();
    let replay = app.push(&trainer, std::slice::from_ref(&first));
    assert_eq!(replay[0]["status"], "duplicate");
    assert_eq!(replay[0]["original_status"], "applied");
    assert_eq!(replay[0]["rev"], rev);
    let record = demo.stored_attendance(&app, &id);
    assert_eq!(record["rev"], rev, "a replay changes nothing");
    assert_eq!(
        record["recorded_by"],
        app.get(&trainer, "/api/v1/me").json["id"]
    );

    // After a restart the replay is still recognised: the log is in the database.
    let mut app = app;
    app.restart();
    let trainer = app.demo_token("tuan.le");
    let after_restart = app.push(&trainer, std::slice::from_ref(&first));
    assert_eq!(
        (
            after_restart[0]["status"].as_str(),
            after_restart[0]["rev"].clone()
        ),
        (Some("duplicate"), rev.clone())
    );

    let mut reused = first.clone();
    reused["fields"]["status"] = json!("absent");
    let refused = app.push(&trainer, &[reused]);
    assert_eq!(
        (refused[0]["status"].as_str(), refused[0]["reason"].as_str()),
        (Some("rejected"), Some("mutation_id_reused"))
    );

    // Sixteen copies of one batch at once: one applies, the others answer as duplicates.
    let second = upsert_attendance(
        &new_id(),
        demo.attendance(1, "late"),
        &stamp(now_millis(), 1),
    );
    let barrier = Arc::new(Barrier::new(16));
    let statuses: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let barrier = barrier.clone();
                let (app, trainer, second) = (&app, &trainer, &second);
                scope.spawn(move || {
                    barrier.wait();
                    app.push(trainer, std::slice::from_ref(second))[0]["status"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| *s == "applied").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "duplicate").count(),
        15,
        "{statuses:?}"
    );
    let listed = app
        .get(
            &demo.admin,
            &format!("/api/v1/attendance?session_id={}", demo.session),
        )
        .expect(200);
    assert_eq!(listed.json["total"], 2);
}

fn edits_merge_field_by_field_and_conflicts_are_logged(OnTheDemo { app, demo }: OnTheDemo) {
    let hoa = app.demo_token("hoa.nguyen");
    let tuan = app.demo_token("tuan.le");
    let id = new_id();
    // An edit of the one record (an upsert of `fields`, or a delete) stamped `at`: its result.
    let edit = |token: &str, fields: Value, at: u64| {
        app.push(token, &[upsert_attendance(&id, fields, &stamp(at, 0))])
            .remove(0)
    };
    let delete = |token: &str, at: u64| {
        let deletion = mutation("attendance", &id, "delete", json!({}), &stamp(at, 0));
        app.push(token, &[deletion]).remove(0)
    };
    let t = now_millis() - 60_000;
    edit(&hoa, demo.attendance(2, "present"), t);
    // Tuấn adds a note, Hoa (later, offline) changes the status: both edits stay.
    let note = edit(&tuan, json!({"note": "Có mặt từ 7 giờ 45"}), t + 1000);
    assert_eq!(note["status"], "applied");
    edit(&hoa, json!({"status": "late"}), t + 2000);
    // An older status from Tuấn arrives last: it loses, and the loss is logged.
    let stale = edit(&tuan, json!({"status": "absent"}), t + 1500);
    assert_eq!(stale["status"], "merged");
    let record = demo.stored_attendance(&app, &id);
    assert_eq!(
        (record["status"].as_str(), record["note"].as_str()),
        (Some("late"), Some("Có mặt từ 7 giờ 45"))
    );
    let conflicts = demo.big_class_conflicts(&app);
    assert_eq!(conflicts["total"], 1);
    assert_eq!(conflicts["items"][0]["field"], "status");
    assert_eq!(conflicts["items"][0]["winning_value"], "late");
    assert_eq!(conflicts["items"][0]["losing_value"], "absent");
    app.get(&tuan, "/api/v1/sync/conflicts").expect(403);

    // A delete is a stamped field: an older delete loses, a newer one wins.
    delete(&tuan, t + 1800);
    app.get(&demo.admin, &format!("/api/v1/attendance/{id}"))
        .expect(200);
    delete(&tuan, t + 3000);
    app.get(&demo.admin, &format!("/api/v1/attendance/{id}"))
        .expect(404);

    // A clock far in the future is re-stamped and the device flagged; it does not win forever.
    let future = edit(
        &hoa,
        json!({"status": "excused"}),
        now_millis() + 86_400_000,
    );
    // It overrides the other trainer's delete, which the conflict log keeps.
    assert_eq!(future["status"], "merged");
    edit(&tuan, json!({"status": "present"}), now_millis() + 60_000);
    let record = demo.stored_attendance(&app, &id);
    assert_eq!(record["status"], "present");
    let devices = app.get_ok(&demo.admin, "/api/v1/devices?limit=500");
    let flagged: Vec<&Value> = items(&devices)
        .filter(|d| d["clock_flagged_at"].is_string())
        .collect();
    assert_eq!(flagged.len(), 1);
}

fn a_resolved_conflict_is_written_everywhere_and_leaves_no_new_conflict(
    OnTheDemo { app, demo }: OnTheDemo,
) {
    let mut hoa = Device::login(&app, Persona::Hoa, "Hoa's phone");
    let tuan = app.demo_token("tuan.le");
    let id = new_id();
    let t = now_millis() - 60_000;
    hoa.push(
        &app,
        &[upsert_attendance(
            &id,
            demo.attendance(3, "present"),
            &stamp(t, 0),
        )],
    );
    hoa.pull(&app);
    app.push(
        &tuan,
        &[upsert_attendance(
            &id,
            json!({"status": "absent"}),
            &stamp(t + 1000, 0),
        )],
    );
    let open_on_record = |app: &TestApp| -> Vec<Value> {
        items(&app.get_ok(&demo.admin, "/api/v1/sync/conflicts?status=open&limit=500"))
            .filter(|c| c["record_id"] == json!(id))
            .cloned()
            .collect()
    };
    let logged = open_on_record(&app);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(
        (&logged[0]["losing_value"], &logged[0]["winning_value"]),
        (&json!("present"), &json!("absent"))
    );

    // The administrator chooses the value that lost.
    let resolved = app
        .post(
            &demo.admin,
            &format!(
                "/api/v1/sync/conflicts/{}/resolve",
                logged[0]["id"].as_str().unwrap()
            ),
            &json!({"value": "present"}),
        )
        .expect(200)
        .json;
    assert!(resolved["resolved_at"].is_string(), "{resolved}");
    let record = demo.stored_attendance(&app, &id);
    assert_eq!(record["status"], "present");
    // Overwriting the value that had won is the decision, not a new conflict.
    assert_eq!(open_on_record(&app), Vec::<Value>::new());
    // The trainers' devices receive the decision through the feed.
    let theirs = apply(&hoa.pull(&app));
    assert_eq!(
        theirs[&("attendance".to_owned(), id.clone())]["status"],
        "present"
    );
}

fn duplicate_natural_keys_end_as_one_record(OnTheDemo { app, demo }: OnTheDemo) {
    let hoa = app.demo_token("hoa.nguyen");
    let tuan = app.demo_token("tuan.le");
    let (a, b) = (new_id(), new_id());
    let t = now_millis() - 10_000;
    app.push(
        &hoa,
        &[upsert_attendance(
            &a,
            demo.attendance(3, "present"),
            &stamp(t, 0),
        )],
    );
    let mut fields = demo.attendance(3, "late");
    fields["note"] = json!("Ghi bởi máy thứ hai");
    let merged = app.push(&tuan, &[upsert_attendance(&b, fields, &stamp(t + 10, 0))]);
    assert_eq!(merged[0]["status"], "merged");
    assert_eq!(merged[0]["merged_into"], a.as_str());
    assert_eq!(merged[0]["record_id"], a.as_str());
    // Later edits to the dropped id land in the surviving record.
    app.push(
        &tuan,
        &[upsert_attendance(
            &b,
            json!({"status": "excused"}),
            &stamp(t + 20, 0),
        )],
    );
    let listed = app.get_ok(
        &demo.admin,
        &format!(
            "/api/v1/attendance?session_id={}&person_id={}",
            demo.session, demo.people[3]
        ),
    );
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], a.as_str());
    assert_eq!(listed["items"][0]["status"], "excused");
    assert_eq!(listed["items"][0]["note"], "Ghi bởi máy thứ hai");
    app.get(&demo.admin, &format!("/api/v1/attendance/{b}"))
        .expect(404);
}

fn refused_mutations_are_quarantined_and_the_rest_applied(OnTheDemo { app, demo }: OnTheDemo) {
    let tuan = app.demo_token("tuan.le");
    let t = stamp(now_millis(), 0);
    let everyone = app.get_ok(&demo.admin, "/api/v1/people?limit=500");
    let enrolled = app.list_all(
        &demo.admin,
        &format!("/api/v1/enrollments?course_id={}", demo.big_course),
    );
    let enrolled = item_fields(&enrolled, "person_id");
    let outsider = item_fields(&everyone, "id")
        .into_iter()
        .find(|p| !enrolled.contains(p))
        .unwrap();
    let small_sessions = app.get_ok(
        &demo.admin,
        &format!("/api/v1/sessions?course_id={}", demo.ward_course),
    );
    let batch = vec![
        upsert_attendance(
            &new_id(),
            json!({"session_id": demo.session, "person_id": outsider, "status": "present"}),
            &t,
        ),
        upsert_attendance(
            &new_id(),
            json!({"session_id": small_sessions["items"][0]["id"], "person_id": demo.people[0], "status": "present"}),
            &t,
        ),
        mutation("units", &new_id(), "upsert", json!({"name": "x"}), &t),
        mutation("grades", &new_id(), "upsert", json!({}), &t),
        upsert_attendance(
            &new_id(),
            json!({"session_id": demo.session, "person_id": demo.people[4], "status": "sleeping"}),
            &t,
        ),
        upsert_attendance(
            &new_id(),
            json!({"session_id": demo.session, "person_id": demo.people[4], "status": "present", "recorded_by": "me"}),
            &t,
        ),
        upsert_attendance(
            &new_id(),
            json!({"session_id": demo.session, "person_id": demo.people[4], "status": "present"}),
            "yesterday",
        ),
        json!({"mutation_id": new_id(), "collection": "attendance"}),
        upsert_attendance(&new_id(), demo.attendance(5, "present"), &t),
    ];
    let results = app.push(&tuan, &batch);
    assert_eq!(
        outcomes(&results),
        [
            "not_enrolled",
            "not_assigned",
            "read_only_collection",
            "unknown_collection",
            "validation_failed",
            "unknown_field",
            "invalid_hlc",
            "malformed_mutation",
            "applied"
        ]
    );
    let quarantine = app.get_ok(&demo.admin, "/api/v1/sync/quarantine?status=open");
    assert_eq!(quarantine["total"], 8, "every refused mutation is kept");
    // The device retries the whole batch: nothing is filed twice, nothing changes.
    let retried = app.push(&tuan, &batch);
    assert!(
        retried[..7]
            .iter()
            .all(|r| r["status"] == "duplicate" && r["original_status"] == "rejected"),
        "{retried:?}"
    );
    assert_eq!(retried[7]["reason"], "malformed_mutation");
    assert_eq!(retried[8]["status"], "duplicate");
    let again = app.get_ok(&demo.admin, "/api/v1/sync/quarantine?status=open");
    assert_eq!(again["total"], 8);
    assert_eq!(
        quarantine["items"][0]["body"]["fields"]["person_id"],
        outsider
    );
    let id = quarantine["items"][0]["id"].as_str().unwrap();
    let dismissed = app
        .post_empty(
            &demo.admin,
            &format!("/api/v1/sync/quarantine/{id}/dismiss"),
        )
        .expect(200)
        .json;
    assert_eq!(dismissed["status"], "dismissed");
    app.post_empty(
        &demo.admin,
        &format!("/api/v1/sync/quarantine/{id}/dismiss"),
    )
    .expect(409);
    app.get(&tuan, "/api/v1/sync/quarantine").expect(403);
    // Bad requests as a whole: malformed JSON, not JSON, too large, wrong shape.
    let raw = |body: &[u8], content_type: &str| {
        app.post_bytes(&tuan, "/api/v1/sync/push", body, content_type)
    };
    assert_eq!(raw(b"{\"mutations\": [", "application/json").status, 400);
    assert_eq!(raw(b"mutations=1", "text/plain").status, 415);
    assert_eq!(
        raw(&vec![b' '; 2 * 1024 * 1024], "application/json").status,
        413
    );
    assert_eq!(raw(br#"{"mutations": {}}"#, "application/json").status, 422);
    assert_eq!(
        raw(br#"{"mutations": [], "device": "x"}"#, "application/json").status,
        422
    );
    // Wrong types and oversized values inside a mutation are refused alone.
    let odd = vec![
        upsert_attendance(
            &new_id(),
            json!({"session_id": demo.session, "person_id": demo.people[6], "status": 1}),
            &t,
        ),
        upsert_attendance(
            &new_id(),
            json!({"session_id": demo.session, "person_id": demo.people[6], "status": "present", "note": "x".repeat(5000)}),
            &t,
        ),
        upsert_attendance(
            &new_id(),
            json!({"session_id": "not-an-id", "person_id": demo.people[6], "status": "present"}),
            &t,
        ),
    ];
    let reasons: Vec<Value> = app
        .push(&tuan, &odd)
        .iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        [
            json!("invalid_field_type"),
            json!("validation_failed"),
            json!("invalid_id")
        ]
    );

    let too_many: Vec<Value> = (0..1001)
        .map(|_| mutation("attendance", &new_id(), "delete", json!({}), &t))
        .collect();
    let refused = app
        .post(
            &tuan,
            "/api/v1/sync/push",
            &json!({ "mutations": too_many }),
        )
        .expect(422);
    assert_eq!(refused.json["details"][0]["code"], "too_many_mutations");
}

/// A device may hold a limited number of refused mutations open in quarantine. A push that would
/// file more is answered 429 `quarantine_full` with Retry-After before anything is written (its
/// good mutations wait with the rest of it in the device's outbox), and the device is flagged
/// for administrators; the same push again, without waiting, is answered 429 after a pause.
/// Pushes that file nothing still go through, other devices are not affected, and once an
/// administrator has dealt with entries the same batch goes through, once.
fn a_device_beyond_its_quarantine_cap_is_refused_whole_and_loses_nothing(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.max_quarantine_per_device = 6;
        config.max_push_mutations = 4;
        config.quarantine_full_retry_secs = 120;
    });
    let app = app.with_demo();
    let demo = DemoClasses::read(&app);
    let mut tuan = Device::login(&app, Persona::Tuan, "Tuấn's phone");
    let tuan_device = tuan.device_id.clone();
    let hoa = app.demo_token("hoa.nguyen");
    let small_session = app.get_ok(
        &demo.admin,
        &format!("/api/v1/sessions?course_id={}", demo.ward_course),
    )["items"][0]["id"]
        .clone();
    let t = stamp(now_millis(), 0);
    // Tuan is not assigned to the small course: each of these is refused and filed.
    let refused = |person: usize| {
        upsert_attendance(
            &new_id(),
            json!({"session_id": small_session, "person_id": demo.people[person], "status": "present"}),
            &t,
        )
    };
    let open_of = |device: &str| {
        let open = app.get_ok(&demo.admin, "/api/v1/sync/quarantine?status=open&limit=500");
        items(&open)
            .filter(|item| item["device_id"] == device)
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let flagged = || {
        let devices = app.get_ok(&demo.admin, "/api/v1/devices?limit=500");
        let device = item_where(&devices, "id", &tuan_device);
        !device["quarantine_full_at"].is_null()
    };
    let send = |token: &str, batch: &[Value]| {
        app.post(token, "/api/v1/sync/push", &json!({ "mutations": batch }))
    };

    let first: Vec<Value> = (0..4).map(refused).collect();
    let results = tuan.push(&app, &first);
    assert!(
        results.iter().all(|r| r["reason"] == "not_assigned"),
        "{results:?}"
    );
    assert_eq!(open_of(&tuan_device).len(), 4);
    assert!(!flagged());

    // Three more refusals would make seven: the whole batch is refused, its good mutation too.
    let good_id = new_id();
    let malformed = json!({"mutation_id": new_id(), "collection": "attendance"});
    let second = vec![
        upsert_attendance(&good_id, demo.attendance(1, "present"), &t),
        refused(5),
        refused(6),
        malformed,
    ];
    let full = send(&tuan.token, &second).expect_error(429, "quarantine_full");
    assert_eq!(full.header("Retry-After"), Some("120"));
    app.get(&demo.admin, &format!("/api/v1/attendance/{good_id}"))
        .expect(404);
    assert_eq!(open_of(&tuan_device).len(), 4, "nothing of it was filed");
    assert!(flagged());
    // Sent again unchanged, without waiting for Retry-After, it is refused again, still without
    // a trace, and answered only after a pause: an app pushing in a loop is slowed down.
    let sent = Instant::now();
    send(&tuan.token, &second).expect(429);
    let waited = sent.elapsed();
    assert!(
        waited >= push::FULL_AGAIN_PAUSE,
        "answered after {waited:?}, without the pause"
    );
    assert_eq!(open_of(&tuan_device).len(), 4);

    // A push that files nothing goes through; so does the first batch again (answered from the
    // log, filed once); another device is not held back by Tuan's quarantine.
    let fine = tuan.record_attendance(&app, demo.attendance(2, "present"));
    assert_eq!(fine["status"], "applied");
    let again = tuan.push(&app, &first);
    assert!(
        again.iter().all(|r| r["status"] == "duplicate"),
        "{again:?}"
    );
    let other = app.push(
        &hoa,
        &[
            upsert_attendance(&new_id(), demo.attendance(3, "present"), &t),
            mutation("units", &new_id(), "upsert", json!({"name": "x"}), &t),
        ],
    );
    assert_eq!(other[0]["status"], "applied");
    assert_eq!(other[1]["reason"], "read_only_collection");

    // An administrator dismisses two of Tuan's entries: the refused batch now fits, and the
    // flag clears.
    for id in &open_of(&tuan_device)[..2] {
        app.post_empty(
            &demo.admin,
            &format!("/api/v1/sync/quarantine/{id}/dismiss"),
        )
        .expect(200);
    }
    let accepted = tuan.push(&app, &second);
    assert_eq!(
        outcomes(&accepted),
        [
            "applied",
            "not_assigned",
            "not_assigned",
            "malformed_mutation"
        ]
    );
    app.get(&demo.admin, &format!("/api/v1/attendance/{good_id}"))
        .expect(200);
    assert_eq!(open_of(&tuan_device).len(), 5);
    assert!(!flagged());
    // The device retries it (its answer was lost): the malformed mutation, which has no log
    // entry, is recognised as open in quarantine and not filed twice.
    let retried = tuan.push(&app, &second);
    assert_eq!(retried[0]["status"], "duplicate");
    assert_eq!(retried[3]["reason"], "malformed_mutation");
    assert_eq!(open_of(&tuan_device).len(), 5);
}

/// What became of each pushed mutation: its refusal's reason, or its status.
fn outcomes(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|r| {
            r["reason"]
                .as_str()
                .or(r["status"].as_str())
                .expect("a status")
        })
        .collect()
}

/// Tuan (trainer 2) on a fresh phone, and a session of the ward's class, which he does not
/// teach: attendance he records there is refused and quarantined.
struct Refuser {
    demo: DemoClasses,
    token: String,
    device: String,
    foreign_session: Value,
    stamp: String,
}

impl Refuser {
    fn log_in(app: &TestApp) -> Refuser {
        let demo = DemoClasses::read(app);
        let phone = Device::login(app, Persona::Tuan, "Tuấn's phone");
        let foreign_session = app.get_ok(
            &demo.admin,
            &format!("/api/v1/sessions?course_id={}", demo.ward_course),
        )["items"][0]["id"]
            .clone();
        Refuser {
            token: phone.token,
            device: phone.device_id,
            foreign_session,
            stamp: stamp(now_millis(), 0),
            demo,
        }
    }

    /// A new attendance record of the foreign session for the `person`-th enrolled person.
    fn refused(&self, person: usize, status: &str) -> Value {
        let person_id = &self.demo.people[person % self.demo.people.len()];
        let fields =
            json!({"session_id": self.foreign_session, "person_id": person_id, "status": status});
        upsert_attendance(&new_id(), fields, &self.stamp)
    }

    /// A new attendance record of the big class's first session, which he teaches.
    fn taken(&self, person: usize, status: &str) -> Value {
        let fields = self
            .demo
            .attendance(person % self.demo.people.len(), status);
        upsert_attendance(&new_id(), fields, &self.stamp)
    }

    /// The ids of the phone's open quarantine entries.
    fn open_entries(&self, app: &TestApp) -> Vec<String> {
        let open = app.get_ok(
            &self.demo.admin,
            "/api/v1/sync/quarantine?status=open&limit=500",
        );
        items(&open)
            .filter(|item| item["device_id"] == self.device)
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Sends `copies` pushes at once; their answers, in order.
fn push_at_once(
    app: &TestApp,
    token: &str,
    batches: &[Vec<Value>],
) -> Vec<crate::support::Response> {
    let barrier = Arc::new(Barrier::new(batches.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .iter()
            .map(|batch| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    app.post(token, "/api/v1/sync/push", &json!({ "mutations": batch }))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A batch large enough that SQLite reads and decides it beside the writer and files its
/// refusals over several turns: copies of it racing (a device retrying on a weak link) apply
/// each mutation once, file each refusal once, and every copy is answered consistently.
fn a_large_batch_racing_its_copies_is_applied_and_filed_once(app: TestApp) {
    let app = app.with_demo();
    let tuan = Refuser::log_in(&app);
    let good = tuan.demo.people.len().min(8);
    let refused = 110;
    let mut batch: Vec<Value> = (0..good)
        .map(|person| tuan.taken(person, "present"))
        .collect();
    batch.extend((0..refused).map(|i| tuan.refused(i, "late")));

    let answers: Vec<Vec<Value>> = push_at_once(&app, &tuan.token, &vec![batch.clone(); 4])
        .into_iter()
        .map(|response| {
            response.expect(200).json["results"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    for index in 0..good {
        let statuses: Vec<&str> = answers
            .iter()
            .map(|results| results[index]["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == "applied").count(),
            1,
            "mutation {index}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == "duplicate").count(),
            3,
            "mutation {index}: {statuses:?}"
        );
    }
    for results in &answers {
        for result in &results[good..] {
            let refused_status = match result["status"].as_str() {
                Some("duplicate") => result["original_status"].as_str(),
                other => other,
            };
            assert_eq!(
                (refused_status, result["reason"].as_str()),
                (Some("rejected"), Some("not_assigned")),
                "{result}"
            );
        }
    }
    assert_eq!(tuan.open_entries(&app).len(), refused);
    let listed = app
        .get(
            &tuan.demo.admin,
            &format!("/api/v1/attendance?session_id={}", tuan.demo.session),
        )
        .expect(200);
    assert_eq!(listed.json["total"], good);

    // Once more, alone: every mutation answered from the log, nothing filed again.
    let replay = app.push(&tuan.token, &batch);
    assert!(
        replay.iter().all(|r| r["status"] == "duplicate"),
        "{replay:?}"
    );
    assert_eq!(tuan.open_entries(&app).len(), refused);
}

/// Two large batches of refusals from one device at once, each within the cap alone but not
/// together: one is filed whole, the other refused whole, even when the first files its
/// refusals over several turns of the writer (SQLite) and the second arrives between them.
fn two_large_refused_batches_at_once_never_take_a_device_beyond_its_cap(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.max_quarantine_per_device = 150;
        config.max_push_mutations = 100;
    });
    let app = app.with_demo();
    let tuan = Refuser::log_in(&app);
    let batch = || -> Vec<Value> { (0..100).map(|i| tuan.refused(i, "absent")).collect() };

    let statuses: Vec<u16> = push_at_once(&app, &tuan.token, &[batch(), batch()])
        .iter()
        .map(|response| response.status)
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 429], "{statuses:?}");
    assert_eq!(tuan.open_entries(&app).len(), 100);
}

/// A large batch from a device whose quarantine is full: refused whole when a new refusal is
/// among its first mutations (on SQLite decided before the rest of the batch) or only among its
/// last ones, and taken when its refusals were all answered before (replayed from the log).
fn a_full_device_is_refused_for_a_new_refusal_anywhere_in_a_large_batch_and_only_then(
    backend: Backend,
) {
    let app = TestApp::start_with(backend, |config| {
        // The cap is never less than one push.
        config.max_quarantine_per_device = 60;
        config.max_push_mutations = 60;
    });
    let app = app.with_demo();
    let tuan = Refuser::log_in(&app);
    let refused = || tuan.refused(0, "absent");
    let good = |count: usize| -> Vec<Value> { (0..count).map(|i| tuan.taken(i, "late")).collect() };
    let send = |batch: &[Value]| {
        app.post(
            &tuan.token,
            "/api/v1/sync/push",
            &json!({ "mutations": batch }),
        )
    };
    let filling: Vec<Value> = (0..60).map(|_| refused()).collect();
    let filed = app.push(&tuan.token, &filling);
    assert!(filed.iter().all(|r| r["status"] == "rejected"), "{filed:?}");
    assert_eq!(tuan.open_entries(&app).len(), 60);

    let mut first = vec![refused()];
    first.extend(good(59));
    send(&first).expect_error(429, "quarantine_full");
    let mut last = good(59);
    last.push(refused());
    send(&last).expect_error(429, "quarantine_full");
    assert_eq!(tuan.open_entries(&app).len(), 60);
    // Nothing of either was taken: their good mutations are new to the server.
    let taken = app.push(&tuan.token, &last[..59]);
    assert!(
        taken
            .iter()
            .all(|r| r["status"] == "applied" || r["status"] == "merged"),
        "{taken:?}"
    );

    // Refusals answered before, first in the batch, file nothing: the batch goes through.
    let mut answered_before: Vec<Value> = filling.iter().take(30).cloned().collect();
    answered_before.extend(good(30));
    let results = app.push(&tuan.token, &answered_before);
    assert!(
        results[..30]
            .iter()
            .all(|r| r["status"] == "duplicate" && r["original_status"] == "rejected"),
        "{results:?}"
    );
    assert!(
        results[30..]
            .iter()
            .all(|r| r["status"] == "applied" || r["status"] == "merged"),
        "{results:?}"
    );
    assert_eq!(tuan.open_entries(&app).len(), 60);
}

fn pulls_are_scoped_paged_and_follow_scope_changes(OnTheDemo { app, demo }: OnTheDemo) {
    let mut tuan = Device::login(&app, Persona::Tuan, "Tuấn's phone");
    tuan.pull(&app);
    let count = |collection: &str| tuan.held_ids(collection).len();
    let enrolled = app.list_all(
        &demo.admin,
        &format!("/api/v1/enrollments?course_id={}", demo.big_course),
    );
    assert_eq!(count("courses"), 1);
    assert_eq!(
        count("enrollments") as i64,
        enrolled["total"].as_i64().unwrap()
    );
    assert_eq!(count("people") as i64, enrolled["total"].as_i64().unwrap());
    assert!(count("units") >= 20);
    assert!(tuan.held_ids("courses").contains(&demo.big_course));
    assert!(!tuan.held_ids("courses").contains(&demo.ward_course));
    let nothing = tuan.pull(&app);
    assert!(
        nothing.is_empty(),
        "re-pulling from the last cursor yields nothing new"
    );

    // A trainee leaves the class: the trainer's device drops the enrollment and the person.
    let leaving = enrolled["items"][0].clone();
    app.delete(
        &demo.admin,
        &format!("/api/v1/enrollments/{}", leaving["id"].as_str().unwrap()),
    )
    .expect(204);
    let changes = tuan.pull(&app);
    assert!(!tuan.held_ids("enrollments").contains(&id_of(&leaving)));
    assert!(
        !tuan
            .held_ids("people")
            .iter()
            .any(|person| leaving["person_id"] == person.as_str()),
        "{changes:?}"
    );

    // Assigned to the second class: the next pull brings its existing records.
    let me = app.me(&tuan.token);
    let assignment = app.create(
        &demo.admin,
        "/api/v1/course-trainers",
        json!({"course_id": demo.ward_course, "user_id": me["id"]}),
    );
    let after = apply(&tuan.pull(&app));
    assert!(after.contains_key(&("courses".to_owned(), demo.ward_course.clone())));
    let small_sessions = app.get_ok(
        &demo.admin,
        &format!("/api/v1/sessions?course_id={}", demo.ward_course),
    );
    for session in small_sessions["items"].as_array().unwrap() {
        assert!(after.contains_key(&(
            "sessions".to_owned(),
            session["id"].as_str().unwrap().to_owned()
        )));
    }
    // Unassigned again: the device is told to drop the class.
    app.delete(
        &demo.admin,
        &format!("/api/v1/course-trainers/{}", id_of(&assignment)),
    )
    .expect(204);
    let changes = tuan.pull(&app);
    let dropped: Vec<&Value> = changes
        .iter()
        .filter(|c| c["deleted"] == true && c["collection"] == "courses")
        .collect();
    assert!(
        dropped.iter().any(|c| c["id"] == demo.ward_course.as_str()),
        "{changes:?}"
    );

    // A role change cannot be expressed as a scope difference: the device starts over.
    let (cursor, _) = app.pull_all(&tuan.token, None, 500);
    let promote = json!({"role": "admin"});
    app.patch(
        &demo.admin,
        &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
        &promote,
    )
    .expect(200);
    app.get(&tuan.token, &format!("/api/v1/sync/pull?cursor={cursor}"))
        .expect_error(410, "resync_required");

    // A trainee pulls their own records only.
    let mut trainee = Device::login(&app, Persona::Trainee, "the trainee's phone");
    trainee.pull(&app);
    assert_eq!(trainee.held_ids("people").len(), 1);
    assert_eq!(trainee.held_ids("course_trainers"), Vec::<String>::new());
}

/// The feed reads a page in three ways (several collections found by their revisions first;
/// one collection alone read at once; a trainer's attendance by session or by revision,
/// depending on the share of all sessions the trainer teaches). Whatever the way, a trainer's
/// paged pull must hold exactly the changes of the trainer's classes that an administrator's
/// pull holds, each once, in revision order.
fn every_page_shape_sends_each_change_once_in_order(OnTheDemo { app, demo }: OnTheDemo) {
    let class = crate::resources::plan_class(&app, &demo.admin, "trainer.narrow");
    let mut narrow_people = vec![class.person.clone()];
    for n in 0..4 {
        let person = id_of(&app.create(
            &demo.admin,
            "/api/v1/people",
            json!({"full_name": format!("Hoàng Văn Lực {n}"), "position": "deputy_secretary"}),
        ));
        app.post(
            &demo.admin,
            "/api/v1/enrollments",
            &json!({"course_id": class.course, "person_id": person}),
        )
        .expect(201);
        narrow_people.push(person);
    }
    let sessions_of = |course: &str| -> Vec<String> {
        item_fields(
            &app.get_ok(
                &demo.admin,
                &format!("/api/v1/sessions?course_id={course}&limit=500"),
            ),
            "id",
        )
    };
    let all_sessions = app.get_ok(&demo.admin, "/api/v1/sessions?limit=500")["total"]
        .as_u64()
        .unwrap() as usize;
    let wide_sessions = sessions_of(&demo.big_course);
    // The premise: one trainer teaches a small share of all sessions, the other a large one.
    assert!(4 < all_sessions && 4 * wide_sessions.len() >= all_sessions);

    let narrow = app.token("trainer.narrow", "trainer-password");
    let wide = app.demo_token("tuan.le");
    let (admin_from, _) = app.pull_all(&demo.admin, None, 1000);
    let (narrow_from, _) = app.pull_all(&narrow, None, 1000);
    let (wide_from, _) = app.pull_all(&wide, None, 1000);

    // Attendance of both classes interleaved, a new session in the wide class between them,
    // then attendance alone at the end.
    let base = now_millis();
    let mut counter = 0;
    let mut hlc = || {
        counter += 1;
        stamp(base, counter)
    };
    for round in 0..3 {
        let status = ["present", "late", "absent"][round];
        let mut batch = Vec::new();
        for (n, person) in narrow_people.iter().enumerate() {
            batch.push(upsert_attendance(
                &new_id(),
                json!({"session_id": class.session, "person_id": person, "status": status}),
                &hlc(),
            ));
            batch.push(upsert_attendance(
                &new_id(),
                demo.attendance(n, status),
                &hlc(),
            ));
        }
        for result in app.push(&demo.admin, &batch) {
            assert_ne!(result["status"], "rejected", "{result}");
        }
        if round == 1 {
            app.post(&demo.admin, "/api/v1/sessions", &json!({"course_id": demo.big_course, "topic": "Kiểm tra, giám sát", "starts_at": "2026-12-09T13:30:00+07:00", "ends_at": "2026-12-09T16:30:00+07:00"}))
            .expect(201);
        }
    }
    let tail: Vec<Value> = (5..9)
        .map(|n| upsert_attendance(&new_id(), demo.attendance(n, "present"), &hlc()))
        .collect();
    app.push(&demo.admin, &tail);

    let (_, everything) = app.pull_all(&demo.admin, Some(&admin_from), 1000);
    let wide_sessions = sessions_of(&demo.big_course);
    for (token, from, courses, sessions) in [
        (
            &narrow,
            &narrow_from,
            vec![class.course.clone()],
            vec![class.session.clone()],
        ),
        (
            &wide,
            &wide_from,
            vec![demo.big_course.clone()],
            wide_sessions,
        ),
    ] {
        let expected: Vec<(String, i64)> = everything
            .iter()
            .filter(|c| match c["collection"].as_str().unwrap() {
                "attendance" => sessions
                    .iter()
                    .any(|s| c["data"]["session_id"] == s.as_str()),
                "sessions" => courses.iter().any(|k| c["data"]["course_id"] == k.as_str()),
                _ => false,
            })
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["rev"].as_i64().unwrap(),
                )
            })
            .collect();
        assert!(expected.len() >= 5, "{expected:?}");
        for limit in [1, 2, 3, 1000] {
            let (_, changes) = app.pull_all(token, Some(from), limit);
            let got: Vec<(String, i64)> = changes
                .iter()
                .filter(|c| c["collection"] == "attendance" || c["collection"] == "sessions")
                .map(|c| {
                    (
                        c["id"].as_str().unwrap().to_owned(),
                        c["rev"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, expected, "pages of {limit}");
        }
    }
}

fn bad_cursors_are_refused(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.tombstone_retention_days = 0);
    let app = app.with_demo();
    let tuan = app.demo_token("tuan.le");
    let hoa = app.demo_token("hoa.nguyen");
    let page = app.get_ok(&tuan, "/api/v1/sync/pull?limit=10");
    let cursor = page["cursor"].as_str().unwrap();
    app.get(&hoa, &format!("/api/v1/sync/pull?cursor={cursor}"))
        .expect_error(400, "invalid_cursor");
    let garbled = format!("{}x", cursor);
    app.get(&tuan, &format!("/api/v1/sync/pull?cursor={garbled}"))
        .expect_error(400, "invalid_cursor");
    for limit in ["0", "-1", "1001"] {
        app.get(&tuan, &format!("/api/v1/sync/pull?limit={limit}"))
            .expect(422);
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    app.get(&tuan, &format!("/api/v1/sync/pull?cursor={cursor}"))
        .expect_error(410, "resync_required");
}

/// One writer holds a revision open; another commits meanwhile. A pull in between must not move
/// its cursor past the open revision, so that the held row arrives once it commits.
fn a_cursor_never_skips_a_commit_held_open(app: TestApp) {
    let admin = app.admin_token();
    let (_, _) = app.pull_all(&admin, None, 500);
    let (cursor, _) = app.pull_all(&admin, None, 500);
    // While the slow writer is open, a pull sees neither unit.
    let page = with_a_commit_held_open(&app, &admin, ReadWhileOpen::Finishes, || {
        app.get_ok(&admin, &format!("/api/v1/sync/pull?cursor={cursor}"))
    });
    let seen: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["data"]["code"].as_str())
        .collect();
    assert!(seen.is_empty(), "nothing committed yet: {seen:?}");
    let middle_cursor = page["cursor"].as_str().unwrap();
    let (_, changes) = app.pull_all(&admin, Some(middle_cursor), 500);
    let codes: Vec<&str> = changes
        .iter()
        .filter_map(|c| c["data"]["code"].as_str())
        .collect();
    assert_eq!(codes, ["SLOW", "FAST"], "both arrive, in commit order");
}

fn old_tombstones_are_purged_unless_still_referenced(app: TestApp) {
    let admin = app.admin_token();
    let class = crate::resources::plan_class(&app, &admin, "trainer.purge");
    let unit = id_of(&app.create(
        &admin,
        "/api/v1/units",
        json!({"code": "OLD", "name": "Xã Cũ", "kind": "commune"}),
    ));
    app.delete(&admin, &format!("/api/v1/units/{unit}"))
        .expect(204);
    let record =
        json!({"session_id": class.session, "person_id": class.person, "status": "present"});
    let attendance = app.post(&admin, "/api/v1/attendance", &record).expect(201);
    // The enrollment goes, the attendance stays: the person and session are still referenced.
    let enrollments = app.get_ok(
        &admin,
        &format!("/api/v1/enrollments?course_id={}", class.course),
    );
    app.delete(
        &admin,
        &format!(
            "/api/v1/enrollments/{}",
            enrollments["items"][0]["id"].as_str().unwrap()
        ),
    )
    .expect(204);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut conn = app.pool.get().unwrap();
    let purged = diemdanh::sync::retention::purge_tombstones(&mut conn, 0).unwrap();
    assert_eq!(
        (
            purged.units,
            purged.enrollments,
            purged.attendance,
            purged.sessions
        ),
        (1, 1, 0, 0)
    );
    let again = diemdanh::sync::retention::purge_tombstones(&mut conn, 0).unwrap();
    assert_eq!(again.total(), 0);
    app.get(
        &admin,
        &format!(
            "/api/v1/attendance/{}",
            attendance.json["id"].as_str().unwrap()
        ),
    )
    .expect(200);
    // A year's retention keeps fresh tombstones.
    app.delete(
        &admin,
        &format!(
            "/api/v1/attendance/{}",
            attendance.json["id"].as_str().unwrap()
        ),
    )
    .expect(204);
    assert_eq!(
        diemdanh::sync::retention::purge_tombstones(&mut conn, 365 * 86_400_000)
            .unwrap()
            .total(),
        0
    );
}

/// Eight trainers' devices come back into coverage at once, each with its own batch.
fn many_devices_push_at_once(OnTheDemo { app, demo }: OnTheDemo) {
    let enrolled = app.list_all(
        &demo.admin,
        &format!("/api/v1/enrollments?course_id={}", demo.big_course),
    );
    let people: Vec<String> = item_fields(&enrolled, "person_id");
    let sessions = app.get_ok(
        &demo.admin,
        &format!("/api/v1/sessions?course_id={}", demo.big_course),
    );
    let sessions: Vec<String> = item_fields(&sessions, "id");
    let phones: Vec<Device> = (0..8)
        .map(|i| {
            let trainer = if i % 2 == 0 {
                Persona::Hoa
            } else {
                Persona::Tuan
            };
            Device::login(&app, trainer, &format!("phone {i}"))
        })
        .collect();
    let barrier = Arc::new(Barrier::new(8));
    let applied: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = phones
            .into_iter()
            .enumerate()
            .map(|(i, mut phone)| {
                let (barrier, app, people, session) = (barrier.clone(), &app, &people, &sessions[i % sessions.len()]);
                scope.spawn(move || {
                    let batch: Vec<Value> = people
                        .iter()
                        .skip(i * 10)
                        .take(10)
                        .map(|person| upsert_attendance(&new_id(), json!({"session_id": session, "person_id": person, "status": "present"}), &phone.stamp()))
                        .collect();
                    barrier.wait();
                    phone.push(app, &batch).iter().filter(|r| r["status"] == "applied").count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(applied, 80);
    // The demo's own roll (of the ward's class) is not the big class's.
    let recorded = app.get_ok(
        &demo.admin,
        &format!("/api/v1/attendance?course_id={}&limit=500", demo.big_course),
    );
    assert_eq!(recorded["total"], 80);
}

/// The admin API, a roster import and a device's push write attendance and enrollments through
/// one writer: the same rules refuse the same writes, a removed pair comes back as the same
/// record, and edits of one record from the API and from devices end with the last by stamp.
fn admin_import_and_push_writes_of_one_record_meet_the_same_rules(
    OnTheDemo { app, demo }: OnTheDemo,
) {
    let tuan = app.demo_token("tuan.le");
    let person = demo.people[7].clone();
    let mark = json!({"session_id": demo.session, "person_id": person, "status": "present"});

    // The administrator removes the person's enrollment: neither path marks them any more.
    let enrollments = |token: &str| {
        app.get_ok(
            token,
            &format!(
                "/api/v1/enrollments?course_id={}&person_id={person}",
                demo.big_course
            ),
        )
    };
    let enrollment = enrollments(&demo.admin)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&demo.admin, &format!("/api/v1/enrollments/{enrollment}"))
        .expect(204);
    let refused = app.post(&tuan, "/api/v1/attendance", &mark).expect(422);
    assert_eq!(refused.json["details"][0]["code"], "not_enrolled");
    let t = now_millis();
    let pushed = app.push(
        &tuan,
        &[upsert_attendance(&new_id(), mark.clone(), &stamp(t, 0))],
    );
    assert_eq!(pushed[0]["reason"], "not_enrolled");

    // A trainee enrolls nobody, whichever the path (a trainer's rule has a test of its own).
    let trainee = app.demo_token("hocvien.demo");
    let pair = json!({"course_id": demo.big_course, "person_id": person});
    app.post(&trainee, "/api/v1/enrollments", &pair).expect(403);
    let pushed = app.push(
        &trainee,
        &[mutation(
            "enrollments",
            &new_id(),
            "upsert",
            pair.clone(),
            &stamp(t, 1),
        )],
    );
    assert_eq!(pushed[0]["reason"], "forbidden");
    assert_eq!(enrollments(&demo.admin)["total"], 0);

    // A roster import enrolls them again: the same enrollment comes back, not a second one.
    let stored = app.get_ok(&demo.admin, &format!("/api/v1/people/{person}"));
    let unit = app.get_ok(
        &demo.admin,
        &format!("/api/v1/units/{}", stored["unit_id"].as_str().unwrap()),
    );
    let position = match stored["position"].as_str() {
        Some("deputy_secretary") => "Phó Bí thư",
        _ => "Bí thư",
    };
    let roster = format!(
        "ho va ten,chuc vu,don vi,ngay sinh,so dien thoai\n{},{position},{},{},{}\n",
        stored["full_name"].as_str().unwrap(),
        unit["name"].as_str().unwrap(),
        stored["birth_date"].as_str().unwrap_or(""),
        stored["phone"].as_str().unwrap_or(""),
    );
    let imported = app
        .import_csv(
            &demo.admin,
            &format!("?dry_run=false&course_id={}", demo.big_course),
            roster.as_bytes(),
        )
        .expect(200);
    assert_eq!(imported.json["summary"]["created"], 0, "{}", imported.text);
    assert_eq!(imported.json["summary"]["enrolled"], 1, "{}", imported.text);
    let back = enrollments(&demo.admin);
    assert_eq!(back["total"], 1);
    assert_eq!(
        back["items"][0]["id"],
        enrollment.as_str(),
        "one record per pair"
    );

    // Now a device marks them; the administrator corrects the mark; a device's edit stamped
    // before the correction loses to it (a logged conflict), one stamped after it wins.
    let record = new_id();
    let pushed = app.push(
        &tuan,
        &[upsert_attendance(&record, mark.clone(), &stamp(t, 2))],
    );
    assert_eq!(pushed[0]["status"], "applied", "{pushed:?}");
    let path = format!("/api/v1/attendance/{record}");
    let current = app.get(&demo.admin, &path).expect(200);
    let if_match = format!("\"{}\"", current.json["rev"]);
    let corrected = app
        .put_if_match(
            &demo.admin,
            &path,
            if_match.as_str(),
            &json!({"session_id": demo.session, "person_id": person, "status": "excused"}),
        )
        .expect(200);
    assert_eq!(corrected.json["status"], "excused");
    let status = |token: &str| {
        app.get_ok(token, &path)["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let late = app.push(
        &tuan,
        &[upsert_attendance(
            &record,
            json!({"status": "late"}),
            &stamp(t, 3),
        )],
    );
    assert_eq!(late[0]["status"], "merged", "{late:?}");
    assert_eq!(status(&demo.admin), "excused", "the correction is later");
    let absent = app.push(
        &tuan,
        &[upsert_attendance(
            &record,
            json!({"status": "absent"}),
            &stamp(now_millis() + 1_000, 0),
        )],
    );
    assert_eq!(absent[0]["status"], "merged", "{absent:?}");
    assert_eq!(status(&tuan), "absent", "the device's edit is later still");
    // And the administrator's stale If-Match is refused like any other resource's.
    app.put_if_match(
        &demo.admin,
        &path,
        if_match.as_str(),
        &json!({"session_id": demo.session, "person_id": person, "status": "late"}),
    )
    .expect(412);
}

/// The ids a device holds of one collection.
fn a_withdrawn_trainee_loses_the_course_and_every_device_agrees(
    OnTheDemo { app, demo }: OnTheDemo,
) {
    let mut phone = Device::login(&app, Persona::Trainee, "the trainee's phone");
    let trainee = phone.token.clone();
    let person = app.me(&trainee)["person_id"].as_str().unwrap().to_owned();
    let enrollment = app.get_ok(
        &demo.admin,
        &format!(
            "/api/v1/enrollments?person_id={person}&course_id={}",
            demo.big_course
        ),
    )["items"][0]
        .clone();
    let sessions_path = format!("/api/v1/sessions?course_id={}", demo.big_course);
    let materials_path = format!("/api/v1/materials?course_id={}", demo.big_course);
    let visible = |path: &str| app.get_ok(&trainee, path)["total"].as_i64().unwrap();
    assert!(visible(&sessions_path) > 0 && visible(&materials_path) > 0);
    // The trainee's own record of the course, kept by the server: a device that followed the
    // withdrawal and a new one must agree on it too.
    app.post(
        &demo.admin,
        "/api/v1/attendance",
        &json!({"session_id": demo.session, "person_id": person, "status": "present"}),
    )
    .expect(201);
    phone.pull(&app);
    let course_sessions = |phone: &Device| {
        phone
            .held
            .iter()
            .filter(|((c, _), data)| c == "sessions" && data["course_id"] == json!(demo.big_course))
            .count()
    };
    assert!(course_sessions(&phone) > 0);
    assert_eq!(phone.held_ids("attendance").len(), 1);

    let set_status = |status: &str| {
        let mut body =
            json!({"course_id": enrollment["course_id"], "person_id": person, "status": status});
        body["id"] = enrollment["id"].clone();
        app.put(
            &demo.admin,
            &format!("/api/v1/enrollments/{}", enrollment["id"].as_str().unwrap()),
            &body,
        )
        .expect(200);
    };
    set_status("withdrawn");
    // Through the API: the course, its sessions and its materials are gone for the trainee.
    assert_eq!(visible(&sessions_path), 0);
    assert_eq!(visible(&materials_path), 0);
    app.get(&trainee, &format!("/api/v1/courses/{}", demo.big_course))
        .expect(404);
    // Through the pull: the device drops them, and holds what a first pull would give.
    phone.pull(&app);
    assert_eq!(course_sessions(&phone), 0);
    assert!(!phone.held_ids("courses").contains(&demo.big_course));
    assert_eq!(
        phone.held,
        phone.fresh_view(&app),
        "the device that followed equals a new one"
    );

    // Enrolled again: everything comes back, to both.
    set_status("enrolled");
    phone.pull(&app);
    assert!(course_sessions(&phone) > 0);
    assert_eq!(phone.held_ids("attendance").len(), 1);
    assert_eq!(
        phone.held,
        phone.fresh_view(&app),
        "the device that followed equals a new one"
    );
}

/// A trainer adds a walk-in from the course's roster (the people of its organising unit and the
/// units below it) by push or through the API alike; a person from elsewhere is refused on both
/// paths with the same code (and the push quarantined), and stays out of the trainer's sight.
fn a_trainer_enrolls_only_people_of_the_course_roster(OnTheDemo { app, demo }: OnTheDemo) {
    let admin = demo.admin.as_str();
    let tuan = app.demo_token("tuan.le");
    let tuan_id = app.me(&tuan)["id"].as_str().unwrap().to_owned();
    let create = |path: &str, body: Value| id_of(&app.create(admin, path, body.clone()));
    let commune = create(
        "/api/v1/units",
        json!({"code": "79001", "name": "Xã Ia Hrung", "kind": "commune"}),
    );
    let village = create(
        "/api/v1/units",
        json!({"code": "79002", "name": "Thôn Ia Hrung 2", "kind": "commune", "parent_id": commune}),
    );
    let elsewhere = create(
        "/api/v1/units",
        json!({"code": "79003", "name": "Xã Ia Le", "kind": "commune"}),
    );
    let course = create(
        "/api/v1/courses",
        json!({"title": "Lớp Bí thư xã Ia Hrung", "management_level": "commune", "start_date": "2026-12-08", "end_date": "2026-12-10", "organizing_unit_id": commune}),
    );
    create(
        "/api/v1/course-trainers",
        json!({"course_id": course, "user_id": tuan_id}),
    );
    let person_of = |name: &str, unit: &str| {
        create(
            "/api/v1/people",
            json!({"full_name": name, "position": "secretary", "unit_id": unit, "phone": "0905123456"}),
        )
    };
    let here = person_of("Rơ Châm Hiền", &commune);
    let below = person_of("Ksor Nay", &village);
    let outsider = person_of("Siu Hơn", &elsewhere);
    let roster = item_fields(
        &app.get_ok(&tuan, &format!("/api/v1/courses/{course}/roster")),
        "id",
    );
    assert!(roster.contains(&here) && roster.contains(&below));
    assert!(!roster.contains(&outsider));
    let enrolled = || -> Vec<(String, String)> {
        let listed = app.get_ok(admin, &format!("/api/v1/enrollments?course_id={course}"));
        let mut pairs = string_pairs_of(&listed["items"], "person_id", "status");
        pairs.sort();
        pairs
    };
    let pair = |person: &str| json!({"course_id": course, "person_id": person});
    let t = now_millis();
    // A new enrollment pushed by a device, its clock at `t` and `counter`.
    let push_enrollment = |token: &str, person: &str, counter: u32| {
        app.push(
            token,
            &[mutation(
                "enrollments",
                &new_id(),
                "upsert",
                pair(person),
                &stamp(t, counter),
            )],
        )
    };

    // Walk-ins of the roster: by push and through the API.
    let pushed = push_enrollment(&tuan, &here, 0);
    assert_eq!(pushed[0]["status"], "applied", "{pushed:?}");
    app.post(&tuan, "/api/v1/enrollments", &pair(&below))
        .expect(201);

    // Someone from elsewhere: refused on both paths with one code, the push kept for an admin.
    let refused_push = push_enrollment(&tuan, &outsider, 1);
    assert_eq!(refused_push[0]["status"], "rejected", "{refused_push:?}");
    assert_eq!(refused_push[0]["reason"], "not_on_roster");
    app.post(&tuan, "/api/v1/enrollments", &pair(&outsider))
        .expect(422)
        .expect_detail("person_id", "not_on_roster");
    let quarantined = app.get_ok(admin, "/api/v1/sync/quarantine?status=open");
    let kept: Vec<&Value> = items(&quarantined)
        .filter(|q| q["body"]["fields"]["person_id"] == outsider.as_str())
        .collect();
    assert_eq!(kept.len(), 1, "{quarantined}");
    assert_eq!(kept[0]["reason"], "not_on_roster");
    // Nothing of the outsider reaches the trainer: not their record, nor their phone by pull.
    app.get(&tuan, &format!("/api/v1/people/{outsider}"))
        .expect(404);
    let (_, pulled) = app.pull_all(&tuan, None, 500);
    assert!(
        !pulled.iter().any(|c| c["id"] == outsider.as_str()),
        "the outsider is not pulled"
    );
    assert!(pulled.iter().any(|c| c["id"] == here.as_str()));

    // A trainee enrolls nobody, not even from the roster.
    let trainee = app.demo_token("hocvien.demo");
    let spare = person_of("Nay Blang", &commune);
    let by_trainee = push_enrollment(&trainee, &spare, 2);
    assert_eq!(by_trainee[0]["reason"], "forbidden", "{by_trainee:?}");
    // The course is not theirs: answered as one that does not exist.
    let refused = app
        .post(&trainee, "/api/v1/enrollments", &pair(&spare))
        .expect(422);
    assert_eq!(refused.json["details"][0]["code"], "unknown_course");

    // An administrator enrolls anyone. The trainer may then withdraw that person, but not
    // enroll them again: making someone enrolled is what the roster limits.
    let admitted = create("/api/v1/enrollments", pair(&outsider));
    let withdraw = |status: &str, counter: u32| {
        app.push(
            &tuan,
            &[mutation(
                "enrollments",
                &admitted,
                "upsert",
                json!({"status": status}),
                &stamp(now_millis() + 1_000, counter),
            )],
        )
    };
    let withdrawn = withdraw("withdrawn", 3);
    // Merged: it overwrote the administrator's value, which is logged as a conflict.
    assert_eq!(withdrawn[0]["status"], "merged", "{withdrawn:?}");
    let again = withdraw("enrolled", 4);
    assert_eq!(again[0]["reason"], "not_on_roster", "{again:?}");
    let mut expected = vec![
        (here.clone(), "enrolled".to_owned()),
        (below.clone(), "enrolled".to_owned()),
        (outsider.clone(), "withdrawn".to_owned()),
    ];
    expected.sort();
    assert_eq!(enrolled(), expected);
}

/// A fresh device pulling page after page receives every record of its scope once, whatever the
/// page size (and a large page whole, with its length): a person of its courses comes with the page of an enrollment of theirs, not once
/// with their own revision and again with the enrollment's. It ends holding what one whole pull
/// holds.
fn a_fresh_device_receives_each_record_once(app: TestApp) {
    let app = app.with_demo();
    let tuan = app.demo_token("tuan.le");
    // A page larger than the slices it goes out in comes whole, with its length.
    let first = app.get(&tuan, "/api/v1/sync/pull?limit=1000").expect(200);
    assert!(first.text.len() > 64 * 1024, "{} bytes", first.text.len());
    let length = first.text.len().to_string();
    assert_eq!(first.header("Content-Length"), Some(length.as_str()));
    let (_, whole) = app.pull_all(&tuan, None, 1000);
    let held = apply(&whole);
    assert!(held.keys().any(|(collection, _)| collection == "people"));
    for limit in [7, 60, 1000] {
        let (_, changes) = app.pull_all(&tuan, None, limit);
        let mut seen = BTreeSet::new();
        for change in &changes {
            let key = (
                change["collection"].as_str().unwrap().to_owned(),
                change["id"].as_str().unwrap().to_owned(),
            );
            assert!(
                seen.insert(key.clone()),
                "{key:?} twice in pages of {limit}"
            );
        }
        assert_eq!(apply(&changes), held, "pages of {limit}");
    }
}

/// A course assigned to a trainer whose device already pulled comes in pages of the pull's
/// `limit` (its older records, in revision order, before the feed goes on), each record once;
/// a page asked for again (its answer lost) is the same page; a record of the course written
/// between two pages, one the backfill had not sent yet, still reaches the device (as the feed's
/// deletion). The device ends with exactly what a fresh device of the trainer pulls.
fn a_course_assigned_later_is_backfilled_in_pages(OnTheDemo { app, demo }: OnTheDemo) {
    let tuan = app.demo_token("tuan.le");
    let (cursor, changes) = app.pull_all(&tuan, None, 500);
    let mut held = apply(&changes);
    let me = app.get(&tuan, "/api/v1/me").json;
    app.post(
        &demo.admin,
        "/api/v1/course-trainers",
        &json!({"course_id": demo.ward_course, "user_id": me["id"]}),
    )
    .expect(201);
    let enrollments = app.list_all(
        &demo.admin,
        &format!("/api/v1/enrollments?course_id={}", demo.ward_course),
    );
    let newest = items(&enrollments)
        .max_by_key(|e| e["rev"].as_i64().unwrap())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let limit = 4;
    let page = |cursor: &str| {
        app.get_ok(
            &tuan,
            &format!("/api/v1/sync/pull?limit={limit}&cursor={cursor}"),
        )
    };
    let mut cursor = cursor;
    let mut pages = Vec::new();
    loop {
        let answer = page(&cursor);
        if pages.len() == 1 {
            // The answer to the second page was lost: the same cursor gives the same page.
            assert_eq!(page(&cursor)["changes"], answer["changes"]);
            // The newest enrollment of the course, which the backfill sends last, is deleted.
            app.delete(&demo.admin, &format!("/api/v1/enrollments/{newest}"))
                .expect(204);
        }
        let changes = answer["changes"].as_array().unwrap().clone();
        let records = changes
            .iter()
            .filter(|c| c["collection"] != "people")
            .count();
        assert!(records <= limit, "{records} changes in a page of {limit}");
        pages.push(changes);
        cursor = answer["cursor"].as_str().unwrap().to_owned();
        if answer["has_more"] == false {
            break;
        }
    }
    let total = enrollments["total"].as_u64().unwrap() as usize;
    assert!(pages.len() > total / limit, "{} pages", pages.len());
    // Each record once.
    let mut seen = BTreeSet::new();
    for change in pages.iter().flatten() {
        let key = (change["collection"].to_string(), change["id"].to_string());
        assert!(seen.insert(key.clone()), "{key:?} sent twice: {pages:?}");
    }
    assert!(
        !pages
            .iter()
            .flatten()
            .any(|c| c["id"] == newest.as_str() && c["deleted"] == false),
        "deleted before the backfill reached it, it never came alive"
    );
    apply_onto(&mut held, &pages.concat());
    assert!(held.contains_key(&("courses".to_owned(), demo.ward_course.clone())));
    assert!(!held.contains_key(&("enrollments".to_owned(), newest)));
    let (_, fresh) = app.pull_all(&tuan, None, 500);
    assert_eq!(held, apply(&fresh));
    let (_, nothing) = app.pull_all(&tuan, Some(&cursor), limit);
    assert!(nothing.is_empty(), "{nothing:?}");
}

/// The changes of a page that count against its limit: all but the people that enrollments
/// bring along.
fn counted(page: &[Value]) -> usize {
    page.iter()
        .filter(|c| c["collection"] != "people" || c["deleted"] == true)
        .count()
}

/// A trainer taken off a class of a hundred trainees and given another: the deletions of what
/// the old class brought come in pages of the device's limit (never one answer of thousands),
/// each once, before the new class's records; the device ends holding what a fresh device
/// holds.
fn a_trainer_moved_to_another_class_loses_the_old_one_in_pages_of_the_limit(
    OnTheDemo { app, demo }: OnTheDemo,
) {
    let mut tuan = Device::login(&app, Persona::Tuan, "Tuấn's phone");
    tuan.pull(&app);
    let held_of_big_class = tuan.held_ids("enrollments").len();
    app.create(
        &demo.admin,
        "/api/v1/course-trainers",
        json!({"course_id": demo.ward_course, "user_id": tuan.user_id}),
    );
    demo.take_off_big_class(&app, &tuan.user_id);

    let limit = 20;
    let pages = tuan.pull_in_pages_of(&app, limit);
    for page in &pages {
        assert!(
            counted(page) <= limit,
            "{} changes in a page of {limit}",
            counted(page)
        );
    }
    let deletions: Vec<&Value> = pages
        .iter()
        .flatten()
        .filter(|c| c["deleted"] == true)
        .collect();
    assert!(
        deletions.len() > 2 * held_of_big_class && deletions.len() > 3 * limit,
        "{} deletions for a class of {held_of_big_class} enrollments",
        deletions.len()
    );
    let mut seen = BTreeSet::new();
    for deletion in &deletions {
        let key = (
            deletion["collection"].to_string(),
            deletion["id"].to_string(),
        );
        assert!(seen.insert(key.clone()), "{key:?} deleted twice");
    }
    // The deletions come first: the new class's records follow them.
    let all: Vec<&Value> = pages.iter().flatten().collect();
    let last_deletion = all.iter().rposition(|c| c["deleted"] == true).unwrap();
    let first_record = all.iter().position(|c| c["deleted"] == false).unwrap();
    assert!(last_deletion < first_record, "{all:?}");
    assert!(!tuan.held_ids("courses").contains(&demo.big_course));
    assert!(tuan.held_ids("courses").contains(&demo.ward_course));
    assert_eq!(tuan.held, tuan.fresh_view(&app));
    assert!(tuan.pull(&app).is_empty(), "nothing more");
}

/// The class comes back while its deletions are on their way (the administrator undoes a
/// mistake between two pages): the device ends holding the whole class again, as a fresh device
/// does.
fn a_class_given_back_during_its_removal_comes_back_whole(OnTheDemo { app, demo }: OnTheDemo) {
    let mut tuan = Device::login(&app, Persona::Tuan, "Tuấn's phone");
    tuan.pull(&app);
    demo.take_off_big_class(&app, &tuan.user_id);
    let first = tuan.next_page(&app, 10);
    let first_changes = first["changes"].as_array().unwrap();
    assert_eq!(first["has_more"], true);
    assert_eq!(first_changes.len(), 10, "{first_changes:?}");
    assert!(first_changes.iter().all(|c| c["deleted"] == true));
    let mut held = tuan.held.clone();
    apply_onto(&mut held, first_changes);
    assert!(held.len() < tuan.held.len());

    app.create(
        &demo.admin,
        "/api/v1/course-trainers",
        json!({"course_id": demo.big_course, "user_id": tuan.user_id}),
    );
    let (_, rest) = app.pull_all(&tuan.token, first["cursor"].as_str(), 10);
    apply_onto(&mut held, &rest);
    assert_eq!(held, tuan.fresh_view(&app));
    let enrollments = |held: &std::collections::BTreeMap<(String, String), Value>| {
        held.keys()
            .filter(|(collection, _)| collection == "enrollments")
            .count()
    };
    assert_eq!(
        enrollments(&held),
        enrollments(&tuan.held),
        "the whole class"
    );
}

/// Two classes taken away one after the other, the second while the first's deletions are on
/// their way: the device ends with neither, as a fresh device, each deletion sent once.
fn a_second_class_taken_away_during_the_first_ones_removal_goes_too(
    OnTheDemo { app, demo }: OnTheDemo,
) {
    let mut tuan = Device::login(&app, Persona::Tuan, "Tuấn's phone");
    let ward = app.create(
        &demo.admin,
        "/api/v1/course-trainers",
        json!({"course_id": demo.ward_course, "user_id": tuan.user_id}),
    );
    tuan.pull(&app);
    assert!(tuan.held_ids("courses").contains(&demo.ward_course));
    demo.take_off_big_class(&app, &tuan.user_id);
    let first = tuan.next_page(&app, 10);
    assert_eq!(first["has_more"], true);
    let mut changes = first["changes"].as_array().unwrap().clone();
    app.delete(
        &demo.admin,
        &format!("/api/v1/course-trainers/{}", id_of(&ward)),
    )
    .expect(204);
    let (_, rest) = app.pull_all(&tuan.token, first["cursor"].as_str(), 10);
    changes.extend(rest);
    let mut seen = BTreeSet::new();
    for change in &changes {
        assert_eq!(change["deleted"], true, "{change}");
        let key = (change["collection"].to_string(), change["id"].to_string());
        assert!(seen.insert(key.clone()), "{key:?} deleted twice");
    }
    let mut held = tuan.held.clone();
    apply_onto(&mut held, &changes);
    assert_eq!(held, tuan.fresh_view(&app));
    for course in [&demo.big_course, &demo.ward_course] {
        assert!(!held.contains_key(&("courses".to_owned(), course.clone())));
    }
}
