//! Organisers bound to a unit, on the demo data set: the organisers of two sibling wards of
//! Pleiku (`doan.pleiku`, `doan.thongnhat`) each plan and hold a class for their people; neither
//! sees or touches the other's through any door (every route, the pull feed, WatermelonDB,
//! reports and their downloads, conflict and quarantine review). Accounts: an admin makes
//! organisers, an organiser makes only trainer and trainee accounts for their own people. A merge
//! moves a unit's organisers with its people.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use diemdanh::sync::merge::DELETED_FIELD;
use diemdanh::sync::records::{self, Stored, Writable};

use crate::backend_tests;
use crate::support::{TestApp, id_of, item_fields, items, strings_of};

backend_tests!(
    sibling_ward_organisers_plan_their_classes_and_see_nothing_of_each_other,
    organisers_create_only_trainer_and_trainee_accounts_of_their_people,
    a_merge_moves_the_organiser_with_their_people,
    an_organiser_reads_their_trainer_s_report_for_their_classes_only,
    a_deleted_class_takes_its_enrollments_through_the_one_writer,
    a_class_is_organised_by_a_unit_in_force_on_its_dates,
);

fn unit_id(app: &TestApp, token: &str, code: &str) -> String {
    // The search also finds the unit's branches (their codes start with the ward's).
    let units = app.list_all(token, &format!("/api/v1/units?q={code}"));
    let exact: Vec<&Value> = items(&units).filter(|u| u["code"] == code).collect();
    assert_eq!(exact.len(), 1, "one unit has the code {code}");
    id_of(exact[0])
}

/// One ward's class, planned and held by its organiser.
struct Class {
    organiser: String,
    unit: String,
    people: Vec<String>,
    trainer: String,
    /// Every id the class made: none may reach the other ward's organiser.
    ids: BTreeSet<String>,
    course: String,
    session: String,
    enrollment: String,
    attendance: String,
    material: String,
    assignment: String,
    quarantined: String,
}

/// The organiser plans a class for their ward's Secretary and Deputies: the course, a session,
/// a trainer account for one of them (assigned), the others enrolled, a material uploaded, and
/// the trainer's device takes the roll (one mark refused for someone not enrolled, quarantined).
fn plan_class(app: &TestApp, username: &str, password: &str, code: &str, tag: &str) -> Class {
    let organiser = app.token(username, password);
    let unit = unit_id(app, &organiser, code);
    let people = item_fields(
        &app.list_all(&organiser, &format!("/api/v1/people?unit_id={unit}")),
        "id",
    );
    assert!(people.len() >= 4, "the ward has cadres");
    let course = id_of(&app.create(&organiser,
        "/api/v1/courses",
        json!({"title": format!("Bồi dưỡng bí thư chi đoàn {tag}"), "organizing_unit_id": unit,
               "management_level": "commune", "start_date": "2026-12-10", "end_date": "2026-12-10"}),
    ));
    let session = id_of(&app.create(
        &organiser,
        "/api/v1/sessions",
        json!({"course_id": course, "topic": "Kỹ năng công tác chi đoàn",
               "starts_at": "2026-12-10T08:00:00+07:00", "ends_at": "2026-12-10T11:00:00+07:00"}),
    ));
    let trainer_user = app.create(
        &organiser,
        "/api/v1/users",
        json!({"username": format!("gv.{tag}"), "role": "trainer", "person_id": people[0],
               "password": "trainer-password-1"}),
    );
    assert_eq!(trainer_user["unit_id"], Value::Null);
    let assignment = id_of(&app.create(
        &organiser,
        "/api/v1/course-trainers",
        json!({"course_id": course, "user_id": id_of(&trainer_user)}),
    ));
    let enrollments: Vec<String> = people[1..4]
        .iter()
        .map(|person| {
            id_of(&app.create(
                &organiser,
                "/api/v1/enrollments",
                json!({"course_id": course, "person_id": person}),
            ))
        })
        .collect();
    let material = id_of(
        &app.send_file(
            &organiser,
            "POST",
            &format!("/api/v1/courses/{course}/materials?file_name=tai-lieu.pdf"),
            (b"%PDF-1.4 tai lieu chi doan", "application/pdf"),
        )
        .expect(201)
        .json,
    );
    let trainer = app.token(&format!("gv.{tag}"), "trainer-password-1");
    let mark = |person: &str| {
        json!({"mutation_id": uuid::Uuid::new_v4().to_string(), "collection": "attendance",
               "record_id": uuid::Uuid::new_v4().to_string(), "op": "upsert",
               "fields": {"session_id": session, "person_id": person, "status": "present"},
               "hlc": format!("{:013}-0000-device", chrono::Utc::now().timestamp_millis() - 1000)})
    };
    // The trainer's own person is not enrolled: that mark is refused and kept for review.
    let results = app
        .post(
            &trainer,
            "/api/v1/sync/push",
            &json!({"mutations": [mark(&people[1]), mark(&people[0])]}),
        )
        .expect(200)
        .json["results"]
        .clone();
    assert_eq!(results[0]["status"], "applied", "{results}");
    assert_eq!(results[1]["status"], "rejected", "{results}");
    let attendance = results[0]["record_id"].as_str().unwrap().to_owned();
    let quarantined = app.list_all(
        &organiser,
        &format!("/api/v1/sync/quarantine?course_id={course}"),
    );
    assert_eq!(quarantined["total"], 1, "the organiser reviews their class");
    let quarantined = id_of(&quarantined["items"][0]);
    let mut ids: BTreeSet<String> = [
        &course,
        &session,
        &assignment,
        &material,
        &attendance,
        &quarantined,
    ]
    .into_iter()
    .cloned()
    .collect();
    ids.extend(enrollments.iter().cloned());
    ids.extend(people.iter().cloned());
    ids.insert(id_of(&trainer_user));
    Class {
        organiser,
        unit,
        people,
        trainer: id_of(&trainer_user),
        ids,
        course,
        session,
        enrollment: enrollments[0].clone(),
        attendance,
        material,
        assignment,
        quarantined,
    }
}

