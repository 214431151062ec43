//! The authorization matrix: every route of `route_table()` × every kind of caller, with the
//! status each must get, on the demo data. The target of every `{id}` is a record of the class
//! that `tuan.le` does not teach (and the trainee is not enrolled in), so that a refusal proves
//! "404 like a record that does not exist" and every readable answer is searched for that class's
//! ids. A route without a row here fails the test, so new routes must declare who may use them.
//! Three demo organisers join them: the province's (whose subtree holds the class, organised by
//! the province) and those of two sibling wards of Pleiku (whose subtrees do not): the wards'
//! answers are searched for the class's ids like the other trainer's.

use std::collections::BTreeSet;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::sync::{stamp_a_minute_ago, upsert_attendance};
use crate::support::{TestApp, id_of, item_fields, item_where, items};

backend_tests!(
    every_route_refuses_every_caller_it_should,
    pull_cursors_are_bound_to_their_caller
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    /// hoa.nguyen, who teaches the target class.
    Assigned,
    /// tuan.le, who does not.
    Other,
    /// hocvien.demo, enrolled in the other class only.
    Trainee,
    /// tinhdoan.daotao, organiser of the province (which organises the class).
    ProvinceOrganiser,
    /// doan.pleiku, organiser of Phường Pleiku.
    WardOrganiser,
    /// doan.thongnhat, organiser of Phường Thống Nhất, Pleiku's sibling.
    SiblingOrganiser,
    /// A device of hoa.nguyen that an admin revoked.
    Revoked,
    /// Signed with the real key, expired an hour ago.
    Expired,
    /// `alg: none`, no signature.
    AlgNone,
    /// Signed with another key.
    WrongKey,
    /// hoa.nguyen's token with `sub` changed to the admin's id, signature kept.
    EditedClaims,
    NoToken,
}

const EVERYONE: [Who; 13] = [
    Who::Trainee,
    Who::Other,
    Who::Assigned,
    Who::Admin,
    Who::ProvinceOrganiser,
    Who::WardOrganiser,
    Who::SiblingOrganiser,
    Who::Revoked,
    Who::Expired,
    Who::AlgNone,
    Who::WrongKey,
    Who::EditedClaims,
    Who::NoToken,
];

