//! The field app (`/app/`): its files served by the binary under a strict policy, the course
//! roster it keeps for adding people offline, the rules its files follow (no inline script, no
//! HTML from data, vendored libraries as written down), and the app itself in Debian's Chromium
//! against the real server (`tests/browser/`, driven by Node and playwright-core).

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::backend_tests;
use crate::support::{Backend, TestApp, items, run_browser_suite};

backend_tests!(
    the_app_is_served_with_a_strict_policy_and_etags,
    a_course_roster_lists_the_people_a_trainer_may_add,
    the_field_app_works_offline_in_a_real_browser,
);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

fn the_app_is_served_with_a_strict_policy_and_etags(app: TestApp) {
    let page = app.start_page("/app/", "app");
    let policy = page.required_header("content-security-policy");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");

    // `/app` (no slash) leads to the start page (the client follows the redirect); `/` is
    // the staff console's.
    let bare = app.get_static("/app");
    assert_eq!(bare.status, 200);
    assert_eq!(bare.text, page.text);

    // A versioned URL is cached for good.
    app.expect_versioned_immutable("/app/", &page);
    let script = app.get_static("/app/main.js");
    assert_eq!(script.status, 200);
    assert!(
        script
            .required_header("content-type")
            .contains("javascript")
    );

    // The service worker carries the build's file list, each file with the hash it is
    // served under.
    let worker = app.get_static("/app/sw.js");
    assert!(!worker.text.contains("__BUILD__") && !worker.text.contains("__ASSETS__"));
    let list = worker
        .text
        .split("JSON.parse('")
        .nth(1)
        .and_then(|rest| rest.split("')").next())
        .expect("the asset list");
    let assets: Vec<(String, String)> = serde_json::from_str(list).expect("asset list JSON");
    assert!(assets.iter().any(|(url, _)| url == "/app/"));
    for (url, hash) in &assets {
        let file = app.get_static(&format!("{url}?v={hash}"));
        assert_eq!(file.status, 200, "{url}");
        assert_eq!(file.required_header("etag"), format!("\"{hash}\""), "{url}");
    }

    // Nothing outside the served folders, and only reads.
    app.expect_not_served(&[
        "/app/../Cargo.toml",
        "/app/%2e%2e/Cargo.toml",
        "/tsconfig.json",
        "/app/nope.js",
    ]);
    let post = app.send_raw("POST", "/app/", None, Some((b"x", "text/plain")), &[]);
    assert_eq!(post.status, 405);
    assert_eq!(post.required_header("allow"), "GET, HEAD");
}

fn a_course_roster_lists_the_people_a_trainer_may_add(app: TestApp) {
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let trainer = app.demo_token("tuan.le");
    let courses = app.get_ok(&trainer, "/api/v1/courses");
    let course = courses["items"][0]["id"].as_str().unwrap().to_owned();
    let roster = app.get_ok(
        &trainer,
        &format!("/api/v1/courses/{course}/roster?limit=500"),
    );
    let enrolled: Vec<Value> = app.get_ok(
        &admin,
        &format!("/api/v1/enrollments?course_id={course}&limit=500"),
    )["items"]
        .as_array()
        .unwrap()
        .clone();
    let people = app.get_ok(&admin, "/api/v1/people?limit=500");
    let on_roster = roster["items"].as_array().unwrap();
    let enrolled_ids: Vec<&str> = enrolled
        .iter()
        .filter(|e| e["status"] != "withdrawn")
        .map(|e| e["person_id"].as_str().unwrap())
        .collect();
    assert!(
        !on_roster.is_empty(),
        "the demo has cadres who are not in the class"
    );
    assert_eq!(
        roster["total"].as_u64().unwrap() as usize + enrolled_ids.len(),
        people["total"].as_u64().unwrap() as usize,
        "everyone of the province is either enrolled or on the roster"
    );
    for item in on_roster {
        assert!(!enrolled_ids.contains(&item["id"].as_str().unwrap()));
        assert!(item.get("phone").is_none() && item.get("birth_date").is_none());
    }

    // Search ignores diacritics.
    let name = on_roster[0]["full_name"].as_str().unwrap();
    let plain = diemdanh::domain::text::fold(name);
    let found = app.get_ok(
        &trainer,
        &format!(
            "/api/v1/courses/{course}/roster?q={}",
            plain.replace(' ', "%20")
        ),
    );
    assert!(
        items(&found).any(|p| p["full_name"] == name),
        "{plain:?} finds {name:?}: {found}"
    );

    // A trainee may not read it; a trainer of other classes does not see the course at all.
    let trainee = app.demo_token("hocvien.demo");
    let their = app.get_ok(&trainee, "/api/v1/courses");
    let their_course = their["items"][0]["id"].as_str().unwrap();
    app.get(&trainee, &format!("/api/v1/courses/{their_course}/roster"))
        .expect(403);
    let admin_courses = app.get_ok(&admin, "/api/v1/courses");
    let foreign = items(&admin_courses)
        .map(|c| c["id"].as_str().unwrap())
        .find(|id| !items(&courses).any(|c| c["id"] == *id))
        .expect("a class tuan.le does not teach");
    let refused = app
        .get(&trainer, &format!("/api/v1/courses/{foreign}/roster"))
        .expect(404);
    assert_eq!(refused.json["code"], "not_found");
    app.get(
        &trainer,
        &format!("/api/v1/courses/{course}/roster?limit=0"),
    )
    .expect(422);
}

/// The scenarios of `tests/browser/field-app.test.mjs` against this backend; screenshots in
/// `target/field-app/<backend>/`.
fn the_field_app_works_offline_in_a_real_browser(backend: Backend) {
    run_browser_suite(backend, "field-app.test.mjs", "field-app", &[]);
}

/// Every vendored library is the file written down in `web/vendor/VENDORED.md`.
#[test]
fn vendored_libraries_match_their_written_checksums() {
    let vendor = web_dir().join("vendor");
    let notes = std::fs::read_to_string(vendor.join("VENDORED.md")).expect("VENDORED.md");
    let mut checked = 0;
    for line in notes.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let file = cells[1].trim_matches('`');
        let written = cells[6].trim_matches('`');
        let bytes = std::fs::read(vendor.join(file)).expect("vendored file");
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(actual, written, "{file}");
        checked += 1;
    }
    let files = std::fs::read_dir(&vendor)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".js") || name.ends_with(".mjs") || name.ends_with(".css")
        })
        .count();
    assert_eq!(checked, files, "every vendored script is written down");
}

/// The apps never turn data into HTML and carry no inline script or style (the policy would
/// refuse them anyway), and load nothing from another origin.
#[test]
fn the_web_files_insert_no_html_and_load_nothing_from_elsewhere() {
    let mut files = Vec::new();
    collect(&web_dir().join("app"), &mut files);
    collect(&web_dir().join("console"), &mut files);
    collect(&web_dir().join("shared"), &mut files);
    assert!(files.len() > 10);
    for file in files {
        // SVG elements are made in their namespace, a name and no address to load.
        let text = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .replace("'http://www.w3.org/2000/svg'", "");
        let name = file.display();
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "http://",
            "https://",
        ] {
            assert!(!text.contains(forbidden), "{name} uses {forbidden}");
        }
        if file.extension().is_some_and(|e| e == "html") {
            assert!(!text.contains("style="), "{name}: inline style");
            for script in text.split("<script").skip(1) {
                assert!(script.contains("src="), "{name}: inline script");
            }
        }
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("web dir") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path
            .extension()
            .is_some_and(|e| e == "js" || e == "html" || e == "css")
        {
            files.push(path);
        }
    }
}
