//! Who sees what, on the demo data set: admins everything, trainers their assigned courses,
//! trainees their own records. Objects outside a caller's scope answer 404 and never leak.

use serde_json::json;

use crate::backend_tests;
use crate::support::sync::OnTheDemo;
use crate::support::{TestApp, id_of, item_fields, item_where, items};

backend_tests!(
    trainers_see_only_their_classes,
    trainees_see_only_their_own_records,
    a_withdrawn_trainee_keeps_their_history_but_not_the_course,
    only_admins_administer,
);

fn trainers_see_only_their_classes(OnTheDemo { app, demo }: OnTheDemo) {
    let admin = &demo.admin;
    let both = app.demo_token("hoa.nguyen");
    let one = app.demo_token("tuan.le");

    let courses = app.list_all(admin, "/api/v1/courses");
    // The two provincial classes, and a ward's class taught by its own cadres (no trainer).
    assert_eq!(courses["total"], 3);
    let (big_id, small_id) = (demo.big_course.as_str(), demo.skills_course.as_str());
    assert_eq!(app.list_all(&both, "/api/v1/courses")["total"], 2);
    assert_eq!(
        item_fields(&app.list_all(&one, "/api/v1/courses"), "id"),
        [big_id]
    );

    // The second class is invisible to the trainer who does not teach it, through every door.
    let small_path = format!("/api/v1/courses/{small_id}");
    app.get(&one, &small_path).expect_error(404, "not_found");
    assert_eq!(
        app.list_all(&one, &format!("/api/v1/sessions?course_id={small_id}"))["total"],
        0
    );
    assert_eq!(
        app.list_all(&one, &format!("/api/v1/enrollments?course_id={small_id}"))["total"],
        0
    );
    assert_eq!(
        app.list_all(&one, &format!("/api/v1/materials?course_id={small_id}"))["total"],
        0
    );
    let small_sessions = app.list_all(admin, &format!("/api/v1/sessions?course_id={small_id}"));
    let small_session = small_sessions["items"][0]["id"].as_str().unwrap();
    app.get(&one, &format!("/api/v1/sessions/{small_session}"))
        .expect(404);
    let small_materials = app.list_all(admin, &format!("/api/v1/materials?course_id={small_id}"));
    app.get(
        &one,
        &format!(
            "/api/v1/materials/{}",
            small_materials["items"][0]["id"].as_str().unwrap()
        ),
    )
    .expect(404);

    // People: exactly those enrolled in the trainer's classes.
    let enrolled_big = app.list_all(admin, &format!("/api/v1/enrollments?course_id={big_id}"));
    let seen_people = app.list_all(&one, "/api/v1/people");
    assert_eq!(seen_people["total"], enrolled_big["total"]);
    assert!(seen_people["total"].as_i64().unwrap() >= 100);
    let everyone = app.list_all(admin, "/api/v1/people");
    assert!(everyone["total"].as_i64() > seen_people["total"].as_i64());
    let enrolled = item_fields(&enrolled_big, "person_id");
    let outsider = item_fields(&everyone, "id")
        .into_iter()
        .find(|p| !enrolled.contains(p))
        .unwrap();
    app.get(&one, &format!("/api/v1/people/{outsider}"))
        .expect(404);

    // Attendance: allowed in their class, refused in another.
    let big_session = app.list_all(admin, &format!("/api/v1/sessions?course_id={big_id}"))["items"]
        [0]["id"]
        .clone();
    let record = json!({"session_id": big_session, "person_id": enrolled[0], "status": "present"});
    app.post(&one, "/api/v1/attendance", &record).expect(201);
    let small_enrolled = app.list_all(admin, &format!("/api/v1/enrollments?course_id={small_id}"));
    let foreign = json!({"session_id": small_session, "person_id": small_enrolled["items"][0]["person_id"], "status": "present"});
    app.post(&one, "/api/v1/attendance", &foreign).expect(422);
    app.post(&both, "/api/v1/attendance", &foreign).expect(201);
    assert_eq!(
        app.list_all(&one, "/api/v1/attendance")["total"],
        1,
        "the other class's attendance stays hidden"
    );
    assert_eq!(app.list_all(&both, "/api/v1/attendance")["total"], 2);
}

