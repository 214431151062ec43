//! Backups that devices survive, with the real binary: a backup taken while a device pushes,
//! more writes, the server stopped and the backup restored (SQLite: `diemdanh restore`;
//! PostgreSQL: `pg_restore`, then `diemdanh new-epoch`), the server started again. A device
//! that synced after the backup is answered 410 `resync_required` (also once the restored
//! database has written past its old position, where only the epoch tells), pushes what it had
//! not sent, starts over and ends equal to the server; every mutation acknowledged before the
//! backup began is there; a WatermelonDB device is answered the same way. And what the two
//! commands refuse: a missing file, one that is not a diemdanh database, a restore while the
//! server runs, a backup over an existing file. And a tablet on the real WatermelonDB library
//! through the kit (`tests/watermelon/epoch.test.js`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diemdanh::db::{self, DbConn, schema::sync_mutations};
use diemdanh::sync::pull::current_revision;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cli::diemdanh;
use crate::support::device::{Device, apply, pull_from};
use crate::support::fleet::{Acked, Fleet, Instance, World};
use crate::support::postgres as pg;
use crate::support::watermelon_kit::WatermelonScenarios;
use crate::support::{Backend, Response, TestApp};

backend_tests!(
    a_restored_backup_sends_devices_ahead_of_it_back_to_the_start,
    backup_and_restore_refuse_what_they_cannot_do_and_change_nothing,
    a_watermelondb_tablet_on_the_real_library_starts_over_in_a_new_epoch,
);

const BATCH: usize = 10;

/// The database as the instances see it (its pool closed before anything replaces it).
fn with_database<T>(fleet: &Fleet, read: impl FnOnce(&mut DbConn) -> T) -> T {
    let pool = db::open(&fleet.storage()).expect("open the database");
    read(&mut pool.get().expect("a connection"))
}

fn logged(conn: &mut DbConn, mutation: &Acked) -> bool {
    sync_mutations::table
        .find(&mutation.mutation_id)
        .count()
        .get_result::<i64>(conn)
        .unwrap()
        == 1
}

fn start(fleet: &Fleet) -> Instance {
    let instance = fleet.spawn(&[]).wait();
    *fleet.bases.write().unwrap() = vec![instance.base.clone()];
    instance
}

