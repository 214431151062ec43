//! Yearly training plans: the plan resource (ETag/If-Match, refusals), progress against a plan
//! by its rule, the roll-up of the units' plans across a merge in the middle of the year, the
//! report as CSV and XLSX, and the demo's plans.

use std::collections::{BTreeMap, BTreeSet};

use calamine::{Data, Reader};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::sheets::{cell_text, csv_rows, workbook};
use crate::support::{TestApp, id_of, item_fields, item_where, items, strings_of};

backend_tests!(
    a_provincial_roll_up_is_the_sum_of_the_communes_plans_across_a_merge,
    a_person_moved_during_the_year_counts_where_they_are_and_is_a_change,
    trained_follows_the_completion_rule_of_the_plan_exactly,
    trained_by_sessions_on_required_topics,
    a_stale_if_match_is_refused_and_changes_nothing,
    bad_plans_are_refused_with_stable_codes_and_change_nothing,
    the_report_downloads_as_csv_and_xlsx_matching_the_json,
    the_demo_has_a_provincial_and_two_ward_plans_that_devices_never_get,
    ward_organisers_plan_for_their_own_ward_and_see_nothing_of_the_siblings,
    sibling_communes_train_their_branch_secretaries_and_neither_reaches_the_other,
    branches_sit_under_a_commune_and_move_with_it_in_a_merge,
    newly_elected_this_term_restricts_the_target_group_exactly,
    attendance_for_sessions_not_yet_started_trains_nobody,
    a_roster_import_names_branches_within_the_organisers_ward,
    a_branch_secretary_belongs_to_a_branch,
);

fn report(app: &TestApp, token: &str, plan: &str) -> Value {
    app.get_ok(token, &format!("/api/v1/reports/training-plans/{plan}"))
}

/// The names in a list of people of a report.
fn names(list: &Value) -> BTreeSet<String> {
    strings_of(list, "full_name").into_iter().collect()
}

/// A list of names (a change's `people_moved`) as a set.
fn name_set(list: &Value) -> BTreeSet<String> {
    let names = list.as_array().unwrap_or_else(|| panic!("a list: {list}"));
    names
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Builds units, people, courses, sessions and attendance through the API.
struct Builder<'a> {
    app: &'a TestApp,
    admin: String,
}

impl Builder<'_> {
    fn new(app: &TestApp) -> Builder<'_> {
        Builder {
            admin: app.admin_token(),
            app,
        }
    }

    fn unit(&self, code: &str, name: &str, kind: &str, parent: Option<&str>) -> String {
        id_of(&self.app.create(
            &self.admin,
            "/api/v1/units",
            json!({"code": code, "name": name, "kind": kind, "parent_id": parent}),
        ))
    }

    fn person(&self, name: &str, position: &str, unit: &str) -> String {
        id_of(&self.app.create(&self.admin,
            "/api/v1/people",
            json!({"full_name": name, "position": position, "unit_id": unit, "phone": "0912345678"}),
        ))
    }

    /// A course of `topics.len()` sessions, one a day from `first_day` (YYYY-MM-DD).
    fn course(&self, code: &str, first_day: &str, topics: &[&str]) -> (String, Vec<String>) {
        let start = chrono::NaiveDate::parse_from_str(first_day, "%Y-%m-%d").unwrap();
        let end = start + chrono::Days::new(topics.len() as u64);
        let course = id_of(&self.app.create(
            &self.admin,
            "/api/v1/courses",
            json!({"code": code, "title": format!("Lớp {code}"), "management_level": "province",
                "start_date": first_day, "end_date": end.to_string()}),
        ));
        let sessions = topics
            .iter()
            .enumerate()
            .map(|(i, topic)| {
                let day = start + chrono::Days::new(i as u64);
                id_of(&self.app.create(
                    &self.admin,
                    "/api/v1/sessions",
                    json!({"course_id": course, "topic": topic,
                        "starts_at": format!("{day}T08:00:00+07:00"),
                        "ends_at": format!("{day}T11:00:00+07:00")}),
                ))
            })
            .collect();
        (course, sessions)
    }

    /// Enrolls the person and records one status per session (None: nothing recorded).
    fn attend(&self, course: &str, sessions: &[String], person: &str, statuses: &[Option<&str>]) {
        self.app.create(
            &self.admin,
            "/api/v1/enrollments",
            json!({"course_id": course, "person_id": person}),
        );
        for (session, status) in sessions.iter().zip(statuses) {
            if let Some(status) = status {
                self.app.create(
                    &self.admin,
                    "/api/v1/attendance",
                    json!({"session_id": session, "person_id": person, "status": status}),
                );
            }
        }
    }

    fn plan(&self, body: Value) -> Value {
        self.app.create(&self.admin, "/api/v1/training-plans", body)
    }
}

