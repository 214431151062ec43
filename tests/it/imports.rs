//! Roster import: CSV and XLSX as offices keep them, dry run then apply, re-import, duplicates,
//! bad files, 10,000 rows, and the command line.

use diemdanh::demo::ROSTER_HEADINGS;
use rust_xlsxwriter::{Format, Workbook};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cli::diemdanh;
use crate::support::{Response, TestApp, id_of, items, strings_of};

backend_tests!(
    a_roster_is_checked_then_applied_and_reimporting_changes_nothing,
    bad_files_and_bad_rows_get_clear_answers_and_change_nothing,
    possible_duplicates_are_reported_not_created,
    xlsx_with_merged_cells_and_excel_dates_is_read_and_enrolled,
    ten_thousand_rows_import_in_one_transaction,
    the_command_line_imports_with_a_dry_run_first,
    the_demo_roster_round_trips_through_the_import,
);

const CSV: &str = "text/csv";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A province with three communes; returns the communes' ids by name.
pub fn units(app: &TestApp, admin: &str) -> Vec<(String, String)> {
    let province = id_of(&app.create(
        admin,
        "/api/v1/units",
        json!({"code": "52", "name": "Tỉnh Gia Lai", "kind": "province"}),
    ));
    [
        ("23590", "Xã Biển Hồ"),
        ("23611", "Xã Gào"),
        ("23575", "Phường Pleiku"),
    ]
    .iter()
    .map(|(code, name)| {
        let kind = if name.starts_with("Phường") {
            "ward"
        } else {
            "commune"
        };
        let body = json!({"code": code, "name": name, "kind": kind, "parent_id": province});
        let id = id_of(&app.create(admin, "/api/v1/units", body.clone()));
        ((*name).to_owned(), id)
    })
    .collect()
}

fn import(app: &TestApp, token: &str, query: &str, body: &[u8], content_type: &str) -> Response {
    app.send_checked(
        "POST",
        &format!("/api/v1/imports/people{query}"),
        Some(token),
        (body, content_type),
    )
}

fn people(app: &TestApp, admin: &str, query: &str) -> Value {
    app.get_ok(admin, &format!("/api/v1/people?limit=500{query}"))
}

fn roster() -> String {
    // A title above the header, headers without diacritics and in another order, dates as text,
    // ISO and an Excel serial, a phone that lost its leading zero, a unit without its prefix.
    "DANH SÁCH CÁN BỘ ĐOÀN CƠ SỞ,,,,,,\n\
     stt,ho va ten,chuc vu,don vi,ngay sinh,gioi tinh,so dien thoai\n\
     1,Nguyễn Văn An,Bí thư,Xã Biển Hồ,02/03/1995,Nam,0912345678\n\
     2,Trần Thị Bình,Phó Bí thư,Biển Hồ,1997-11-20,Nữ,912345679\n\
     3,Lê Đức Cường,Bí thư Đoàn xã,xa gao,34760,nam,\n\
     ,,,,,,\n\
     4,Phạm Thu Dung,Uỷ viên BCH,Phường Pleiku,,Nữ,+84 912 345 680\n"
        .to_owned()
}

