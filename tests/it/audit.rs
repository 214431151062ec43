//! The audit trail: each kind of action leaves exactly one entry naming the account, its device,
//! the client address and the object; trainers' pushes leave none; the list filters and pages,
//! exports as CSV and XLSX, is closed to everyone but administrators, holds no password or
//! token, and forgets entries older than the retention.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use diemdanh::db::schema::{audit_log, refresh_tokens, users};
use diemdanh::domain::audit::{Audit, AuditEntry};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::device::Device;
use crate::support::sheets::csv_rows;
use crate::support::sync::{stamp_a_minute_ago, upsert_attendance};
use crate::support::{TestApp, id_of, items};

backend_tests!(
    logins_and_failed_logins_are_recorded,
    admin_writes_and_account_administration_are_recorded,
    imports_merges_and_sync_review_are_recorded_but_pushes_are_not,
    the_trail_is_filtered_paged_and_exported_to_administrators_only,
    no_password_or_token_is_ever_stored,
    entries_older_than_the_retention_are_pruned,
    the_command_line_is_recorded_with_no_account,
);

/// Tests reach the server from here; `client_address` reads it from the connection.
const ADDRESS: &str = "127.0.0.1";

/// A sign-in from a device named "test device" (as `app.login`'s).
fn sign_in(app: &TestApp, username: &str, password: &str) -> Device {
    Device::sign_in(app, username, password, "test device")
}

fn admin(app: &TestApp) -> Device {
    app.create_user("root.admin", "admin", None);
    sign_in(app, "root.admin", "admin-password")
}

fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = app.post(token, path, &body);
    assert!(
        response.status == 200 || response.status == 201,
        "POST {path}: {} {}",
        response.status,
        response.text
    );
    response.json
}

/// The entries matching a query string, newest first.
fn entries(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    items(&app.get_ok(token, &format!("/api/v1/audit?limit=500&{query}")))
        .cloned()
        .collect()
}

/// The one entry matching a query string.
#[track_caller]
fn only(app: &TestApp, token: &str, query: &str) -> Value {
    let mut found = entries(app, token, query);
    assert_eq!(found.len(), 1, "{query}: {found:#?}");
    found.remove(0)
}

/// The one entry matching a query string, made by `by`'s account and device (an administrator,
/// who reads the trail).
#[track_caller]
fn only_by(app: &TestApp, by: &Device, query: &str) -> Value {
    let entry = only(app, &by.token, query);
    assert_by(&entry, by);
    entry
}

/// The entry was made by this session's account and device, from the test's address.
#[track_caller]
fn assert_by(entry: &Value, by: &Device) {
    assert_eq!(entry["user_id"], json!(by.user_id), "{entry}");
    assert_eq!(entry["device_id"], json!(by.device_id), "{entry}");
    assert_eq!(entry["address"], ADDRESS, "{entry}");
}

/// A province and two communes, a course with a session, a trainer assigned and two people
/// enrolled; returns (province, communes, course, session, trainer, enrolled people).
struct Class {
    communes: [String; 2],
    course: String,
    session: String,
    trainer: String,
    enrolled: [String; 2],
    outsider: String,
}

