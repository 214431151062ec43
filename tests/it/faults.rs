//! Faults around the server: clients that send slowly, many writers at once with the database
//! locked by someone else, PostgreSQL restarted under load, a full disk. Each ends in a clear
//! answer (408, 503 with `Retry-After`, 507) — never a 500 — leaves nothing half-done, and the
//! server carries on without a restart.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::own_postgres;
use crate::support::process::{ServerProcess, serve_args, start_process};
use crate::support::{Backend, JsonBody, Response, TestApp, files_under};

backend_tests!(
    slow_clients_are_cut_and_hold_no_worker_or_connection,
    fifty_writers_at_once_with_the_database_locked_get_2xx_or_503,
    a_full_disk_answers_507_and_leaves_nothing_behind,
    a_lock_held_too_long_answers_503_instead_of_holding_a_worker,
);

/// How a connection that dribbles its request ended.
#[derive(Debug)]
struct Cut {
    /// The status line's code, when the server answered before closing.
    status: Option<u16>,
    /// The error code of a JSON answer.
    code: Option<String>,
    after: Duration,
}

/// Sends `head` whole, then `dribble` one byte every `every`, reading between bytes, until the
/// server answers or closes the connection; gives up after `give_up`.
fn dribble(
    address: &str,
    head: &[u8],
    dribble: &[u8],
    every: Duration,
    give_up: Duration,
) -> Option<Cut> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(every)).unwrap();
    stream.write_all(head).expect("send the head");
    let mut received = Vec::new();
    let mut next = dribble.iter().cycle();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < give_up {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !received.is_empty() {
                    // An answer has begun and paused: it is all there.
                    break;
                }
                if stream.write_all(&[*next.next().unwrap()]).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    if start.elapsed() >= give_up {
        return None;
    }
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    let code = text.split_once("\r\n\r\n").and_then(|(_, body)| {
        serde_json::from_str::<Value>(body).ok()?["code"]
            .as_str()
            .map(str::to_owned)
    });
    Some(Cut {
        status,
        code,
        after: start.elapsed(),
    })
}

fn slow_clients_are_cut_and_hold_no_worker_or_connection(backend: Backend) {
    // One worker thread: a slow client that held it would stop everyone else.
    let app = TestApp::start_with(backend, |c| {
        c.workers = Some(1);
        c.client_request_timeout_secs = 1;
        c.client_body_timeout_secs = 1;
        c.keep_alive_secs = 1;
        c.client_disconnect_timeout_secs = 1;
    });
    let app = app.with_demo();
    let admin = app.demo_token("admin");
    let address = app.base.trim_start_matches("http://").to_owned();
    let course = app.get_ok(&admin, "/api/v1/courses?limit=1")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let materials_before = app.get_ok(&admin, "/api/v1/materials?limit=1")["total"].clone();
    let every = Duration::from_millis(200);
    let give_up = Duration::from_secs(20);
    // Headers one byte at a time, never finished (slowloris).
    let heads: Vec<_> = (0..12)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || {
                dribble(
                    &address,
                    b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n",
                    b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                    every,
                    give_up,
                )
            })
        })
        .collect();
    // Bodies that stop: more of them than the pool has connections (8), on the upload route,
    // which streams its body while the request runs.
    let upload_head = format!(
        "POST /api/v1/courses/{course}/materials?file_name=slow.pdf HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {admin}\r\nContent-Type: application/pdf\r\n\
         Content-Length: 100000\r\n\r\n%PDF-1.4 a start"
    );
    let push_head = format!(
        "POST /api/v1/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"mutations\":["
    );
    let bodies: Vec<_> = (0..12)
        .map(|i| {
            let address = address.clone();
            let head = if i % 2 == 0 {
                upload_head.clone()
            } else {
                push_head.clone()
            };
            // Pauses longer than the body timeout between bytes.
            std::thread::spawn(move || {
                dribble(
                    &address,
                    head.as_bytes(),
                    b" ",
                    Duration::from_millis(2500),
                    give_up,
                )
            })
        })
        .collect();
    // Meanwhile the one worker serves normal clients, reads and writes.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        app.get(&admin, "/api/v1/me").expect(200);
        app.post(&admin, "/api/v1/sync/push", &json!({"mutations": []}))
            .expect(200);
    }
    for (what, threads) in [("a slow head", heads), ("a stalled body", bodies)] {
        let mut slowest = Duration::ZERO;
        let mut answered = 0;
        for thread in threads {
            let cut = thread
                .join()
                .unwrap()
                .unwrap_or_else(|| panic!("{what} was never cut"));
            match what {
                // actix answers a head that is not complete in time with a bare 408.
                "a slow head" => assert!(matches!(cut.status, None | Some(408)), "{what}: {cut:?}"),
                _ => assert!(
                    cut.status.is_none()
                        || (cut.status == Some(408)
                            && cut.code.as_deref() == Some("request_timeout")),
                    "{what}: {cut:?}"
                ),
            }
            slowest = slowest.max(cut.after);
            answered += usize::from(cut.status.is_some());
        }
        eprintln!(
            "{backend:?}: 12 clients sending {what} were cut within {slowest:?}, {answered} with a 408"
        );
        // Cut by the timeouts, which answer before closing, not by some other failure.
        assert!(answered > 0, "{what}: no client was told 408");
    }
    // A cut upload left no record (and, see materials.rs, no file).
    let materials = app.get(&admin, "/api/v1/materials?limit=1").expect(200);
    assert_eq!(materials.json["total"], materials_before);
    // A kept-alive connection that goes quiet after its answer is closed.
    let mut idle = TcpStream::connect(&address).unwrap();
    idle.set_read_timeout(Some(give_up)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut everything = Vec::new();
    let _ = idle.read_to_end(&mut everything);
    assert!(
        String::from_utf8_lossy(&everything).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&everything)
    );
    assert!(
        started.elapsed() < give_up,
        "an idle kept-alive connection stayed open"
    );
    // After a first request, a slow second head on the same connection is cut too.
    let second = dribble(
        &address,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n",
        b"X-Slow: a\r\n",
        every,
        give_up,
    );
    assert!(second.is_some(), "a slow second request was never cut");
}