fn a_roster_is_checked_then_applied_and_reimporting_changes_nothing(app: TestApp) {
    let admin = app.admin_token();
    let units = units(&app, &admin);
    let file = roster();

    let dry = import(&app, &admin, "", file.as_bytes(), CSV).expect(200);
    assert_eq!(dry.json["dry_run"], true);
    assert_eq!(dry.json["format"], "csv");
    assert_eq!(dry.json["header_row"], 2);
    assert_eq!(dry.json["summary"]["rows"], 4, "{}", dry.text);
    assert_eq!(dry.json["summary"]["created"], 4, "{}", dry.text);
    assert_eq!(dry.json["problems"], json!([]));
    assert_eq!(dry.json["rows"][3]["row"], 7, "row numbers are the file's");
    assert_eq!(
        people(&app, &admin, "")["total"],
        0,
        "a dry run writes nothing"
    );

    let applied = import(&app, &admin, "?dry_run=false", file.as_bytes(), CSV).expect(200);
    assert_eq!(applied.json["dry_run"], false);
    assert_eq!(applied.json["summary"]["created"], 4);
    let stored = people(&app, &admin, "&sort=name");
    assert_eq!(stored["total"], 4);
    let an = &stored["items"][0];
    assert_eq!(an["full_name"], "Nguyễn Văn An");
    assert_eq!(an["birth_date"], "1995-03-02");
    assert_eq!(an["position"], "secretary");
    assert_eq!(an["phone"], "0912345678");
    assert_eq!(an["unit_id"], json!(units[0].1));
    let binh = people(&app, &admin, "&q=tran%20thi%20binh");
    assert_eq!(binh["items"][0]["phone"], "0912345679");
    assert_eq!(binh["items"][0]["unit_id"], json!(units[0].1));
    let cuong = people(&app, &admin, "&q=cuong");
    assert_eq!(cuong["items"][0]["birth_date"], "1995-03-02");
    assert_eq!(cuong["items"][0]["unit_id"], json!(units[1].1));
    let revs: Vec<Value> = items(&stored).map(|p| p["rev"].clone()).collect();

    // The same file again: nothing to do, nothing written.
    let again = import(&app, &admin, "?dry_run=false", file.as_bytes(), CSV).expect(200);
    assert_eq!(again.json["summary"]["unchanged"], 4, "{}", again.text);
    assert_eq!(again.json["summary"]["created"], 0);
    let after: Vec<Value> = items(&people(&app, &admin, "&sort=name"))
        .map(|p| p["rev"].clone())
        .collect();
    assert_eq!(after, revs, "a re-import leaves every record as it was");

    // An updated file: An is now Phó Bí thư (matched by phone); Cường has a phone now
    // (matched by name + birth date + unit); a blank gender keeps the stored one.
    let updated = file
        .replace(
            "Nguyễn Văn An,Bí thư,Xã Biển Hồ,02/03/1995,Nam",
            "Nguyễn Văn An,Phó Bí thư,Xã Biển Hồ,02/03/1995,",
        )
        .replace("34760,nam,", "34760,nam,0987654321");
    let result = import(&app, &admin, "?dry_run=false", updated.as_bytes(), CSV).expect(200);
    assert_eq!(result.json["summary"]["updated"], 2, "{}", result.text);
    assert_eq!(result.json["summary"]["unchanged"], 2);
    assert_eq!(result.json["rows"][0]["changes"], json!(["position"]));
    assert_eq!(result.json["rows"][2]["changes"], json!(["phone"]));
    let an = people(&app, &admin, "&q=0912345678");
    assert_eq!(an["items"][0]["position"], "deputy_secretary");
    assert_eq!(an["items"][0]["gender"], "male");
    // Search ignores case, diacritics and Unicode form.
    for query in [
        "nguyen%20van%20an",
        "NGUY%E1%BB%84N%20V%C4%82N",
        "Nguye%CC%82%CC%83n",
    ] {
        assert_eq!(
            people(&app, &admin, &format!("&q={query}"))["total"],
            1,
            "{query}"
        );
    }
}