/// `present` n times, then `rest` up to `total`.
fn statuses(present: usize, rest: &'static str, total: usize) -> Vec<Option<&'static str>> {
    (0..total)
        .map(|i| Some(if i < present { "present" } else { rest }))
        .collect()
}

fn planned(course: &str, start: &str, end: &str) -> Value {
    json!({"course_id": course, "planned_start": start, "planned_end": end})
}

fn progress(report: &Value) -> (i64, i64, i64, i64) {
    let p = &report["progress"];
    (
        p["target"].as_i64().unwrap(),
        p["required"].as_i64().unwrap(),
        p["trained"].as_i64().unwrap(),
        p["not_trained"].as_i64().unwrap(),
    )
}

fn a_provincial_roll_up_is_the_sum_of_the_communes_plans_across_a_merge(app: TestApp) {
    let b = Builder::new(&app);
    let province = b.unit("52", "Tỉnh Gia Lai", "province", None);
    let an_phu = b.unit("001", "Xã An Phú", "commune", Some(&province));
    let binh_minh = b.unit("002", "Xã Bình Minh", "commune", Some(&province));
    let cat_tien = b.unit("003", "Xã Cát Tiên", "commune", Some(&province));
    // The province trains the communes' Secretaries and Deputies; each commune its committee
    // members.
    let a_sec = b.person("Nguyễn Văn An", "secretary", &an_phu);
    let a_dep = b.person("Trần Thị Ánh", "deputy_secretary", &an_phu);
    let a_cm1 = b.person("Lê Văn Bảo", "committee_member", &an_phu);
    let a_cm2 = b.person("Phạm Thị Cúc", "committee_member", &an_phu);
    let b_sec = b.person("Hoàng Văn Dũng", "secretary", &binh_minh);
    let b_dep = b.person("Vũ Thị Giang", "deputy_secretary", &binh_minh);
    let b_cm1 = b.person("Đặng Văn Hải", "committee_member", &binh_minh);
    let c_sec = b.person("Bùi Thị Hoa", "secretary", &cat_tien);
    let c_cm1 = b.person("Đỗ Văn Khoa", "committee_member", &cat_tien);
    let c_cm2 = b.person("Ngô Thị Lan", "committee_member", &cat_tien);
    let five = ["Chuyên đề"; 5];
    let (leaders, leader_sessions) = b.course("BD-2026", "2026-03-02", &five);
    for (person, marks) in [
        (&a_sec, statuses(5, "present", 5)),
        (&a_dep, statuses(4, "absent", 5)),
        (&b_sec, statuses(3, "excused", 5)),
        (&b_dep, statuses(5, "present", 5)),
        (&c_sec, vec![None; 5]),
    ] {
        b.attend(&leaders, &leader_sessions, person, &marks);
    }
    let (skills, skill_sessions) = b.course("KN-2026", "2026-04-06", &five);
    for (person, marks) in [
        (&a_cm1, statuses(5, "present", 5)),
        (&a_cm2, statuses(2, "absent", 5)),
        (&b_cm1, statuses(4, "absent", 5)),
        (&c_cm1, statuses(5, "present", 5)),
        (&c_cm2, statuses(0, "absent", 5)),
    ] {
        b.attend(&skills, &skill_sessions, person, &marks);
    }
    let province_plan = id_of(&b.plan(json!({"unit_id": province, "year": 2026,
        "title": "Kế hoạch bồi dưỡng Bí thư, Phó Bí thư 2026",
        "target_positions": ["secretary", "deputy_secretary"],
        "courses": [planned(&leaders, "2026-03-02", "2026-03-06")]})));
    let commune_plan = |unit: &str, percent: i64| {
        id_of(&b.plan(
            json!({"unit_id": unit, "year": 2026, "title": "Kế hoạch bồi dưỡng Ban Chấp hành",
            "target_positions": ["committee_member"], "target_percent": percent,
            "courses": [planned(&skills, "2026-04-06", "2026-04-10")]}),
        ))
    };
    let plan_a = commune_plan(&an_phu, 100);
    let plan_b = commune_plan(&binh_minh, 100);
    let plan_c = commune_plan(&cat_tien, 50);
    // A plan of another year is no part of this year's roll-up.
    b.plan(
        json!({"unit_id": binh_minh, "year": 2025, "title": "Kế hoạch 2025",
        "target_positions": ["committee_member"]}),
    );

    let before = report(&app, &b.admin, &plan_b);
    assert_eq!(progress(&before), (1, 1, 1, 0));

    // In the middle of the year An Phú is merged into Bình Minh: its people move.
    let merge =
        json!({"source_ids": [an_phu], "target_id": binh_minh, "effective_date": "2026-07-01"});
    app.post(&b.admin, "/api/v1/units/merge", &merge)
        .expect(200);

    let of_a = report(&app, &b.admin, &plan_a);
    let of_b = report(&app, &b.admin, &plan_b);
    let of_c = report(&app, &b.admin, &plan_c);
    assert_eq!(of_a["unit"]["in_force"], false);
    assert_eq!(of_a["unit"]["merged_into_id"], binh_minh);
    assert_eq!(progress(&of_a), (0, 0, 0, 0), "nobody is left in An Phú");
    assert_eq!(
        progress(&of_b),
        (3, 3, 2, 1),
        "An Phú's members count in Bình Minh"
    );
    assert_eq!(names(&of_b["not_trained"]), set(&["Phạm Thị Cúc"]));
    assert_eq!(
        of_b["not_trained"][0]["unit_name"], "Xã Bình Minh",
        "people are shown in the unit they belong to today"
    );
    assert_eq!(of_b["progress"]["met"], false);
    assert_eq!(progress(&of_c), (2, 1, 1, 1));
    assert_eq!(of_c["progress"]["met"], true, "50% of two is one");
    let merge_seen_by_b = &of_b["changes"][0];
    assert_eq!(
        (
            merge_seen_by_b["date"].as_str(),
            merge_seen_by_b["kind"].as_str(),
            merge_seen_by_b["unit_name"].as_str(),
            merge_seen_by_b["new_name"].as_str(),
        ),
        (
            Some("2026-07-01"),
            Some("merge"),
            Some("Xã An Phú"),
            Some("Xã Bình Minh")
        )
    );
    assert_eq!(
        name_set(&merge_seen_by_b["people_moved"]),
        set(&["Lê Văn Bảo", "Phạm Thị Cúc"])
    );

    let of_province = report(&app, &b.admin, &province_plan);
    // The province's own target group: 5 leaders, of whom 3 completed the class.
    assert_eq!(progress(&of_province), (5, 5, 3, 2));
    assert_eq!(
        names(&of_province["not_trained"]),
        set(&["Hoàng Văn Dũng", "Bùi Thị Hoa"])
    );
    let units: Vec<(String, i64, i64)> = of_province["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["target"].as_i64().unwrap(),
                u["trained"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        units,
        [
            ("Tỉnh Gia Lai".to_owned(), 5, 3),
            ("Xã Bình Minh".to_owned(), 4, 3),
            ("Xã Cát Tiên".to_owned(), 1, 0),
        ]
    );
    // Each commune's plan as the province sees it is the commune's own report, and the
    // roll-up is their sum.
    assert_eq!(
        strings_of(&of_province["unit_plans"], "plan_id"),
        [plan_a.as_str(), plan_b.as_str(), plan_c.as_str()]
    );
    let unit_plans = of_province["unit_plans"].as_array().unwrap();
    let own = [&of_a, &of_b, &of_c];
    for (seen, own) in unit_plans.iter().zip(own) {
        assert_eq!(seen["progress"], own["progress"], "{}", seen["unit_name"]);
    }
    assert_eq!(unit_plans[0]["unit_in_force"], false);
    let total = &of_province["unit_plans_total"];
    for field in ["target", "required", "trained", "not_trained"] {
        let sum: i64 = own
            .iter()
            .map(|r| r["progress"][field].as_i64().unwrap())
            .sum();
        assert_eq!(total[field].as_i64().unwrap(), sum, "{field}");
    }
    assert_eq!(
        (
            total["target"].clone(),
            total["trained"].clone(),
            total["met"].clone()
        ),
        (json!(5), json!(3), json!(false))
    );
    // The province's report says what changed and when: the leaders the merge moved.
    let change = &of_province["changes"][0];
    assert_eq!(change["date"], "2026-07-01");
    assert_eq!(
        name_set(&change["people_moved"]),
        set(&["Nguyễn Văn An", "Trần Thị Ánh"])
    );
    assert_eq!(of_province["courses_not_held"], 0);
    assert_eq!(of_province["courses"][0]["held"], true);
}

fn a_person_moved_during_the_year_counts_where_they_are_and_is_a_change(app: TestApp) {
    let b = Builder::new(&app);
    let province = b.unit("52", "Tỉnh Gia Lai", "province", None);
    let an_phu = b.unit("001", "Xã An Phú", "commune", Some(&province));
    let binh_minh = b.unit("002", "Xã Bình Minh", "commune", Some(&province));
    let mover = b.person("Nguyễn Văn An", "secretary", &an_phu);
    b.person("Trần Thị Bình", "secretary", &binh_minh);
    // An edit moves a person today: the plans of this year see it.
    let year = chrono::Datelike::year(&chrono::Utc::now().date_naive());
    let today = chrono::Utc::now().date_naive().to_string();
    let plan = |unit: &str| {
        id_of(
            &b.plan(json!({"unit_id": unit, "year": year, "title": "Kế hoạch",
            "target_positions": ["secretary"]})),
        )
    };
    let of_an_phu = plan(&an_phu);
    let of_binh_minh = plan(&binh_minh);
    let of_province = plan(&province);
    assert_eq!(report(&app, &b.admin, &of_an_phu)["changes"], json!([]));
    app.put(
        &b.admin,
        &format!("/api/v1/people/{mover}"),
        &json!({"full_name": "Nguyễn Văn An", "position": "secretary", "unit_id": binh_minh}),
    )
    .expect(200);

    let expected = json!([{"date": today, "kind": "person_moved", "unit_id": an_phu,
        "unit_name": "Xã An Phú", "new_unit_id": binh_minh, "new_name": "Xã Bình Minh",
        "people_moved": ["Nguyễn Văn An"]}]);
    let left = report(&app, &b.admin, &of_an_phu);
    assert_eq!(progress(&left), (0, 0, 0, 0));
    assert_eq!(
        left["changes"], expected,
        "the unit left says who went where, and when"
    );
    let joined = report(&app, &b.admin, &of_binh_minh);
    assert_eq!(progress(&joined), (2, 2, 0, 2));
    assert_eq!(joined["changes"], expected, "the unit joined says it too");
    let whole = report(&app, &b.admin, &of_province);
    assert_eq!(
        progress(&whole),
        (2, 2, 0, 2),
        "within the province nobody came or went"
    );
    assert_eq!(whole["changes"], expected);
    assert_eq!(whole["unit_plans_total"]["target"], 2);
}

/// A province, a commune and a plan for its secretaries over the given courses.
fn rule_world(app: &TestApp) -> (Builder<'_>, String) {
    let b = Builder::new(app);
    let province = b.unit("52", "Tỉnh Gia Lai", "province", None);
    let commune = b.unit("001", "Xã An Phú", "commune", Some(&province));
    (b, commune)
}

fn trained_follows_the_completion_rule_of_the_plan_exactly(app: TestApp) {
    let (b, commune) = rule_world(&app);
    let eighty = b.person("Nguyễn Văn Tám", "secretary", &commune);
    let seventy_nine = b.person("Trần Thị Chín", "secretary", &commune);
    let excused = b.person("Lê Văn Phép", "secretary", &commune);
    let split = b.person("Phạm Thị Chia", "secretary", &commune);
    let (short, short_sessions) = b.course("NGAN", "2026-03-02", &["Chuyên đề"; 5]);
    let (long, long_sessions) = b.course("DAI", "2026-04-01", &["Chuyên đề"; 24]);
    // 3 present + 1 late of 5 = 80 %: late counts as attending.
    b.attend(
        &short,
        &short_sessions,
        &eighty,
        &[
            Some("present"),
            Some("late"),
            Some("present"),
            Some("absent"),
            Some("present"),
        ],
    );
    // 19 of 24 = 79.2 %.
    b.attend(
        &long,
        &long_sessions,
        &seventy_nine,
        &statuses(19, "absent", 24),
    );
    // 3 present and 2 excused of 5: excused is not attending.
    b.attend(
        &short,
        &short_sessions,
        &excused,
        &statuses(3, "excused", 5),
    );
    // 60 % of one course and 79 % of the other: each course is judged on its own.
    b.attend(&short, &short_sessions, &split, &statuses(3, "absent", 5));
    b.attend(&long, &long_sessions, &split, &statuses(19, "absent", 24));
    let plan = b.plan(json!({"unit_id": commune, "year": 2026, "title": "Kế hoạch 2026",
        "target_positions": ["secretary"], "rule": {"kind": "course_completion", "min_rate": 80},
        "courses": [planned(&short, "2026-03-02", "2026-03-06"), planned(&long, "2026-04-01", "2026-04-24")]}));
    let plan_id = id_of(&plan);
    let at_80 = report(&app, &b.admin, &plan_id);
    assert_eq!(names(&at_80["trained"]), set(&["Nguyễn Văn Tám"]));
    assert_eq!(
        names(&at_80["not_trained"]),
        set(&["Trần Thị Chín", "Lê Văn Phép", "Phạm Thị Chia"])
    );
    assert_eq!(progress(&at_80), (4, 4, 1, 3));

    // At 75 % the 79 % attendance is enough; the plan's rule is what decides.
    let mut body = plan.clone();
    for owned in ["rev", "created_at", "updated_at"] {
        body.as_object_mut().unwrap().remove(owned);
    }
    body["rule"]["min_rate"] = json!(75);
    let etag = format!("\"{}\"", plan["rev"]);
    app.put_if_match(
        &b.admin,
        &format!("/api/v1/training-plans/{plan_id}"),
        &etag,
        &body,
    )
    .expect(200);
    let at_75 = report(&app, &b.admin, &plan_id);
    assert_eq!(
        names(&at_75["trained"]),
        set(&["Nguyễn Văn Tám", "Trần Thị Chín", "Phạm Thị Chia"])
    );
    assert_eq!(
        at_75["plan"]["rule"],
        json!({"kind": "course_completion", "min_rate": 75})
    );
}

fn trained_by_sessions_on_required_topics(app: TestApp) {
    let (b, commune) = rule_world(&app);
    let (course, sessions) = b.course(
        "CD",
        "2026-05-04",
        &[
            "Bảo vệ nền tảng tư tưởng của Đảng trên KHÔNG GIAN MẠNG",
            "Hướng dẫn sử dụng phần mềm quản lý đoàn viên",
            "Kỹ năng cắm trại, dã ngoại",
            "Tổng kết, bế giảng",
        ],
    );
    let both = b.person("Nguyễn Văn Hai", "deputy_secretary", &commune);
    let one_on_topic = b.person("Trần Thị Một", "deputy_secretary", &commune);
    let excused = b.person("Lê Văn Phép", "deputy_secretary", &commune);
    let not_a_deputy = b.person("Phạm Văn Viên", "member", &commune);
    b.attend(
        &course,
        &sessions,
        &both,
        &[Some("present"), Some("late"), None, None],
    );
    b.attend(
        &course,
        &sessions,
        &one_on_topic,
        &[
            Some("present"),
            Some("absent"),
            Some("present"),
            Some("present"),
        ],
    );
    b.attend(
        &course,
        &sessions,
        &excused,
        &[Some("present"), Some("excused"), None, None],
    );
    b.attend(
        &course,
        &sessions,
        &not_a_deputy,
        &statuses(4, "present", 4),
    );
    let plan = id_of(&b.plan(
        json!({"unit_id": commune, "year": 2026, "title": "Chuyên đề bắt buộc",
        "target_positions": ["deputy_secretary"],
        "rule": {"kind": "sessions_on_topics", "min_sessions": 2,
                 "topics": ["không gian mạng", "Phan mem quan ly doan vien"]},
        "courses": [planned(&course, "2026-05-04", "2026-05-07")]}),
    ));
    let progress_report = report(&app, &b.admin, &plan);
    assert_eq!(names(&progress_report["trained"]), set(&["Nguyễn Văn Hai"]));
    assert_eq!(
        names(&progress_report["not_trained"]),
        set(&["Trần Thị Một", "Lê Văn Phép"]),
        "sessions off the topics and excused absences do not count; a member is not targeted"
    );
}

fn a_stale_if_match_is_refused_and_changes_nothing(app: TestApp) {
    let (b, commune) = rule_world(&app);
    let (course, _) = b.course("K1", "2026-06-01", &["Chuyên đề"; 2]);
    let created = app
        .post(&b.admin, "/api/v1/training-plans", &json!({"unit_id": commune, "year": 2026, "title": "Kế hoạch đầu năm",
                "target_positions": ["secretary"], "courses": [planned(&course, "2026-06-01", "2026-06-02")]}))
        .expect(201);
    let plan = id_of(&created.json);
    let path = format!("/api/v1/training-plans/{plan}");
    let first_etag = created.header("etag").unwrap().to_owned();
    assert_eq!(
        app.call_with(
            "GET",
            &path,
            Some(&b.admin),
            None,
            &[("If-None-Match", &first_etag)]
        )
        .status,
        304
    );
    let body = |title: &str| {
        json!({"unit_id": commune, "year": 2026, "title": title,
            "target_positions": ["secretary", "deputy_secretary"], "target_percent": 90})
    };
    let updated = app
        .put_if_match(&b.admin, &path, &first_etag, &body("Kế hoạch sửa lần một"))
        .expect(200);
    let second_etag = updated.header("etag").unwrap().to_owned();
    assert_ne!(second_etag, first_etag);
    assert_eq!(
        updated.json["courses"],
        json!([]),
        "a replace replaces the courses too"
    );

    app.put_if_match(&b.admin, &path, &first_etag, &body("Kế hoạch ghi đè"))
        .expect_error(412, "precondition_failed");
    app.delete_if_match(&b.admin, &path, &first_etag)
        .expect_error(412, "precondition_failed");
    let now = app.get(&b.admin, &path).expect(200);
    assert_eq!(now.header("etag"), Some(second_etag.as_str()));
    assert_eq!(now.json, updated.json, "the refused writes changed nothing");

    app.delete_if_match(&b.admin, &path, &second_etag)
        .expect(204);
    app.get(&b.admin, &path).expect_error(404, "not_found");
    assert_eq!(
        app.get_ok(&b.admin, "/api/v1/training-plans")["total"],
        0,
        "a deleted plan leaves the list"
    );
}

fn bad_plans_are_refused_with_stable_codes_and_change_nothing(app: TestApp) {
    let (b, commune) = rule_world(&app);
    let (course, _) = b.course("K1", "2026-06-01", &["Chuyên đề"]);
    let other = b.unit("002", "Xã Bình Minh", "commune", None);
    let merged_away = b.unit("003", "Xã Cát Tiên", "commune", None);
    app.post(
        &b.admin,
        "/api/v1/units/merge",
        &json!({"source_ids": [merged_away], "target_id": other, "effective_date": "2026-07-01"}),
    )
    .expect(200);
    let existing = b.plan(
        json!({"unit_id": commune, "year": 2026, "title": "Kế hoạch 2026",
        "target_positions": ["secretary"]}),
    );
    let good = json!({"unit_id": other, "year": 2026, "title": "Kế hoạch",
        "target_positions": ["secretary"], "courses": [planned(&course, "2026-06-01", "2026-06-01")]});
    let with = |change: Value| {
        let mut body = good.clone();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let unknown = "0196f4e2-0000-7000-8000-000000000000";
    let cases: Vec<(Value, u16, &str, Option<&str>, &str)> = vec![
        (
            with(json!({"target_positions": ["king"]})),
            422,
            "validation_failed",
            Some("target_positions"),
            "invalid_value",
        ),
        (
            with(json!({"target_positions": []})),
            422,
            "validation_failed",
            Some("target_positions"),
            "required",
        ),
        (
            with(json!({"target_positions": ["secretary", "secretary"]})),
            422,
            "validation_failed",
            Some("target_positions"),
            "duplicate",
        ),
        (
            with(json!({"target_percent": 0})),
            422,
            "validation_failed",
            Some("target_percent"),
            "out_of_range",
        ),
        (
            with(json!({"year": 1999})),
            422,
            "validation_failed",
            Some("year"),
            "out_of_range",
        ),
        (
            with(json!({"title": " "})),
            422,
            "validation_failed",
            Some("title"),
            "required",
        ),
        (
            with(json!({"rule": {"kind": "by_magic"}})),
            422,
            "validation_failed",
            Some("rule.kind"),
            "invalid_value",
        ),
        (
            with(json!({"rule": {"kind": "course_completion", "min_rate": 101}})),
            422,
            "validation_failed",
            Some("rule.min_rate"),
            "out_of_range",
        ),
        (
            with(json!({"rule": {"kind": "course_completion", "topics": ["x"]}})),
            422,
            "validation_failed",
            Some("rule.topics"),
            "not_allowed",
        ),
        (
            with(json!({"rule": {"kind": "sessions_on_topics", "topics": ["x"]}})),
            422,
            "validation_failed",
            Some("rule.min_sessions"),
            "required",
        ),
        (
            with(json!({"rule": {"kind": "sessions_on_topics", "min_sessions": 2, "topics": []}})),
            422,
            "validation_failed",
            Some("rule.topics"),
            "required",
        ),
        (
            with(json!({"courses": [planned(&course, "2027-01-05", "2027-01-06")]})),
            422,
            "validation_failed",
            Some("courses[0].planned_start"),
            "outside_year",
        ),
        (
            with(json!({"courses": [planned(&course, "2026-06-02", "2026-06-01")]})),
            422,
            "validation_failed",
            Some("courses[0].planned_end"),
            "invalid_range",
        ),
        (
            with(json!({"courses": [planned(unknown, "2026-06-02", "2026-06-03")]})),
            422,
            "validation_failed",
            Some("courses[0].course_id"),
            "unknown_course",
        ),
        (
            with(
                json!({"courses": [planned(&course, "2026-06-01", "2026-06-01"), planned(&course, "2026-06-01", "2026-06-01")]}),
            ),
            422,
            "validation_failed",
            Some("courses[1].course_id"),
            "duplicate",
        ),
        (
            with(json!({"unit_id": unknown})),
            422,
            "validation_failed",
            Some("unit_id"),
            "unknown_unit",
        ),
        (
            with(json!({"unit_id": merged_away})),
            422,
            "validation_failed",
            Some("unit_id"),
            "unit_not_current",
        ),
        (
            with(json!({"unit_id": commune})),
            409,
            "plan_exists",
            None,
            "",
        ),
        (
            with(json!({"colour": "red"})),
            422,
            "validation_failed",
            None,
            "",
        ),
    ];
    for (body, status, code, field, detail) in cases {
        let answer = app
            .post(&b.admin, "/api/v1/training-plans", &body)
            .expect(status);
        if !code.is_empty() {
            assert_eq!(answer.code(), code, "{body}");
        }
        if let Some(field) = field {
            let details = answer.json["details"].as_array().unwrap();
            assert!(
                details
                    .iter()
                    .any(|d| d["field"] == field && d["code"] == detail),
                "{body}: {}",
                answer.text
            );
        }
    }
    let list = app.get_ok(&b.admin, "/api/v1/training-plans?limit=500");
    assert_eq!(list["total"], 1, "nothing was written: {list}");
    assert_eq!(list["items"][0], existing);
    app.get(&b.admin, "/api/v1/training-plans?unit_id=abc")
        .expect_error(422, "validation_failed");

    // A caller who manages no unit: foreign plans are not found, lists leave them out, and a
    // plan for a unit they do not manage is refused.
    app.create_user("co.lan", "trainer", None);
    let trainer = app.token("co.lan", "trainer-password");
    let plan = id_of(&existing);
    for path in [
        format!("/api/v1/training-plans/{plan}"),
        format!("/api/v1/reports/training-plans/{plan}"),
    ] {
        app.get(&trainer, &path).expect_error(404, "not_found");
    }
    assert_eq!(app.get_ok(&trainer, "/api/v1/training-plans")["total"], 0);
    app.post(&trainer, "/api/v1/training-plans", &good)
        .expect_error(403, "forbidden");
    assert_eq!(
        app.get_ok(&b.admin, "/api/v1/training-plans")["total"],
        1,
        "still nothing written"
    );
}

fn cell(sheet: &calamine::Range<Data>, row: usize, col: usize) -> String {
    cell_text(sheet.get((row, col)))
}

fn the_report_downloads_as_csv_and_xlsx_matching_the_json(app: TestApp) {
    let b = Builder::new(&app);
    let province = b.unit("52", "Tỉnh Gia Lai", "province", None);
    let an_phu = b.unit("001", "Xã An Phú", "commune", Some(&province));
    // A unit and a person named like formulas: shown as text, never run.
    let hostile = b.unit(
        "002",
        "=HYPERLINK(\"http://x\",\"Xã\")",
        "commune",
        Some(&province),
    );
    let an = b.person("Nguyễn Văn An", "secretary", &an_phu);
    b.person("+cmd|' /C calc'!A0", "deputy_secretary", &hostile);
    let (course, sessions) = b.course("BD-2026", "2026-03-02", &["Chuyên đề"; 5]);
    b.attend(&course, &sessions, &an, &statuses(5, "present", 5));
    let (later, _) = b.course("BD-2026-2", "2026-12-20", &["Chuyên đề"; 2]);
    let plan = id_of(&b.plan(json!({"unit_id": province, "year": 2026,
        "title": "Kế hoạch bồi dưỡng 2026", "target_positions": ["secretary", "deputy_secretary"],
        "courses": [planned(&course, "2026-03-02", "2026-03-06"), planned(&later, "2026-12-20", "2026-12-21")]})));
    b.plan(json!({"unit_id": an_phu, "year": 2026, "title": "Kế hoạch xã An Phú",
        "target_positions": ["secretary"], "courses": [planned(&course, "2026-03-02", "2026-03-06")]}));
    let json_report = report(&app, &b.admin, &plan);
    assert_eq!(
        json_report["courses_not_held"], 1,
        "the December class has not started"
    );
    let path = format!("/api/v1/reports/training-plans/{plan}");

    let (status, headers, body) = app.download(&format!("{path}?format=csv"), &b.admin, &[]);
    assert_eq!(status, 200);
    let disposition = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        disposition.contains("ke-hoach-boi-duong-2026-52.csv"),
        "{disposition}"
    );
    let rows = csv_rows(body);
    let units = json_report["units"].as_array().unwrap();
    assert_eq!(rows.len(), 1 + units.len() + 1, "header, units, total");
    for (row, unit) in rows[1..].iter().zip(units) {
        let name = format!(
            "{}{}",
            "  ".repeat(unit["depth"].as_u64().unwrap() as usize),
            unit["name"].as_str().unwrap()
        );
        let shown = diemdanh::reports::render::unguard_formula(&row[1]);
        assert_eq!(shown, name);
        assert!(
            !row[1].trim_start().starts_with('='),
            "a live formula: {}",
            row[1]
        );
        assert_eq!(row[2], unit["target"].to_string());
        assert_eq!(row[3], unit["trained"].to_string());
        assert_eq!(row[4], unit["not_trained"].to_string());
    }
    let total = rows.last().unwrap();
    let progress = &json_report["progress"];
    assert_eq!(total[1], "Tổng cộng");
    assert_eq!(
        total[2..8],
        [
            progress["target"].to_string(),
            progress["trained"].to_string(),
            progress["not_trained"].to_string(),
            format!("{:.1}", progress["percent"].as_f64().unwrap()),
            progress["required"].to_string(),
            if progress["met"] == true {
                "Có"
            } else {
                "Không"
            }
            .to_owned(),
        ]
    );

    let (status, _, body) = app.download(
        &path,
        &b.admin,
        &[(
            "Accept",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )],
    );
    assert_eq!(status, 200);
    let mut book = workbook(body);
    assert_eq!(
        book.sheet_names(),
        [
            "Kế hoạch và kết quả bồi dưỡng",
            "Kế hoạch đơn vị cấp dưới",
            "Danh sách đối tượng",
            "Lớp theo kế hoạch",
            "Thay đổi trong năm",
        ]
    );
    let main = book
        .worksheet_range("Kế hoạch và kết quả bồi dưỡng")
        .unwrap();
    for (i, unit) in units.iter().enumerate() {
        assert_eq!(cell(&main, i + 1, 0), unit["code"].as_str().unwrap());
        assert_eq!(cell(&main, i + 1, 2), unit["target"].to_string());
    }
    let people = book.worksheet_range("Danh sách đối tượng").unwrap();
    let listed: Vec<(String, String)> = (1..people.height())
        .map(|r| (cell(&people, r, 1), cell(&people, r, 6)))
        .collect();
    let expected: Vec<(String, String)> = json_report["not_trained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["full_name"].as_str().unwrap().to_owned(),
                "Chưa bồi dưỡng".to_owned(),
            )
        })
        .chain(json_report["trained"].as_array().unwrap().iter().map(|p| {
            (
                p["full_name"].as_str().unwrap().to_owned(),
                "Đã bồi dưỡng".to_owned(),
            )
        }))
        .collect();
    assert_eq!(listed, expected);
    assert!(
        listed.iter().any(|(name, _)| name == "+cmd|' /C calc'!A0"),
        "XLSX cells are text as stored"
    );
    let sub = book.worksheet_range("Kế hoạch đơn vị cấp dưới").unwrap();
    assert_eq!(cell(&sub, 1, 2), "Kế hoạch xã An Phú");
    assert_eq!(
        cell(&sub, 1, 3),
        json_report["unit_plans"][0]["progress"]["target"].to_string()
    );
    let courses = book.worksheet_range("Lớp theo kế hoạch").unwrap();
    assert_eq!(
        (cell(&courses, 1, 8), cell(&courses, 2, 8)),
        ("Đã tổ chức".to_owned(), "Chưa tổ chức".to_owned())
    );
}