fn class(app: &TestApp, admin: &Device) -> Class {
    let token = admin.token.as_str();
    let province = id_of(&post(
        app,
        token,
        "/api/v1/units",
        json!({"code": "64", "name": "Tỉnh Gia Lai", "kind": "province"}),
    ));
    let commune = |code: &str, name: &str| {
        id_of(&post(
            app,
            token,
            "/api/v1/units",
            json!({"code": code, "name": name, "kind": "commune", "parent_id": province}),
        ))
    };
    let communes = [
        commune("23590", "Xã Ia Hrú"),
        commune("23593", "Xã Ia Rong"),
    ];
    let person = |name: &str| {
        id_of(&post(
            app,
            token,
            "/api/v1/people",
            json!({"full_name": name, "position": "secretary", "unit_id": communes[0]}),
        ))
    };
    let enrolled = [person("Rơ Châm H'Bia"), person("Nguyễn Văn Hùng")];
    let outsider = person("Ksor Y Đạt");
    let trainer = app.create_user("co.lan", "trainer", None);
    let course = id_of(&post(
        app,
        token,
        "/api/v1/courses",
        json!({"title": "Kỹ năng công tác Đội", "management_level": "province",
            "start_date": "2026-03-02", "end_date": "2026-03-03"}),
    ));
    post(
        app,
        token,
        "/api/v1/course-trainers",
        json!({"course_id": course, "user_id": trainer}),
    );
    let session = id_of(&post(
        app,
        token,
        "/api/v1/sessions",
        json!({"course_id": course, "topic": "Chuyên đề 1",
            "starts_at": "2026-03-02T08:00:00+07:00", "ends_at": "2026-03-02T11:00:00+07:00"}),
    ));
    for person in &enrolled {
        post(
            app,
            token,
            "/api/v1/enrollments",
            json!({"course_id": course, "person_id": person}),
        );
    }
    Class {
        communes,
        course,
        session,
        trainer,
        enrolled,
        outsider,
    }
}

fn logins_and_failed_logins_are_recorded(app: TestApp) {
    let admin = admin(&app);
    let trainer = app.create_user("co.lan", "trainer", None);
    let signed_in = sign_in(&app, "co.lan", "trainer-password");

    let login = only(
        &app,
        &admin.token,
        &format!("action=login&user_id={trainer}"),
    );
    assert_by(&login, &signed_in);
    assert_eq!(login["object_type"], "device");
    assert_eq!(login["object_id"], json!(signed_in.device_id));
    assert_eq!(login["username"], "co.lan");
    assert_eq!(login["details"]["device_name"], "test device");

    let attempt = |username: &str| {
        app.try_login(username, "not-the-password").expect(401);
    };
    attempt("co.lan");
    attempt("ai.do.khong.co");
    let failed = entries(&app, &admin.token, "action=login_failed");
    assert_eq!(failed.len(), 2, "{failed:#?}");
    let (unknown, wrong) = (&failed[0], &failed[1]);
    assert_eq!(unknown["user_id"], Value::Null);
    assert_eq!(unknown["username"], "ai.do.khong.co");
    assert_eq!(unknown["object_type"], Value::Null);
    assert_eq!(unknown["details"]["reason"], "unknown_user");
    assert_eq!(wrong["user_id"], json!(trainer));
    assert_eq!(wrong["username"], "co.lan");
    assert_eq!(wrong["object_id"], json!(trainer));
    assert_eq!(wrong["details"]["reason"], "wrong_password");
    for entry in &failed {
        assert_eq!(entry["address"], ADDRESS);
        assert_eq!(entry["device_id"], Value::Null);
    }
    // A failed login changes nothing else, yet its entry stays.
    assert_eq!(
        entries(&app, &admin.token, &format!("user_id={trainer}")).len(),
        2,
        "the login and the wrong password"
    );

    app.post_empty(&signed_in.token, "/api/v1/auth/logout")
        .expect(204);
    let logout = only(&app, &admin.token, "action=logout");
    assert_by(&logout, &signed_in);

    // The right password of a disabled account: refused, and recorded as a failed login.
    app.patch(
        &admin.token,
        &format!("/api/v1/users/{trainer}"),
        &json!({"disabled": true}),
    )
    .expect(200);
    app.try_login("co.lan", "trainer-password")
        .expect_error(403, "account_disabled");
    let failed = entries(&app, &admin.token, "action=login_failed");
    assert_eq!(failed.len(), 3, "{failed:#?}");
    let disabled = &failed[0];
    assert_eq!(disabled["user_id"], json!(trainer));
    assert_eq!(disabled["address"], ADDRESS);
    assert_eq!(disabled["details"]["reason"], "account_disabled");
}