fn bad_files_and_bad_rows_get_clear_answers_and_change_nothing(app: TestApp) {
    let admin = app.admin_token();
    units(&app, &admin);

    let empty = import(&app, &admin, "", b"", CSV).expect(422);
    assert_eq!(empty.json["details"][0]["code"], "empty_file");
    let blank = import(&app, &admin, "", b"\n\n,,,\n", CSV).expect(422);
    assert_eq!(blank.json["details"][0]["code"], "empty_file");
    let wrong = import(&app, &admin, "", "Tên,Tuổi\nAn,30\n".as_bytes(), CSV).expect(422);
    assert_eq!(wrong.json["details"][0]["code"], "wrong_headers");
    assert!(
        wrong.json["message"]
            .as_str()
            .unwrap()
            .contains("Tên, Tuổi")
    );
    let no_position = import(&app, &admin, "", "Họ và tên\nAn\n".as_bytes(), CSV).expect(422);
    assert_eq!(no_position.json["details"][0]["code"], "wrong_headers");
    import(&app, &admin, "", &[0xD0, 0xCF, 0x11, 0xE0, 0, 0], XLSX)
        .expect_error(415, "unsupported_media_type");
    let broken = import(&app, &admin, "", b"PK\x03\x04 not really a zip", XLSX).expect(422);
    assert_eq!(broken.json["details"][0]["code"], "unreadable_file");
    import(&app, &admin, "", b"{}", "application/json").expect_error(415, "unsupported_media_type");
    let latin1 = import(&app, &admin, "", b"H\xe4 v\xe0 t\xean\n", CSV).expect(422);
    assert_eq!(latin1.json["details"][0]["code"], "unreadable_file");
    let course = import(&app, &admin, "?course_id=nope", roster().as_bytes(), CSV).expect(422);
    assert_eq!(course.json["details"][0]["code"], "invalid_id");

    app.create_user("trainer.a", "trainer", None);
    let trainer = app.token("trainer.a", "trainer-password");
    import(&app, &trainer, "", roster().as_bytes(), CSV).expect(403);

    let bad_rows = "Họ và tên,Ngày sinh,Giới tính,Chức vụ,Đơn vị,Số điện thoại\n\
                    Nguyễn Văn An,31/02/1995,Nam,Bí thư,Xã Biển Hồ,0912345678\n\
                    ,01/01/1990,Nữ,Bí thư,Xã Biển Hồ,\n\
                    Trần Văn Bảo,01/01/1990,X,Chủ tịch,Xã Không Có,12345\n\
                    Lê Thị Cúc,01/01/1990,Nữ,Đoàn viên,Xã Biển Hồ,\n";
    let dry = import(&app, &admin, "", bad_rows.as_bytes(), CSV).expect(200);
    assert_eq!(dry.json["summary"]["errors"], 3, "{}", dry.text);
    assert_eq!(dry.json["summary"]["created"], 1);
    let problems: Vec<(i64, String, String)> = dry.json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_i64().unwrap(),
                p["field"].as_str().unwrap().to_owned(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        (2, "birth_date", "invalid_date"),
        (3, "full_name", "required"),
        (4, "gender", "unknown_gender"),
        (4, "position", "unknown_position"),
        (4, "unit", "unknown_unit"),
        (4, "phone", "invalid_phone"),
    ];
    for (row, field, code) in expected {
        assert!(
            problems.contains(&(row, field.to_owned(), code.to_owned())),
            "missing {row} {field} {code} in {problems:?}"
        );
    }
    let refused = import(&app, &admin, "?dry_run=false", bad_rows.as_bytes(), CSV)
        .expect_error(422, "validation_failed");
    assert!(
        refused.json["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["field"] == "rows[2].birth_date")
    );
    assert_eq!(
        people(&app, &admin, "")["total"],
        0,
        "a refused import writes nothing, not even the good rows"
    );
}

fn possible_duplicates_are_reported_not_created(app: TestApp) {
    let admin = app.admin_token();
    let units = units(&app, &admin);
    let person = json!({"full_name": "Nguyễn Văn An", "position": "secretary",
        "birth_date": "1995-03-02", "unit_id": units[0].1});
    let existing = app.create(&admin, "/api/v1/people", person.clone());

    // Row 2: the same person typed without diacritics, in another unit: a possible duplicate.
    // Row 3: typed in decomposed Unicode (NFD), same unit and birth date: the same person.
    // Row 4 and 5: one new person twice in the file.
    let file = format!(
        "Họ và tên,Ngày sinh,Chức vụ,Đơn vị\n\
         Nguyen Van An,02/03/1995,Bí thư,Xã Gào\n\
         {},02/03/1995,Bí thư,Xã Biển Hồ\n\
         Đỗ Thị Hoa,01/01/1999,Đoàn viên,Xã Biển Hồ\n\
         Đỗ Thị Hoa,01/01/1999,Đoàn viên,Xã Biển Hồ\n",
        "Nguye\u{302}\u{303}n Va\u{306}n An"
    );
    let result = import(&app, &admin, "?dry_run=false", file.as_bytes(), CSV).expect(200);
    let rows = &result.json["rows"];
    assert_eq!(rows[0]["action"], "possible_duplicate", "{}", result.text);
    assert_eq!(rows[0]["person_id"], existing["id"]);
    assert_eq!(rows[1]["action"], "unchanged");
    assert_eq!(rows[1]["person_id"], existing["id"]);
    assert_eq!(rows[2]["action"], "create");
    assert_eq!(rows[3]["action"], "duplicate_row");
    assert_eq!(
        strings_of(&result.json["problems"], "code"),
        ["possible_duplicate", "duplicate_row"]
    );
    let stored = people(&app, &admin, "&q=nguyen%20van%20an");
    assert_eq!(stored["total"], 1, "no second Nguyễn Văn An");
    assert_eq!(stored["items"][0]["full_name"], "Nguyễn Văn An");
    assert_eq!(people(&app, &admin, "&q=hoa")["total"], 1);

    // Matched without diacritics in the same unit: the stored spelling is kept.
    let plain = "Họ và tên,Ngày sinh,Chức vụ,Đơn vị,Số điện thoại\n\
                 Nguyen Van An,02/03/1995,Bí thư,Xã Biển Hồ,0911111111\n";
    let result = import(&app, &admin, "?dry_run=false", plain.as_bytes(), CSV).expect(200);
    assert_eq!(result.json["rows"][0]["changes"], json!(["phone"]));
    let stored = people(&app, &admin, "&q=0911111111");
    assert_eq!(stored["items"][0]["full_name"], "Nguyễn Văn An");

    // A phone already held by someone else is an error, not an overwrite.
    let clash = "Họ và tên,Chức vụ,Số điện thoại\nĐỗ Văn Khánh,Bí thư,0911111111\n";
    let result = import(&app, &admin, "", clash.as_bytes(), CSV).expect(200);
    assert_eq!(result.json["problems"][0]["code"], "phone_in_use");
}

/// An office's workbook: a merged title, the unit merged down over its rows, birth dates as
/// date cells, as Excel serial numbers and as text.
fn workbook() -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    sheet
        .merge_range(0, 0, 0, 6, "DANH SÁCH BÍ THƯ, PHÓ BÍ THƯ", &Format::new())
        .unwrap();
    for (col, header) in ROSTER_HEADINGS.iter().enumerate() {
        sheet.write_string(1, col as u16, *header).unwrap();
    }
    sheet
        .merge_range(2, 5, 4, 5, "Xã Biển Hồ", &Format::new())
        .unwrap();
    sheet.write_string(5, 5, "Phường Pleiku").unwrap();
    let rows: [(&str, &str, &str); 4] = [
        ("Nguyễn Văn An", "Nam", "Bí thư"),
        ("Trần Thị Bình", "Nữ", "Phó Bí thư"),
        ("Lê Văn Cường", "Nam", "Phó Bí thư"),
        ("Phạm Thị Dung", "Nữ", "Bí thư"),
    ];
    for (i, (name, gender, position)) in rows.iter().enumerate() {
        let r = 2 + i as u32;
        sheet.write_number(r, 0, (i + 1) as f64).unwrap();
        sheet.write_string(r, 1, *name).unwrap();
        sheet.write_string(r, 3, *gender).unwrap();
        sheet.write_string(r, 4, *position).unwrap();
        sheet.write_number(r, 6, 912_345_670.0 + i as f64).unwrap();
    }
    // 34760 = 1995-03-02.
    sheet
        .write_number_with_format(2, 2, 34760.0, &date)
        .unwrap();
    sheet.write_number(3, 2, 34761.0).unwrap();
    sheet.write_string(4, 2, "04/03/1995").unwrap();
    sheet.write_string(5, 2, "1995-03-05").unwrap();
    book.save_to_buffer().unwrap()
}