fn back_up(backend: Backend, fleet: &Fleet, file: &Path, url: Option<&str>) {
    match backend {
        Backend::Sqlite => {
            let (ok, out, err) = fleet.command(&[OsStr::new("backup"), file.as_os_str()]);
            assert!(ok, "{out}{err}");
            assert!(out.contains("backed up to"), "{out}");
        }
        Backend::Postgres => {
            let pg_dump = pg::find_client("pg_dump").expect("pg_dump");
            let mut dump = Command::new(pg_dump);
            dump.args(["--format=custom", "--file"])
                .arg(file)
                .arg(url.unwrap());
            pg::run(dump, "pg_dump").unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// The restore steps of deploy/OPERATIONS.md, with every instance stopped.
fn restore(backend: Backend, fleet: &Fleet, file: &Path, url: Option<&str>) {
    if backend == Backend::Postgres {
        let pg_restore = pg::find_client("pg_restore").expect("pg_restore");
        let mut restore = Command::new(pg_restore);
        restore
            .args(["--clean", "--if-exists", "--no-owner", "--dbname"])
            .arg(url.unwrap())
            .arg(file);
        pg::run(restore, "pg_restore").unwrap_or_else(|e| panic!("{e}"));
    }
    let command = match backend {
        Backend::Sqlite => vec![OsStr::new("restore"), file.as_os_str()],
        Backend::Postgres => vec![OsStr::new("new-epoch")],
    };
    let (ok, out, err) = fleet.command(&command);
    assert!(ok, "{out}{err}");
    assert!(out.contains("start their pulls over"), "{out}");
    if backend == Backend::Sqlite {
        assert!(out.contains("the replaced database is kept as"), "{out}");
    }
}

/// A WatermelonDB pull.
fn watermelon_pull(fleet: &Fleet, token: &str, last_pulled_at: Option<i64>) -> Response {
    let at = last_pulled_at.map_or("null".to_owned(), |t| t.to_string());
    fleet.call(
        "GET",
        &format!("/api/v1/watermelon/sync?last_pulled_at={at}&schema_version=1"),
        Some(token),
        None,
    )
}

fn a_restored_backup_sends_devices_ahead_of_it_back_to_the_start(backend: Backend) {
    let database = backend.fresh_database();
    let url = database.as_ref().map(|d| d.url.clone());
    let fleet = Fleet::new(url.clone(), Vec::new());
    let mut instance = start(&fleet);
    let admin = fleet.add_admin();
    let world = World::create(&fleet, &admin, 2, 4, 12);
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join(match backend {
        Backend::Sqlite => "diemdanh-backup.db",
        Backend::Postgres => "diemdanh.dump",
    });

    // Two trainers' phones and a WatermelonDB tablet, all signed in before the backup.
    let mut phone = Device::trainer(&fleet, &world.trainers[0]);
    let mut busy = Device::trainer(&fleet, &world.trainers[1]);
    let tablet = fleet
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": world.trainers[1], "password": "trainer-password-1", "device_name": "tablet"})),
        )
        .expect(200)
        .json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut before: Vec<Acked> = Vec::new();
    for _ in 0..3 {
        before.extend(phone.push_batch(&fleet, &world, BATCH));
    }
    phone.pull(&fleet);

    // The backup, while the busy phone pushes without pause: what it was told before the
    // backup began must be in it.
    let writing = AtomicBool::new(true);
    let (during, began, ended) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acked: Vec<(Instant, Acked)> = Vec::new();
            while writing.load(Ordering::SeqCst) {
                for ack in busy.push_batch(&fleet, &world, BATCH) {
                    acked.push((Instant::now(), ack));
                }
            }
            acked
        });
        while fleet.pushes.load(Ordering::SeqCst) < 6 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let began = Instant::now();
        back_up(backend, &fleet, &file, url.as_deref());
        let ended = Instant::now();
        writing.store(false, Ordering::SeqCst);
        (writer.join().unwrap(), began, ended)
    });
    assert!(
        during.iter().any(|(at, _)| began < *at && *at < ended),
        "pushes were acknowledged while the backup ran"
    );
    let in_backup: Vec<Acked> = during
        .into_iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, ack)| ack)
        .collect();
    assert!(!in_backup.is_empty());

    // After the backup: the phone writes and pulls (its cursor passes the backup), the tablet
    // takes its first sync.
    let mut after: Vec<Acked> = Vec::new();
    for _ in 0..3 {
        after.extend(phone.push_batch(&fleet, &world, BATCH));
    }
    phone.pull(&fleet);
    let first_sync = watermelon_pull(&fleet, &tablet, None);
    assert_eq!(first_sync.status, 200);
    let tablet_at = first_sync.json["timestamp"].as_i64().unwrap();
    let revision_before_restore = with_database(&fleet, |conn| current_revision(conn).unwrap());

    instance.stop();
    restore(backend, &fleet, &file, url.as_deref());
    let _instance = start(&fleet);

    // The restored database writes past the phone's old position: a cursor that only carried
    // a revision would now look current and skip these.
    let mut restored_writes: Vec<Acked> = Vec::new();
    while with_database(&fleet, |conn| current_revision(conn).unwrap()) <= revision_before_restore {
        restored_writes.extend(busy.push_batch(&fleet, &world, BATCH));
    }

    // What the phone had not sent yet still pushes; its pull is refused, and it starts over.
    let unsent = phone.push_batch(&fleet, &world, BATCH);
    assert!(
        phone.pull_or_start_over(&fleet),
        "a cursor of the replaced timeline must be answered 410"
    );
    let (_, everything) = pull_from(&fleet, &admin, None, 50);
    let server = apply(&everything);
    let attendance = |held: &std::collections::BTreeMap<(String, String), Value>| {
        held.iter()
            .filter(|((collection, _), _)| collection == "attendance")
            .map(|(key, data)| (key.clone(), data.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(attendance(&phone.held), attendance(&server));
    assert_eq!(phone.held, phone.fresh_view(&fleet));

    with_database(&fleet, |conn| {
        for mutation in before.iter().chain(&in_backup) {
            assert!(
                logged(conn, mutation),
                "acknowledged before the backup and lost"
            );
        }
        for mutation in unsent.iter().chain(&restored_writes) {
            assert!(
                logged(conn, mutation),
                "acknowledged after the restore and lost"
            );
        }
        // The restore did put the database back: what came after the backup is gone.
        assert!(after.iter().all(|mutation| !logged(conn, mutation)));
    });

    // The tablet: a change it had not pushed still pushes with its old timestamp; its pull is
    // refused; a first sync brings the restored state with its change, in the new epoch.
    let record = uuid::Uuid::new_v4().to_string();
    let pushed = fleet
        .call(
            "POST",
            &format!("/api/v1/watermelon/sync?last_pulled_at={tablet_at}"),
            Some(&tablet),
            Some(&json!({"attendance": {"created": [{
                "id": record, "session_id": world.sessions[0], "person_id": world.people[11],
                "status": "late", "checked_in_at": null, "note": "sau khôi phục",
            }], "updated": [], "deleted": []}})),
        )
        .expect(200)
        .json;
    assert_eq!(pushed["experimentalRejectedIds"], json!({}), "{pushed}");
    let refused = watermelon_pull(&fleet, &tablet, Some(tablet_at));
    assert_eq!((refused.status, refused.code()), (410, "resync_required"));
    let again = watermelon_pull(&fleet, &tablet, None);
    assert_eq!(again.status, 200);
    let created = again.json["changes"]["attendance"]["created"]
        .as_array()
        .unwrap();
    assert!(
        created
            .iter()
            .any(|r| r["session_id"] == world.sessions[0].as_str()
                && r["person_id"] == world.people[11].as_str()
                && r["status"] == "late"),
        "the tablet's change is on the server"
    );
    let new_at = again.json["timestamp"].as_i64().unwrap();
    assert_ne!(
        new_at >> 40,
        tablet_at >> 40,
        "the timestamp is of the new epoch"
    );
    assert_eq!(watermelon_pull(&fleet, &tablet, Some(new_at)).status, 200);
}

/// The database's files, by name (the server's WAL files come and go with its connections).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with("-wal") && !name.ends_with("-shm"))
        .collect();
    names.sort();
    names
}

fn backup_and_restore_refuse_what_they_cannot_do_and_change_nothing(app: TestApp) {
    let backend = app.backend();
    let admin = app.admin_token();
    let unit = json!({"code": "38001", "name": "Phường Pleiku", "kind": "ward"});
    app.post(&admin, "/api/v1/units", &unit).expect(201);
    let scratch = tempfile::tempdir().unwrap();
    let path = |name: &str| scratch.path().join(name).to_string_lossy().into_owned();

    if backend == Backend::Postgres {
        // PostgreSQL has its own tools; the commands say which, and touch nothing.
        let (ok, _, err) = diemdanh(&app, &["backup", &path("b.dump")], None);
        assert!(!ok && err.contains("pg_dump"), "{err}");
        let (ok, _, err) = diemdanh(&app, &["restore", &path("b.dump")], None);
        assert!(
            !ok && err.contains("pg_restore") && err.contains("new-epoch"),
            "{err}"
        );
        assert!(!scratch.path().join("b.dump").exists());
    } else {
        let data = &app.storage.data_dir;
        let (ok, out, err) = diemdanh(&app, &["backup", &path("good.db")], None);
        assert!(ok, "{out}{err}");
        let before = files_in(data);

        // A backup never overwrites a file.
        let (ok, _, err) = diemdanh(&app, &["backup", &path("good.db")], None);
        assert!(!ok && err.contains("exists already"), "{err}");

        // A file that is not there, not a database, or not diemdanh's.
        let (ok, _, err) = diemdanh(&app, &["restore", &path("missing.db")], None);
        assert!(
            !ok && err.contains("missing.db") && err.contains("No such file"),
            "{err}"
        );
        std::fs::write(path("notes.txt"), "danh sách học viên lớp bồi dưỡng\n").unwrap();
        let (ok, _, err) = diemdanh(&app, &["restore", &path("notes.txt")], None);
        assert!(!ok && err.contains("is not a diemdanh database"), "{err}");
        let mut other = diesel::SqliteConnection::establish(&path("other.db")).unwrap();
        diesel::sql_query("CREATE TABLE roster (name TEXT)")
            .execute(&mut other)
            .unwrap();
        drop(other);
        let (ok, _, err) = diemdanh(&app, &["restore", &path("other.db")], None);
        assert!(
            !ok && err.contains("is not a diemdanh database") && err.contains("tables"),
            "{err}"
        );

        // A good backup, but the server has the database open.
        let (ok, _, err) = diemdanh(&app, &["restore", &path("good.db")], None);
        assert!(!ok && err.contains("stop it, then restore"), "{err}");
        assert_eq!(files_in(data), before, "nothing left behind or moved");
    }
    let units = app.get_ok(&admin, "/api/v1/units?limit=1");
    assert_eq!(units["total"], 1);
    assert_eq!(units["items"][0]["name"], "Phường Pleiku");
}

/// The real @nozbe/watermelondb and the kit's sync.js: a tablet with a change it has not pushed
/// when the database's epoch changes pushes it, is answered 410, resets and ends equal to the
/// server.
fn a_watermelondb_tablet_on_the_real_library_starts_over_in_a_new_epoch(backend: Backend) {
    let Some(node) = WatermelonScenarios::available() else {
        return;
    };
    let app = TestApp::start(backend);
    app.create_user("root.admin", "admin", None);
    let mut database_args = vec![
        "--data-dir".to_owned(),
        app.storage.data_dir.to_string_lossy().into_owned(),
    ];
    if let Some(url) = &app.storage.database_url {
        database_args.extend(["--database-url".to_owned(), url.clone()]);
    }
    node.run(
        "epoch.test.js",
        &[
            ("DIEMDANH_URL", app.base.clone()),
            ("DIEMDANH_ADMIN", "root.admin:admin-password".to_owned()),
            ("DIEMDANH_BIN", env!("CARGO_BIN_EXE_diemdanh").to_owned()),
            (
                "DIEMDANH_DB_ARGS",
                serde_json::to_string(&database_args).unwrap(),
            ),
        ],
    );
}