fn the_demo_has_a_provincial_and_two_ward_plans_that_devices_never_get(app: TestApp) {
    let app = app.with_demo();
    let admin = app.admin_token();
    let plans = app.get_ok(&admin, "/api/v1/training-plans?year=2026");
    assert_eq!(plans["total"], 3);
    let province = app.get_ok(&admin, "/api/v1/units?kind=province")["items"][0]["id"].clone();
    let provincial = item_where(&plans, "unit_id", province.as_str().unwrap());
    let of_province = report(&app, &admin, provincial["id"].as_str().unwrap());
    let leaders = app.get_ok(&admin, "/api/v1/people?position=secretary&limit=1")["total"]
        .as_i64()
        .unwrap()
        + app.get_ok(&admin, "/api/v1/people?position=deputy_secretary&limit=1")["total"]
            .as_i64()
            .unwrap();
    assert_eq!(of_province["progress"]["target"], leaders);
    // The demo's class is in December 2026: held once its first session has started.
    let started = chrono::Utc::now()
        >= "2026-12-08T00:30:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
    assert_eq!(of_province["courses"][0]["held"], started);
    assert_eq!(
        strings_of(&of_province["unit_plans"], "unit_name"),
        ["Phường Pleiku", "Phường Thống Nhất"]
    );
    let ward_plans = of_province["unit_plans"].as_array().unwrap();
    for ward_plan in ward_plans {
        let of_ward = report(&app, &admin, ward_plan["plan_id"].as_str().unwrap());
        assert_eq!(of_ward["progress"], ward_plan["progress"]);
    }
    for field in ["target", "required", "trained", "not_trained"] {
        let sum: i64 = ward_plans
            .iter()
            .map(|p| p["progress"][field].as_i64().unwrap())
            .sum();
        assert_eq!(of_province["unit_plans_total"][field], sum, "{field}");
    }
    // Thống Nhất's plan for its branch secretaries and deputies, over the class it held in
    // November: three of the five completed it.
    let branches = report(&app, &admin, ward_plans[1]["plan_id"].as_str().unwrap());
    assert_eq!(progress(&branches), (5, 5, 3, 2));
    assert_eq!(
        names(&branches["not_trained"]),
        set(&["Rah Lan Siu", "Puih Văn Thuận"])
    );
    assert_eq!(branches["courses_not_held"], 0);
    let branch_units: Vec<(&str, i64)> = branches["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["trained"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        branch_units,
        [
            ("Phường Thống Nhất", 3),
            ("Chi đoàn Làng Ia Lang", 0),
            ("Chi đoàn Tổ dân phố 1", 2),
            ("Chi đoàn Tổ dân phố 2", 1),
        ]
    );
    // The province's plan for Secretaries and Deputies finds no branch secretary.
    assert!(
        of_province["not_trained"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["position"].as_str().unwrap().starts_with("branch_"))
    );

    // A trainer of the planned class gets the class, never the plan.
    let trainer = app.demo_token("hoa.nguyen");
    let pull = app
        .get(&trainer, "/api/v1/sync/pull?limit=1000")
        .expect(200);
    let course = provincial["courses"][0]["course_id"].as_str().unwrap();
    assert!(
        pull.text.contains(course),
        "the trainer's devices hold the class"
    );
    for plan in plans["items"].as_array().unwrap() {
        assert!(!pull.text.contains(plan["id"].as_str().unwrap()));
    }
    assert_eq!(app.get_ok(&trainer, "/api/v1/training-plans")["total"], 0);
}

