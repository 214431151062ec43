//! Reports (course matrix, coverage, trainer) as JSON, CSV and XLSX read back with a reader,
//! unit merges and renames in them and in sync, and who may see which report.

use calamine::{Data, Reader};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::sheets::{cell_text, workbook};
use crate::support::{TestApp, id_of, items, string_pairs_of, strings_of};

backend_tests!(
    a_course_report_shows_the_matrix_rates_and_completers,
    merges_and_renames_keep_history_in_reports_and_reach_devices,
    coverage_counts_cadres_per_unit_rolled_up_with_xlsx_and_csv,
    reports_follow_the_caller_scope,
    the_command_line_merges_and_renames_units,
    cells_a_spreadsheet_would_run_are_guarded_in_csv_and_text_in_xlsx,
);

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A province with three communes, five cadres, a five-session course in March 2026 taught by
/// `co.lan`, with attendance; a second course nobody is assigned to.
struct World {
    admin: String,
    province: String,
    an_phu: String,
    binh_minh: String,
    cat_tien: String,
    course: String,
    other_course: String,
    trainer: String,
    /// Secretary of An Phú: present at all five sessions (the trainer recorded them).
    an: String,
    /// Deputy of An Phú: 3 present, 1 late, 1 absent = 80 %.
    binh: String,
    /// Secretary of Bình Minh: 3 present, 2 excused = 60 %.
    chau: String,
    /// Secretary of Cát Tiên: not enrolled.
    dung: String,
    /// A member of An Phú: present at all five, but not a cadre position.
    em: String,
}