/// Every answer `token` gets, as text, must name none of `foreign`.
fn assert_no_leak(what: &str, text: &str, foreign: &BTreeSet<String>) {
    for id in foreign {
        assert!(!text.contains(id.as_str()), "{what} leaks {id}");
    }
}

fn sibling_ward_organisers_plan_their_classes_and_see_nothing_of_each_other(app: TestApp) {
    let app = app.with_demo();
    let pleiku = plan_class(&app, "doan.pleiku", "demo-organiser-1", "23575", "pleiku");
    let thong_nhat = plan_class(
        &app,
        "doan.thongnhat",
        "demo-organiser-2",
        "23584",
        "thongnhat",
    );

    for (me, other) in [(&pleiku, &thong_nhat), (&thong_nhat, &pleiku)] {
        let token = me.organiser.as_str();
        // Their own class, whole.
        let courses = app.list_all(token, "/api/v1/courses");
        assert!(item_fields(&courses, "id").contains(&me.course));
        assert!(
            items(&courses).all(|c| c["organizing_unit_id"] == json!(me.unit)),
            "an organiser sees their subtree's courses only (the province's are not theirs): \
             {courses}"
        );
        // The other ward's records, through every door, answer as records that do not exist.
        for path in [
            format!("/api/v1/courses/{}", other.course),
            format!("/api/v1/sessions/{}", other.session),
            format!("/api/v1/enrollments/{}", other.enrollment),
            format!("/api/v1/attendance/{}", other.attendance),
            format!("/api/v1/materials/{}", other.material),
            format!("/api/v1/materials/{}/content", other.material),
            format!("/api/v1/course-trainers/{}", other.assignment),
            format!("/api/v1/courses/{}/roster", other.course),
            format!("/api/v1/people/{}", other.people[1]),
            format!("/api/v1/users/{}", other.trainer),
            format!("/api/v1/reports/courses/{}", other.course),
            format!("/api/v1/reports/courses/{}?format=xlsx", other.course),
            format!("/api/v1/reports/trainers/{}", other.trainer),
        ] {
            let response = app.get_file(token, &path);
            assert_eq!(response.status, 404, "GET {path}");
        }
        for (method, path) in [
            ("DELETE", format!("/api/v1/courses/{}", other.course)),
            ("DELETE", format!("/api/v1/sessions/{}", other.session)),
            ("DELETE", format!("/api/v1/materials/{}", other.material)),
            (
                "DELETE",
                format!("/api/v1/course-trainers/{}", other.assignment),
            ),
            (
                "DELETE",
                format!("/api/v1/enrollments/{}", other.enrollment),
            ),
            ("DELETE", format!("/api/v1/people/{}", other.people[1])),
            (
                "POST",
                format!("/api/v1/sync/quarantine/{}/dismiss", other.quarantined),
            ),
        ] {
            let response = app.fetch(method, &path, Some(token), None, &[]);
            assert_eq!(response.status, 404, "{method} {path}");
        }
        // Writes that name the other ward: refused with a stable code, nothing written.
        let refused = |path: &str, body: Value| {
            app.post(token, path, &body).expect(422).json["details"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            refused(
                "/api/v1/courses",
                json!({"title": "Lớp của phường bên", "organizing_unit_id": other.unit,
                       "management_level": "commune", "start_date": "2026-12-11", "end_date": "2026-12-11"})
            ),
            "outside_your_unit"
        );
        assert_eq!(
            refused(
                "/api/v1/people",
                json!({"full_name": "Lò Văn Bên", "position": "member", "unit_id": other.unit})
            ),
            "outside_your_unit"
        );
        assert_eq!(
            refused(
                "/api/v1/sessions",
                json!({"course_id": other.course, "topic": "Chen ngang",
                       "starts_at": "2026-12-10T13:00:00+07:00", "ends_at": "2026-12-10T15:00:00+07:00"})
            ),
            "unknown_course"
        );
        assert_eq!(
            refused(
                "/api/v1/course-trainers",
                json!({"course_id": me.course, "user_id": other.trainer})
            ),
            "unknown_user"
        );
        assert_eq!(
            refused(
                "/api/v1/users",
                json!({"username": "gv.ben", "role": "trainer", "person_id": other.people[2],
                       "password": "trainer-password-1"})
            ),
            "unknown_person"
        );
        let enrolled_elsewhere = app
            .post(
                token,
                "/api/v1/enrollments",
                &json!({"course_id": me.course, "person_id": other.people[3]}),
            )
            .expect(422);
        assert_eq!(
            enrolled_elsewhere.json["details"][0]["code"],
            "not_on_roster"
        );
        assert_eq!(
            app.get(
                token,
                &format!("/api/v1/reports/coverage?unit_id={}", other.unit)
            )
            .expect(422)
            .json["details"][0]["code"],
            "unknown_unit"
        );

        // Lists, the feed page by page, WatermelonDB, reports and review: nothing of theirs.
        for path in [
            "/api/v1/courses",
            "/api/v1/sessions",
            "/api/v1/enrollments",
            "/api/v1/attendance",
            "/api/v1/materials",
            "/api/v1/course-trainers",
            "/api/v1/people",
            "/api/v1/users",
            "/api/v1/sync/quarantine",
            "/api/v1/sync/conflicts",
            "/api/v1/me/materials",
        ] {
            assert_no_leak(path, &app.list_all(token, path).to_string(), &other.ids);
        }
        let people = item_fields(&app.list_all(token, "/api/v1/people"), "id");
        assert!(
            me.people.iter().all(|p| people.contains(p)),
            "an organiser sees their ward's people"
        );
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/sync/pull?limit=20&cursor={c}"),
                None => "/api/v1/sync/pull?limit=20".to_owned(),
            };
            let page = app.get_ok(token, &path);
            assert_no_leak("the pull feed", &page.to_string(), &other.ids);
            cursor = Some(page["cursor"].as_str().unwrap().to_owned());
            if page["has_more"] != true {
                break;
            }
        }
        let pulled = app.get_ok(
            token,
            "/api/v1/watermelon/sync?last_pulled_at=null&schema_version=1&migration=null",
        );
        assert_no_leak("the WatermelonDB pull", &pulled.to_string(), &other.ids);
        assert!(
            pulled.to_string().contains(&me.course),
            "their own class reaches their devices"
        );
        let coverage = app.get_ok(
            token,
            "/api/v1/reports/coverage?from=2026-01-01&to=2026-12-31",
        );
        assert_eq!(coverage["unit_id"], me.unit.as_str());
        assert_eq!(coverage["total"]["courses"], courses["total"]);
        let shown = strings_of(&coverage["units"], "unit_id");
        let branches = item_fields(
            &app.list_all(token, &format!("/api/v1/units?parent_id={}", me.unit)),
            "id",
        );
        assert_eq!(shown[0], me.unit, "the ward, then its branches");
        assert_eq!(
            shown[1..].iter().collect::<BTreeSet<_>>(),
            branches.iter().collect::<BTreeSet<_>>(),
        );
        assert!(!branches.is_empty());
        assert_no_leak("the coverage report", &coverage.to_string(), &other.ids);
        let (status, _, xlsx) = app.download(
            "/api/v1/reports/coverage?from=2026-01-01&to=2026-12-31&format=csv",
            token,
            &[],
        );
        assert_eq!(status, 200);
        assert_no_leak(
            "the coverage download",
            &String::from_utf8_lossy(&xlsx),
            &other.ids,
        );
        let class_report = app.get_ok(token, &format!("/api/v1/reports/courses/{}", me.course));
        assert_eq!(class_report["trainees"].as_array().unwrap().len(), 3);
    }

    // The province's admin keeps everything: both classes.
    let admin = app.demo_token("admin");
    let courses = item_fields(&app.list_all(&admin, "/api/v1/courses"), "id");
    assert!(courses.contains(&pleiku.course) && courses.contains(&thong_nhat.course));
    // Each organiser reviews their own class's refused mark.
    app.post_empty(
        &pleiku.organiser,
        &format!("/api/v1/sync/quarantine/{}/dismiss", pleiku.quarantined),
    )
    .expect(200);
}