fn ward_organisers_plan_for_their_own_ward_and_see_nothing_of_the_siblings(app: TestApp) {
    let app = app.with_demo();
    let admin = app.admin_token();
    let pleiku = app.demo_token("doan.pleiku");
    let thong_nhat = app.demo_token("doan.thongnhat");
    let province_organiser = app.demo_token("tinhdoan.daotao");
    let all = app.get_ok(&admin, "/api/v1/training-plans?year=2026");
    let plan_of = |unit_name: &str| -> Value {
        let unit = items(&app.get_ok(&admin, "/api/v1/units?limit=500"))
            .find(|u| u["name"] == unit_name && u["merged_into_id"].is_null())
            .unwrap()["id"]
            .clone();
        item_where(&all, "unit_id", unit.as_str().unwrap()).clone()
    };
    let ward_plan = plan_of("Phường Pleiku");
    let ward_id = id_of(&ward_plan);
    let ward_unit = ward_plan["unit_id"].as_str().unwrap().to_owned();
    let province_plan = plan_of("Tỉnh Gia Lai");
    let ids = |token: &str| -> BTreeSet<String> {
        items(&app.get_ok(token, "/api/v1/training-plans"))
            .map(id_of)
            .collect()
    };
    let branch_plan = id_of(&plan_of("Phường Thống Nhất"));
    assert_eq!(ids(&pleiku), BTreeSet::from([ward_id.clone()]));
    assert_eq!(ids(&thong_nhat), BTreeSet::from([branch_plan.clone()]));
    assert_eq!(
        ids(&province_organiser),
        BTreeSet::from([ward_id.clone(), id_of(&province_plan), branch_plan.clone()])
    );

    // The ward's organiser reads the ward's progress as the province reads it.
    assert_eq!(
        report(&app, &pleiku, &ward_id)["progress"],
        report(&app, &admin, &ward_id)["progress"]
    );
    // The sibling ward's organiser finds nothing of it, and the province's plan is not theirs.
    for path in [
        format!("/api/v1/training-plans/{ward_id}"),
        format!("/api/v1/reports/training-plans/{ward_id}"),
        format!("/api/v1/reports/training-plans/{}", id_of(&province_plan)),
    ] {
        app.get(&thong_nhat, &path).expect(404);
    }
    app.delete(&thong_nhat, &format!("/api/v1/training-plans/{ward_id}"))
        .expect(404);

    // Next year's plan: the ward's organiser writes it for the ward, nobody else's.
    let next_year = |unit: &str| json!({"unit_id": unit, "year": 2027, "title": "Kế hoạch bồi dưỡng năm 2027", "target_positions": ["secretary", "deputy_secretary"]});
    let province_unit = province_plan["unit_id"].as_str().unwrap();
    for (token, unit) in [(&thong_nhat, ward_unit.as_str()), (&pleiku, province_unit)] {
        app.post(token, "/api/v1/training-plans", &next_year(unit))
            .expect(422)
            .expect_detail("unit_id", "outside_your_unit");
    }
    assert_eq!(
        app.get_ok(&admin, "/api/v1/training-plans?year=2027")["total"],
        0
    );
    // The demo ward plan counts the province's class, which the ward's organiser does not see:
    // they may still edit the rest of it, but not add a class that is not theirs.
    let province_class = ward_plan["courses"][0]["course_id"].clone();
    let read = app
        .get(&pleiku, &format!("/api/v1/training-plans/{ward_id}"))
        .expect(200);
    let mut edited = read.json.clone();
    for owned in ["id", "rev", "created_at", "updated_at"] {
        edited.as_object_mut().unwrap().remove(owned);
    }
    edited["target_percent"] = json!(90);
    let saved = app
        .put_if_match(
            &pleiku,
            &format!("/api/v1/training-plans/{ward_id}"),
            read.header("etag").unwrap(),
            &edited,
        )
        .expect(200)
        .json;
    assert_eq!(
        (&saved["target_percent"], &saved["courses"][0]["course_id"]),
        (&json!(90), &province_class)
    );
    let mut borrowing = next_year(&ward_unit);
    borrowing["courses"] = json!([{"course_id": province_class, "planned_start": "2027-01-05", "planned_end": "2027-01-05"}]);
    let refused = app
        .post(&pleiku, "/api/v1/training-plans", &borrowing)
        .expect(422);
    assert_eq!(refused.json["details"][0]["code"], "unknown_course");

    let written = app.create(&pleiku, "/api/v1/training-plans", next_year(&ward_unit));
    assert_eq!(written["unit_id"], json!(ward_unit));
    assert_eq!(ids(&thong_nhat), BTreeSet::from([branch_plan]));
    assert!(ids(&province_organiser).contains(&id_of(&written)));
}

