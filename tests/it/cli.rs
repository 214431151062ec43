//! The command line, run as a user would: account and device administration against the same
//! database the server uses, and `serve --demo` from an empty data directory.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::support::{TestApp, id_of};

backend_tests!(accounts_and_devices_are_administered_from_the_command_line);

pub fn diemdanh(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_diemdanh"));
    command.arg("--data-dir").arg(&app.storage.data_dir);
    match &app.storage.database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run diemdanh");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn accounts_and_devices_are_administered_from_the_command_line(app: TestApp) {
    let (ok, out, err) = diemdanh(
        &app,
        &[
            "user",
            "add",
            "Mai.Tran",
            "--role",
            "trainer",
            "--password-stdin",
        ],
        Some("mật-khẩu-1234\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("created trainer mai.tran"), "{out}");
    let login = app.login("mai.tran", "mật-khẩu-1234");
    let token = login["access_token"].as_str().unwrap();

    let (ok, out, _) = diemdanh(&app, &["device", "list", "--user", "mai.tran"], None);
    assert!(
        ok && out.contains(login["device_id"].as_str().unwrap()),
        "{out}"
    );
    let (ok, _, _) = diemdanh(
        &app,
        &["device", "revoke", login["device_id"].as_str().unwrap()],
        None,
    );
    assert!(ok);
    app.get(token, "/api/v1/me")
        .expect_error(401, "device_revoked");

    let token = app.token("mai.tran", "mật-khẩu-1234");
    let (ok, out, _) = diemdanh(&app, &["user", "passwd", "mai.tran"], None);
    assert!(ok);
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("generated password")
        .to_owned();
    app.get(&token, "/api/v1/me").expect(401);
    app.token("mai.tran", &generated);

    let (ok, _, _) = diemdanh(&app, &["user", "disable", "mai.tran"], None);
    assert!(ok);
    app.try_login("mai.tran", &generated)
        .expect_error(403, "account_disabled");
    let (ok, out, _) = diemdanh(&app, &["user", "list"], None);
    assert!(ok && out.contains("mai.tran\ttrainer\tdisabled"), "{out}");

    let (ok, _, err) = diemdanh(
        &app,
        &["user", "add", "x", "--role", "trainer", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, _, err) = diemdanh(&app, &["user", "add", "mai.tran", "--role", "admin"], None);
    assert!(!ok && err.contains("taken"), "{err}");
    // An organiser is made for a unit, and only with one.
    let admin = app.admin_token();
    let unit = id_of(&app.create(
        &admin,
        "/api/v1/units",
        json!({"code": "23575", "name": "Phường Pleiku", "kind": "ward"}),
    ));
    let (ok, _, err) = diemdanh(
        &app,
        &["user", "add", "doan.pleiku", "--role", "organiser"],
        None,
    );
    assert!(!ok && err.contains("unit_id"), "{err}");
    let (ok, out, err) = diemdanh(
        &app,
        &[
            "user",
            "add",
            "doan.pleiku",
            "--role",
            "organiser",
            "--unit-id",
            &unit,
            "--password-stdin",
        ],
        Some("mật-khẩu-5678\n"),
    );
    assert!(
        ok && out.contains("created organiser doan.pleiku"),
        "{out}{err}"
    );
    assert_eq!(
        app.login("doan.pleiku", "mật-khẩu-5678")["user"]["unit_id"],
        unit
    );
    let (ok, out, _) = diemdanh(&app, &["purge-tombstones", "--retention-days", "0"], None);
    assert!(ok && out.starts_with("removed "), "{out}");
    let (ok, out, _) = diemdanh(&app, &["migrate"], None);
    assert!(ok && out.contains("up to date"), "{out}");
}

/// The README's first command, minus cargo: an empty data directory becomes a server with demo
/// data, the printed admin login works, and SIGTERM stops it cleanly.
#[test]
fn serve_with_demo_starts_from_nothing_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_diemdanh"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .env("DIEMDANH_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("server output").unwrap();
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("diemdanh is listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("try:");
        printed.push(line);
        if done {
            break;
        }
    }
    let printed = printed.join("\n");
    assert!(
        printed.contains("admin") && printed.contains("diemdanh-admin"),
        "{printed}"
    );
    assert!(dir.path().join("diemdanh.db").exists());

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut response = agent
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(
            json!({"username": "admin", "password": "diemdanh-admin", "device_name": "curl"}),
        )
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.body_mut().read_json().unwrap();
    let mut courses = agent
        .get(format!("{base}/api/v1/courses"))
        .header(
            "Authorization",
            format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
        )
        .call()
        .unwrap();
    let courses: serde_json::Value = courses.body_mut().read_json().unwrap();
    assert_eq!(courses["total"], 3);

    // SAFETY: kill(2) with a pid we own and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}
