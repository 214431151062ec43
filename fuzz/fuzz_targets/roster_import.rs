//! The roster importer's dry run without a database: file bytes (CSV, XLSX or anything else) to
//! the report, against a few units and people on record. Input that starts like XML is also
//! read as the first sheet of an otherwise valid workbook, so that the fuzzer reaches the sheet
//! reader instead of stopping at the ZIP container. Nothing may panic, and the report must add up.

#![no_main]

use std::collections::HashSet;
use std::io::{Cursor, Write};
use std::sync::LazyLock;

use diemdanh::domain::imports::{Action, OnRecord, judge_file};
use diemdanh::domain::people::PersonOnRecord;
use diemdanh::domain::text::fold;
use diemdanh::domain::units::UnitOnRecord;
use libfuzzer_sys::fuzz_target;
use zip::write::SimpleFileOptions;

const COURSE: &str = "7d9e8f10-1111-4a2b-8c3d-4e5f60718293";

fn unit(id: &str, code: &str, name: &str, merged_into: Option<&str>) -> UnitOnRecord {
    UnitOnRecord {
        id: id.into(),
        code: code.into(),
        name_key: fold(name),
        merged_into_id: merged_into.map(Into::into),
        kind: "commune".into(),
    }
}

fn person(
    id: &str,
    name: &str,
    birth: Option<&str>,
    phone: Option<&str>,
    unit: &str,
) -> PersonOnRecord {
    PersonOnRecord {
        id: id.into(),
        full_name: name.into(),
        name_key: fold(name),
        birth_date: birth.map(Into::into),
        gender: Some("male".into()),
        phone: phone.map(Into::into),
        position: "secretary".into(),
        unit_id: Some(unit.into()),
        position_since: None,
    }
}

/// Units with a prefix, one merged away, two whose bare names clash; people to match by phone,
/// by name + birth date + unit, and by name alone (possible duplicates).
static ON_RECORD: LazyLock<OnRecord> = LazyLock::new(|| {
    let bat_xat = "00000000-0000-4000-8000-000000000001";
    let cam_duong = "00000000-0000-4000-8000-000000000002";
    let units = vec![
        unit(bat_xat, "BX", "Xã Bát Xát", None),
        unit(cam_duong, "CD", "Phường Cam Đường", None),
        unit(
            "00000000-0000-4000-8000-000000000003",
            "MH",
            "Xã Mường Hum",
            Some(bat_xat),
        ),
        unit(
            "00000000-0000-4000-8000-000000000004",
            "PA",
            "Phường An Bình",
            None,
        ),
        unit(
            "00000000-0000-4000-8000-000000000005",
            "XA",
            "Xã An Bình",
            None,
        ),
    ];
    let an = "00000000-0000-4000-8000-0000000000a1";
    let people = vec![
        person(
            an,
            "Nguyễn Văn An",
            Some("1995-03-02"),
            Some("0912345678"),
            bat_xat,
        ),
        person(
            "00000000-0000-4000-8000-0000000000a2",
            "Trần Thị Bình",
            None,
            None,
            cam_duong,
        ),
        person(
            "00000000-0000-4000-8000-0000000000a3",
            "Lê Đức Cường",
            Some("1990-01-01"),
            None,
            bat_xat,
        ),
    ];
    OnRecord::new(units, people, HashSet::from([an.to_owned()]))
});

/// A workbook whose first sheet is `sheet`, with shared strings (the roster's headers and
/// values) and a date style (`s="1"`) for it to refer to.
fn workbook(sheet: &[u8]) -> Vec<u8> {
    const PARTS: [(&str, &str); 6] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#,
        ),
        (
            "xl/sharedStrings.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>STT</t></si><si><t>Họ và tên</t></si><si><t>Ngày sinh</t></si><si><t>Giới tính</t></si><si><t>Chức vụ</t></si><si><t>Đơn vị</t></si><si><t>Số điện thoại</t></si><si><t>Nguyễn Văn An</t></si><si><t>Nam</t></si><si><t>Bí thư</t></si><si><t>Xã Bát Xát</t></si><si><t>Trần Thị Bình</t></si><si><t>Nữ</t></si><si><t>Phó Bí thư</t></si></sst>"#,
        ),
        (
            "xl/styles.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs></styleSheet>"#,
        ),
    ];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in PARTS {
        zip.start_file(name, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    zip.write_all(sheet).unwrap();
    zip.finish().unwrap().into_inner()
}

fn judge(file: &[u8]) {
    for course in [None, Some(COURSE.to_owned())] {
        let mut last_progress = (0, 0);
        let Ok(checked) = judge_file(&ON_RECORD, file, course, &mut |done, total| {
            assert!(done <= total);
            last_progress = (done, total);
        }) else {
            continue;
        };
        let report = checked.report;
        let summary = &report.summary;
        assert_eq!(last_progress, (summary.rows, summary.rows));
        assert_eq!(report.rows.len(), summary.rows);
        assert_eq!(
            summary.created
                + summary.updated
                + summary.unchanged
                + summary.duplicate_rows
                + summary.possible_duplicates
                + summary.errors,
            summary.rows
        );
        for row in &report.rows {
            if row.action == Action::Error {
                assert!(report.problems.iter().any(|p| p.row == row.row));
            }
        }
        // The report is what the API answers.
        serde_json::to_vec(&report).unwrap();
    }
}

fuzz_target!(|file: &[u8]| {
    judge(file);
    if file.starts_with(b"<") {
        judge(&workbook(file));
    }
});
