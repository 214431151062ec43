//! The admin API: create, read, update (ETag/If-Match), list (paged, filtered, sorted), delete,
//! and the refusal of bad input without changing anything.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::{Backend, TestApp, id_of, item_fields, strings_of};

backend_tests!(
    units_go_through_their_whole_life,
    stale_writes_are_refused_and_change_nothing,
    bad_bodies_get_clear_errors_and_change_nothing,
    list_parameters_are_checked,
    names_are_stored_nfc_and_searched_without_diacritics,
    a_class_is_planned_and_attendance_recorded,
    pairs_stay_unique_and_revive_after_removal,
    records_in_use_cannot_be_deleted,
    clients_may_choose_ids,
    an_id_taken_in_another_class_answers_as_one_taken_in_ones_own,
);

fn unit(code: &str, name: &str) -> Value {
    json!({"code": code, "name": name, "kind": "commune"})
}

fn count(app: &TestApp, token: &str, path: &str) -> i64 {
    app.get_ok(token, path)["total"].as_i64().unwrap()
}

fn units_go_through_their_whole_life(app: TestApp) {
    let admin = app.admin_token();
    let province_id = id_of(&app.create(
        &admin,
        "/api/v1/units",
        json!({"code": "52", "name": "Tỉnh Gia Lai", "kind": "province"}),
    ));
    let mut body = unit("23590", "Xã Biển Hồ");
    body["parent_id"] = json!(province_id);
    body["valid_from"] = json!("2025-07-01");
    let created = app.post(&admin, "/api/v1/units", &body).expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/units/{id}").as_str())
    );
    let etag = created.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", created.json["rev"]));

    let path = format!("/api/v1/units/{id}");
    let fetched = app.get(&admin, &path).expect(200);
    assert_eq!(fetched.json, created.json);
    let cached = app.call_with(
        "GET",
        &path,
        Some(&admin),
        None,
        &[("If-None-Match", &etag)],
    );
    assert_eq!(cached.status, 304);

    body["name"] = json!("Xã Biển Hồ mới");
    let updated = app.put_if_match(&admin, &path, &etag, &body).expect(200);
    assert_eq!(updated.json["name"], "Xã Biển Hồ mới");
    assert!(updated.json["rev"].as_i64() > created.json["rev"].as_i64());
    assert_eq!(updated.json["created_at"], created.json["created_at"]);

    let children = app
        .get(&admin, &format!("/api/v1/units?parent_id={province_id}"))
        .expect(200);
    assert_eq!(children.json["total"], 1);
    app.delete(&admin, &format!("/api/v1/units/{province_id}"))
        .expect_error(409, "unit_in_use");

    app.delete(&admin, &path).expect(204);
    app.get(&admin, &path).expect(404);
    app.delete(&admin, &path).expect(404);
    // The code is free again once the unit is gone.
    app.post(&admin, "/api/v1/units", &unit("23590", "Xã Biển Hồ"))
        .expect(201);
    app.post(&admin, "/api/v1/units", &unit("23590", "Khác"))
        .expect_error(409, "duplicate_code");
}

fn stale_writes_are_refused_and_change_nothing(app: TestApp) {
    let admin = app.admin_token();
    let created = app
        .post(&admin, "/api/v1/units", &unit("03001", "Phường Pleiku"))
        .expect(201);
    let path = format!("/api/v1/units/{}", created.json["id"].as_str().unwrap());
    let first_etag = created.header("etag").unwrap().to_owned();
    app.put_if_match(&admin, &path, &first_etag, &unit("03001", "Tên A"))
        .expect(200);
    let stale = app.put_if_match(&admin, &path, &first_etag, &unit("03001", "Tên B"));
    let stale = stale.expect_error(412, "precondition_failed");
    let current = app.get(&admin, &path).expect(200);
    assert_eq!(current.json["name"], "Tên A");
    assert_eq!(stale.json["details"]["current_rev"], current.json["rev"]);
    app.delete_if_match(&admin, &path, "\"1\"").expect(412);
    app.put_if_match(&admin, &path, "\"garbage\"", &unit("03001", "Tên C"))
        .expect(412);
    app.get(&admin, &path).expect(200);
}