fn admin_writes_and_account_administration_are_recorded(app: TestApp) {
    let admin = admin(&app);
    let course = post(
        &app,
        &admin.token,
        "/api/v1/courses",
        json!({"title": "Bảo vệ nền tảng tư tưởng của Đảng trên không gian mạng",
            "management_level": "province", "start_date": "2026-05-04", "end_date": "2026-05-06"}),
    );
    let course_id = id_of(&course);
    let object = format!("object_type=course&object_id={course_id}");
    let created = only_by(&app, &admin, &format!("action=created&{object}"));
    assert_eq!(created["username"], "root.admin");
    assert_eq!(created["details"]["fields"]["start_date"], "2026-05-04");
    assert_eq!(
        created["details"]["fields"]["title"],
        "Bảo vệ nền tảng tư tưởng của Đảng trên không gian mạng"
    );
    assert!(created["details"]["fields"].get("rev").is_none());

    let mut changed = course.clone();
    for field in ["id", "rev", "created_at", "updated_at"] {
        changed.as_object_mut().unwrap().remove(field);
    }
    changed["place"] = json!("Hội trường Tỉnh đoàn, Quy Nhơn");
    let etag = format!("\"{}\"", course["rev"]);
    app.put_if_match(
        &admin.token,
        &format!("/api/v1/courses/{course_id}"),
        &etag,
        &changed,
    )
    .expect(200);
    let updated = only_by(&app, &admin, &format!("action=updated&{object}"));
    assert_eq!(
        updated["details"]["fields"],
        json!({"place": "Hội trường Tỉnh đoàn, Quy Nhơn"}),
        "only what changed"
    );
    // A refused write (a stale If-Match) leaves no entry.
    app.put_if_match(
        &admin.token,
        &format!("/api/v1/courses/{course_id}"),
        &etag,
        &changed,
    )
    .expect(412);
    assert_eq!(entries(&app, &admin.token, &object).len(), 2);
    app.delete(&admin.token, &format!("/api/v1/courses/{course_id}"))
        .expect(204);
    assert_by(
        &only(&app, &admin.token, &format!("action=deleted&{object}")),
        &admin,
    );

    // Accounts and devices.
    let user = post(
        &app,
        &admin.token,
        "/api/v1/users",
        json!({"username": "ksor.h.nhung", "role": "trainer", "password": "mat-khau-ban-dau-1"}),
    );
    let user_id = id_of(&user);
    let user_object = format!("object_type=user&object_id={user_id}");
    let created = only_by(&app, &admin, &format!("action=user_created&{user_object}"));
    assert_eq!(created["details"]["username"], "ksor.h.nhung");
    assert_eq!(created["details"]["role"], "trainer");
    app.post(
        &admin.token,
        &format!("/api/v1/users/{user_id}/password"),
        &json!({"new_password": "mat-khau-moi-2026"}),
    )
    .expect(204);
    assert_by(
        &only(
            &app,
            &admin.token,
            &format!("action=password_reset&{user_object}"),
        ),
        &admin,
    );
    let phone = sign_in(&app, "ksor.h.nhung", "mat-khau-moi-2026");
    app.post_empty(
        &admin.token,
        &format!("/api/v1/devices/{}/revoke", phone.device_id),
    )
    .expect(200);
    let revoked = only_by(
        &app,
        &admin,
        &format!(
            "action=device_revoked&object_type=device&object_id={}",
            phone.device_id
        ),
    );
    assert_eq!(revoked["details"]["user_id"], json!(user_id));
    app.patch(
        &admin.token,
        &format!("/api/v1/users/{user_id}"),
        &json!({"disabled": true}),
    )
    .expect(200);
    let disabled = only_by(&app, &admin, &format!("action=user_updated&{user_object}"));
    assert_eq!(disabled["details"], json!({"disabled": true}));
}

