//! Contract fuzzing: Schemathesis (pinned, `tests/schemathesis/`) runs every check of its own —
//! server errors, status codes, content types, headers and bodies against `api-spec/openapi.yaml`,
//! invalid input accepted, valid input refused, unsupported methods, use after free, ignored
//! authentication and object-level authorization between two trainers as peers — through the
//! examples, coverage, fuzzing and stateful (OpenAPI links) phases against the real server on
//! seeded data. Any failure fails the test with Schemathesis' report.
//!
//! `tests/schemathesis/setup.sh` installs it (`/tmp/diemdanh-schemathesis-venv`, or
//! `$DIEMDANH_SCHEMATHESIS_VENV`); without it the test is skipped with a message, and
//! `DIEMDANH_REQUIRE_SCHEMATHESIS=1` (set by `.ci/run`) turns the skip into a failure.
//! `DIEMDANH_SCHEMATHESIS_MAX_EXAMPLES` (default 10) and `DIEMDANH_SCHEMATHESIS_MAX_TIME`
//! (seconds; none by default) make longer runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::{Backend, TestApp, number_from_env};

backend_tests!(schemathesis_finds_no_contract_violation);

/// The identities of `tests/schemathesis/auth.json` whose records must stay apart.
const PEERS: [&str; 2] = ["trainer-a", "trainer-b"];

fn schemathesis_finds_no_contract_violation(backend: Backend) {
    let Some(st) = find_schemathesis() else {
        return;
    };
    // Schemathesis sends failed logins on purpose; the limit is tested in auth.rs and would
    // otherwise lock its own identities out mid-run.
    let app = TestApp::start_with(backend, |config| {
        config.login_max_failures = u32::MAX;
        config.login_max_failures_per_ip = u32::MAX;
    });
    let app = app.with_demo();
    let spare_user = seed_identities(&app);

    // First every operation as the first identity of auth.json that the server admits (the two
    // trainers as peers); then every operation as the administrator, so that admin-only
    // operations get their coverage and fuzzing phases as someone allowed to call them.
    let peers = run_schemathesis(&st, &app, &spare_user, backend, "trainers as peers", &[]);
    let admin = run_schemathesis(
        &st,
        &app,
        &spare_user,
        backend,
        "as admin",
        &["--auth-wfc-user", "admin"],
    );
    eprintln!(
        "schemathesis on {backend:?}: {} test cases in all; object_level_authorization sent {} \
         peer probes ({} of single records, answered {:?})",
        peers.cases + admin.cases,
        peers.peer_probes,
        peers.record_probes,
        peers
            .record_probe_statuses
            .iter()
            .map(|(status, _)| status)
            .collect::<BTreeSet<_>>(),
    );
    // Every operation of the spec was exercised in both runs, and the object-level authorization
    // check did replay one trainer's reads of its own records as the other (it is silently
    // skipped when it has no peers, or no record that only one of them may read).
    for summary in [&peers, &admin] {
        let untested: Vec<String> = crate::support::spec::Spec::get()
            .operations()
            .into_iter()
            .map(|(method, path)| format!("{method} {path}"))
            .filter(|label| !summary.operations.contains(label))
            .collect();
        assert!(
            untested.is_empty(),
            "operations schemathesis did not test: {untested:?}"
        );
    }
    let summary = peers;
    assert!(
        summary.record_probes > 0,
        "the object_level_authorization check never replayed a record read as the other peer \
         ({} list probes)",
        summary.peer_probes
    );
    assert!(
        summary
            .record_probe_statuses
            .iter()
            .all(|(status, _)| *status == 404),
        "a peer probe was not refused as a record that does not exist: {:#?}",
        summary.record_probe_statuses
    );
}