fn world(app: &TestApp) -> World {
    let admin = app.admin_token();
    let province = id_of(&app.create(
        &admin,
        "/api/v1/units",
        json!({"code": "52", "name": "Tỉnh Gia Lai", "kind": "province"}),
    ));
    let commune = |code: &str, name: &str| {
        id_of(&app.create(
            &admin,
            "/api/v1/units",
            json!({"code": code, "name": name, "kind": "commune", "parent_id": province}),
        ))
    };
    let an_phu = commune("001", "Xã An Phú");
    let binh_minh = commune("002", "Xã Bình Minh");
    let cat_tien = commune("003", "Xã Cát Tiên");
    let person = |name: &str, position: &str, unit: &str| {
        id_of(&app.create(
            &admin,
            "/api/v1/people",
            json!({"full_name": name, "position": position, "unit_id": unit}),
        ))
    };
    let an = person("Nguyễn Văn An", "secretary", &an_phu);
    let binh = person("Trần Thị Bình", "deputy_secretary", &an_phu);
    let chau = person("Lê Minh Châu", "secretary", &binh_minh);
    let dung = person("Phạm Thị Dung", "secretary", &cat_tien);
    let em = person("Hoàng Văn Em", "member", &an_phu);
    let trainer = app.create_user("co.lan", "trainer", None);
    let course = id_of(&app.create(&admin,
        "/api/v1/courses",
        json!({"code": "BD-2026-03", "title": "Bồi dưỡng Bí thư, Phó Bí thư", "management_level": "province",
            "start_date": "2026-03-02", "end_date": "2026-03-04"}),
    ));
    let other_course = id_of(&app.create(
        &admin,
        "/api/v1/courses",
        json!({"title": "Lớp khác", "management_level": "province",
            "start_date": "2026-04-01", "end_date": "2026-04-01"}),
    ));
    app.create(
        &admin,
        "/api/v1/course-trainers",
        json!({"course_id": course, "user_id": trainer}),
    );
    let sessions: Vec<String> = (0..5)
        .map(|i| {
            id_of(&app.create(&admin,
                "/api/v1/sessions",
                json!({"course_id": course, "topic": format!("Chuyên đề {}", i + 1),
                    "starts_at": format!("2026-03-0{}T{}:00:00+07:00", 2 + i / 2, if i % 2 == 0 { "08" } else { "14" }),
                    "ends_at": format!("2026-03-0{}T{}:00:00+07:00", 2 + i / 2, if i % 2 == 0 { "11" } else { "17" }),
                    "trainer_id": trainer}),
            ))
        })
        .collect();
    for person in [&an, &binh, &chau, &em] {
        app.create(
            &admin,
            "/api/v1/enrollments",
            json!({"course_id": course, "person_id": person}),
        );
    }
    let trainer_token = app.token("co.lan", "trainer-password");
    let mark = |token: &str, session: &str, person: &str, status: &str| {
        app.create(
            token,
            "/api/v1/attendance",
            json!({"session_id": session, "person_id": person, "status": status}),
        );
    };
    for (i, session) in sessions.iter().enumerate() {
        mark(&trainer_token, session, &an, "present");
        mark(&admin, session, &em, "present");
        let binh_status = ["present", "present", "late", "absent", "present"][i];
        mark(&admin, session, &binh, binh_status);
        let chau_status = ["present", "excused", "present", "excused", "present"][i];
        mark(&admin, session, &chau, chau_status);
    }
    World {
        admin,
        province,
        an_phu,
        binh_minh,
        cat_tien,
        course,
        other_course,
        trainer,
        an,
        binh,
        chau,
        dung,
        em,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

fn a_course_report_shows_the_matrix_rates_and_completers(app: TestApp) {
    let w = world(&app);
    let path = format!("/api/v1/reports/courses/{}", w.course);
    let report = app.get_ok(&w.admin, &path);
    assert_eq!(
        report["rule"],
        json!({"min_rate": 80.0, "statuses": ["present", "late"]})
    );
    assert_eq!(report["sessions"].as_array().unwrap().len(), 5);
    // Rows by given name: An, Bình, Châu, Em.
    assert_eq!(
        strings_of(&report["trainees"], "full_name"),
        [
            "Nguyễn Văn An",
            "Trần Thị Bình",
            "Lê Minh Châu",
            "Hoàng Văn Em"
        ]
    );
    let binh = &report["trainees"][1];
    assert_eq!(
        binh["statuses"],
        json!(["present", "present", "late", "absent", "present"])
    );
    assert_eq!(binh["attended"], 4);
    assert_eq!(binh["rate"], 80.0);
    assert_eq!(binh["completed"], true);
    assert_eq!(binh["unit_name"], "Xã An Phú");
    let chau = &report["trainees"][2];
    assert_eq!(
        (chau["rate"].clone(), chau["completed"].clone()),
        (json!(60.0), json!(false))
    );
    assert_eq!(
        strings_of(&report["completed"], "full_name"),
        ["Nguyễn Văn An", "Trần Thị Bình", "Hoàng Văn Em"]
    );

    // A configurable rule.
    let strict = app.get_ok(&w.admin, &format!("{path}?min_rate=100"));
    assert_eq!(
        strings_of(&strict["completed"], "full_name"),
        ["Nguyễn Văn An", "Hoàng Văn Em"]
    );
    let present_only = app.get_ok(&w.admin, &format!("{path}?statuses=present&min_rate=60"));
    assert_eq!(present_only["trainees"][1]["attended"], 3);
    assert_eq!(present_only["trainees"][2]["completed"], true);
    let bad = app
        .get(&w.admin, &format!("{path}?min_rate=120&statuses=asleep"))
        .expect(422);
    assert_eq!(bad.json["details"].as_array().unwrap().len(), 2);
    app.get(&w.admin, &format!("{path}?format=pdf")).expect(400);

    // CSV by query and by Accept: UTF-8 with BOM, Vietnamese headers and labels.
    for (query, headers) in [("?format=csv", vec![]), ("", vec![("Accept", "text/csv")])] {
        let (status, response_headers, body) =
            app.download(&format!("{path}{query}"), &w.admin, &headers);
        assert_eq!(status, 200);
        assert!(header(&response_headers, "content-type").starts_with("text/csv"));
        assert!(
            header(&response_headers, "content-disposition").contains("diem-danh-BD-2026-03.csv")
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("\u{feff}STT,Họ và tên,Chức vụ"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[2].starts_with("2,Trần Thị Bình,Phó Bí thư,Xã An Phú,Xã An Phú,Có mặt,Có mặt,Đi muộn,Vắng,Có mặt,4,80.0,Có"), "{}", lines[2]);
    }

    // XLSX, opened with a reader.
    let (status, response_headers, body) =
        app.download(&format!("{path}?format=xlsx"), &w.admin, &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&response_headers, "content-type"), XLSX);
    let mut book = workbook(body);
    assert_eq!(book.sheet_names(), ["Điểm danh", "Hoàn thành"]);
    let matrix = book.worksheet_range("Điểm danh").unwrap();
    assert_eq!(cell_text(matrix.get((0, 1))), "Họ và tên");
    assert_eq!(cell_text(matrix.get((0, 5))), "02/03 08:00 Chuyên đề 1");
    assert_eq!(cell_text(matrix.get((2, 1))), "Trần Thị Bình");
    assert_eq!(cell_text(matrix.get((2, 7))), "Đi muộn");
    assert_eq!(matrix.get((2, 11)), Some(&Data::Float(80.0)));
    assert_eq!(cell_text(matrix.get((3, 12))), "Không");
    let done = book.worksheet_range("Hoàn thành").unwrap();
    assert_eq!(done.height(), 4);
    assert_eq!(cell_text(done.get((3, 1))), "Hoàng Văn Em");
}

fn merges_and_renames_keep_history_in_reports_and_reach_devices(app: TestApp) {
    let w = world(&app);
    let trainer = app.token("co.lan", "trainer-password");
    let before = app.get_ok(&trainer, "/api/v1/sync/pull?limit=1000");
    let cursor = before["cursor"].as_str().unwrap().to_owned();

    // An Phú is renamed in May, then merged with Bình Minh into a new An Bình from July.
    let renamed = app
        .post(
            &w.admin,
            &format!("/api/v1/units/{}/rename", w.an_phu),
            &json!({"name": "Xã An Phú Mới", "effective_date": "2026-05-01"}),
        )
        .expect(200);
    assert_eq!(renamed.json["name"], "Xã An Phú Mới");
    let merge = json!({"source_ids": [w.an_phu, w.binh_minh], "effective_date": "2026-07-01",
        "target": {"code": "004", "name": "Xã An Bình", "kind": "commune"}});
    let merged = app
        .post(&w.admin, "/api/v1/units/merge", &merge)
        .expect(200)
        .json;
    assert_eq!(merged["people_moved"], 4);
    assert_eq!(
        merged["target"]["parent_id"],
        json!(w.province),
        "the sources' parent"
    );
    assert_eq!(merged["target"]["valid_from"], "2026-07-01");
    let an_binh = id_of(&merged["target"]);
    for source in merged["sources"].as_array().unwrap() {
        assert_eq!(source["merged_into_id"], json!(an_binh));
        assert_eq!(source["valid_to"], "2026-06-30");
    }
    app.post(
        &w.admin,
        "/api/v1/units/merge",
        &json!({"source_ids": [w.an_phu], "target_id": w.cat_tien, "effective_date": "2026-08-01"}),
    )
    .expect_error(409, "unit_not_current");
    let into_itself = json!({"source_ids": [w.cat_tien], "target_id": w.cat_tien, "effective_date": "2026-08-01"});
    app.post(&w.admin, "/api/v1/units/merge", &into_itself)
        .expect(422);
    let both = json!({"source_ids": [w.cat_tien], "effective_date": "2026-08-01"});
    app.post(&w.admin, "/api/v1/units/merge", &both).expect(422);

    // History: the rename and the merge, oldest first.
    let history = app.get_ok(&w.admin, &format!("/api/v1/units/{}/history", w.an_phu));
    let kinds: Vec<(&str, &str)> = items(&history)
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["effective_date"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("rename", "2026-05-01"), ("merge", "2026-07-01")]);
    assert_eq!(history["items"][0]["old_name"], "Xã An Phú");
    let target_history = app.get_ok(&w.admin, &format!("/api/v1/units/{an_binh}/history"));
    assert_eq!(target_history["items"].as_array().unwrap().len(), 2);

    // People moved; the March course still shows where they were, under the name of then.
    let an = app.get_ok(&w.admin, &format!("/api/v1/people/{}", w.an));
    assert_eq!(an["unit_id"], json!(an_binh));
    let report = app.get_ok(&w.admin, &format!("/api/v1/reports/courses/{}", w.course));
    let row = &report["trainees"][0];
    assert_eq!(row["unit_id"], json!(w.an_phu));
    assert_eq!(row["unit_name"], "Xã An Phú");
    assert_eq!(row["current_unit_id"], json!(an_binh));
    assert_eq!(row["current_unit_name"], "Xã An Bình");
    assert_eq!(report["trainees"][2]["unit_name"], "Xã Bình Minh");

    // A move by editing the person is history too.
    let mut body = an.clone();
    for field in ["rev", "created_at", "updated_at"] {
        body.as_object_mut().unwrap().remove(field);
    }
    body["unit_id"] = json!(w.cat_tien);
    app.put(&w.admin, &format!("/api/v1/people/{}", w.an), &body)
        .expect(200);
    let report = app.get_ok(&w.admin, &format!("/api/v1/reports/courses/{}", w.course));
    assert_eq!(report["trainees"][0]["unit_name"], "Xã An Phú");
    assert_eq!(report["trainees"][0]["current_unit_name"], "Xã Cát Tiên");

    // Devices receive the new tree and the moved people through the feed.
    let after = app.get_ok(
        &trainer,
        &format!("/api/v1/sync/pull?limit=1000&cursor={cursor}"),
    );
    let changed = string_pairs_of(&after["changes"], "collection", "id");
    for unit in [&w.an_phu, &w.binh_minh, &an_binh] {
        assert!(
            changed.contains(&("units".into(), unit.clone())),
            "{unit} missing from {changed:?}"
        );
    }
    for person in [&w.an, &w.binh, &w.chau, &w.em] {
        assert!(
            changed.contains(&("people".into(), person.clone())),
            "{person} missing"
        );
    }
    assert!(
        !changed.contains(&("people".into(), w.dung.clone())),
        "people outside the trainer's scope stay out of the feed"
    );
    let moved = after["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(w.binh))
        .unwrap();
    assert_eq!(moved["data"]["unit_id"], json!(an_binh));
}

fn coverage_counts_cadres_per_unit_rolled_up_with_xlsx_and_csv(app: TestApp) {
    let w = world(&app);
    let path = "/api/v1/reports/coverage?from=2026-01-01&to=2026-12-31";
    let report = app.get_ok(&w.admin, path);
    assert_eq!(
        report["positions"],
        json!(["secretary", "deputy_secretary"])
    );
    assert_eq!(
        report["total"],
        json!({"cadres": 4, "trained": 2, "percent": 50.0, "courses": 1})
    );
    let rows: Vec<(String, usize, i64, i64)> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["depth"].as_u64().unwrap() as usize,
                u["cadres"].as_i64().unwrap(),
                u["trained"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("Tỉnh Gia Lai".to_owned(), 0, 4, 2),
            ("Xã An Phú".to_owned(), 1, 2, 2),
            ("Xã Bình Minh".to_owned(), 1, 1, 0),
            ("Xã Cát Tiên".to_owned(), 1, 1, 0),
        ]
    );
    assert_eq!(
        strings_of(&report["units"][2]["missing"], "full_name"),
        ["Lê Minh Châu"]
    );
    assert_eq!(report["units"][0]["missing"], json!([]));

    // Members too; another period; a subtree; a looser rule.
    let members = app.get_ok(&w.admin, &format!("{path}&positions=member"));
    assert_eq!(members["total"]["trained"], 1);
    let last_year = app.get_ok(
        &w.admin,
        "/api/v1/reports/coverage?from=2025-01-01&to=2025-12-31",
    );
    assert_eq!(
        (
            last_year["total"]["trained"].clone(),
            last_year["total"]["courses"].clone()
        ),
        (json!(0), json!(0))
    );
    let subtree = app.get_ok(&w.admin, &format!("{path}&unit_id={}", w.binh_minh));
    assert_eq!(subtree["units"].as_array().unwrap().len(), 1);
    assert_eq!(subtree["total"]["cadres"], 1);
    let loose = app.get_ok(
        &w.admin,
        &format!("{path}&min_rate=60&statuses=present,excused"),
    );
    assert_eq!(loose["total"]["trained"], 3);
    let bad = app
        .get(
            &w.admin,
            "/api/v1/reports/coverage?from=2026-12-31&to=2026-01-01&positions=king",
        )
        .expect(422);
    assert_eq!(bad.json["details"].as_array().unwrap().len(), 2);

    // After the merge, cadres count in today's unit.
    let merge = json!({"source_ids": [w.an_phu, w.binh_minh], "target_id": w.cat_tien, "effective_date": "2026-07-01"});
    app.post(&w.admin, "/api/v1/units/merge", &merge)
        .expect(200);
    let merged = app.get_ok(&w.admin, path);
    assert_eq!(merged["units"].as_array().unwrap().len(), 2);
    assert_eq!(merged["units"][1]["name"], "Xã Cát Tiên");
    assert_eq!(merged["units"][1]["cadres"], 4);
    assert_eq!(merged["units"][1]["percent"], 50.0);
    assert_eq!(
        strings_of(&merged["units"][1]["missing"], "full_name"),
        ["Lê Minh Châu", "Phạm Thị Dung"]
    );

    // XLSX read back.
    let (status, _, body) = app.download(&format!("{path}&format=xlsx"), &w.admin, &[]);
    assert_eq!(status, 200);
    let mut book = workbook(body);
    let sheet = book.worksheet_range("Bao phủ").unwrap();
    assert_eq!(cell_text(sheet.get((0, 1))), "Đơn vị");
    assert_eq!(cell_text(sheet.get((2, 0))), "003");
    assert_eq!(cell_text(sheet.get((2, 1))), "  Xã Cát Tiên");
    assert_eq!(sheet.get((2, 2)), Some(&Data::Float(4.0)));
    assert_eq!(sheet.get((2, 4)), Some(&Data::Float(50.0)));
    assert_eq!(cell_text(sheet.get((2, 5))), "Lê Minh Châu; Phạm Thị Dung");
    assert_eq!(cell_text(sheet.get((3, 1))), "Tổng cộng");
    let missing = book.worksheet_range("Chưa bồi dưỡng").unwrap();
    assert_eq!(cell_text(missing.get((1, 1))), "Lê Minh Châu");
    assert_eq!(cell_text(missing.get((2, 2))), "Bí thư");

    let (status, headers, body) = app.download(path, &w.admin, &[("Accept", "text/csv")]);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-disposition").contains("bao-phu-2026-01-01-2026-12-31.csv"));
    let csv = String::from_utf8(body).unwrap();
    assert!(csv.starts_with('\u{feff}'));
    assert!(
        csv.contains("003,  Xã Cát Tiên,4,2,50.0,Lê Minh Châu; Phạm Thị Dung"),
        "{csv}"
    );
}

fn reports_follow_the_caller_scope(app: TestApp) {
    let w = world(&app);
    let course = format!("/api/v1/reports/courses/{}", w.course);
    let other = format!("/api/v1/reports/courses/{}", w.other_course);
    let coverage = "/api/v1/reports/coverage";
    let trainer_report = format!("/api/v1/reports/trainers/{}", w.trainer);

    // The course's trainer: their course, their own report; not coverage, not other courses.
    let trainer = app.token("co.lan", "trainer-password");
    assert_eq!(
        app.get_ok(&trainer, &course)["trainees"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    app.get(&trainer, &other).expect(404);
    app.get(&trainer, coverage).expect_error(403, "forbidden");
    let mine = app.get_ok(&trainer, &trainer_report);
    assert_eq!(mine["totals"]["sessions"], 5);
    assert_eq!(mine["totals"]["sessions_held"], 5);
    assert_eq!(mine["totals"]["sessions_taught"], 5);
    assert_eq!(
        mine["totals"]["attendance_recorded"], 5,
        "the five marks of An"
    );
    assert_eq!(mine["courses"].as_array().unwrap().len(), 1);
    let colleague = app.create_user("thay.minh", "trainer", None);
    app.get(&trainer, &format!("/api/v1/reports/trainers/{colleague}"))
        .expect(404);
    let (status, _, body) = app.download(&format!("{trainer_report}?format=xlsx"), &trainer, &[]);
    assert_eq!(status, 200);
    let sheet = workbook(body).worksheet_range("Giảng viên").unwrap();
    assert_eq!(cell_text(sheet.get((1, 0))), "Bồi dưỡng Bí thư, Phó Bí thư");
    assert_eq!(sheet.get((1, 6)), Some(&Data::Float(5.0)));

    // A trainee: their own row of their course, nothing else.
    app.create_user("hv.binh", "trainee", Some(&w.binh));
    let trainee = app.token("hv.binh", "trainee-password");
    let own = app.get_ok(&trainee, &course);
    assert_eq!(strings_of(&own["trainees"], "full_name"), ["Trần Thị Bình"]);
    assert_eq!(
        strings_of(&own["completed"], "full_name"),
        ["Trần Thị Bình"]
    );
    app.get(&trainee, &other).expect(404);
    app.get(&trainee, coverage).expect(403);
    app.get(&trainee, &trainer_report).expect(404);

    // Administrators see everything; unknown ids are simply not found.
    assert_eq!(
        app.get_ok(&w.admin, &trainer_report)["trainer"]["username"],
        "co.lan"
    );
    app.get(&w.admin, "/api/v1/reports/courses/not-a-uuid")
        .expect(404);
    app.get(&w.admin, &format!("/api/v1/reports/trainers/{}", w.an))
        .expect(404);
    app.call("GET", coverage, None, None).expect(401);
    // Only administrators reorganise.
    let merge =
        json!({"source_ids": [w.an_phu], "target_id": w.cat_tien, "effective_date": "2026-07-01"});
    app.post(&trainer, "/api/v1/units/merge", &merge)
        .expect(403);
}

fn the_command_line_merges_and_renames_units(app: TestApp) {
    let w = world(&app);
    let (ok, out, err) = crate::cli::diemdanh(
        &app,
        &[
            "units",
            "merge",
            "001",
            "002",
            "--new-code",
            "004",
            "--new-name",
            "Xã An Bình",
            "--date",
            "2026-07-01",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("merged Xã An Phú, Xã Bình Minh into Xã An Bình (004) from 2026-07-01: 0 units and 4 people moved"), "{out}");
    let (ok, out, err) =
        crate::cli::diemdanh(&app, &["units", "rename", "003", "Xã Cát Tiên Mới"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("003 is now called Xã Cát Tiên Mới"), "{out}");
    let (ok, _, err) = crate::cli::diemdanh(&app, &["units", "rename", "001", "X"], None);
    assert!(!ok);
    assert!(
        err.contains("unit_not_current") || err.contains("merged"),
        "{err}"
    );
    let history = app.get_ok(&w.admin, &format!("/api/v1/units/{}/history", w.cat_tien));
    assert_eq!(history["items"][0]["old_name"], "Xã Cát Tiên");
    assert_eq!(history["items"][0]["recorded_by"], Value::Null);

    // A rename through a plain replace is history too, recorded as the administrator's.
    let unit = app.get_ok(&w.admin, &format!("/api/v1/units/{}", w.cat_tien));
    let body = json!({"code": unit["code"], "name": "Xã Cát Tiên Hai", "kind": unit["kind"],
        "parent_id": unit["parent_id"]});
    app.put(&w.admin, &format!("/api/v1/units/{}", w.cat_tien), &body)
        .expect(200);
    let history = app.get_ok(&w.admin, &format!("/api/v1/units/{}/history", w.cat_tien));
    assert_eq!(history["items"][1]["old_name"], "Xã Cát Tiên Mới");
    assert_eq!(history["items"][1]["new_name"], "Xã Cát Tiên Hai");
    assert!(history["items"][1]["recorded_by"].is_string());
}

const PERSON_FORMULA: &str = "+cmd|' /C calc'!A0";
const COURSE_FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"Mở\")";
const UNIT_FORMULA: &str = "@SUM(1+1)*cmd|' /C calc'!A0";

/// Every field of a CSV file the server wrote.
fn csv_fields(body: Vec<u8>) -> Vec<String> {
    let text = String::from_utf8(body).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// No field a spreadsheet would run: whatever could start a formula comes after an apostrophe.
#[track_caller]
fn assert_nothing_runs(fields: &[String]) {
    for field in fields {
        let start = field.trim_start_matches(' ');
        assert!(
            !start.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a live formula: {field:?}"
        );
    }
}

fn cells_a_spreadsheet_would_run_are_guarded_in_csv_and_text_in_xlsx(app: TestApp) {
    let w = world(&app);
    let unit = id_of(&app.create(
        &w.admin,
        "/api/v1/units",
        json!({"code": "004", "name": UNIT_FORMULA, "kind": "commune", "parent_id": w.province}),
    ));
    let person = id_of(&app.create(
        &w.admin,
        "/api/v1/people",
        json!({"full_name": PERSON_FORMULA, "position": "secretary", "unit_id": unit}),
    ));
    app.create(
        &w.admin,
        "/api/v1/enrollments",
        json!({"course_id": w.course, "person_id": person}),
    );
    let course = id_of(&app.create(
        &w.admin,
        "/api/v1/courses",
        json!({"title": COURSE_FORMULA, "management_level": "province",
            "start_date": "2026-05-04", "end_date": "2026-05-05"}),
    ));
    app.create(
        &w.admin,
        "/api/v1/course-trainers",
        json!({"course_id": course, "user_id": w.trainer}),
    );

    let course_path = format!("/api/v1/reports/courses/{}", w.course);
    let coverage_path = "/api/v1/reports/coverage?from=2026-01-01&to=2026-12-31";
    let trainer_path = format!("/api/v1/reports/trainers/{}", w.trainer);
    let guarded = |text: &str| format!("'{text}");
    for (path, expected) in [
        (course_path.as_str(), vec![guarded(PERSON_FORMULA)]),
        (
            coverage_path,
            vec![
                guarded(&format!("  {UNIT_FORMULA}")),
                guarded(PERSON_FORMULA),
            ],
        ),
        (trainer_path.as_str(), vec![guarded(COURSE_FORMULA)]),
    ] {
        let (status, _, body) = app.download(path, &w.admin, &[("Accept", "text/csv")]);
        assert_eq!(status, 200, "{path}");
        let fields = csv_fields(body);
        assert_nothing_runs(&fields);
        for cell in expected {
            assert!(fields.contains(&cell), "{path}: {cell:?} not in {fields:?}");
        }
    }

    // The course report, imported back as a roster, names the person exactly as stored.
    let (_, _, body) = app.download(&course_path, &w.admin, &[("Accept", "text/csv")]);
    let imported = app.import_csv(&w.admin, "", &body).expect(200);
    let row = imported.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["person_id"] == json!(person))
        .unwrap_or_else(|| panic!("the person is matched: {}", imported.text));
    assert_eq!(row["full_name"], PERSON_FORMULA);

    // XLSX cells are text, as stored: nothing to guard, nothing lost, no formula.
    for (path, sheet, value) in [
        (course_path.as_str(), "Điểm danh", PERSON_FORMULA),
        (trainer_path.as_str(), "Giảng viên", COURSE_FORMULA),
    ] {
        let separator = if path.contains('?') { '&' } else { '?' };
        let (status, _, body) =
            app.download(&format!("{path}{separator}format=xlsx"), &w.admin, &[]);
        assert_eq!(status, 200);
        let mut book = workbook(body);
        let cells = book.worksheet_range(sheet).unwrap();
        assert!(
            cells
                .cells()
                .any(|(_, _, c)| c == &Data::String(value.to_owned())),
            "{value} as text in {sheet}"
        );
        let formulas = book.worksheet_formula(sheet).unwrap();
        assert!(
            formulas.cells().all(|(_, _, f)| f.is_empty()),
            "no formula in {sheet}"
        );
    }
}