/// (method, path) → status for [admin, assigned trainer, other trainer, trainee, the province's
/// organiser, a ward's organiser (both wards: the class is outside either)]. Callers without
/// a valid token get 401 on every `/api/v1/` route except login and refresh, which ignore tokens
/// (as do `/healthz` and `/readyz`), so those answer the admin's status to everyone. `/metrics`
/// is closed on the public port unless a metrics token is configured (none here): no access
/// token, not even an administrator's, opens it.
const EXPECTED: &[(&str, &str, [u16; 6])] = &[
    ("GET", "/healthz", [200, 200, 200, 200, 200, 200]),
    ("GET", "/readyz", [200, 200, 200, 200, 200, 200]),
    ("GET", "/metrics", [404, 404, 404, 404, 404, 404]),
    ("POST", "/api/v1/auth/login", [422, 422, 422, 422, 422, 422]),
    (
        "POST",
        "/api/v1/auth/refresh",
        [401, 401, 401, 401, 401, 401],
    ),
    ("GET", "/api/v1/me", [200, 200, 200, 200, 200, 200]),
    (
        "POST",
        "/api/v1/me/password",
        [422, 422, 422, 422, 422, 422],
    ),
    ("GET", "/api/v1/users", [200, 403, 403, 403, 200, 200]),
    ("POST", "/api/v1/users", [201, 403, 403, 403, 422, 422]),
    ("GET", "/api/v1/users/{id}", [200, 403, 403, 403, 404, 404]),
    (
        "PATCH",
        "/api/v1/users/{id}",
        [200, 403, 403, 403, 404, 404],
    ),
    (
        "POST",
        "/api/v1/users/{id}/password",
        [204, 403, 403, 403, 404, 404],
    ),
    ("GET", "/api/v1/devices", [200, 200, 200, 200, 200, 200]),
    (
        "POST",
        "/api/v1/devices/{id}/revoke",
        [200, 404, 404, 404, 404, 404],
    ),
    ("POST", "/api/v1/sync/push", [200, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/sync/pull", [200, 200, 200, 200, 200, 200]),
    (
        "GET",
        "/api/v1/sync/quarantine",
        [200, 403, 403, 403, 200, 200],
    ),
    (
        "POST",
        "/api/v1/sync/quarantine/{id}/dismiss",
        [200, 403, 403, 403, 409, 404],
    ),
    (
        "POST",
        "/api/v1/sync/quarantine/{id}/reapply",
        [200, 403, 403, 403, 409, 404],
    ),
    (
        "GET",
        "/api/v1/sync/conflicts",
        [200, 403, 403, 403, 200, 200],
    ),
    (
        "POST",
        "/api/v1/sync/conflicts/{id}/resolve",
        [200, 403, 403, 403, 409, 404],
    ),
    (
        "GET",
        "/api/v1/watermelon/sync",
        [200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/watermelon/sync",
        [200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/imports/people",
        [200, 403, 403, 403, 200, 200],
    ),
    (
        "POST",
        "/api/v1/units/merge",
        [409, 403, 403, 403, 403, 403],
    ),
    (
        "POST",
        "/api/v1/units/{id}/rename",
        [200, 403, 403, 403, 403, 403],
    ),
    (
        "GET",
        "/api/v1/units/{id}/history",
        [200, 200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/api/v1/reports/courses/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "GET",
        "/api/v1/reports/coverage",
        [200, 403, 403, 403, 200, 200],
    ),
    (
        "GET",
        "/api/v1/reports/training-plans/{id}",
        [200, 404, 404, 404, 200, 404],
    ),
    (
        "GET",
        "/api/v1/reports/trainers/{id}",
        [200, 200, 404, 404, 404, 404],
    ),
    ("GET", "/api/v1/audit", [200, 403, 403, 403, 403, 403]),
    ("GET", "/api/v1/units", [200, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/units", [201, 403, 403, 403, 403, 403]),
    ("GET", "/api/v1/units/{id}", [200, 200, 200, 200, 200, 200]),
    ("PUT", "/api/v1/units/{id}", [412, 403, 403, 403, 403, 403]),
    (
        "DELETE",
        "/api/v1/units/{id}",
        [412, 403, 403, 403, 403, 403],
    ),
    ("GET", "/api/v1/people", [200, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/people", [201, 403, 403, 403, 422, 422]),
    ("GET", "/api/v1/people/{id}", [200, 404, 404, 404, 200, 404]),
    ("PUT", "/api/v1/people/{id}", [412, 404, 404, 404, 412, 404]),
    (
        "DELETE",
        "/api/v1/people/{id}",
        [412, 404, 404, 404, 412, 404],
    ),
    ("GET", "/api/v1/courses", [200, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/courses", [201, 403, 403, 403, 422, 422]),
    (
        "GET",
        "/api/v1/courses/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/courses/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/courses/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "GET",
        "/api/v1/course-trainers",
        [200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/course-trainers",
        [201, 403, 403, 403, 422, 422],
    ),
    (
        "GET",
        "/api/v1/course-trainers/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/course-trainers/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/course-trainers/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    ("GET", "/api/v1/sessions", [200, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/sessions", [201, 403, 403, 403, 201, 422]),
    (
        "GET",
        "/api/v1/sessions/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/sessions/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/sessions/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    ("GET", "/api/v1/enrollments", [200, 200, 200, 200, 200, 200]),
    (
        "POST",
        "/api/v1/enrollments",
        [201, 201, 422, 422, 201, 422],
    ),
    (
        "GET",
        "/api/v1/enrollments/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/enrollments/{id}",
        [412, 412, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/enrollments/{id}",
        [412, 412, 404, 404, 412, 404],
    ),
    ("GET", "/api/v1/attendance", [200, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/attendance", [201, 201, 422, 422, 201, 422]),
    (
        "GET",
        "/api/v1/attendance/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/attendance/{id}",
        [412, 412, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/attendance/{id}",
        [412, 412, 404, 404, 412, 404],
    ),
    ("GET", "/api/v1/materials", [200, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/materials", [201, 403, 403, 403, 201, 422]),
    (
        "GET",
        "/api/v1/materials/{id}",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/materials/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/materials/{id}",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "POST",
        "/api/v1/courses/{id}/materials",
        [201, 403, 403, 403, 201, 404],
    ),
    (
        "GET",
        "/api/v1/materials/{id}/content",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "HEAD",
        "/api/v1/materials/{id}/content",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/materials/{id}/content",
        [412, 403, 404, 404, 412, 404],
    ),
    (
        "GET",
        "/api/v1/courses/{id}/roster",
        [200, 200, 404, 404, 200, 404],
    ),
    (
        "GET",
        "/api/v1/training-plans",
        [200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/training-plans",
        [201, 403, 403, 403, 201, 422],
    ),
    (
        "GET",
        "/api/v1/training-plans/{id}",
        [200, 404, 404, 404, 200, 404],
    ),
    (
        "PUT",
        "/api/v1/training-plans/{id}",
        [412, 404, 404, 404, 412, 404],
    ),
    (
        "DELETE",
        "/api/v1/training-plans/{id}",
        [412, 404, 404, 404, 412, 404],
    ),
    (
        "GET",
        "/api/v1/me/materials",
        [200, 200, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/v1/auth/logout",
        [204, 204, 204, 204, 204, 204],
    ),
];

/// Ids of the demo data the requests name.
struct Fixture {
    admin: String,
    assigned: String,
    other: String,
    trainee: String,
    province_organiser: String,
    ward_organiser: String,
    sibling_organiser: String,
    hoa_user: String,
    victim_user: String,
    spare_trainer: String,
    admin_spare_device: String,
    unit: String,
    /// A commune that a merge already ended, which the admin's merge names again.
    merged_unit: String,
    course: String,
    session: String,
    second_session: String,
    enrollment: String,
    attendance: String,
    material: String,
    course_trainer: String,
    /// Enrolled nowhere: only admins see them.
    person: String,
    /// One person per identity enrolled in the target class and not yet marked in `session`.
    markable: Vec<String>,
    reapply_person: String,
    /// Not enrolled anywhere.
    outsiders: Vec<String>,
    quarantined: Vec<String>,
    conflict: String,
    /// The demo province's training plan (outside the wards' subtrees).
    plan: String,
    /// Every id of the target class: none may appear in what `tuan.le` or the trainee reads.
    foreign: BTreeSet<String>,
}

fn fixture(app: &TestApp) -> Fixture {
    let admin = app.demo_token("admin");
    let assigned = app.demo_token("hoa.nguyen");
    let other = app.demo_token("tuan.le");
    let trainee = app.demo_token("hocvien.demo");
    let ward_organiser = app.demo_token("doan.pleiku");
    let sibling_organiser = app.demo_token("doan.thongnhat");
    let province_organiser = app.demo_token("tinhdoan.daotao");
    let admin_spare_device = app.login("admin", "diemdanh-admin")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_courses = item_fields(&app.get_ok(&other, "/api/v1/courses"), "id");
    // The one-day class: hoa.nguyen teaches it, tuan.le does not.
    let course = id_of(item_where(
        &app.get_ok(&admin, "/api/v1/courses"),
        "code",
        "TH-KN-2026-BH",
    ));
    assert!(!other_courses.contains(&course));
    let of_course = |collection: &str| {
        app.get_ok(
            &admin,
            &format!("/api/v1/{collection}?course_id={course}&limit=500"),
        )
    };
    let sessions = item_fields(&of_course("sessions"), "id");
    let enrollments = of_course("enrollments");
    let materials = item_fields(&of_course("materials"), "id");
    let course_trainers = item_fields(&of_course("course-trainers"), "id");
    let everyone_else: BTreeSet<String> = other_courses
        .iter()
        .flat_map(|c| {
            item_fields(
                &app.get_ok(
                    &admin,
                    &format!("/api/v1/enrollments?course_id={c}&limit=500"),
                ),
                "person_id",
            )
        })
        .collect();
    // The demo's small class draws from the big one's trainees, so its people are not foreign
    // to tuan.le; people enrolled nowhere are foreign to both trainers.
    let enrolled = item_fields(&enrollments, "person_id");
    assert!(enrolled.len() >= 9, "the target class has trainees");
    let all_enrolled: BTreeSet<String> = item_fields(&enrollments, "person_id")
        .into_iter()
        .chain(everyone_else.iter().cloned())
        .collect();
    // Outside both wards and their branches, whose organisers see their own people.
    let units = app.get_ok(&admin, "/api/v1/units?limit=500");
    let units = units["items"].as_array().unwrap();
    let ward_ids: Vec<&Value> = units
        .iter()
        .filter(|u| u["code"] == "23575" || u["code"] == "23584")
        .map(|u| &u["id"])
        .collect();
    assert_eq!(ward_ids.len(), 2);
    let wards: Vec<String> = units
        .iter()
        .filter(|u| ward_ids.contains(&&u["id"]) || ward_ids.contains(&&u["parent_id"]))
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let outsiders: Vec<String> = items(&app.get_ok(&admin, "/api/v1/people?limit=500"))
        .filter(|p| !wards.iter().any(|w| p["unit_id"] == w.as_str()))
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .filter(|p| !all_enrolled.contains(p))
        .take(6)
        .collect();
    assert_eq!(outsiders.len(), 6, "people enrolled nowhere");
    let person = outsiders[0].clone();
    let attendance = id_of(&app.create(
        &admin,
        "/api/v1/attendance",
        json!({"session_id": sessions[0], "person_id": enrolled[0], "status": "present"}),
    ));
    // Two refused mutations (a person not enrolled in the class) and one conflict: hoa.nguyen
    // marks a trainee late, then an older "absent" from the admin's device arrives and loses.
    let refused: Vec<Value> = (0..2)
        .map(|i| {
            upsert_attendance(
                &uuid::Uuid::new_v4().to_string(),
                json!({"session_id": sessions[0], "person_id": outsiders[i], "status": "present"}),
                &stamp_a_minute_ago(0),
            )
        })
        .collect();
    let results = app.push(&assigned, &refused);
    assert!(
        results.iter().all(|r| r["status"] == "rejected"),
        "{results:?}"
    );
    let disputed = uuid::Uuid::new_v4().to_string();
    let fields = json!({"session_id": sessions[1], "person_id": enrolled[1], "status": "late"});
    app.push(
        &assigned,
        &[upsert_attendance(
            &disputed,
            fields,
            &stamp_a_minute_ago(2000),
        )],
    );
    let stale = app.push(
        &admin,
        &[upsert_attendance(
            &disputed,
            json!({"status": "absent"}),
            &stamp_a_minute_ago(1000),
        )],
    );
    assert_eq!(stale[0]["status"], "merged");
    let quarantined = item_fields(
        &app.get_ok(&admin, "/api/v1/sync/quarantine?status=open"),
        "id",
    );
    assert_eq!(quarantined.len(), 2);
    let conflicts = app.get_ok(
        &admin,
        &format!("/api/v1/sync/conflicts?course_id={course}"),
    );
    let conflict = conflicts["items"][0]["id"].as_str().unwrap().to_owned();
    let users = app.get_ok(&admin, "/api/v1/users?limit=500");
    let user_id = |name: &str| id_of(item_where(&users, "username", name));
    let hoa_user = user_id("hoa.nguyen");
    let victim_user = app.create_user("matrix.victim", "trainer", None);
    let spare_trainer = app.create_user("matrix.trainer", "trainer", None);
    // A commune in force, and one that the 2025 merges ended: the admin's merge of that one is
    // authorised and refused (409 `unit_not_current`), so the matrix changes no unit.
    let units = app.get_ok(&admin, "/api/v1/units?limit=500");
    let communes = |ended: bool| -> Vec<String> {
        items(&units)
            .filter(|u| u["kind"] == "commune" && u["valid_to"].is_null() != ended)
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // A file of the target class, for the content routes (the demo's records have none).
    let uploaded = app
        .send_file(
            &admin,
            "POST",
            &format!("/api/v1/courses/{course}/materials?file_name=bai-giang.pdf"),
            (b"%PDF-1.4 bai giang", "application/pdf"),
        )
        .expect(201)
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut foreign: BTreeSet<String> = [course.clone(), attendance.clone(), disputed]
        .into_iter()
        .chain(sessions.iter().cloned())
        .chain(materials.iter().cloned())
        .chain([uploaded.clone()])
        .chain(item_fields(&enrollments, "id"))
        .chain(outsiders.iter().cloned())
        .chain(course_trainers.iter().cloned())
        .collect();
    foreign.extend(quarantined.iter().cloned());
    foreign.insert(conflict.clone());
    let province = item_fields(&app.get_ok(&admin, "/api/v1/units?kind=province"), "id")[0].clone();
    let plan = item_fields(
        &app.get_ok(
            &admin,
            &format!("/api/v1/training-plans?unit_id={province}"),
        ),
        "id",
    )[0]
    .clone();
    foreign.insert(plan.clone());
    Fixture {
        admin,
        assigned,
        other,
        trainee,
        province_organiser,
        ward_organiser,
        sibling_organiser,
        hoa_user,
        victim_user,
        spare_trainer,
        admin_spare_device,
        unit: communes(false)[0].clone(),
        plan,
        merged_unit: communes(true)[0].clone(),
        session: sessions[0].clone(),
        second_session: sessions[2].clone(),
        enrollment: item_fields(&enrollments, "id")[0].clone(),
        attendance,
        material: uploaded.clone(),
        course_trainer: course_trainers[0].clone(),
        person,
        markable: enrolled[2..8].to_vec(),
        reapply_person: enrolled[8].clone(),
        outsiders,
        quarantined,
        conflict,
        foreign,
        course,
    }
}

/// The signing key, as the server keeps it.
fn secret(app: &TestApp) -> String {
    let mut conn = app.pool.get().unwrap();
    diemdanh::db::get_setting(&mut conn, "jwt_secret")
        .unwrap()
        .expect("a generated signing key")
}

/// Tokens for the callers whose token is not valid, all built on hoa.nguyen's identity so that
/// only the one defect differs from a token that works.
struct BadTokens {
    revoked: String,
    expired: String,
    alg_none: String,
    wrong_key: String,
    edited: String,
}

fn bad_tokens(app: &TestApp, fx: &Fixture) -> BadTokens {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let doomed = app.login("hoa.nguyen", "demo-trainer-1");
    let revoked = doomed["access_token"].as_str().unwrap().to_owned();
    app.post_empty(
        &fx.admin,
        &format!(
            "/api/v1/devices/{}/revoke",
            doomed["device_id"].as_str().unwrap()
        ),
    )
    .expect(200);
    let parts: Vec<&str> = fx.assigned.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let sign = |claims: &Value, key: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let wrong_key = sign(&claims, b"another-secret-another-secret-123");
    let none_header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let admin_claims: Value =
        serde_json::from_slice(&engine.decode(fx.admin.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    let mut edited_claims = claims.clone();
    edited_claims["sub"] = admin_claims["sub"].clone();
    edited_claims["dev"] = admin_claims["dev"].clone();
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(serde_json::to_vec(&edited_claims).unwrap()),
        parts[2]
    );
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let expired = sign(&claims, secret(app).as_bytes());
    BadTokens {
        revoked,
        expired,
        alg_none,
        wrong_key,
        edited,
    }
}

/// One request: the path with its ids, a body and its type, extra headers.
struct Request {
    path: String,
    body: Option<(Vec<u8>, &'static str)>,
    headers: Vec<(&'static str, String)>,
}

const JSON: &str = "application/json";
/// An ETag no record has: a write that gets past authorization stops at 412, changing nothing.
const STALE: &str = "\"1\"";

fn index(who: Who) -> usize {
    match who {
        Who::Admin => 0,
        Who::Assigned => 1,
        Who::Other => 2,
        Who::ProvinceOrganiser => 4,
        Who::WardOrganiser | Who::SiblingOrganiser => 5,
        _ => 3,
    }
}

/// The request each route gets. Writes that are allowed should change nothing the other cells
/// depend on: replacements and deletions carry a stale If-Match, creations make new records.
fn request(
    app: &TestApp,
    fx: &Fixture,
    method: &str,
    pattern: &str,
    who: Who,
    token: Option<&str>,
) -> Request {
    let id = match pattern {
        p if p.starts_with("/api/v1/units/") => fx.unit.clone(),
        p if p.starts_with("/api/v1/people/") => fx.person.clone(),
        p if p.starts_with("/api/v1/courses/") => fx.course.clone(),
        p if p.starts_with("/api/v1/course-trainers/") => fx.course_trainer.clone(),
        p if p.starts_with("/api/v1/sessions/") => fx.session.clone(),
        p if p.starts_with("/api/v1/enrollments/") => fx.enrollment.clone(),
        p if p.starts_with("/api/v1/attendance/") => fx.attendance.clone(),
        p if p.starts_with("/api/v1/materials/") => fx.material.clone(),
        p if p.starts_with("/api/v1/reports/courses/") => fx.course.clone(),
        p if p.starts_with("/api/v1/reports/trainers/") => fx.hoa_user.clone(),
        p if p.starts_with("/api/v1/training-plans/") => fx.plan.clone(),
        p if p.starts_with("/api/v1/reports/training-plans/") => fx.plan.clone(),
        "/api/v1/users/{id}" => fx.hoa_user.clone(),
        "/api/v1/users/{id}/password" => fx.victim_user.clone(),
        "/api/v1/devices/{id}/revoke" => fx.admin_spare_device.clone(),
        "/api/v1/sync/quarantine/{id}/dismiss" => fx.quarantined[0].clone(),
        "/api/v1/sync/quarantine/{id}/reapply" => fx.quarantined[1].clone(),
        "/api/v1/sync/conflicts/{id}/resolve" => fx.conflict.clone(),
        _ => String::new(),
    };
    let mut path = pattern.replace("{id}", &id);
    let mut headers = Vec::new();
    let mut body = None;
    let json_body = |value: Value| Some((serde_json::to_vec(&value).unwrap(), JSON));
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    match (method, pattern) {
        ("GET", "/api/v1/sync/pull") => path.push_str("?limit=1000"),
        ("GET", "/api/v1/watermelon/sync") => {
            path.push_str("?last_pulled_at=null&schema_version=1&migration=null");
        }
        ("POST", "/api/v1/watermelon/sync") => {
            // A push names the caller's own last pull.
            let pulled = app.get_ok(
                token.expect("a valid caller"),
                "/api/v1/watermelon/sync?last_pulled_at=null&schema_version=1&migration=null",
            );
            path.push_str(&format!("?last_pulled_at={}", pulled["timestamp"]));
        }
        ("GET", "/api/v1/reports/coverage") => path.push_str("?from=2026-01-01&to=2026-12-31"),
        ("GET", "/api/v1/sync/conflicts") => path.push_str(&format!("?course_id={}", fx.course)),
        (_, "/api/v1/materials/{id}/content") if method != "PUT" => {}
        ("GET", p) if !p.contains("{id}") && p.starts_with("/api/v1/") => {
            path.push_str("?limit=500");
        }
        _ => {}
    }
    match (method, pattern) {
        ("POST", "/api/v1/auth/login") => body = json_body(json!({})),
        ("POST", "/api/v1/auth/refresh") => {
            body = json_body(json!({"refresh_token": "not-a-refresh-token"}));
        }
        ("POST", "/api/v1/me/password") => body = json_body(json!({})),
        ("POST", "/api/v1/users") => {
            body = json_body(
                json!({"username": format!("matrix.{tag}"), "role": "trainer", "password": "matrix-password-1"}),
            );
        }
        ("PATCH", "/api/v1/users/{id}") => {
            body = json_body(json!({"display_name": "Nguyễn Thị Hoa"}));
        }
        ("POST", "/api/v1/users/{id}/password") => {
            body = json_body(json!({"new_password": "matrix-password-2"}));
        }
        ("POST", "/api/v1/sync/push") => {
            let fields = json!({"session_id": fx.session, "person_id": fx.markable[index(who)], "status": "present"});
            body = json_body(
                json!({"mutations": [upsert_attendance(&uuid::Uuid::new_v4().to_string(), fields, &stamp_a_minute_ago(0))]}),
            );
        }
        ("POST", "/api/v1/sync/quarantine/{id}/reapply") => {
            // Corrected to a trainee of the class, so that the admin's reapply succeeds.
            let fields = json!({"session_id": fx.session, "person_id": fx.reapply_person, "status": "present"});
            body = json_body(json!({ "fields": fields }));
        }
        ("POST", "/api/v1/sync/conflicts/{id}/resolve") => {
            body = json_body(json!({"value": "present"}));
        }
        ("POST", "/api/v1/watermelon/sync") => body = json_body(json!({})),
        ("POST", "/api/v1/imports/people") => {
            path.push_str("?dry_run=true");
            body = Some((
                "Họ và tên,Chức vụ,Đơn vị\nLò Văn Ma Trận,Bí thư,23590\n"
                    .as_bytes()
                    .to_vec(),
                "text/csv",
            ));
        }
        ("POST", "/api/v1/units/merge") => {
            body = json_body(
                json!({"source_ids": [fx.merged_unit], "effective_date": "2026-07-01",
                "target": {"code": format!("M{}", &tag[..4]), "name": "Xã Ma Trận", "kind": "commune"}}),
            );
        }
        ("POST", "/api/v1/units/{id}/rename") => {
            body = json_body(json!({"name": "Xã Ma Trận", "effective_date": "2026-05-01"}));
        }
        ("POST", "/api/v1/courses/{id}/materials") => {
            path.push_str("?file_name=matrix.pdf&title=Ma%20tr%E1%BA%ADn");
            body = Some((b"%PDF-1.4 matrix".to_vec(), "application/pdf"));
        }
        ("PUT", "/api/v1/materials/{id}/content") => {
            body = Some((b"%PDF-1.4 matrix".to_vec(), "application/pdf"));
            headers.push(("If-Match", STALE.to_owned()));
        }
        ("POST", collection) => {
            let n = index(who);
            body = match collection {
                "/api/v1/units" => json_body(
                    json!({"code": format!("9{}", &tag[..4]), "name": "Xã Ma Trận", "kind": "commune"}),
                ),
                "/api/v1/people" => {
                    json_body(json!({"full_name": "Lò Văn Ma Trận", "position": "member"}))
                }
                "/api/v1/courses" => json_body(
                    json!({"title": "Lớp ma trận", "management_level": "province", "start_date": "2026-12-08", "end_date": "2026-12-10"}),
                ),
                "/api/v1/course-trainers" => {
                    json_body(json!({"course_id": fx.course, "user_id": fx.spare_trainer}))
                }
                "/api/v1/sessions" => json_body(
                    json!({"course_id": fx.course, "topic": "Ma trận", "starts_at": "2026-12-08T08:00:00+07:00", "ends_at": "2026-12-08T11:30:00+07:00"}),
                ),
                "/api/v1/enrollments" => {
                    json_body(json!({"course_id": fx.course, "person_id": fx.outsiders[n]}))
                }
                // Another session than the pushes', whose marks would make these duplicates.
                "/api/v1/attendance" => json_body(
                    json!({"session_id": fx.second_session, "person_id": fx.markable[n], "status": "late"}),
                ),
                "/api/v1/materials" => json_body(
                    json!({"course_id": fx.course, "title": "Ma trận", "kind": "document", "file_name": "m.pdf"}),
                ),
                "/api/v1/training-plans" => json_body(
                    json!({"unit_id": fx.unit, "year": 2027 + n, "title": "Kế hoạch ma trận", "target_positions": ["secretary"]}),
                ),
                _ => None,
            };
        }
        ("PUT", _) | ("DELETE", _) => {
            headers.push(("If-Match", STALE.to_owned()));
            if method == "PUT" {
                // The record as the admin reads it, without the fields the server owns.
                let mut record = app.get_ok(&fx.admin, &path);
                for owned in [
                    "rev",
                    "created_at",
                    "updated_at",
                    "recorded_by",
                    "recorded_device",
                    "version",
                    "deleted_at",
                ] {
                    record.as_object_mut().unwrap().remove(owned);
                }
                body = json_body(record);
            }
        }
        _ => {}
    }
    Request {
        path,
        body,
        headers,
    }
}

fn every_route_refuses_every_caller_it_should(app: TestApp) {
    let backend = app.backend();
    let app = app.with_demo();
    let fx = fixture(&app);
    let bad = bad_tokens(&app, &fx);

    let mut routes: Vec<(String, String)> = diemdanh::api::route_table()
        .into_iter()
        .map(|(path, method, _)| (method.to_string(), path.to_owned()))
        .collect();
    let table: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let served: BTreeSet<(String, String)> = routes.iter().cloned().collect();
    assert_eq!(
        served, table,
        "the matrix must have exactly one row per route of route_table()"
    );
    // Signing out ends the callers' sessions: last.
    routes.sort_by_key(|(m, p)| (m == "POST" && p == "/api/v1/auth/logout", 0));

    let mut cells = 0;
    let mut failures = Vec::new();
    for (method, pattern) in &routes {
        let expected = EXPECTED
            .iter()
            .find(|(m, p, _)| m == method && p == pattern)
            .map(|(_, _, s)| *s)
            .expect("checked above: every route has a row");
        let public = !pattern.starts_with("/api/v1/")
            || ["/api/v1/auth/login", "/api/v1/auth/refresh"].contains(&pattern.as_str());
        for who in EVERYONE {
            let token = match who {
                Who::Admin => Some(fx.admin.as_str()),
                Who::Assigned => Some(fx.assigned.as_str()),
                Who::Other => Some(fx.other.as_str()),
                Who::Trainee => Some(fx.trainee.as_str()),
                Who::ProvinceOrganiser => Some(fx.province_organiser.as_str()),
                Who::WardOrganiser => Some(fx.ward_organiser.as_str()),
                Who::SiblingOrganiser => Some(fx.sibling_organiser.as_str()),
                Who::Revoked => Some(bad.revoked.as_str()),
                Who::Expired => Some(bad.expired.as_str()),
                Who::AlgNone => Some(bad.alg_none.as_str()),
                Who::WrongKey => Some(bad.wrong_key.as_str()),
                Who::EditedClaims => Some(bad.edited.as_str()),
                Who::NoToken => None,
            };
            let valid = matches!(
                who,
                Who::Admin
                    | Who::Assigned
                    | Who::Other
                    | Who::Trainee
                    | Who::ProvinceOrganiser
                    | Who::WardOrganiser
                    | Who::SiblingOrganiser
            );
            if !valid && !public {
                // Refused before the request is looked at: no need to build a real one.
                let response = app.fetch(
                    method,
                    &pattern.replace("{id}", &fx.course),
                    token,
                    None,
                    &[],
                );
                cells += 1;
                if response.status != 401 {
                    failures.push(format!(
                        "{method} {pattern} as {who:?}: {} (want 401)",
                        response.status
                    ));
                }
                continue;
            }
            let req = request(&app, &fx, method, pattern, who, token);
            let headers: Vec<(&str, &str)> =
                req.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let response = app.fetch(
                method,
                &req.path,
                token,
                req.body.as_ref().map(|(b, t)| (b.as_slice(), *t)),
                &headers,
            );
            cells += 1;
            // A public route ignores the token: everyone gets the admin's answer.
            let want = if valid {
                expected[index(who)]
            } else {
                expected[0]
            };
            if want != response.status {
                failures.push(format!(
                    "{method} {pattern} as {who:?}: {} (want {want}): {}",
                    response.status,
                    String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
                ));
            }
            if matches!(
                who,
                Who::Other | Who::Trainee | Who::WardOrganiser | Who::SiblingOrganiser
            ) && response.status < 300
            {
                let text = if response.json.is_null() {
                    String::from_utf8_lossy(&response.body).into_owned()
                } else {
                    response.json.to_string()
                };
                for id in &fx.foreign {
                    if text.contains(id.as_str()) {
                        failures.push(format!("{method} {pattern} as {who:?} leaks {id}"));
                    }
                }
            }
            if method == "POST" && pattern == "/api/v1/sync/push" && response.status == 200 {
                let outcome = &response.json["results"][0]["status"];
                let allowed = matches!(who, Who::Admin | Who::Assigned | Who::ProvinceOrganiser);
                if (outcome == "rejected") == allowed {
                    failures.push(format!("push as {who:?}: {outcome}"));
                }
            }
        }
    }
    eprintln!("authorization matrix: {cells} cells checked on {backend:?}");
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The feed, page by page: nothing of the class tuan.le does not teach (nor, for the wards'
/// organisers, of the province's class), and a cursor of
/// hoa.nguyen's (whose scope has that class) is refused to him. (`sync::bad_cursors_are_refused`
/// covers the other direction and garbled cursors.)
fn pull_cursors_are_bound_to_their_caller(app: TestApp) {
    let app = app.with_demo();
    let fx = fixture(&app);
    for token in [
        &fx.other,
        &fx.trainee,
        &fx.ward_organiser,
        &fx.sibling_organiser,
    ] {
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/sync/pull?limit=10&cursor={c}"),
                None => "/api/v1/sync/pull?limit=10".to_owned(),
            };
            let page = app.get_ok(token, &path);
            let text = page.to_string();
            for id in &fx.foreign {
                assert!(!text.contains(id.as_str()), "page {pages} leaks {id}");
            }
            pages += 1;
            cursor = Some(page["cursor"].as_str().unwrap().to_owned());
            if page["has_more"] != true {
                break;
            }
        }
        assert!(pages > 1, "the feed was read in several pages");
    }
    let hoa_page = app.get_ok(&fx.assigned, "/api/v1/sync/pull?limit=50");
    let hoa_cursor = hoa_page["cursor"].as_str().unwrap();
    app.get(&fx.other, &format!("/api/v1/sync/pull?cursor={hoa_cursor}"))
        .expect_error(400, "invalid_cursor");
}
