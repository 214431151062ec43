//! Upgrades: a database written by an earlier version (the demo data and a trainer's synced
//! work, made by `tests/fixtures/upgrade/make_fixture.py` with that version's binary; the
//! commit is in each manifest) opened by this one, on both backends. Everything stays readable,
//! every acknowledged mutation stays on record (a replay is answered as a duplicate), the
//! device's cursor, WatermelonDB timestamp and refresh token still work, and new work syncs.
//! The fixture's cursor and timestamp carry no epoch: they belong to the upgraded database's
//! first epoch, so they stay valid, until a restore starts another (then 410).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::cli::diemdanh;
use crate::support::postgres::{find_psql, run};
use crate::support::sync::{stamp, upsert_attendance};
use crate::support::{Backend, TestApp};
use diemdanh::config::StoreConfig;

backend_tests!(
    a_database_of_an_earlier_version_upgrades_and_keeps_everything,
    stamps_written_by_an_earlier_version_decide_merges_as_they_did
);

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures/upgrade")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no upgrade fixture in {}",
        root.display()
    );
    found
}

fn restore(backend: Backend, fixture: &Path, storage: &diemdanh::config::StorageConfig) {
    match backend {
        Backend::Sqlite => {
            std::fs::create_dir_all(&storage.data_dir).unwrap();
            std::fs::copy(
                fixture.join("sqlite/diemdanh.db"),
                storage.data_dir.join("diemdanh.db"),
            )
            .expect("copy the SQLite fixture");
        }
        Backend::Postgres => {
            let url = storage.database_url.as_deref().expect("a PostgreSQL URL");
            let psql = find_psql(None).expect("psql");
            let mut restore = Command::new(psql);
            restore
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-X", "-d", url, "-f"])
                .arg(fixture.join("postgres/dump.sql"));
            run(restore, "restoring the dump").unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn a_database_of_an_earlier_version_upgrades_and_keeps_everything(backend: Backend) {
    for fixture in fixtures() {
        upgrade_from(backend, &fixture);
    }
}

/// The app started on a copy of the fixture's database, the fixture's manifest and a name for
/// messages.
fn upgraded(backend: Backend, fixture: &Path) -> (TestApp, Value, String) {
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join(folder).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let app = TestApp::start_prepared(
        backend,
        StoreConfig::default(),
        |config| {
            // The fixture ages with the repository; its cursor must not expire on that account.
            config.tombstone_retention_days = 365 * 100;
        },
        |storage| restore(backend, fixture, storage),
    );
    (app, manifest, format!("{} ({folder})", fixture.display()))
}

fn upgrade_from(backend: Backend, fixture: &Path) {
    let (app, manifest, which) = upgraded(backend, fixture);

    // Everything the earlier version held is there, and the demo accounts still sign in.
    let admin = app.demo_token("admin");
    for (list, count) in manifest["counts"].as_object().unwrap() {
        let total = app.get_ok(&admin, &format!("/api/v1/{list}?limit=1"))["total"].clone();
        assert_eq!(&total, count, "{which}: {list}");
    }
    let pushed = manifest["pushed"].as_array().unwrap();
    assert!(!pushed.is_empty());
    for mutation in pushed {
        let record = app.get_ok(
            &admin,
            &format!(
                "/api/v1/attendance/{}",
                mutation["record_id"].as_str().unwrap()
            ),
        );
        for field in ["session_id", "person_id", "status", "note"] {
            assert_eq!(
                record[field], mutation["fields"][field],
                "{which}: {field} of {}",
                mutation["record_id"]
            );
        }
    }

    // The trainer's device: its refresh token still signs it in (or has simply expired, as it
    // would have without an upgrade), the mutations it pushed are answered as duplicates.
    let trainer = manifest["trainer"].as_str().unwrap();
    let refreshed = app.refresh(&manifest["refresh_token"]);
    let token = match refreshed.status {
        200 => {
            assert_eq!(
                refreshed.json["device_id"], manifest["device_id"],
                "{which}"
            );
            refreshed.json["access_token"].as_str().unwrap().to_owned()
        }
        _ => {
            assert_eq!(refreshed.code(), "refresh_token_expired", "{which}");
            app.token(trainer, "demo-trainer-1")
        }
    };
    let replay = app
        .post(&token, "/api/v1/sync/push", &json!({ "mutations": pushed }))
        .expect(200)
        .json;
    for result in replay["results"].as_array().unwrap() {
        assert_eq!(result["status"], "duplicate", "{which}: {result}");
        assert_eq!(result["original_status"], "applied", "{which}: {result}");
    }

    // Its cursor carries on from where it was: nothing it already holds comes again changed,
    // and a change made after the upgrade comes.
    let first = &pushed[0];
    let edit = json!({
        "mutation_id": uuid::Uuid::new_v4().to_string(),
        "collection": "attendance",
        "record_id": first["record_id"],
        "op": "upsert",
        "fields": {"status": "excused", "note": "sau nâng cấp"},
        "hlc": format!("{:013}-0000-upgrade-check", chrono::Utc::now().timestamp_millis()),
    });
    let applied = app
        .post(&token, "/api/v1/sync/push", &json!({ "mutations": [edit] }))
        .expect(200)
        .json;
    assert_eq!(applied["results"][0]["status"], "applied", "{which}");
    let mut cursor = manifest["cursor"].as_str().unwrap().to_owned();
    let mut changes = Vec::new();
    loop {
        let page = app.get_ok(
            &token,
            &format!("/api/v1/sync/pull?cursor={cursor}&limit=500"),
        );
        changes.extend(page["changes"].as_array().unwrap().iter().cloned());
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            break;
        }
    }
    let edited: Vec<&Value> = changes
        .iter()
        .filter(|c| c["collection"] == "attendance")
        .collect();
    assert_eq!(edited.len(), 1, "{which}: only the edit comes: {edited:?}");
    assert_eq!(edited[0]["id"], first["record_id"]);
    assert_eq!(edited[0]["data"]["status"], "excused");

    // A WatermelonDB device's timestamp of the earlier version is still one this server gave.
    let watermelon = app.get_ok(
        &token,
        &format!(
            "/api/v1/watermelon/sync?last_pulled_at={}&schema_version=1",
            manifest["watermelon_last_pulled_at"]
        ),
    );
    let updated = &watermelon["changes"]["attendance"]["updated"];
    assert!(
        updated
            .as_array()
            .unwrap()
            .iter()
            .any(|record| record["id"] == first["record_id"] && record["status"] == "excused"),
        "{which}: the WatermelonDB pull after the upgrade brings the edit: {watermelon}"
    );

    // A restore starts a new epoch (`new-epoch` is its PostgreSQL step): from then on the
    // positions of before, which carry no epoch, are answered 410.
    let (ok, out, err) = diemdanh(&app, &["new-epoch"], None);
    assert!(ok, "{which}: {out}{err}");
    let old_cursor = app.get(
        &token,
        &format!(
            "/api/v1/sync/pull?cursor={}&limit=1",
            manifest["cursor"].as_str().unwrap()
        ),
    );
    assert_eq!(old_cursor.expect(410).code(), "resync_required", "{which}");
    let old_timestamp = app.get(
        &token,
        &format!(
            "/api/v1/watermelon/sync?last_pulled_at={}&schema_version=1",
            manifest["watermelon_last_pulled_at"]
        ),
    );
    assert_eq!(
        old_timestamp.expect(410).code(),
        "resync_required",
        "{which}"
    );

    // `serve --demo` on the upgraded database: the earlier version's demo data (another
    // province, the same accounts) is the demo, and nothing is loaded over it.
    let loaded = diemdanh::demo::load(&mut app.pool.get().expect("connection")).expect("demo");
    assert!(
        !loaded,
        "{which}: the demo loader left the earlier demo as it was"
    );
}

fn stamps_written_by_an_earlier_version_decide_merges_as_they_did(backend: Backend) {
    for fixture in fixtures() {
        merges_against_stamps_of(backend, &fixture);
    }
}

/// The earlier version stored each field's stamp in full; this one stores them compactly
/// (migration `compact_stamps`). A record the fixture's device pushed is edited by the trainer's
/// other phone with stamps just before, equal to and just after the stored one: the older edit
/// loses, the equal one is decided by the node ids (the devices' ids), the newer one wins, each
/// field on its own, exactly as the stored full stamp would decide.
fn merges_against_stamps_of(backend: Backend, fixture: &Path) {
    let (app, manifest, which) = upgraded(backend, fixture);
    let trainer = manifest["trainer"].as_str().unwrap();
    let other_phone = app.login(trainer, "demo-trainer-1");
    let token = other_phone["access_token"].as_str().unwrap();
    let other_node = other_phone["device_id"].as_str().unwrap();
    let stored_node = manifest["device_id"].as_str().unwrap();
    assert_ne!(other_node, stored_node);

    // The last mutation the fixture's device pushed for a record stamped both its fields.
    let pushed = manifest["pushed"].as_array().unwrap();
    let last = pushed.last().unwrap();
    let record_id = last["record_id"].as_str().unwrap();
    let stored_stamp = last["hlc"].as_str().unwrap();
    let (millis, rest) = stored_stamp.split_once('-').unwrap();
    let (counter, _node) = rest.split_once('-').unwrap();
    let millis: u64 = millis.parse().unwrap();
    let counter = u32::from_str_radix(counter, 16).unwrap();
    let before = app.get_ok(token, &format!("/api/v1/attendance/{record_id}"));
    assert_eq!(before["status"], last["fields"]["status"], "{which}");
    assert_eq!(before["note"], last["fields"]["note"], "{which}");
    let other_status = if before["status"] == "absent" {
        "excused"
    } else {
        "absent"
    };
    // The stamp's node is the pushing device's id, from its token, whatever the body says.
    let edit = |millis: u64, counter: u32, fields: Value| {
        upsert_attendance(record_id, fields, &stamp(millis, counter))
    };

    // One millisecond older than the stored stamp: the stored status stays.
    let older = app.push(
        token,
        &[edit(millis - 1, counter, json!({"status": other_status}))],
    );
    assert_eq!(older[0]["status"], "merged", "{which}: {older:?}");
    let after_older = app.get_ok(token, &format!("/api/v1/attendance/{record_id}"));
    assert_eq!(after_older["status"], before["status"], "{which}");

    // The same millisecond and counter: the greater node id wins.
    let tied = app.push(
        token,
        &[edit(millis, counter, json!({"note": "cùng thời điểm"}))],
    );
    let expected_note = if other_node > stored_node {
        json!("cùng thời điểm")
    } else {
        before["note"].clone()
    };
    let after_tie = app.get_ok(token, &format!("/api/v1/attendance/{record_id}"));
    assert_eq!(after_tie["note"], expected_note, "{which}: {tied:?}");
    assert_eq!(after_tie["status"], before["status"], "{which}");

    // One counter tick newer: the status changes, and the note stays as the tie left it.
    let newer = app.push(
        token,
        &[edit(millis, counter + 1, json!({"status": other_status}))],
    );
    assert_ne!(newer[0]["status"], "rejected", "{which}: {newer:?}");
    let after_newer = app.get_ok(token, &format!("/api/v1/attendance/{record_id}"));
    assert_eq!(after_newer["status"], other_status, "{which}");
    assert_eq!(after_newer["note"], expected_note, "{which}");
}