fn bad_bodies_get_clear_errors_and_change_nothing(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.max_json_bytes = 4096);
    let admin = app.admin_token();
    let send = |body: &[u8], content_type: &str| {
        app.post_bytes(&admin, "/api/v1/units", body, content_type)
    };
    let malformed = send(b"{\"code\": ", "application/json");
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "malformed_json")
    );
    let wrong_type = send(
        br#"{"code": 5, "name": "x", "kind": "commune"}"#,
        "application/json",
    );
    assert_eq!(
        (wrong_type.status, wrong_type.code()),
        (422, "validation_failed")
    );
    let server_owned = send(
        br#"{"code": "1", "name": "x", "kind": "commune", "rev": 99}"#,
        "application/json",
    );
    assert_eq!(server_owned.status, 422);
    assert!(
        server_owned.json["message"]
            .as_str()
            .unwrap()
            .contains("rev"),
        "{}",
        server_owned.text
    );
    let not_json = send(b"code=1", "application/x-www-form-urlencoded");
    assert_eq!(
        (not_json.status, not_json.code()),
        (415, "unsupported_media_type")
    );
    let big = format!(
        r#"{{"code": "1", "name": "{}", "kind": "commune"}}"#,
        "x".repeat(5000)
    );
    let too_large = send(big.as_bytes(), "application/json");
    assert_eq!(
        (too_large.status, too_large.code()),
        (413, "payload_too_large")
    );
    let invalid_utf8 = send(
        b"{\"code\": \"\xff\xfe\", \"name\": \"x\", \"kind\": \"commune\"}",
        "application/json",
    );
    assert_eq!(invalid_utf8.status, 400);
    let invalid = app
        .post(&admin, "/api/v1/units", &json!({"code": "bad code!", "name": "  ", "kind": "county", "valid_from": "2025-02-30", "parent_id": "nope"}))
        .expect(422);
    assert_eq!(
        strings_of(&invalid.json["details"], "field"),
        ["code", "name", "kind", "parent_id", "valid_from"]
    );
    let nul = app.post(
        &admin,
        "/api/v1/units",
        &json!({"code": "1", "name": "a\u{0}b", "kind": "commune"}),
    );
    assert_eq!(
        nul.expect(422).json["details"][0]["code"],
        "invalid_characters"
    );
    let unknown_parent = json!({"code": "1", "name": "x", "kind": "commune", "parent_id": "0196f4e2-0000-7000-8000-000000000000"});
    let unknown_parent = app
        .post(&admin, "/api/v1/units", &unknown_parent)
        .expect(422);
    assert_eq!(unknown_parent.json["details"][0]["code"], "unknown_unit");
    assert_eq!(
        count(&app, &admin, "/api/v1/units"),
        0,
        "nothing was written"
    );
}

fn list_parameters_are_checked(app: TestApp) {
    let admin = app.admin_token();
    for (code, name) in [
        ("A1", "Xã Ý Tý"),
        ("B2", "Phường Bắc Lệnh"),
        ("C3", "Xã A Mú Sung"),
        ("D4", "Xã Đồng Tuyển"),
    ] {
        app.post(&admin, "/api/v1/units", &unit(code, name))
            .expect(201);
    }
    let names = |path: &str| -> Vec<String> {
        let page = app.get(&admin, path).expect(200);
        item_fields(&page.json, "name")
    };
    assert_eq!(
        names("/api/v1/units?sort=code&limit=2"),
        ["Xã Ý Tý", "Phường Bắc Lệnh"]
    );
    assert_eq!(
        names("/api/v1/units?sort=code&limit=2&offset=2"),
        ["Xã A Mú Sung", "Xã Đồng Tuyển"]
    );
    assert_eq!(names("/api/v1/units?sort=-code&limit=1"), ["Xã Đồng Tuyển"]);
    // Name order ignores diacritics: "Xã Đồng" sorts with "Xa D…", before "Xã Ý".
    assert_eq!(
        names("/api/v1/units?sort=name"),
        [
            "Phường Bắc Lệnh",
            "Xã A Mú Sung",
            "Xã Đồng Tuyển",
            "Xã Ý Tý"
        ]
    );
    assert_eq!(names("/api/v1/units?q=dong%20tuyen"), ["Xã Đồng Tuyển"]);
    for bad in [
        "limit=0",
        "limit=-1",
        "limit=501",
        "offset=-5",
        "sort=password",
    ] {
        let response = app.get(&admin, &format!("/api/v1/units?{bad}"));
        assert_eq!(
            (response.status, response.code()),
            (422, "validation_failed"),
            "{bad}"
        );
    }
    for bad in ["limit=abc", "limit=99999999999999999999", "colour=red"] {
        let response = app.get(&admin, &format!("/api/v1/units?{bad}"));
        assert_eq!(
            (response.status, response.code()),
            (400, "invalid_query"),
            "{bad}"
        );
    }
}

