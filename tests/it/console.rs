//! The staff console (`/`): its start page and files served by the binary under the same strict
//! policy as the field app, kept out of the field app's offline list, and the console itself in
//! Debian's Chromium against the real server (`tests/browser/console.test.mjs`).

use diemdanh::demo::ROSTER_HEADINGS;
use rust_xlsxwriter::Workbook;

use crate::backend_tests;
use crate::support::{Backend, TestApp, run_browser_suite};

backend_tests!(
    the_console_is_served_at_the_root_with_a_strict_policy,
    the_console_works_in_a_real_browser,
);

fn the_console_is_served_at_the_root_with_a_strict_policy(app: TestApp) {
    let page = app.start_page("/", "console");
    assert!(page.text.contains("/console/main.js"), "{}", page.text);

    for path in [
        "/console/main.js",
        "/console/console.css",
        "/vendor/qrcode-generator.mjs",
    ] {
        let file = app.get_static(path);
        assert_eq!(file.status, 200, "{path}");
        assert!(
            file.required_header("content-security-policy")
                .contains("script-src 'self'"),
            "{path}"
        );
    }
    let script = app.get_static("/console/main.js");
    assert!(
        script
            .required_header("content-type")
            .contains("javascript")
    );
    app.expect_versioned_immutable("/console/main.js", &script);

    // The console is used online: the field app's service worker does not carry it.
    let worker = app.get_static("/app/sw.js");
    assert!(worker.text.contains("/app/main.js"));
    assert!(!worker.text.contains("/console/"), "{}", worker.text);

    app.expect_not_served(&[
        "/console/",
        "/console/../Cargo.toml",
        "/types/qrcode-generator.d.ts",
    ]);
    let post = app.send_raw("POST", "/", None, Some((b"x", "text/plain")), &[]);
    assert_eq!(post.status, 405);
}

/// The scenarios of `tests/browser/console.test.mjs` against this backend; screenshots in
/// `target/console/<backend>/`.
fn the_console_works_in_a_real_browser(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let roster = dir.path().join("roster.xlsx");
    roster_with_errors()
        .save(&roster)
        .expect("write the roster workbook");
    run_browser_suite(
        backend,
        "console.test.mjs",
        "console",
        &[("DIEMDANH_ROSTER_XLSX", &roster)],
    );
}

/// A roster workbook of three people, as a province sends it: the first is new and right, the
/// second names a unit that does not exist (row 3), the third a date that does not exist (row 4).
fn roster_with_errors() -> Workbook {
    // A commune of the demo data, by the name an office writes.
    let commune = diemdanh::demo::data::units()
        .into_iter()
        .find(|u| u.kind == "commune" && u.valid_to.is_none())
        .expect("a current commune in the demo data")
        .name;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    // Without the row numbers (`STT`), which a roster may leave out.
    let [_, headings @ ..] = ROSTER_HEADINGS;
    let rows = [
        headings,
        [
            "Trần Thị Mai Anh",
            "15/03/1995",
            "Nữ",
            "Phó Bí thư",
            commune,
            "0912000001",
        ],
        [
            "Lý Văn Bảo",
            "02/11/1993",
            "Nam",
            "Bí thư",
            "Xã Không Có Thật",
            "0912000002",
        ],
        [
            "Hoàng Văn Cương",
            "31/02/1994",
            "Nam",
            "Phó Bí thư",
            commune,
            "0912000003",
        ],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet
                .write_string(r as u32, c as u16, *cell)
                .expect("write a cell");
        }
    }
    book
}

/// The reasons a push is refused for, as the protocol lists them (`api-spec/sync.md`, "Rejection
/// reasons").
fn protocol_refusal_reasons() -> Vec<String> {
    let spec = include_str!("../../api-spec/sync.md");
    let table = spec
        .split("### Rejection reasons")
        .nth(1)
        .expect("sync.md lists the rejection reasons");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| reason"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            row.split('`')
                .nth(1)
                .expect("a row names its reason")
                .to_owned()
        })
        .collect()
}

#[test]
fn every_refusal_reason_of_the_protocol_is_said_in_both_languages() {
    // The sync review says why a change was refused, and the field app falls back on these words
    // for a reason it has none of its own for.
    let catalogue = include_str!("../../web/shared/strings.js");
    let reasons = protocol_refusal_reasons();
    assert!(
        reasons.len() > 10 && reasons.iter().any(|reason| reason == "not_on_roster"),
        "the table as read: {reasons:?}"
    );
    for reason in reasons {
        let key = format!("'console.reason.{reason}':");
        assert_eq!(
            catalogue.matches(&key).count(),
            2,
            "{key} in Vietnamese and English"
        );
    }
}