fn organisers_create_only_trainer_and_trainee_accounts_of_their_people(app: TestApp) {
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let ward = unit_id(&app, &admin, "23602");
    // An admin makes an organiser of a unit; the unit goes with the role.
    let made = app.create(
        &admin,
        "/api/v1/users",
        json!({"username": "doan.anphu", "role": "organiser", "unit_id": ward,
               "password": "organiser-password-1"}),
    );
    assert_eq!(made["unit_id"], ward.as_str());
    let refusal = |token: &str, body: Value, status: u16| {
        let response = app.post(token, "/api/v1/users", &body).expect(status);
        if status == 422 {
            response.json["details"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            response.code().to_owned()
        }
    };
    assert_eq!(
        refusal(
            &admin,
            json!({"username": "doan.khong", "role": "organiser", "password": "organiser-password-1"}),
            422
        ),
        "required"
    );
    assert_eq!(
        refusal(
            &admin,
            json!({"username": "gv.donvi", "role": "trainer", "unit_id": ward, "password": "trainer-password-1"}),
            422
        ),
        "organisers_only"
    );
    let organiser = app.token("doan.anphu", "organiser-password-1");
    let person = item_fields(
        &app.list_all(&organiser, &format!("/api/v1/people?unit_id={ward}")),
        "id",
    )[0]
    .clone();
    // Never a staff account, whoever it would be for.
    for role in ["admin", "organiser"] {
        assert_eq!(
            refusal(
                &organiser,
                json!({"username": format!("x.{role}"), "role": role, "person_id": person,
                       "unit_id": ward, "password": "staff-password-1"}),
                403
            ),
            "role_not_allowed"
        );
    }
    let trainee = app.create(
        &organiser,
        "/api/v1/users",
        json!({"username": "hv.anphu", "role": "trainee", "person_id": person,
               "password": "trainee-password-1"}),
    );
    // They manage it (rename, promote to trainer) but cannot raise it to staff.
    let path = format!("/api/v1/users/{}", id_of(&trainee));
    app.patch(&organiser, &path, &json!({"role": "trainer"}))
        .expect(200);
    app.patch(&organiser, &path, &json!({"role": "admin"}))
        .expect_error(403, "role_not_allowed");
    assert_eq!(
        item_fields(&app.list_all(&organiser, "/api/v1/users"), "username"),
        ["hv.anphu"],
        "an organiser lists the accounts of their people, not staff"
    );
    // A unit someone organises for is in use, even with no one else in it.
    let empty = app.create(
        &admin,
        "/api/v1/units",
        json!({"code": "T-0001", "name": "Chi đoàn thử", "kind": "commune"}),
    );
    app.create_organiser("doan.thu", &id_of(&empty));
    app.delete(&admin, &format!("/api/v1/units/{}", id_of(&empty)))
        .expect_error(409, "unit_in_use");
    // The unit tree, its reorganisation and the audit trail stay the province's.
    for (method, path) in [("GET", "/api/v1/audit"), ("POST", "/api/v1/units/merge")] {
        let body = (method == "POST").then(
            || json!({"source_ids": [ward], "target_id": ward, "effective_date": "2026-12-01"}),
        );
        app.call(method, path, Some(&organiser), body.as_ref())
            .expect_error(403, "forbidden");
    }
}

fn a_merge_moves_the_organiser_with_their_people(app: TestApp) {
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let class = plan_class(&app, "doan.pleiku", "demo-organiser-1", "23575", "pleiku");
    let neighbour = unit_id(&app, &admin, "23584");
    let neighbour_people = item_fields(
        &app.list_all(&admin, &format!("/api/v1/people?unit_id={neighbour}")),
        "id",
    );
    let stays = app.create_organiser("doan.dienhong", &unit_id(&app, &admin, "23563"));

    // Phường Pleiku merges into Phường Thống Nhất.
    let outcome = app
        .post(
            &admin,
            "/api/v1/units/merge",
            &json!({"source_ids": [class.unit], "target_id": neighbour,
                         "effective_date": "2026-12-15"}),
        )
        .expect(200)
        .json;
    let moved = outcome["organisers_moved"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "Pleiku's organiser moves, no one else");
    assert_ne!(moved[0], stays.as_str());
    let me = app.me(&class.organiser);
    assert_eq!(me["unit_id"], neighbour.as_str());
    assert_eq!(moved[0], me["id"]);

    // Their class (organised by the unit merged away) and their people stay in reach, with the
    // people of the unit they joined.
    let token = class.organiser.as_str();
    app.get(token, &format!("/api/v1/courses/{}", class.course))
        .expect(200);
    let people = item_fields(&app.list_all(token, "/api/v1/people"), "id");
    for person in class.people.iter().chain(&neighbour_people) {
        assert!(people.contains(person), "{person} is in the merged ward");
    }
    let coverage = app.get_ok(
        token,
        "/api/v1/reports/coverage?from=2026-01-01&to=2026-12-31",
    );
    assert_eq!(coverage["unit_id"], neighbour.as_str());
    // The merged ward's organiser (Thống Nhất's own) sees the merged class too.
    let other = app.demo_token("doan.thongnhat");
    app.get(&other, &format!("/api/v1/courses/{}", class.course))
        .expect(200);
}

fn an_organiser_reads_their_trainer_s_report_for_their_classes_only(app: TestApp) {
    let app = app.with_demo();
    let ward = plan_class(&app, "doan.pleiku", "demo-organiser-1", "23575", "pleiku");
    // The province also puts the ward's trainer on its three-day class.
    let admin = app.demo_token("admin");
    let province_class =
        app.list_all(&admin, "/api/v1/courses?q=BD-BTPBT-2026")["items"][0].clone();
    let province_class = id_of(&province_class);
    app.create(
        &admin,
        "/api/v1/course-trainers",
        json!({"course_id": province_class, "user_id": ward.trainer}),
    );
    let path = format!("/api/v1/reports/trainers/{}", ward.trainer);
    let courses = |report: &Value| -> BTreeSet<String> {
        report["courses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["course_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let seen_by_organiser = app.get_ok(&ward.organiser, &path);
    assert_eq!(
        courses(&seen_by_organiser),
        BTreeSet::from([ward.course.clone()]),
        "the organiser reads the trainer in their own classes only"
    );
    let own = &seen_by_organiser["courses"][0];
    assert_eq!(own["sessions"], 1);
    assert_eq!(own["attendance_recorded"], 1, "the one mark applied");
    assert_eq!(own["open_quarantined"], 1, "the one mark refused");
    assert_eq!(seen_by_organiser["totals"]["attendance_recorded"], 1);

    let seen_by_admin = app.get_ok(&admin, &path);
    assert_eq!(
        courses(&seen_by_admin),
        BTreeSet::from([ward.course.clone(), province_class.clone()]),
        "the province reads every class of the trainer"
    );
    let sibling = app.demo_token("doan.thongnhat");
    app.get(&sibling, &path).expect(404);
}

/// A ward's organiser deletes a class planned by mistake, before any roll was taken: its
/// enrollments go with it, removed through the one writer like every other write of a synced
/// record: each removal carries a server stamp newer than the enrollment's own stamps (a
/// tombstone written beside the writer would leave the creation's stamp on `deleted`).
fn a_deleted_class_takes_its_enrollments_through_the_one_writer(app: TestApp) {
    let app = app.with_demo();
    let organiser = app.token("doan.pleiku", "demo-organiser-1");
    let unit = unit_id(&app, &organiser, "23575");
    let people = app.list_all(&organiser, &format!("/api/v1/people?unit_id={unit}"));
    let course = id_of(&app.create(
        &organiser,
        "/api/v1/courses",
        json!({"title": "Lớp tạo nhầm", "organizing_unit_id": unit,
               "management_level": "commune", "start_date": "2026-12-10", "end_date": "2026-12-10"}),
    ));
    let enrollments: Vec<String> = people["items"].as_array().unwrap()[..2]
        .iter()
        .map(|person| {
            id_of(&app.create(
                &organiser,
                "/api/v1/enrollments",
                json!({"course_id": course, "person_id": id_of(person)}),
            ))
        })
        .collect();
    let stored = |ids: &[String]| -> Vec<Stored> {
        let mut conn = app.pool.get().unwrap();
        records::rows_by_id(&mut conn, Writable::Enrollments, ids).unwrap()
    };
    let before = stored(&enrollments);
    assert_eq!(before.len(), 2);

    app.delete(&organiser, &format!("/api/v1/courses/{course}"))
        .expect(204);

    let listed = app.list_all(
        &organiser,
        &format!("/api/v1/enrollments?course_id={course}"),
    );
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    for (was, now) in before.iter().zip(stored(&enrollments)) {
        assert_eq!(was.row.id(), now.row.id());
        assert!(
            now.row.fields()[DELETED_FIELD] == json!(true),
            "{:?}",
            now.row
        );
        let created = &was.stamps["status"];
        let removed = &now.stamps[DELETED_FIELD];
        assert!(
            removed > created,
            "removal {removed:?} after creation {created:?}"
        );
        assert_eq!(removed.node, created.node, "both are the server's stamps");
        assert_eq!(
            now.stamps["status"], *created,
            "the removal stamps nothing else"
        );
    }
}

/// The old Phường Thống Nhất (code 23578) was merged into the new ward on 1 July 2025: its
/// organiser may still record a class it held before (history survives the merge), but a class
/// after the merge is the new ward's, and naming the old unit is refused with nothing written.
fn a_class_is_organised_by_a_unit_in_force_on_its_dates(app: TestApp) {
    let app = app.with_demo();
    let organiser = app.token("doan.thongnhat", "demo-organiser-2");
    let old_ward = unit_id(&app, &organiser, "23578");
    let class = |unit: &str, day: &str| {
        json!({"title": "Lớp bồi dưỡng chi đoàn", "organizing_unit_id": unit,
               "management_level": "commune", "start_date": day, "end_date": day})
    };
    let before = app.list_all(&organiser, "/api/v1/courses")["total"].clone();
    app.post(
        &organiser,
        "/api/v1/courses",
        &class(&old_ward, "2026-12-20"),
    )
    .expect_error(422, "validation_failed")
    .expect_detail("organizing_unit_id", "unit_not_in_force");
    assert_eq!(app.list_all(&organiser, "/api/v1/courses")["total"], before);
    app.post(
        &organiser,
        "/api/v1/courses",
        &class(&old_ward, "2025-05-10"),
    )
    .expect(201);
}