/// A province with two sibling communes, each with branches (chi đoàn) and their secretaries,
/// and a commune Secretary each.
struct BranchWorld<'a> {
    b: Builder<'a>,
    province: String,
    an_phu: String,
    binh_minh: String,
    /// An Phú's branches: Thôn 1 and Thôn 2; Bình Minh's: Thôn 1.
    an_phu_branches: [String; 2],
    binh_minh_branch: String,
}

fn branch_world(app: &TestApp) -> BranchWorld<'_> {
    let b = Builder::new(app);
    let province = b.unit("52", "Tỉnh Gia Lai", "province", None);
    let an_phu = b.unit("001", "Xã An Phú", "commune", Some(&province));
    let binh_minh = b.unit("002", "Phường Bình Minh", "ward", Some(&province));
    let an_phu_branches = [
        b.unit("001-CD1", "Chi đoàn Thôn 1", "branch", Some(&an_phu)),
        b.unit("001-CD2", "Chi đoàn Thôn 2", "branch", Some(&an_phu)),
    ];
    let binh_minh_branch = b.unit("002-CD1", "Chi đoàn Thôn 1", "branch", Some(&binh_minh));
    b.person("Nguyễn Văn An", "secretary", &an_phu);
    b.person("Hoàng Văn Dũng", "secretary", &binh_minh);
    BranchWorld {
        b,
        province,
        an_phu,
        binh_minh,
        an_phu_branches,
        binh_minh_branch,
    }
}