fn multipart(file: &[u8], content_type: &str) -> (Vec<u8>, String) {
    let boundary = "diemdanh-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"roster.xlsx\"\
         \r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

fn xlsx_with_merged_cells_and_excel_dates_is_read_and_enrolled(app: TestApp) {
    let admin = app.admin_token();
    let units = units(&app, &admin);
    let course = id_of(&app.create(
        &admin,
        "/api/v1/courses",
        json!({"title": "Bồi dưỡng Bí thư", "management_level": "province",
                "start_date": "2026-03-01", "end_date": "2026-03-03"}),
    ));
    let (body, content_type) = multipart(&workbook(), XLSX);
    let query = format!("?dry_run=false&course_id={course}");
    let result = import(&app, &admin, &query, &body, &content_type).expect(200);
    assert_eq!(result.json["format"], "xlsx");
    assert_eq!(result.json["header_row"], 2);
    assert_eq!(result.json["summary"]["created"], 4, "{}", result.text);
    assert_eq!(result.json["summary"]["enrolled"], 4);
    let stored = people(&app, &admin, "&sort=birth_date");
    let got: Vec<(&str, &str, &str, &str)> = items(&stored)
        .map(|p| {
            (
                p["full_name"].as_str().unwrap(),
                p["birth_date"].as_str().unwrap(),
                p["unit_id"].as_str().unwrap(),
                p["phone"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "Nguyễn Văn An",
                "1995-03-02",
                units[0].1.as_str(),
                "0912345670"
            ),
            (
                "Trần Thị Bình",
                "1995-03-03",
                units[0].1.as_str(),
                "0912345671"
            ),
            (
                "Lê Văn Cường",
                "1995-03-04",
                units[0].1.as_str(),
                "0912345672"
            ),
            (
                "Phạm Thị Dung",
                "1995-03-05",
                units[2].1.as_str(),
                "0912345673"
            ),
        ]
    );
    let enrolled = app
        .get(&admin, &format!("/api/v1/enrollments?course_id={course}"))
        .expect(200);
    assert_eq!(enrolled.json["total"], 4);
    // Raw XLSX body, same workbook: matched, and already enrolled.
    let again = import(&app, &admin, &query, &workbook(), XLSX).expect(200);
    assert_eq!(again.json["summary"]["unchanged"], 4);
    assert_eq!(again.json["summary"]["enrolled"], 0);
}

fn ten_thousand_rows_import_in_one_transaction(app: TestApp) {
    let admin = app.admin_token();
    let units = units(&app, &admin);
    let mut file = String::from("STT,Họ và tên,Ngày sinh,Giới tính,Chức vụ,Đơn vị,Số điện thoại\n");
    for i in 0..10_000 {
        file.push_str(&format!(
            "{},Nguyễn Văn Số {i},{:02}/{:02}/{},Nam,Đoàn viên,{},09{:08}\n",
            i + 1,
            1 + i % 28,
            1 + i % 12,
            1980 + i % 20,
            units[i % 3].0,
            i
        ));
    }
    let applied = import(&app, &admin, "?dry_run=false", file.as_bytes(), CSV).expect(200);
    assert_eq!(
        applied.json["summary"]["created"],
        10_000,
        "{}",
        &applied.text[..500]
    );
    assert_eq!(people(&app, &admin, "")["total"], 10_000);
    let again = import(&app, &admin, "", file.as_bytes(), CSV).expect(200);
    assert_eq!(again.json["summary"]["unchanged"], 10_000);
}

fn the_command_line_imports_with_a_dry_run_first(app: TestApp) {
    let admin = app.admin_token();
    units(&app, &admin);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.xlsx");
    std::fs::write(&path, workbook()).unwrap();
    let file = path.to_str().unwrap();
    let (ok, out, err) = diemdanh(&app, &["import", "people", file], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("4 rows: 4 new"), "{out}");
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(people(&app, &admin, "")["total"], 0);
    let (ok, out, err) = diemdanh(&app, &["import", "people", file, "--apply"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported"), "{out}");
    assert_eq!(people(&app, &admin, "")["total"], 4);

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "Họ và tên,Chức vụ\nAn,Chủ tịch\n").unwrap();
    let (ok, out, err) = diemdanh(
        &app,
        &["import", "people", bad.to_str().unwrap(), "--apply"],
        None,
    );
    assert!(!ok, "{out}{err}");
    assert!(out.contains("row 2\tposition\tunknown_position"), "{out}");
}

/// What a new user tries first: the demo roster as XLSX, imported over the demo data.
fn the_demo_roster_round_trips_through_the_import(app: TestApp) {
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.xlsx");
    let (ok, out, err) = diemdanh(&app, &["demo-roster", path.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    let bytes = std::fs::read(&path).unwrap();
    let result = import(&app, &admin, "", &bytes, XLSX).expect(200);
    assert_eq!(
        result.json["summary"]["errors"], 0,
        "{}",
        result.json["problems"]
    );
    let cadres = diemdanh::demo::data::people().len();
    assert_eq!(result.json["summary"]["rows"], cadres);
    assert_eq!(result.json["summary"]["unchanged"], cadres);
}