fn names_are_stored_nfc_and_searched_without_diacritics(app: TestApp) {
    let admin = app.admin_token();
    let decomposed = "Nguye\u{302}\u{303}n Va\u{306}n A";
    let person = json!({"full_name": decomposed, "position": "secretary", "phone": "+84 912 345 678", "gender": "male", "birth_date": "1995-03-02"});
    let created = app.post(&admin, "/api/v1/people", &person).expect(201);
    assert_eq!(created.json["full_name"], "Nguyễn Văn A");
    assert_eq!(created.json["phone"], "0912345678");
    for query in [
        "nguyen%20van%20a",
        "NGUY%E1%BB%84N",
        "Nguye%CC%82%CC%83n",
        "van%20a",
        "0912345",
    ] {
        let found = app
            .get(&admin, &format!("/api/v1/people?q={query}"))
            .expect(200);
        assert_eq!(found.json["total"], 1, "query {query}");
    }
    let other = json!({"full_name": "Trần Thị Bình", "position": "deputy_secretary"});
    app.post(&admin, "/api/v1/people", &other).expect(201);
    let nobody = app.get(&admin, "/api/v1/people?q=le%20van").expect(200);
    assert_eq!(nobody.json["total"], 0);
    // Rosters sort by given name: "A" before "Bình".
    let sorted = app.get(&admin, "/api/v1/people?sort=name").expect(200);
    assert_eq!(sorted.json["items"][0]["full_name"], "Nguyễn Văn A");
    let bad_phone = json!({"full_name": "X", "position": "member", "phone": "12345"});
    app.post(&admin, "/api/v1/people", &bad_phone).expect(422);
}

/// Builds a course with one trainer, one session and one enrolled person; returns their ids.
pub struct Class {
    pub course: String,
    pub session: String,
    pub person: String,
    pub trainer: String,
}

pub fn plan_class(app: &TestApp, admin: &str, trainer_username: &str) -> Class {
    let trainer = app.create_user(trainer_username, "trainer", None);
    let course = id_of(&app.create(admin, "/api/v1/courses", json!({"title": "Lớp bồi dưỡng Bí thư", "management_level": "province", "start_date": "2026-12-08", "end_date": "2026-12-10", "place": "Trường Chính trị tỉnh"})));
    app.post(
        admin,
        "/api/v1/course-trainers",
        &json!({"course_id": course, "user_id": trainer}),
    )
    .expect(201);
    let session = id_of(&app.create(admin, "/api/v1/sessions", json!({"course_id": course, "topic": "Công tác tư tưởng trên không gian mạng", "starts_at": "2026-12-08T08:00:00+07:00", "ends_at": "2026-12-08T11:30:00+07:00", "trainer_id": trainer})));
    let person = id_of(&app.create(
        admin,
        "/api/v1/people",
        json!({"full_name": "Vàng Thị Mỷ", "position": "secretary"}),
    ));
    app.post(
        admin,
        "/api/v1/enrollments",
        &json!({"course_id": course, "person_id": person}),
    )
    .expect(201);
    Class {
        course,
        session,
        person,
        trainer,
    }
}