fn trainees_see_only_their_own_records(app: TestApp) {
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let trainee = app.demo_token("hocvien.demo");
    let me = app.me(&trainee);
    let person_id = me["person_id"].as_str().unwrap().to_owned();
    let people = app.list_all(&trainee, "/api/v1/people");
    assert_eq!(item_fields(&people, "id"), std::slice::from_ref(&person_id));
    let enrollments = app.list_all(&trainee, "/api/v1/enrollments");
    assert!(enrollments["total"].as_i64().unwrap() >= 1);
    assert!(items(&enrollments).all(|e| e["person_id"] == person_id.as_str()));
    let course_id = enrollments["items"][0]["course_id"].as_str().unwrap();
    let sessions = app.list_all(&admin, &format!("/api/v1/sessions?course_id={course_id}"));
    let session = sessions["items"][0]["id"].as_str().unwrap();
    let others = app.list_all(
        &admin,
        &format!("/api/v1/enrollments?course_id={course_id}"),
    );
    let other = items(&others)
        .find(|e| e["person_id"] != person_id.as_str())
        .unwrap();
    for person in [person_id.as_str(), other["person_id"].as_str().unwrap()] {
        let record = json!({"session_id": session, "person_id": person, "status": "present"});
        app.post(&admin, "/api/v1/attendance", &record).expect(201);
    }
    let mine = app.list_all(&trainee, "/api/v1/attendance");
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["person_id"], person_id.as_str());
    let record = json!({"session_id": session, "person_id": person_id, "status": "absent"});
    app.post(&trainee, "/api/v1/attendance", &record)
        .expect(403);
    app.get(
        &trainee,
        &format!("/api/v1/people/{}", other["person_id"].as_str().unwrap()),
    )
    .expect(404);
    app.get(
        &trainee,
        &format!("/api/v1/enrollments/{}", other["id"].as_str().unwrap()),
    )
    .expect(404);
    assert_eq!(
        app.list_all(&trainee, "/api/v1/courses")["total"],
        enrollments["total"]
    );
}

fn only_admins_administer(app: TestApp) {
    let app = app.with_demo();
    let trainer = app.demo_token("tuan.le");
    let trainee = app.demo_token("hocvien.demo");
    for token in [&trainer, &trainee] {
        let unit = json!({"code": "99999", "name": "Xã Mới", "kind": "commune"});
        app.post(token, "/api/v1/units", &unit)
            .expect_error(403, "forbidden");
        app.get(token, "/api/v1/users").expect(403);
        let user = json!({"username": "sneaky", "role": "admin", "password": "long-enough-1"});
        app.post(token, "/api/v1/users", &user).expect(403);
    }
    let units = app.list_all(&trainer, "/api/v1/units");
    assert!(
        units["total"].as_i64().unwrap() >= 20,
        "every signed-in user reads the unit tree"
    );
    let my_devices = app.list_all(&trainer, "/api/v1/devices");
    assert_eq!(
        my_devices["total"], 1,
        "a trainer lists only their own devices"
    );
    let admin = app.demo_token("admin");
    let admin_devices = app.list_all(&admin, "/api/v1/devices");
    let admin_device = item_where(&admin_devices, "name", "test device");
    let path = format!(
        "/api/v1/devices/{}/revoke",
        admin_device["id"].as_str().unwrap()
    );
    app.post_empty(&trainer, &path).expect(404);
    let users = app.list_all(&admin, "/api/v1/users?role=trainer");
    assert_eq!(users["total"], 2);
    assert_eq!(app.list_all(&admin, "/api/v1/users?q=HOA")["total"], 1);
    assert_eq!(
        app.list_all(&admin, "/api/v1/users?q=Th%E1%BB%8B%20Thanh")["total"],
        1,
        "display names with diacritics"
    );
    assert_eq!(
        app.list_all(&admin, "/api/v1/users?q=%25")["total"],
        0,
        "LIKE wildcards are literal"
    );
    let created = app.create(
        &admin,
        "/api/v1/users",
        json!({"username": "Thu.Pham", "role": "trainer", "password": "mật-khẩu-dài-1"}),
    );
    assert_eq!(created["username"], "thu.pham");
    app.post(
        &admin,
        "/api/v1/users",
        &json!({"username": "thu.pham", "role": "trainer", "password": "mật-khẩu-dài-1"}),
    )
    .expect(409);
    app.token("thu.pham", "mật-khẩu-dài-1");
}