/// A one-session class an organiser plans for their unit, held on `day`.
fn organisers_class(
    app: &TestApp,
    token: &str,
    unit: &str,
    code: &str,
    day: &str,
) -> (String, String) {
    let course = id_of(&app.create(
        token,
        "/api/v1/courses",
        json!({"code": code, "title": format!("Bồi dưỡng Bí thư chi đoàn {code}"),
               "organizing_unit_id": unit, "management_level": "commune",
               "start_date": day, "end_date": day}),
    ));
    let session = id_of(&app.create(token,
        "/api/v1/sessions",
        json!({"course_id": course, "topic": "Nghiệp vụ công tác chi đoàn",
               "starts_at": format!("{day}T08:00:00+07:00"), "ends_at": format!("{day}T11:00:00+07:00")}),
    ));
    (course, session)
}

fn sibling_communes_train_their_branch_secretaries_and_neither_reaches_the_other(app: TestApp) {
    let w = branch_world(&app);
    let b = &w.b;
    let lan = b.person("Trần Thị Lan", "branch_secretary", &w.an_phu_branches[0]);
    let minh = b.person("Lê Văn Minh", "branch_secretary", &w.an_phu_branches[1]);
    // A branch's deputy is not in a plan for branch secretaries.
    b.person(
        "Phạm Thị Na",
        "branch_deputy_secretary",
        &w.an_phu_branches[1],
    );
    let oanh = b.person("Đỗ Thị Oanh", "branch_secretary", &w.binh_minh_branch);
    app.create_organiser("doan.anphu", &w.an_phu);
    app.create_organiser("doan.binhminh", &w.binh_minh);
    let an_phu = app.token("doan.anphu", "organiser-password");
    let binh_minh = app.token("doan.binhminh", "organiser-password");

    let (a_course, a_session) = organisers_class(&app, &an_phu, &w.an_phu, "CD-AP", "2026-05-09");
    let (b_course, b_session) =
        organisers_class(&app, &binh_minh, &w.binh_minh, "CD-BM", "2026-05-16");
    b.attend(
        &a_course,
        std::slice::from_ref(&a_session),
        &lan,
        &[Some("present")],
    );
    b.attend(&a_course, &[a_session], &minh, &[Some("absent")]);
    b.attend(&b_course, &[b_session], &oanh, &[Some("present")]);
    let plan_for = |unit: &str, course: &str, day: &str| {
        json!({"unit_id": unit, "year": 2026, "title": "Kế hoạch bồi dưỡng Bí thư chi đoàn 2026",
               "target_positions": ["branch_secretary"],
               "courses": [planned(course, day, day)]})
    };
    let a_plan = app.create(
        &an_phu,
        "/api/v1/training-plans",
        plan_for(&w.an_phu, &a_course, "2026-05-09"),
    );
    let b_plan = app.create(
        &binh_minh,
        "/api/v1/training-plans",
        plan_for(&w.binh_minh, &b_course, "2026-05-16"),
    );
    let (a_plan, b_plan) = (id_of(&a_plan), id_of(&b_plan));

    // Each commune's plan counts its own branch secretaries, and only them (not the deputy,
    // not the commune Secretary).
    let of_a = report(&app, &an_phu, &a_plan);
    assert_eq!(progress(&of_a), (2, 2, 1, 1));
    assert_eq!(names(&of_a["trained"]), set(&["Trần Thị Lan"]));
    assert_eq!(names(&of_a["not_trained"]), set(&["Lê Văn Minh"]));
    assert_eq!(of_a["not_trained"][0]["unit_name"], "Chi đoàn Thôn 2");
    let of_b = report(&app, &binh_minh, &b_plan);
    assert_eq!(progress(&of_b), (1, 1, 1, 0));

    // Neither reaches the other's plan, report or class: every route answers as for nothing.
    for (token, plan, course, unit) in [
        (&an_phu, &b_plan, &b_course, &w.binh_minh),
        (&binh_minh, &a_plan, &a_course, &w.an_phu),
    ] {
        let listed = item_fields(&app.get_ok(token, "/api/v1/training-plans"), "id");
        assert!(!listed.contains(plan));
        assert_eq!(listed.len(), 1);
        for path in [
            format!("/api/v1/training-plans/{plan}"),
            format!("/api/v1/reports/training-plans/{plan}"),
            format!("/api/v1/reports/training-plans/{plan}?format=csv"),
            format!("/api/v1/courses/{course}"),
        ] {
            app.get(token, &path).expect(404);
        }
        let stolen = json!({"unit_id": unit, "year": 2026, "title": "Kế hoạch",
                            "target_positions": ["branch_secretary"]});
        app.put_if_match(
            token,
            &format!("/api/v1/training-plans/{plan}"),
            "\"1\"",
            &stolen,
        )
        .expect(404);
        app.delete(token, &format!("/api/v1/training-plans/{plan}"))
            .expect(404);
        let refused = app
            .post(
                token,
                "/api/v1/training-plans",
                &json!({"unit_id": unit, "year": 2027,
                "title": "Kế hoạch", "target_positions": ["branch_secretary"]}),
            )
            .expect(422);
        assert_eq!(refused.json["details"][0]["code"], "outside_your_unit");
        let pull = app.get(token, "/api/v1/sync/pull?limit=1000").expect(200);
        let watermelon = app
            .get(
                token,
                "/api/v1/watermelon/sync?last_pulled_at=null&schema_version=1&migration=null",
            )
            .expect(200);
        for foreign in [plan, course] {
            assert!(
                !pull.text.contains(foreign.as_str()),
                "the pull leaks {foreign}"
            );
            assert!(
                !watermelon.text.contains(foreign.as_str()),
                "the WatermelonDB pull leaks {foreign}"
            );
        }
    }
    // A sibling's class cannot be planned either.
    let mut borrowing = plan_for(&w.an_phu, &b_course, "2026-05-16");
    borrowing["year"] = json!(2027);
    borrowing["courses"][0] = planned(&b_course, "2027-05-16", "2027-05-16");
    let refused = app
        .post(&an_phu, "/api/v1/training-plans", &borrowing)
        .expect(422);
    assert_eq!(refused.json["details"][0]["code"], "unknown_course");
    // Nothing was changed by the refusals.
    assert_eq!(
        report(&app, &b.admin, &b_plan)["plan"],
        app.get_ok(&binh_minh, &format!("/api/v1/training-plans/{b_plan}"))
    );
    assert_eq!(app.get_ok(&b.admin, "/api/v1/training-plans")["total"], 2);

    // The province's plan for Secretaries finds no branch secretary; its roll-up is the sum
    // of the communes' plans.
    let province_plan = id_of(&b.plan(json!({"unit_id": w.province, "year": 2026,
        "title": "Kế hoạch bồi dưỡng Bí thư 2026", "target_positions": ["secretary"]})));
    let of_province = report(&app, &b.admin, &province_plan);
    assert_eq!(
        names(&of_province["not_trained"]),
        set(&["Nguyễn Văn An", "Hoàng Văn Dũng"])
    );
    assert_eq!(of_province["unit_plans_total"]["target"], 3);
    assert_eq!(of_province["unit_plans_total"]["trained"], 2);
}