fn a_class_is_planned_and_attendance_recorded(app: TestApp) {
    let admin = app.admin_token();
    let class = plan_class(&app, &admin, "hoa.nguyen");
    let session = app
        .get(&admin, &format!("/api/v1/sessions/{}", class.session))
        .expect(200);
    assert_eq!(session.json["starts_at"], "2026-12-08T01:00:00.000Z");
    let trainer_login = app.login("hoa.nguyen", "trainer-password");
    let trainer = trainer_login["access_token"].as_str().unwrap();
    let record = json!({"session_id": class.session, "person_id": class.person, "status": "late", "checked_in_at": "2026-12-08T08:20:00+07:00", "note": "Đến muộn do đường đèo"});
    let created = app.post(trainer, "/api/v1/attendance", &record).expect(201);
    assert_eq!(created.json["recorded_by"], class.trainer.as_str());
    assert_eq!(created.json["recorded_device"], trainer_login["device_id"]);
    let mut forged = record.clone();
    forged["recorded_by"] = json!("0196f4e2-0000-7000-8000-000000000000");
    app.post(trainer, "/api/v1/attendance", &forged).expect(422);
    app.post(trainer, "/api/v1/attendance", &record)
        .expect_error(409, "already_recorded");
    let path = format!(
        "/api/v1/attendance/{}",
        created.json["id"].as_str().unwrap()
    );
    let mut present = record.clone();
    present["status"] = json!("present");
    let updated = app.put(&admin, &path, &present).expect(200);
    assert_eq!(updated.json["status"], "present");
    let listed = app
        .get(
            trainer,
            &format!("/api/v1/attendance?course_id={}", class.course),
        )
        .expect(200);
    assert_eq!(listed.json["total"], 1);
    let stranger = app
        .post(
            &admin,
            "/api/v1/people",
            &json!({"full_name": "Lò Văn Khánh", "position": "member"}),
        )
        .expect(201);
    let not_enrolled =
        json!({"session_id": class.session, "person_id": stranger.json["id"], "status": "present"});
    let refused = app
        .post(trainer, "/api/v1/attendance", &not_enrolled)
        .expect(422);
    assert_eq!(refused.json["details"][0]["code"], "not_enrolled");
    let backwards = json!({"course_id": class.course, "topic": "x", "starts_at": "2026-12-08T10:00:00Z", "ends_at": "2026-12-08T09:00:00Z"});
    app.post(&admin, "/api/v1/sessions", &backwards).expect(422);
}

fn pairs_stay_unique_and_revive_after_removal(app: TestApp) {
    let admin = app.admin_token();
    let class = plan_class(&app, &admin, "tuan.le");
    let pair = json!({"course_id": class.course, "person_id": class.person});
    app.post(&admin, "/api/v1/enrollments", &pair)
        .expect_error(409, "already_enrolled");
    let listed = app
        .get(
            &admin,
            &format!("/api/v1/enrollments?course_id={}", class.course),
        )
        .expect(200);
    let enrollment = listed.json["items"][0].clone();
    let path = format!("/api/v1/enrollments/{}", enrollment["id"].as_str().unwrap());
    app.delete(&admin, &path).expect(204);
    let revived = app.post(&admin, "/api/v1/enrollments", &pair).expect(201);
    assert_eq!(
        revived.json["id"], enrollment["id"],
        "one record per (course, person)"
    );
    let mut moved = pair.clone();
    moved["person_id"] = json!("0196f4e2-0000-7000-8000-000000000000");
    app.put(&admin, &path, &moved).expect(422);
    let assign = json!({"course_id": class.course, "user_id": class.trainer});
    app.post(&admin, "/api/v1/course-trainers", &assign)
        .expect_error(409, "already_assigned");
    // Removing the trainer from the course also takes them off its sessions.
    let assignments = app.get_ok(
        &admin,
        &format!("/api/v1/course-trainers?course_id={}", class.course),
    );
    let assignment = assignments["items"][0]["id"].as_str().unwrap();
    app.delete(&admin, &format!("/api/v1/course-trainers/{assignment}"))
        .expect(204);
    let session = app.get_ok(&admin, &format!("/api/v1/sessions/{}", class.session));
    assert!(session["trainer_id"].is_null());
    app.post(&admin, "/api/v1/course-trainers", &assign)
        .expect(201);
    let not_trainer = app.create_user("hocvien.x", "admin", None);
    let wrong = json!({"course_id": class.course, "user_id": not_trainer});
    app.post(&admin, "/api/v1/course-trainers", &wrong)
        .expect(422);
}

fn records_in_use_cannot_be_deleted(app: TestApp) {
    let admin = app.admin_token();
    let class = plan_class(&app, &admin, "trainer.z");
    let person = format!("/api/v1/people/{}", class.person);
    app.delete(&admin, &person)
        .expect_error(409, "person_in_use");
    let record =
        json!({"session_id": class.session, "person_id": class.person, "status": "present"});
    app.post(&admin, "/api/v1/attendance", &record).expect(201);
    let session = format!("/api/v1/sessions/{}", class.session);
    app.delete(&admin, &session)
        .expect_error(409, "session_has_attendance");
    let course = format!("/api/v1/courses/{}", class.course);
    app.delete(&admin, &course)
        .expect_error(409, "course_has_attendance");
    app.get(&admin, &session).expect(200);
    // A course without attendance takes its sessions, enrollments and assignments with it.
    let other = plan_class(&app, &admin, "trainer.y");
    app.delete(&admin, &format!("/api/v1/courses/{}", other.course))
        .expect(204);
    app.get(&admin, &format!("/api/v1/sessions/{}", other.session))
        .expect(404);
    assert_eq!(
        count(
            &app,
            &admin,
            &format!("/api/v1/enrollments?course_id={}", other.course)
        ),
        0
    );
    assert_eq!(
        count(
            &app,
            &admin,
            &format!("/api/v1/course-trainers?course_id={}", other.course)
        ),
        0
    );
}