fn imports_merges_and_sync_review_are_recorded_but_pushes_are_not(app: TestApp) {
    let admin = admin(&app);
    let class = class(&app, &admin);

    // A roster imported into the course.
    let roster = "Họ và tên,Chức vụ,Đơn vị\nSiu H'Mai,Bí thư,Xã Ia Hrú\n";
    app.import_csv(
        &admin.token,
        &format!("?dry_run=false&course_id={}", class.course),
        roster.as_bytes(),
    )
    .expect(200);
    let imported = only_by(&app, &admin, "action=import_applied");
    assert_eq!(imported["object_type"], "course");
    assert_eq!(imported["object_id"], json!(class.course));
    assert_eq!(imported["details"]["summary"]["created"], 1);
    assert_eq!(imported["details"]["summary"]["enrolled"], 1);
    assert_eq!(imported["details"]["format"], "csv");
    // A dry run writes nothing, so it records nothing.
    app.import_csv(&admin.token, "", roster.as_bytes())
        .expect(200);
    assert_eq!(
        entries(&app, &admin.token, "action=import_applied").len(),
        1
    );

    // A unit merge and a rename.
    let [ia_hru, ia_rong] = &class.communes;
    post(
        &app,
        &admin.token,
        "/api/v1/units/merge",
        json!({"source_ids": [ia_rong], "target_id": ia_hru, "effective_date": "2025-07-01"}),
    );
    let merged = only_by(
        &app,
        &admin,
        &format!("action=units_merged&object_type=unit&object_id={ia_hru}"),
    );
    assert_eq!(merged["details"]["source_ids"], json!([ia_rong]));
    assert_eq!(merged["details"]["effective_date"], "2025-07-01");
    post(
        &app,
        &admin.token,
        &format!("/api/v1/units/{ia_hru}/rename"),
        json!({"name": "Xã Ia Hrú mới", "effective_date": "2025-08-01"}),
    );
    let renamed = only(&app, &admin.token, "action=unit_renamed");
    assert_eq!(renamed["object_id"], json!(ia_hru));
    assert_eq!(renamed["details"]["name"], "Xã Ia Hrú mới");

    // The trainer pushes: one refused mutation (quarantined) and one that an older value from
    // the admin's device loses to (a conflict). Pushes themselves are not in the trail.
    let trainer = sign_in(&app, "co.lan", "trainer-password");
    let refused = app.push(
        &trainer.token,
        &[upsert_attendance(
            &uuid::Uuid::new_v4().to_string(),
            json!({"session_id": class.session, "person_id": class.outsider, "status": "present"}),
            &stamp_a_minute_ago(0),
        )],
    );
    assert_eq!(refused[0]["status"], "rejected", "{refused:?}");
    let disputed = uuid::Uuid::new_v4().to_string();
    app.push(
        &trainer.token,
        &[upsert_attendance(
            &disputed,
            json!({"session_id": class.session, "person_id": class.enrolled[0], "status": "late"}),
            &stamp_a_minute_ago(2000),
        )],
    );
    let stale = app.push(
        &admin.token,
        &[upsert_attendance(
            &disputed,
            json!({"status": "absent"}),
            &stamp_a_minute_ago(1000),
        )],
    );
    assert_eq!(stale[0]["status"], "merged");
    let by_trainer = entries(&app, &admin.token, &format!("user_id={}", class.trainer));
    assert_eq!(
        by_trainer
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["login"],
        "pushes are not in the trail"
    );

    let conflict = app.get_ok(&admin.token, "/api/v1/sync/conflicts?status=open")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &app,
        &admin.token,
        &format!("/api/v1/sync/conflicts/{conflict}/resolve"),
        json!({"value": "present"}),
    );
    let resolved = only_by(
        &app,
        &admin,
        &format!("action=conflict_resolved&object_type=conflict&object_id={conflict}"),
    );
    assert_eq!(resolved["details"]["field"], "status");
    assert_eq!(resolved["details"]["value"], "present");
    assert_eq!(resolved["details"]["record_id"], json!(disputed));

    let quarantined =
        app.get_ok(&admin.token, "/api/v1/sync/quarantine?status=open")["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.post_empty(
        &admin.token,
        &format!("/api/v1/sync/quarantine/{quarantined}/dismiss"),
    )
    .expect(200);
    let dismissed = only_by(
        &app,
        &admin,
        &format!(
            "action=quarantine_dismissed&object_type=quarantined_mutation&object_id={quarantined}"
        ),
    );
    assert_eq!(dismissed["details"]["collection"], "attendance");
    // Dismissed twice: refused, and still one entry.
    app.post_empty(
        &admin.token,
        &format!("/api/v1/sync/quarantine/{quarantined}/dismiss"),
    )
    .expect(409);
    assert_eq!(
        entries(&app, &admin.token, "action=quarantine_dismissed").len(),
        1
    );
}