fn branches_sit_under_a_commune_and_move_with_it_in_a_merge(app: TestApp) {
    let w = branch_world(&app);
    let b = &w.b;
    let units_before = app.get_ok(&b.admin, "/api/v1/units?limit=500");
    let refused = |body: Value, field: &str, code: &str| {
        app.post(&b.admin, "/api/v1/units", &body)
            .expect(422)
            .expect_detail(field, code);
    };
    refused(
        json!({"code": "X1", "name": "Chi đoàn lạc", "kind": "branch", "parent_id": w.province}),
        "parent_id",
        "branch_parent",
    );
    refused(
        json!({"code": "X2", "name": "Chi đoàn mồ côi", "kind": "branch"}),
        "parent_id",
        "branch_parent",
    );
    refused(
        json!({"code": "X3", "name": "Tổ trong chi đoàn", "kind": "branch", "parent_id": w.binh_minh_branch}),
        "parent_id",
        "branch_has_no_units",
    );
    // A commune holding branches cannot become a province.
    let an_phu = app.get_ok(&b.admin, &format!("/api/v1/units/{}", w.an_phu));
    let answer = app
        .put_if_match(&b.admin, &format!("/api/v1/units/{}", w.an_phu), &format!("\"{}\"", an_phu["rev"]), &json!({"code": "001", "name": "Xã An Phú", "kind": "province", "parent_id": w.province}))
        .expect(422);
    assert_eq!(answer.json["details"][0]["code"], "branch_parent");
    // Nor be merged into a unit that cannot hold its branches.
    app.post(
        &b.admin,
        "/api/v1/units/merge",
        &json!({"source_ids": [w.an_phu], "target_id": w.province, "effective_date": "2026-07-01"}),
    )
    .expect(422)
    .expect_detail("target_id", "branch_parent");
    assert_eq!(
        app.get_ok(&b.admin, "/api/v1/units?limit=500"),
        units_before
    );

    // Each commune plans for its branch secretaries; the province for all of them.
    let a1 = b.person("Trần Thị Lan", "branch_secretary", &w.an_phu_branches[0]);
    let a2 = b.person("Lê Văn Minh", "branch_secretary", &w.an_phu_branches[1]);
    let b1 = b.person("Đỗ Thị Oanh", "branch_secretary", &w.binh_minh_branch);
    let (course, sessions) = b.course("CD-2026", "2026-03-02", &["Chuyên đề"; 5]);
    b.attend(&course, &sessions, &a1, &statuses(4, "absent", 5));
    b.attend(&course, &sessions, &a2, &statuses(3, "absent", 5));
    b.attend(&course, &sessions, &b1, &statuses(5, "present", 5));
    let plan = |unit: &str| {
        id_of(&b.plan(
            json!({"unit_id": unit, "year": 2026, "title": "Kế hoạch bồi dưỡng Bí thư chi đoàn",
            "target_positions": ["branch_secretary"],
            "courses": [planned(&course, "2026-03-02", "2026-03-06")]}),
        ))
    };
    let (of_a, of_b, of_province) = (plan(&w.an_phu), plan(&w.binh_minh), plan(&w.province));

    // In the middle of the year An Phú is merged into Bình Minh: its branches move with it,
    // keeping their ids, their names and their secretaries.
    app.post(&b.admin, "/api/v1/units/merge", &json!({"source_ids": [w.an_phu], "target_id": w.binh_minh, "effective_date": "2026-07-01"}))
    .expect(200);
    for branch in &w.an_phu_branches {
        let moved = app.get_ok(&b.admin, &format!("/api/v1/units/{branch}"));
        assert_eq!(moved["parent_id"], json!(w.binh_minh));
        assert_eq!(moved["merged_into_id"], Value::Null);
    }
    let (a, bm, p) = (
        report(&app, &b.admin, &of_a),
        report(&app, &b.admin, &of_b),
        report(&app, &b.admin, &of_province),
    );
    assert_eq!(
        progress(&a),
        (0, 0, 0, 0),
        "An Phú has nobody left to train"
    );
    assert_eq!(progress(&bm), (3, 3, 2, 1));
    assert_eq!(names(&bm["not_trained"]), set(&["Lê Văn Minh"]));
    let branch_rows: Vec<(&str, usize, i64)> = bm["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["depth"].as_u64().unwrap() as usize,
                u["target"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        branch_rows,
        [
            ("Phường Bình Minh", 0, 3),
            ("Chi đoàn Thôn 1", 1, 1),
            ("Chi đoàn Thôn 1", 1, 1),
            ("Chi đoàn Thôn 2", 1, 1),
        ]
    );
    assert_eq!(progress(&p), (3, 3, 2, 1));
    for field in ["target", "required", "trained", "not_trained"] {
        let sum = a["progress"][field].as_i64().unwrap() + bm["progress"][field].as_i64().unwrap();
        assert_eq!(p["unit_plans_total"][field], sum, "{field}");
    }
    assert_eq!(p["unit_plans"].as_array().unwrap().len(), 2);
    let merge = &bm["changes"][0];
    assert_eq!(
        (&merge["kind"], &merge["date"]),
        (&json!("merge"), &json!("2026-07-01"))
    );
}

fn newly_elected_this_term_restricts_the_target_group_exactly(app: TestApp) {
    let w = branch_world(&app);
    let b = &w.b;
    let elected = |name: &str, since: Option<&str>| {
        let person = app.create(
            &b.admin,
            "/api/v1/people",
            json!({"full_name": name, "position": "branch_secretary",
                   "unit_id": w.an_phu_branches[0], "position_since": since}),
        );
        assert_eq!(person["position_since"], json!(since));
        id_of(&person)
    };
    elected("Trần Thị Trước", Some("2025-09-13"));
    elected("Lê Văn Đúng", Some("2025-09-14"));
    elected("Phạm Thị Sau", Some("2026-01-05"));
    elected("Đỗ Văn Chưa Rõ", None);
    let plan = b.plan(
        json!({"unit_id": w.an_phu, "year": 2026, "title": "Bồi dưỡng Bí thư chi đoàn mới",
        "target_positions": ["branch_secretary"], "elected_since": "2025-09-14"}),
    );
    assert_eq!(plan["elected_since"], "2025-09-14");
    let restricted = report(&app, &b.admin, &id_of(&plan));
    assert_eq!(
        names(&restricted["not_trained"]),
        set(&["Lê Văn Đúng", "Phạm Thị Sau"]),
        "on or after the term's first day; unknown is not newly elected"
    );
    assert_eq!(restricted["not_trained"][0]["position_since"], "2025-09-14");
    // The spreadsheet's list of the target group says when each took their position.
    let (status, _, body) = app.download(
        &format!("/api/v1/reports/training-plans/{}", id_of(&plan)),
        &b.admin,
        &[(
            "Accept",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )],
    );
    assert_eq!(status, 200);
    let people = workbook(body)
        .worksheet_range("Danh sách đối tượng")
        .unwrap();
    assert_eq!(cell(&people, 0, 4), "Ngày nhận chức vụ");
    let since_of: BTreeMap<String, String> = (1..people.height())
        .map(|r| (cell(&people, r, 1), cell(&people, r, 4)))
        .collect();
    assert_eq!(
        since_of,
        BTreeMap::from([
            ("Lê Văn Đúng".to_owned(), "2025-09-14".to_owned()),
            ("Phạm Thị Sau".to_owned(), "2026-01-05".to_owned()),
        ])
    );
    // Without the restriction, every branch secretary.
    let mut body = plan.clone();
    for owned in ["id", "rev", "created_at", "updated_at"] {
        body.as_object_mut().unwrap().remove(owned);
    }
    body["elected_since"] = Value::Null;
    app.put_if_match(
        &b.admin,
        &format!("/api/v1/training-plans/{}", id_of(&plan)),
        &format!("\"{}\"", plan["rev"]),
        &body,
    )
    .expect(200);
    assert_eq!(
        progress(&report(&app, &b.admin, &id_of(&plan))),
        (4, 4, 0, 4)
    );
    // Bad dates are refused with a stable code.
    app.post(
        &b.admin,
        "/api/v1/people",
        &json!({"full_name": "Ngô Văn Sai",
            "position": "branch_secretary", "position_since": "14/09/2025"}),
    )
    .expect(422)
    .expect_detail("position_since", "invalid_date");
    body["year"] = json!(2027);
    body["elected_since"] = json!("2025-13-01");
    app.post(&b.admin, "/api/v1/training-plans", &body)
        .expect(422)
        .expect_detail("elected_since", "invalid_date");
}

fn attendance_for_sessions_not_yet_started_trains_nobody(app: TestApp) {
    let (b, commune) = rule_world(&app);
    let today = chrono::Utc::now().date_naive();
    let first = today - chrono::Days::new(4);
    let day = |d: chrono::NaiveDate| d.to_string();
    // Five sessions, one a day: four held (the last yesterday), one tomorrow.
    let course = id_of(&app.create(
        &b.admin,
        "/api/v1/courses",
        json!({"code": "DANG-HOC",
        "title": "Lớp đang học", "management_level": "commune",
        "start_date": day(first), "end_date": day(today + chrono::Days::new(1))}),
    ));
    let sessions: Vec<String> = [0u64, 1, 2, 3, 5]
        .iter()
        .map(|offset| {
            let d = first + chrono::Days::new(*offset);
            id_of(&app.create(
                &b.admin,
                "/api/v1/sessions",
                json!({"course_id": course,
                "topic": "Chuyên đề", "starts_at": format!("{d}T08:00:00+07:00"),
                "ends_at": format!("{d}T11:00:00+07:00")}),
            ))
        })
        .collect();
    let four_held = b.person("Nguyễn Văn Bốn", "secretary", &commune);
    let three_and_ahead = b.person("Trần Thị Trước", "secretary", &commune);
    // 4 of 5 held sessions attended: 80 %, trained.
    b.attend(&course, &sessions, &four_held, &statuses(4, "absent", 5));
    // 3 held, and marked present ahead for tomorrow's: 4 recorded, but 3 of 5 count (60 %).
    b.attend(
        &course,
        &sessions,
        &three_and_ahead,
        &[
            Some("present"),
            Some("present"),
            Some("present"),
            Some("absent"),
            Some("present"),
        ],
    );
    // A class not started at all, its roll filled in ahead.
    let later = today + chrono::Days::new(2);
    let ahead = id_of(&app.create(
        &b.admin,
        "/api/v1/courses",
        json!({"code": "CHUA-HOC",
        "title": "Lớp chưa học", "management_level": "commune",
        "start_date": day(later), "end_date": day(later)}),
    ));
    let ahead_session = id_of(&app.create(
        &b.admin,
        "/api/v1/sessions",
        json!({"course_id": ahead,
        "topic": "Chuyên đề", "starts_at": format!("{later}T08:00:00+07:00"),
        "ends_at": format!("{later}T11:00:00+07:00")}),
    ));
    let early = b.person("Lê Văn Sớm", "secretary", &commune);
    b.attend(&ahead, &[ahead_session], &early, &[Some("present")]);
    let year = chrono::Datelike::year(&first);
    let plan = b.plan(json!({"unit_id": commune, "year": year, "title": "Kế hoạch",
        "target_positions": ["secretary"], "rule": {"kind": "course_completion", "min_rate": 80},
        "courses": [planned(&course, &day(first), &day(first)), planned(&ahead, &format!("{year}-12-31"), &format!("{year}-12-31"))]}));
    let of_plan = report(&app, &b.admin, &id_of(&plan));
    assert_eq!(names(&of_plan["trained"]), set(&["Nguyễn Văn Bốn"]));
    assert_eq!(
        names(&of_plan["not_trained"]),
        set(&["Trần Thị Trước", "Lê Văn Sớm"])
    );
    assert_eq!(progress(&of_plan), (3, 3, 1, 2));
    let held: Vec<(i64, i64, bool)> = of_plan["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["sessions"].as_i64().unwrap(),
                c["sessions_held"].as_i64().unwrap(),
                c["held"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(held, [(5, 4, true), (1, 0, false)]);
    assert_eq!(of_plan["courses_not_held"], 1);
    // Under the topics rule too, a session counts once it has started.
    let topics = b.plan(json!({"unit_id": commune, "year": year + 1, "title": "Kế hoạch sau",
        "target_positions": ["secretary"], "rule": {"kind": "sessions_on_topics", "min_sessions": 1, "topics": ["chuyên đề"]},
        "courses": [planned(&ahead, &format!("{}-01-02", year + 1), &format!("{}-01-02", year + 1))]}));
    assert_eq!(
        progress(&report(&app, &b.admin, &id_of(&topics))),
        (3, 3, 0, 3)
    );
}

fn a_roster_import_names_branches_within_the_organisers_ward(app: TestApp) {
    let w = branch_world(&app);
    app.create_organiser("doan.binhminh", &w.binh_minh);
    let organiser = app.token("doan.binhminh", "organiser-password");
    // Both communes have a "Chi đoàn Thôn 1": within the ward's reach the name is its own.
    let roster = "Họ và tên,Chức vụ,Đơn vị,Ngày nhận chức vụ\n\
                  Đỗ Thị Oanh,Bí thư chi đoàn,Chi đoàn Thôn 1,14/09/2025\n\
                  Vũ Văn Phúc,Phó Bí thư chi đoàn,Chi đoàn Thôn 1,\n";
    let answer = app
        .import_csv(&organiser, "?dry_run=false", roster.as_bytes())
        .expect(200);
    assert_eq!(answer.json["summary"]["created"], 2, "{}", answer.text);
    let people = app.get_ok(
        &organiser,
        &format!("/api/v1/people?unit_id={}", w.binh_minh_branch),
    );
    let mut got: Vec<(String, String, Value)> = items(&people)
        .map(|p| {
            (
                p["full_name"].as_str().unwrap().to_owned(),
                p["position"].as_str().unwrap().to_owned(),
                p["position_since"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            (
                "Vũ Văn Phúc".to_owned(),
                "branch_deputy_secretary".to_owned(),
                Value::Null
            ),
            (
                "Đỗ Thị Oanh".to_owned(),
                "branch_secretary".to_owned(),
                json!("2025-09-14")
            ),
        ]
    );
    // The admin, who reaches both communes, is told the name is ambiguous.
    let answer = app
        .import_csv(&w.b.admin, "?dry_run=true", roster.as_bytes())
        .expect(200);
    assert_eq!(
        answer.json["problems"][0]["field"], "unit",
        "{}",
        answer.text
    );
}

/// A branch's Secretary and Deputy belong to a branch (chi đoàn): in a ward, or in no unit, by
/// the API, by a move or by a roster row, they are refused with `position_needs_branch` and
/// nothing changes (the ward's plan for branch secretaries could not place them); in a branch
/// they are taken, and leave it only as another position.
fn a_branch_secretary_belongs_to_a_branch(app: TestApp) {
    let w = branch_world(&app);
    let admin = &w.b.admin;
    let everyone = || app.list_all(admin, "/api/v1/people")["items"].clone();
    let before = everyone();
    let refused = |answer: crate::support::Response| {
        let answer = answer.expect_error(422, "validation_failed");
        let problem = &answer.json["details"][0];
        assert_eq!(
            (&problem["field"], &problem["code"]),
            (&json!("position"), &json!("position_needs_branch")),
            "{}",
            answer.text
        );
    };
    let secretary = |unit: Option<&str>| json!({"full_name": "Lê Thị Hạnh", "position": "branch_secretary", "unit_id": unit});
    refused(app.post(admin, "/api/v1/people", &secretary(Some(&w.binh_minh))));
    refused(app.post(admin, "/api/v1/people", &secretary(None)));
    let roster = "Họ và tên,Chức vụ,Đơn vị\n\
                  Lê Thị Hạnh,Phó Bí thư chi đoàn,Phường Bình Minh\n";
    app.import_csv(admin, "?dry_run=false", roster.as_bytes())
        .expect_error(422, "validation_failed")
        .expect_detail("rows[2].position", "position_needs_branch");
    assert_eq!(everyone(), before, "nothing was written");

    let created = app.create(
        admin,
        "/api/v1/people",
        secretary(Some(&w.binh_minh_branch)),
    );
    let path = format!("/api/v1/people/{}", id_of(&created));
    let mut moved = created.clone();
    for field in ["id", "rev", "created_at", "updated_at"] {
        moved.as_object_mut().unwrap().remove(field);
    }
    moved["unit_id"] = json!(w.binh_minh);
    let etag = format!("\"{}\"", created["rev"]);
    refused(app.put_if_match(admin, &path, &etag, &moved));
    assert_eq!(
        app.get_ok(admin, &path),
        created,
        "the refused move changed nothing"
    );
    moved["position"] = json!("member");
    app.put_if_match(admin, &path, &etag, &moved).expect(200);
}