fn clients_may_choose_ids(app: TestApp) {
    let admin = app.admin_token();
    let id = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
    let mut body = unit("X1", "Đặc khu Phú Quý");
    body["id"] = json!(id);
    body["kind"] = json!("special_zone");
    let created = app.post(&admin, "/api/v1/units", &body).expect(201);
    assert_eq!(created.json["id"], id.to_lowercase());
    let again = app.post(
        &admin,
        "/api/v1/units",
        &json!({"id": id, "code": "X2", "name": "b", "kind": "ward"}),
    );
    again.expect_error(409, "already_exists");
    let bad = app.post(
        &admin,
        "/api/v1/units",
        &json!({"id": "x", "code": "X3", "name": "b", "kind": "ward"}),
    );
    assert_eq!(bad.expect(422).json["details"][0]["code"], "invalid_id");
    app.get(&admin, "/api/v1/units/not-a-uuid").expect(404);
    let mismatch = app.put(&admin, &format!("/api/v1/units/{}", id.to_lowercase()), &json!({"id": "0196f4e2-0000-7000-8000-000000000000", "code": "X1", "name": "b", "kind": "ward"}));
    assert_eq!(
        mismatch.expect(422).json["details"][0]["code"],
        "id_mismatch"
    );
}

/// What a database driver says about a broken constraint; none of it may reach an answer.
const DRIVER_WORDS: [&str; 6] = [
    "UNIQUE",
    "constraint",
    "duplicate key",
    "attendance.id",
    "pkey",
    "violates",
];

fn an_id_taken_in_another_class_answers_as_one_taken_in_ones_own(app: TestApp) {
    let admin = app.admin_token();
    let mine = plan_class(&app, &admin, "trainer.mine");
    let theirs = plan_class(&app, &admin, "trainer.theirs");
    let second_person = app
        .post(
            &admin,
            "/api/v1/people",
            &json!({"full_name": "Rơ Mah Thị Hương", "position": "deputy_secretary"}),
        )
        .expect(201)
        .json["id"]
        .clone();
    app.post(
        &admin,
        "/api/v1/enrollments",
        &json!({"course_id": mine.course, "person_id": second_person}),
    )
    .expect(201);
    let elsewhere = "0196f4e2-1111-7000-8000-00000000abcd";
    app.post(&admin, "/api/v1/attendance", &json!({"id": elsewhere, "session_id": theirs.session, "person_id": theirs.person, "status": "present"}))
    .expect(201);
    let trainer = app.token("trainer.mine", "trainer-password");
    let own = "0196f4e2-2222-7000-8000-00000000abcd";
    app.post(&trainer, "/api/v1/attendance", &json!({"id": own, "session_id": mine.session, "person_id": mine.person, "status": "present"}))
    .expect(201);
    let record_with = |id: &str| {
        app.post(&trainer, "/api/v1/attendance", &json!({"id": id, "session_id": mine.session, "person_id": second_person, "status": "late"}))
    };
    let taken_here = record_with(own).expect(409);
    let taken_elsewhere = record_with(elsewhere).expect_error(409, "already_exists");
    // The same answer whoever holds the id: nothing about the other class shows.
    assert_eq!(taken_elsewhere.json, taken_here.json);
    for word in DRIVER_WORDS {
        assert!(
            !taken_elsewhere.text.contains(word),
            "driver text in the answer: {}",
            taken_elsewhere.text
        );
    }
    // Nothing was written: the person still has no record, and a fresh id works.
    let listed = app
        .get(
            &trainer,
            &format!("/api/v1/attendance?course_id={}", mine.course),
        )
        .expect(200);
    assert_eq!(listed.json["total"], 1);
    record_with("0196f4e2-3333-7000-8000-00000000abcd").expect(201);
}