fn the_trail_is_filtered_paged_and_exported_to_administrators_only(app: TestApp) {
    let admin = admin(&app);
    let mut courses = Vec::new();
    let mut times = Vec::new();
    for title in [
        "Phòng, chống tin giả trên mạng",
        "Kỹ năng cắm trại",
        "Tín dụng chính sách",
    ] {
        // Distinct milliseconds, so that `from` and `to` can split them.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let course = post(
            &app,
            &admin.token,
            "/api/v1/courses",
            json!({"title": title, "management_level": "province",
                "start_date": "2026-06-01", "end_date": "2026-06-01"}),
        );
        courses.push(id_of(&course));
        let entry = only(
            &app,
            &admin.token,
            &format!(
                "action=created&object_type=course&object_id={}",
                id_of(&course)
            ),
        );
        times.push(entry["at"].as_str().unwrap().to_owned());
    }
    let trainer = app.create_user("co.lan", "trainer", None);
    let trainer_session = sign_in(&app, "co.lan", "trainer-password");

    // Newest first; by user; by action and object type.
    let created = entries(&app, &admin.token, "action=created&object_type=course");
    let ids: Vec<&str> = created
        .iter()
        .map(|e| e["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [&courses[2], &courses[1], &courses[0]]);
    let by_trainer = entries(&app, &admin.token, &format!("user_id={trainer}"));
    assert_eq!(by_trainer.len(), 1);
    assert_eq!(by_trainer[0]["action"], "login");
    let by_admin = entries(&app, &admin.token, &format!("user_id={}", admin.user_id));
    assert_eq!(by_admin.len(), 4, "a login and three creations");

    // Paging: two pages of two and one, together every entry once.
    let page = |offset: usize| {
        app.get_ok(
            &admin.token,
            &format!("/api/v1/audit?action=created&limit=2&offset={offset}"),
        )
    };
    let (first, second) = (page(0), page(2));
    assert_eq!(first["total"], 3);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    let paged: Vec<&Value> = items(&first)
        .chain(second["items"].as_array().unwrap())
        .map(|e| &e["object_id"])
        .collect();
    let expected: Vec<&Value> = created.iter().map(|e| &e["object_id"]).collect();
    assert_eq!(paged, expected);

    // From (inclusive) and to (exclusive).
    let encode = |t: &str| t.replace('+', "%2B");
    let from = entries(
        &app,
        &admin.token,
        &format!("action=created&from={}", encode(&times[1])),
    );
    assert_eq!(from.len(), 2);
    let to = entries(
        &app,
        &admin.token,
        &format!("action=created&to={}", encode(&times[1])),
    );
    assert_eq!(to.len(), 1);
    assert_eq!(to[0]["object_id"], json!(courses[0]));

    // Bad filters: 422 with a stable code per field, nothing else said.
    for (query, field, code) in [
        ("from=yesterday", "from", "invalid_datetime"),
        ("to=2026-13-01T00:00:00Z", "to", "invalid_datetime"),
        ("action=hacked", "action", "invalid_value"),
        ("object_type=password", "object_type", "invalid_value"),
        ("user_id=42", "user_id", "invalid_id"),
        (
            "object_id=0192f0c0-0000-7000-8000-000000000000",
            "object_type",
            "required",
        ),
        (
            "from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z",
            "to",
            "invalid_range",
        ),
        ("limit=0", "limit", "out_of_range"),
    ] {
        let refused = app
            .get(&admin.token, &format!("/api/v1/audit?{query}"))
            .expect(422);
        assert_eq!(refused.code(), "validation_failed", "{query}");
        assert_eq!(refused.json["details"][0]["field"], field, "{query}");
        assert_eq!(refused.json["details"][0]["code"], code, "{query}");
    }

    // CSV: UTF-8 with BOM, a header and one row per entry, the formula-like title guarded.
    let (status, headers, body) =
        app.download("/api/v1/audit?format=csv&action=created", &admin.token, &[]);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.starts_with("text/csv"))
    );
    let rows = csv_rows(body);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0][5], "Thao tác");
    assert!(rows[1..].iter().all(|row| row[5] == "created"));
    assert_eq!(rows[3][7], courses[0]);
    assert_eq!(rows[3][2], "root.admin");
    assert!(
        rows[3][8].contains("Phòng, chống tin giả"),
        "{}",
        rows[3][8]
    );
    // A name typed at the login that a spreadsheet would run is guarded with an apostrophe.
    let typed = "=HYPERLINK(\"http://evil.example\",\"Mở\")";
    app.try_login(typed, "x").expect(401);
    let (_, _, body) = app.download(
        "/api/v1/audit?format=csv&action=login_failed",
        &admin.token,
        &[],
    );
    let guarded = csv_rows(body);
    assert_eq!(guarded.len(), 2, "a header and the entry: {guarded:?}");
    assert_eq!(guarded[1][2], format!("'{typed}"));

    // XLSX by the Accept header: the same entries.
    let (status, _, body) = app.download(
        "/api/v1/audit?action=created",
        &admin.token,
        &[(
            "Accept",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )],
    );
    assert_eq!(status, 200);
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(body)).expect("a workbook");
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let cell = |row: u32, col: u32| match sheet.get_value((row, col)) {
        Some(Data::String(s)) => s.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(sheet.height(), 4);
    assert_eq!(cell(0, 5), "Thao tác");
    assert_eq!(cell(1, 7), courses[2]);
    assert!(cell(3, 8).contains("Phòng, chống tin giả"));

    // Everyone else: 403, whatever the format or filter.
    for query in ["", "?format=csv", "?from=yesterday"] {
        app.get(&trainer_session.token, &format!("/api/v1/audit{query}"))
            .expect_error(403, "forbidden");
    }
}