/// One attendance mutation for a (session, person) pair of the demo class.
fn attendance_mutation(session: &Value, person: &Value, status: &str) -> Value {
    json!({
        "mutation_id": uuid::Uuid::new_v4().to_string(),
        "collection": "attendance",
        "record_id": uuid::Uuid::new_v4().to_string(),
        "op": "upsert",
        "fields": {"session_id": session, "person_id": person, "status": status},
        "hlc": format!("{:013}-0000-device", chrono::Utc::now().timestamp_millis()),
    })
}

/// The (session, person) pairs of the demo's first course: somewhere to write attendance.
fn attendance_slots(server: &ServerProcess, token: &str, count: usize) -> Vec<(Value, Value)> {
    let course = server
        .send("GET", "/api/v1/courses?limit=1", Some(token), None)
        .expect(200)
        .json["items"][0]["id"]
        .clone();
    let course = course.as_str().unwrap();
    let sessions = server
        .send(
            "GET",
            &format!("/api/v1/sessions?course_id={course}&limit=100"),
            Some(token),
            None,
        )
        .expect(200)
        .json["items"]
        .clone();
    let people = server
        .send(
            "GET",
            &format!("/api/v1/enrollments?course_id={course}&limit=200"),
            Some(token),
            None,
        )
        .expect(200)
        .json["items"]
        .clone();
    let sessions = sessions.as_array().unwrap();
    let people = people.as_array().unwrap();
    (0..count)
        .map(|i| {
            (
                sessions[i % sessions.len()]["id"].clone(),
                people[i / sessions.len() % people.len()]["person_id"].clone(),
            )
        })
        .collect()
}