/// Withdrawn from a course, a trainee no longer reads the course, its sessions or its materials
/// (lists, single reads and downloads alike, as their devices drop them with the next pull),
/// and still reads their own enrollment, now `withdrawn`, and their attendance: their history.
fn a_withdrawn_trainee_keeps_their_history_but_not_the_course(app: TestApp) {
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let trainee = app.demo_token("hocvien.demo");
    let person_id = app.me(&trainee)["person_id"].as_str().unwrap().to_owned();
    // The demo's big course, which has materials.
    let course_id = id_of(item_where(
        &app.list_all(&admin, "/api/v1/courses"),
        "code",
        "BD-BTPBT-2026",
    ));
    let enrollment_id = app.list_all(
        &admin,
        &format!("/api/v1/enrollments?person_id={person_id}&course_id={course_id}"),
    )["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session_id =
        app.list_all(&admin, &format!("/api/v1/sessions?course_id={course_id}"))["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let materials = app.list_all(&admin, &format!("/api/v1/materials?course_id={course_id}"));
    let material_id = materials["items"][0]["id"].as_str().unwrap().to_owned();
    let attendance_id = id_of(&app.create(
        &admin,
        "/api/v1/attendance",
        json!({"session_id": session_id, "person_id": person_id, "status": "present"}),
    ));

    let course_paths = [
        format!("/api/v1/courses/{course_id}"),
        format!("/api/v1/sessions/{session_id}"),
        format!("/api/v1/materials/{material_id}"),
    ];
    let history_paths = [
        format!("/api/v1/enrollments/{enrollment_id}"),
        format!("/api/v1/attendance/{attendance_id}"),
    ];
    let listed = |path: &str, id: &str| {
        item_fields(&app.list_all(&trainee, path), "id")
            .iter()
            .any(|i| i == id)
    };
    for path in course_paths.iter().chain(&history_paths) {
        app.get(&trainee, path).expect(200);
    }
    assert!(listed("/api/v1/courses", &course_id));
    assert!(listed("/api/v1/sessions", &session_id));
    assert!(listed("/api/v1/materials", &material_id));

    let mut withdrawn =
        json!({"course_id": course_id, "person_id": person_id, "status": "withdrawn"});
    withdrawn["id"] = json!(enrollment_id);
    app.put(
        &admin,
        &format!("/api/v1/enrollments/{enrollment_id}"),
        &withdrawn,
    )
    .expect(200);

    for path in &course_paths {
        app.get(&trainee, path).expect(404);
    }
    app.get(
        &trainee,
        &format!("/api/v1/materials/{material_id}/content"),
    )
    .expect(404);
    assert!(!listed("/api/v1/courses", &course_id));
    assert!(!listed("/api/v1/sessions", &session_id));
    assert!(!listed("/api/v1/materials", &material_id));
    assert!(!listed(
        &format!("/api/v1/sessions?course_id={course_id}"),
        &session_id
    ));

    let own_enrollment = app.get_ok(&trainee, &history_paths[0]);
    assert_eq!(own_enrollment["status"], "withdrawn");
    app.get(&trainee, &history_paths[1]).expect(200);
    assert!(listed("/api/v1/enrollments", &enrollment_id));
    assert!(listed("/api/v1/attendance", &attendance_id));
    assert!(listed(
        &format!("/api/v1/attendance?course_id={course_id}"),
        &attendance_id
    ));
}