fn no_password_or_token_is_ever_stored(app: TestApp) {
    let admin = admin(&app);
    let created_password = "mat-khau-ban-dau-1";
    let user = post(
        &app,
        &admin.token,
        "/api/v1/users",
        json!({"username": "ksor.h.nhung", "role": "trainer", "password": created_password}),
    );
    let phone = sign_in(&app, "ksor.h.nhung", created_password);
    let refreshed = app.refresh(&json!(phone.refresh_token)).expect(200).json;
    let changed_password = "mat-khau-cua-toi-2";
    app.post(
        refreshed["access_token"].as_str().unwrap(),
        "/api/v1/me/password",
        &json!({"current_password": created_password, "new_password": changed_password}),
    )
    .expect(204);
    // A wrong current password and a failed login typed with a password in the name field.
    app.post(
        refreshed["access_token"].as_str().unwrap(),
        "/api/v1/me/password",
        &json!({"current_password": "doan-sai", "new_password": "khong-quan-trong-1"}),
    )
    .expect(422);
    // The second refresh token used, then the first presented again: a copy. The device is
    // signed out and the reuse recorded.
    let last = app.refresh(&refreshed["refresh_token"]).expect(200).json;
    app.refresh(&json!(phone.refresh_token))
        .expect_error(401, "refresh_token_reused");
    let reused = only(&app, &admin.token, "action=refresh_token_reused");
    assert_eq!(reused["device_id"], json!(phone.device_id));
    assert_eq!(reused["address"], ADDRESS);
    let reset_password = "mat-khau-quan-tri-3";
    app.post(
        &admin.token,
        &format!("/api/v1/users/{}/password", id_of(&user)),
        &json!({"new_password": reset_password}),
    )
    .expect(204);

    let mut conn = app.pool.get().unwrap();
    let hashes: Vec<String> = users::table
        .select(users::password_hash)
        .load(&mut conn)
        .unwrap();
    let token_hashes: Vec<String> = refresh_tokens::table
        .select(refresh_tokens::token_hash)
        .load(&mut conn)
        .unwrap();
    let stored: Vec<AuditEntry> = audit_log::table
        .select(AuditEntry::as_select())
        .load(&mut conn)
        .unwrap();
    let actions: Vec<&str> = stored.iter().map(|entry| entry.action.as_str()).collect();
    for expected in [
        "user_created",
        "login",
        "password_changed",
        "login_failed",
        "password_reset",
        "refresh_token_reused",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let secrets = [
        created_password.to_owned(),
        changed_password.to_owned(),
        reset_password.to_owned(),
        "doan-sai".to_owned(),
        admin.token.clone(),
        admin.refresh_token.clone(),
        phone.token.clone(),
        phone.refresh_token.clone(),
        refreshed["access_token"].as_str().unwrap().to_owned(),
        refreshed["refresh_token"].as_str().unwrap().to_owned(),
        last["access_token"].as_str().unwrap().to_owned(),
        last["refresh_token"].as_str().unwrap().to_owned(),
    ]
    .into_iter()
    .chain(hashes)
    .chain(token_hashes);
    let everything = format!("{stored:?}");
    for secret in secrets {
        assert!(
            !everything.contains(&secret),
            "a secret is in the audit trail: {secret}\n{everything}"
        );
    }
}

fn entries_older_than_the_retention_are_pruned(app: TestApp) {
    let admin = admin(&app);
    app.create_user("co.lan", "trainer", None);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cutoff = chrono::Utc::now().timestamp_millis();
    std::thread::sleep(std::time::Duration::from_millis(20));
    sign_in(&app, "co.lan", "trainer-password");
    let before = entries(&app, &admin.token, "action=login");
    assert_eq!(before.len(), 2, "the admin's login and the trainer's");

    let pruned = Audit::prune(&mut app.pool.get().unwrap(), cutoff).unwrap();
    assert_eq!(pruned, 1, "the admin's login, made before the cutoff");
    let after = entries(&app, &admin.token, "action=login");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["username"], "co.lan");

    // The daily job prunes what the configured retention says: 730 days by default.
    let config = crate::support::default_server_config();
    assert_eq!(config.audit_retention_days, 730);
    assert_eq!(config.audit_retention_ms(), 730 * 86_400_000);
}