/// A refusal for want of the database: 503, `service_unavailable`, `Retry-After` in seconds.
#[track_caller]
fn assert_unavailable(response: &Response) {
    assert_eq!(
        (response.status, response.code()),
        (503, "service_unavailable"),
        "{}",
        response.text
    );
    let retry: u64 = response
        .required_header("retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry));
}

/// What one writer did: its request, and every status it got until it succeeded.
struct Writer {
    request: (String, Value),
    statuses: Vec<u16>,
    answer: Response,
}

/// Sends the same request until it succeeds, waiting `Retry-After` after each 503.
fn write_until_done(server: &ServerProcess, token: &str, path: &str, body: &Value) -> Writer {
    let mut statuses = Vec::new();
    loop {
        let response = server.send("POST", path, Some(token), Some(body));
        statuses.push(response.status);
        if response.status == 503 {
            assert_unavailable(&response);
            assert!(statuses.len() < 200, "{path} never got through");
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        return Writer {
            request: (path.to_owned(), body.clone()),
            statuses,
            answer: response,
        };
    }
}

fn fifty_writers_at_once_with_the_database_locked_get_2xx_or_503(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // A short busy timeout, so that a locked SQLite answers 503 soon rather than late.
    let (server, pg) = start_process(
        backend,
        dir.path(),
        &["--sqlite-busy-timeout-ms", "200", "--db-pool-size", "8"],
    );
    let server = Arc::new(server);
    let admin = server.token("admin", "diemdanh-admin");
    let slots = Arc::new(attendance_slots(&server, &admin, 50));
    // Another process holds the write lock (a backup, the CLI, a second server) for a while.
    let lock: Box<dyn FnOnce() + Send> = match &pg {
        None => {
            let mut conn =
                SqliteConnection::establish(dir.path().join("diemdanh.db").to_str().unwrap())
                    .unwrap();
            conn.batch_execute("BEGIN IMMEDIATE").unwrap();
            Box::new(move || conn.batch_execute("ROLLBACK").unwrap())
        }
        Some(pg) => {
            let mut conn = PgConnection::establish(&pg.url).unwrap();
            conn.batch_execute("BEGIN; SELECT value FROM revision_counter FOR UPDATE")
                .unwrap();
            Box::new(move || conn.batch_execute("ROLLBACK").unwrap())
        }
    };
    let start = Arc::new(Barrier::new(51));
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let (server, admin, slots, start) = (
                Arc::clone(&server),
                admin.clone(),
                Arc::clone(&slots),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                let (session, person) = &slots[i];
                let (path, body) = if i % 2 == 0 {
                    let mutation = attendance_mutation(session, person, "present");
                    ("/api/v1/sync/push", json!({ "mutations": [mutation] }))
                } else {
                    let id = uuid::Uuid::new_v4().to_string();
                    let code = format!("{:05}", 90000 + i);
                    let unit = json!({"id": id, "code": code, "name": format!("Xã Thử {i}"), "kind": "commune"});
                    ("/api/v1/units", unit)
                };
                start.wait();
                write_until_done(&server, &admin, path, &body)
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_secs(3));
    lock();
    let writers: Vec<Writer> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    let refused = writers.iter().filter(|w| w.statuses.contains(&503)).count();
    eprintln!(
        "{backend:?}: 50 writers with the database locked for 3 s: {refused} got 503 before succeeding"
    );
    if backend == Backend::Sqlite {
        // The lock outlasted the busy timeout: writers were told to come back.
        assert!(refused > 0, "no writer was refused while SQLite was locked");
    }
    for writer in &writers {
        let (path, body) = &writer.request;
        let last = writer.statuses.last().unwrap();
        assert!(
            writer
                .statuses
                .iter()
                .all(|s| *s == 503 || (200..300).contains(s)),
            "{path}: {:?} {}",
            writer.statuses,
            writer.answer.text
        );
        assert!((200..300).contains(last));
        if path.ends_with("/push") {
            let result = &writer.answer.json["results"][0]["status"];
            assert!(result == "applied" || result == "merged", "{result}");
            // Stored once: sent again, it is a duplicate.
            let again = server
                .send("POST", path, Some(&admin), Some(body))
                .expect(200);
            assert_eq!(again.json["results"][0]["status"], "duplicate");
        } else {
            let id = body["id"].as_str().unwrap();
            server
                .send("GET", &format!("/api/v1/units/{id}"), Some(&admin), None)
                .expect(200);
        }
    }
}

fn a_lock_held_too_long_answers_503_instead_of_holding_a_worker(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (server, pg) = start_process(
        backend,
        dir.path(),
        &[
            "--sqlite-busy-timeout-ms",
            "300",
            "--pg-lock-timeout-ms",
            "300",
            "--pg-statement-timeout-ms",
            "1500",
        ],
    );
    let admin = server.token("admin", "diemdanh-admin");
    // Another session holds the lock every write takes, and lets go after 5 s only: a server
    // that waits for it answers 201 late instead of 503 soon.
    let (locked, lock_taken) = std::sync::mpsc::channel();
    let holder = {
        let pg_url = pg.as_ref().map(|pg| pg.url.clone());
        let sqlite_path = dir.path().join("diemdanh.db");
        std::thread::spawn(move || {
            let release = |conn: &mut dyn FnMut(&str)| {
                locked.send(()).unwrap();
                std::thread::sleep(Duration::from_secs(5));
                conn("ROLLBACK");
            };
            match pg_url {
                Some(url) => {
                    let mut conn = PgConnection::establish(&url).unwrap();
                    conn.batch_execute("BEGIN; SELECT value FROM revision_counter FOR UPDATE")
                        .unwrap();
                    release(&mut |sql| conn.batch_execute(sql).unwrap());
                }
                None => {
                    let mut conn =
                        SqliteConnection::establish(sqlite_path.to_str().unwrap()).unwrap();
                    conn.batch_execute("BEGIN IMMEDIATE").unwrap();
                    release(&mut |sql| conn.batch_execute(sql).unwrap());
                }
            }
        })
    };
    lock_taken.recv().unwrap();
    let unit = json!({"code": "77001", "name": "Xã Chờ Khoá", "kind": "commune"});
    let refused = server.send("POST", "/api/v1/units", Some(&admin), Some(&unit));
    assert_unavailable(&refused);
    holder.join().unwrap();
    // Nothing was half-written; once the lock is gone the same request goes through.
    server
        .send("POST", "/api/v1/units", Some(&admin), Some(&unit))
        .expect(201);
    if let Some(pg) = &pg {
        // Every connection of the server's pool carries both limits.
        let storage = diemdanh::config::StorageConfig {
            data_dir: dir.path().to_path_buf(),
            database_url: Some(pg.url.clone()),
            db_pool_size: 1,
            sqlite_busy_timeout_ms: 300,
            pg_lock_timeout_ms: 300,
            pg_statement_timeout_ms: 1500,
            store: diemdanh::config::StoreConfig::default(),
        };
        let pool = diemdanh::db::open(&storage).unwrap();
        let mut conn = pool.get().unwrap();
        let slow = diesel::sql_query("SELECT pg_sleep(3)").execute(&mut *conn);
        assert_eq!(
            diemdanh::error::Error::from(slow.unwrap_err()).code(),
            "service_unavailable",
            "a statement past the limit is cancelled"
        );
    }
}

/// A full disk: a tmpfs of `size` mounted on `dir` in a mount namespace of the server's own
/// (`unshare`; root, or unprivileged user namespaces). `None` when the system allows neither
/// and `DIEMDANH_REQUIRE_FULL_DISK` is not set.
fn full_disk_program(dir: &Path, size: &str, server: Vec<String>) -> Option<Vec<String>> {
    let unshare = ["unshare", "--user", "--map-root-user", "--mount", "--"];
    let works = Command::new(unshare[0])
        .args(&unshare[1..])
        .args(["sh", "-c", "mount -t tmpfs -o size=1m tmpfs \"$0\""])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var("DIEMDANH_REQUIRE_FULL_DISK").is_err(),
            "DIEMDANH_REQUIRE_FULL_DISK is set but a tmpfs cannot be mounted with unshare"
        );
        eprintln!("no user or mount namespaces here: skipping the full-disk test");
        return None;
    }
    let mut program: Vec<String> = unshare.map(str::to_owned).to_vec();
    program.extend([
        "sh".to_owned(),
        "-c".to_owned(),
        "mount -t tmpfs -o size=\"$0\" tmpfs \"$1\" && shift && exec \"$@\"".to_owned(),
        size.to_owned(),
        dir.to_string_lossy().into_owned(),
    ]);
    program.extend(server);
    Some(program)
}