/// Runs Schemathesis against the app and fails the test with its report on any failure.
fn run_schemathesis(
    st: &Path,
    app: &TestApp,
    spare_user: &str,
    backend: Backend,
    name: &str,
    extra_args: &[&str],
) -> Summary {
    let report_dir = tempfile::tempdir().expect("temp dir");
    let events = report_dir.path().join("events.ndjson");
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec/openapi.yaml");
    let max_examples = number_from_env("DIEMDANH_SCHEMATHESIS_MAX_EXAMPLES", 10_u32).to_string();
    let mut command = Command::new(st);
    command
        .current_dir(&config_dir)
        .env("DIEMDANH_ST_SPARE_USER_ID", spare_user)
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(&spec)
        .args(["--url", &app.base, "--workers", "1"])
        .args(["--max-examples", &max_examples])
        .args(["--report", "ndjson", "--report-ndjson-path"])
        .arg(&events)
        .arg("--no-color")
        .args(extra_args);
    if let Ok(seconds) = std::env::var("DIEMDANH_SCHEMATHESIS_MAX_TIME") {
        command.args(["--max-time", &seconds]);
    }
    if let Ok(seed) = std::env::var("DIEMDANH_SCHEMATHESIS_SEED") {
        command.args(["--seed", &seed]);
    }
    let output = command.output().expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis ({name}) on {backend:?} found problems ({:?}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary = summarise(&events);
    let tail: Vec<&str> = stdout.lines().rev().take(22).collect();
    eprintln!(
        "schemathesis ({name}) on {backend:?}: {} operations, {} test cases\n{}",
        summary.operations.len(),
        summary.cases,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    summary
}

/// `st` from the virtualenv of `tests/schemathesis/setup.sh`, or `None` (the test is skipped)
/// unless `DIEMDANH_REQUIRE_SCHEMATHESIS=1`.
fn find_schemathesis() -> Option<PathBuf> {
    let venv = std::env::var("DIEMDANH_SCHEMATHESIS_VENV")
        .unwrap_or_else(|_| "/tmp/diemdanh-schemathesis-venv".to_owned());
    let st = PathBuf::from(venv).join("bin/st");
    if st.is_file() {
        return Some(st);
    }
    let required = std::env::var("DIEMDANH_REQUIRE_SCHEMATHESIS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "DIEMDANH_REQUIRE_SCHEMATHESIS=1 but {} is missing (run tests/schemathesis/setup.sh)",
        st.display()
    );
    eprintln!(
        "{} not found (run tests/schemathesis/setup.sh): skipping the schemathesis test",
        st.display()
    );
    None
}

/// The accounts of `tests/schemathesis/auth.json` on top of the demo data: an administrator and
/// two trainers, each assigned to a different class that has a material file. Returns the id of
/// a spare account for the operations that would sign an identity out for good.
fn seed_identities(app: &TestApp) -> String {
    let admin = app.admin_token(); // root.admin / admin-password
    let trainers = [
        app.create_user("peer.a", "trainer", None),
        app.create_user("peer.b", "trainer", None),
    ];
    let spare = app.create_user("spare.account", "trainer", None);
    let courses = app.get_ok(&admin, "/api/v1/courses?sort=title")["items"].clone();
    let courses: Vec<&str> = courses
        .as_array()
        .expect("courses")
        .iter()
        .map(|course| course["id"].as_str().expect("course id"))
        .collect();
    assert!(courses.len() >= 2, "the demo data has two classes");
    for (trainer, course) in trainers.iter().zip(&courses) {
        app.post(
            &admin,
            "/api/v1/course-trainers",
            &json!({ "user_id": trainer, "course_id": course }),
        )
        .expect(201);
        app.send_file(
            &admin,
            "POST",
            &format!("/api/v1/courses/{course}/materials?file_name=bai-giang.pdf"),
            (b"%PDF-1.4 lecture notes", "application/pdf"),
        )
        .expect(201);
    }
    spare
}

#[derive(Default)]
struct Summary {
    operations: BTreeSet<String>,
    cases: usize,
    /// Requests the object-level authorization check sent as one peer to replay the other's.
    peer_probes: usize,
    /// Those of them that named one record (a path parameter).
    record_probes: usize,
    /// What each of them got: (status, operation and path parameters).
    record_probe_statuses: BTreeSet<(u64, String)>,
}

/// Reads Schemathesis' event stream: operations and cases tested, and the object-level
/// authorization probes (a case sent as one peer whose parent was sent as the other).
fn summarise(events: &Path) -> Summary {
    let text = std::fs::read_to_string(events).expect("schemathesis events");
    let mut summary = Summary::default();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("an event");
        let Some(scenario) = event.get("ScenarioFinished") else {
            continue;
        };
        let recorder = &scenario["recorder"];
        let Some(cases) = recorder["cases"].as_object() else {
            continue;
        };
        if !cases.is_empty() {
            summary
                .operations
                .insert(recorder["label"].as_str().unwrap_or_default().to_owned());
        }
        summary.cases += cases.len();
        let label = recorder["label"].as_str().unwrap_or_default();
        let status_of = |id: &str| recorder["interactions"][id]["response"]["status_code"].as_u64();
        for (id, case) in cases {
            let identity = case["value"]["auth_identity"].as_str();
            let parent_id = case["parent_id"].as_str();
            let parent = parent_id
                .and_then(|parent| cases.get(parent))
                .and_then(|parent| parent["value"]["auth_identity"].as_str());
            let (Some(identity), Some(parent)) = (identity, parent) else {
                continue;
            };
            if !(PEERS.contains(&identity) && PEERS.contains(&parent) && identity != parent) {
                continue;
            }
            // The check replays only a read its owner got (2xx); a child sent as the other peer
            // for another reason (the identities tried in turn on a refusal) is not a probe.
            let owner_read = label.starts_with("GET ")
                && parent_id
                    .and_then(status_of)
                    .is_some_and(|status| (200..300).contains(&status));
            if !owner_read {
                continue;
            }
            summary.peer_probes += 1;
            if case["value"]["path_parameters"]
                .as_object()
                .is_some_and(|parameters| !parameters.is_empty())
            {
                summary.record_probes += 1;
                if let Some(status) = status_of(id) {
                    let asked = format!("{label} {}", case["value"]["path_parameters"]);
                    summary.record_probe_statuses.insert((status, asked));
                }
            }
        }
    }
    summary
}