fn the_command_line_is_recorded_with_no_account(app: TestApp) {
    let admin = admin(&app);
    let run = |args: &[&str], stdin: Option<&str>| {
        let (ok, out, err) = crate::cli::diemdanh(&app, args, stdin);
        assert!(ok, "diemdanh {args:?}: {out}{err}");
    };
    run(
        &[
            "user",
            "add",
            "siu.h.mai",
            "--role",
            "trainer",
            "--password-stdin",
        ],
        Some("mat-khau-dong-lenh-1\n"),
    );
    let phone = sign_in(&app, "siu.h.mai", "mat-khau-dong-lenh-1");
    run(&["device", "revoke", &phone.device_id], None);
    run(
        &["user", "passwd", "siu.h.mai", "--password-stdin"],
        Some("mat-khau-dong-lenh-2\n"),
    );
    run(&["user", "disable", "siu.h.mai"], None);
    let user = format!("object_type=user&object_id={}", phone.user_id);
    for query in [
        format!("action=user_created&{user}"),
        format!(
            "action=device_revoked&object_type=device&object_id={}",
            phone.device_id
        ),
        format!("action=password_reset&{user}"),
        format!("action=user_updated&{user}"),
    ] {
        let entry = only(&app, &admin.token, &query);
        for field in ["user_id", "username", "device_id", "address"] {
            assert_eq!(entry[field], Value::Null, "{field} of {entry}");
        }
    }
}