/// Free bytes of the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: statvfs writes only into the struct we pass; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail * stat.f_frsize
}

/// What is free on the disk plus what SQLite's files in `dir` hold: the checkpoint thread copies
/// the log into the database file whenever it runs, so free space alone moves under a test.
fn free_beside_database(dir: &Path) -> u64 {
    let held_by_files = || -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .filter(|metadata| metadata.is_file())
            .map(|metadata| metadata.blocks() * 512)
            .sum()
    };
    // Read until no checkpoint ran between the two readings of the files.
    let mut held = held_by_files();
    loop {
        let free = free_bytes(dir);
        let held_after = held_by_files();
        if held_after == held {
            return free + held;
        }
        held = held_after;
    }
}

fn a_full_disk_answers_507_and_leaves_nothing_behind(backend: Backend) {
    let outside = tempfile::tempdir().unwrap();
    let data = outside.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let pg = backend.fresh_database();
    let mut global = Vec::new();
    if let Some(pg) = &pg {
        global.extend(["--database-url", pg.url.as_str()]);
    }
    let serve = serve_args(&data, &global, &["--demo", "--workers", "2"]);
    let Some(program) = full_disk_program(&data, "4m", serve) else {
        return;
    };
    let server = ServerProcess::start(&program, &outside.path().join("server.log"))
        .unwrap_or_else(|e| panic!("{e}"));
    let disk = server.seen_path(&data);
    let admin = server.token("admin", "diemdanh-admin");
    let course = server
        .send("GET", "/api/v1/courses?limit=1", Some(&admin), None)
        .expect(200)
        .json["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let materials = |server: &ServerProcess| {
        server
            .send("GET", "/api/v1/materials?limit=1", Some(&admin), None)
            .expect(200)
            .json["total"]
            .clone()
    };
    let before = materials(&server);
    let free = free_bytes(&disk);
    assert!(free <= 4 << 20, "the tmpfs is mounted: {free} bytes free");
    let free_beside = free_beside_database(&disk);
    let files_before = files_under(&disk.join("materials"));
    // Larger than what is left: the disk fills up in the middle of the upload.
    let too_big: Vec<u8> = (0..free + (1 << 20)).map(|i| (i % 251) as u8).collect();
    let upload = |body: &[u8]| {
        server
            .try_send(
                "POST",
                &format!("/api/v1/courses/{course}/materials?file_name=big.pdf"),
                Some(&admin),
                Some((body, "application/pdf")),
            )
            .expect("an answer")
    };
    let refused = upload(&too_big);
    assert_eq!(
        (refused.status, refused.code()),
        (507, "insufficient_storage"),
        "{}",
        refused.text
    );
    assert!(
        refused.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    // No record, no partial file, the space given back.
    assert_eq!(materials(&server), before);
    let mut leftovers = files_under(&disk.join("materials"));
    for _ in 0..50 {
        if leftovers == files_before {
            break;
        }
        // The temporary file of an aborted upload is deleted just after the answer.
        std::thread::sleep(Duration::from_millis(100));
        leftovers = files_under(&disk.join("materials"));
    }
    assert_eq!(leftovers, files_before, "files left by the refused upload");
    let free_beside_after = free_beside_database(&disk);
    assert!(
        free_beside_after + (64 << 10) >= free_beside,
        "the space was given back: {free_beside_after} bytes free beside the database, {free_beside} before"
    );
    // What fits is stored: the server carries on.
    upload(&too_big[..256 << 10]).expect(201);
    if backend == Backend::Postgres {
        return;
    }
    // SQLite's own file: fill the disk, then write until the database cannot grow.
    let filler = disk.join("filler");
    {
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    let mut failed = None;
    for i in 0..5000 {
        let id = uuid::Uuid::new_v4().to_string();
        let unit = json!({"id": id, "code": format!("{:05}", 10000 + i), "name": format!("Phường Đầy {i} {}", "x".repeat(150)), "kind": "ward"});
        let response = server.send("POST", "/api/v1/units", Some(&admin), Some(&unit));
        if response.status != 201 {
            failed = Some((response, unit));
            break;
        }
    }
    let (response, unit) = failed.expect("the database never filled the disk");
    assert_eq!(
        (response.status, response.code()),
        (507, "insufficient_storage"),
        "{}",
        response.text
    );
    let path = format!("/api/v1/units/{}", unit["id"].as_str().unwrap());
    server.send("GET", &path, Some(&admin), None).expect(404);
    // Reads still work; once there is room again, the same write goes through.
    server
        .send("GET", "/api/v1/units?limit=5", Some(&admin), None)
        .expect(200);
    std::fs::remove_file(&filler).unwrap();
    server
        .send("POST", "/api/v1/units", Some(&admin), Some(&unit))
        .expect(201);
    server.send("GET", &path, Some(&admin), None).expect(200);
    let mut conn = SqliteConnection::establish(disk.join("diemdanh.db").to_str().unwrap()).unwrap();
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    assert_eq!(check[0].integrity_check, "ok");
}

/// PostgreSQL stopped under load (`immediate`: as a crash; `fast`: a clean shutdown) and
/// started again: requests in flight and during the outage answer 503 with `Retry-After`, never
/// 500; retried pushes are stored once; the same server process recovers.
#[test]
fn postgresql_restarted_mid_request_answers_503_and_recovers() {
    let Some(cluster) = own_postgres::own_cluster() else {
        eprintln!("PostgreSQL not available: skipping the restart test");
        return;
    };
    let url = cluster.create_database("diemdanh_restart");
    let dir = tempfile::tempdir().unwrap();
    let program = serve_args(
        dir.path(),
        &["--database-url", &url, "--db-pool-size", "4"],
        &["--demo", "--workers", "2"],
    );
    let server = Arc::new(
        ServerProcess::start(&program, &dir.path().join("server.log"))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let admin = server.token("admin", "diemdanh-admin");
    let slots = attendance_slots(&server, &admin, 400);
    let logged_before = logged_mutations(&url);
    let mut next_slot = slots.into_iter();
    for mode in ["immediate", "fast"] {
        // Eight devices push batches in a loop, each retried as it is until it is answered.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let devices: Vec<_> = (0..8)
            .map(|_| {
                let batches: Vec<Value> = (0..5)
                    .map(|_| {
                        let (session, person) = next_slot.next().unwrap();
                        json!({"mutations": [attendance_mutation(&session, &person, "late")]})
                    })
                    .collect();
                let (server, admin, stop) = (Arc::clone(&server), admin.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut statuses = Vec::new();
                    for batch in &batches {
                        loop {
                            assert!(
                                !stop.load(std::sync::atomic::Ordering::Relaxed),
                                "a push never got through: {statuses:?}"
                            );
                            match server.try_send(
                                "POST",
                                "/api/v1/sync/push",
                                Some(&admin),
                                JsonBody::of(Some(batch)).bytes(),
                            ) {
                                Ok(response) if response.status == 200 => {
                                    statuses.push(200);
                                    break;
                                }
                                Ok(response) => {
                                    assert_unavailable(&response);
                                    statuses.push(response.status);
                                }
                                // The database went away, not the server: it always answers.
                                Err(e) => panic!("no answer: {e}"),
                            }
                            std::thread::sleep(Duration::from_millis(300));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    (batches, statuses)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        cluster.stop(mode);
        // Between requests too: a read while the server is down.
        let down = server.send("GET", "/api/v1/courses?limit=1", Some(&admin), None);
        assert_unavailable(&down);
        std::thread::sleep(Duration::from_secs(2));
        cluster.start();
        let watchdog = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(120));
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            })
        };
        let mut refused = 0;
        for device in devices {
            let (batches, statuses) = device.join().expect("a device gave up");
            refused += statuses.iter().filter(|s| **s != 200).count();
            for batch in &batches {
                // Stored once: the retried push is now a duplicate.
                let again = server
                    .send("POST", "/api/v1/sync/push", Some(&admin), Some(batch))
                    .expect(200);
                assert_eq!(again.json["results"][0]["status"], "duplicate", "{mode}");
            }
        }
        drop(watchdog);
        eprintln!(
            "PostgreSQL stopped ({mode}) under 8 pushing devices: {refused} refusals, then all stored once"
        );
        assert!(refused > 0, "{mode}: no push noticed PostgreSQL going away");
        // The same process serves again.
        server
            .send("GET", "/api/v1/courses?limit=1", Some(&admin), None)
            .expect(200);
    }
    // Every mutation logged once, and no other.
    assert_eq!(logged_mutations(&url), logged_before + 80);
}

fn logged_mutations(url: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(url).unwrap();
    let counted: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM sync_mutations")
        .load(&mut conn)
        .unwrap();
    counted[0].n
}
