//! Login, tokens, refresh rotation, revocation, password changes and login rate limits.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::backend_tests;
use crate::support::{Backend, Response, TestApp};

backend_tests!(
    login_returns_tokens_bound_to_a_new_device,
    wrong_passwords_and_unknown_users_look_the_same,
    refresh_tokens_rotate_and_reuse_revokes_the_device,
    a_refresh_retried_after_a_lost_answer_keeps_the_device_signed_in,
    a_repeated_refresh_leaves_the_device_one_working_chain,
    a_refresh_reused_after_the_grace_period_revokes_the_device,
    logout_and_admin_revocation_take_effect_on_the_next_request,
    disabling_a_user_locks_them_out,
    changing_a_password_signs_out_other_devices,
    login_failures_are_rate_limited,
    failures_from_one_address_slow_the_account_but_never_lock_its_owner_out,
    an_account_guessed_from_many_addresses_waits_longer_after_each_failure,
    login_limits_survive_a_restart_because_every_instance_shares_them,
    forged_and_expired_tokens_are_refused,
);

fn login_returns_tokens_bound_to_a_new_device(app: TestApp) {
    app.create_user("Hoa.Nguyen", "trainer", None);
    let tokens = app.login("hoa.nguyen", "trainer-password");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["refresh_expires_in"], 60 * 24 * 3600);
    assert_eq!(tokens["user"]["username"], "hoa.nguyen");
    assert!(tokens["user"].get("password_hash").is_none());
    let token = tokens["access_token"].as_str().unwrap();
    let me = app.get(token, "/api/v1/me").expect(200);
    assert_eq!(me.json["role"], "trainer");
    let devices = app.get(token, "/api/v1/devices").expect(200);
    assert_eq!(devices.json["total"], 1);
    assert_eq!(devices.json["items"][0]["id"], tokens["device_id"]);
    assert_eq!(devices.json["items"][0]["name"], "test device");
    app.call("GET", "/api/v1/me", None, None)
        .expect_error(401, "missing_token");
    // Without a valid token nothing else about the request is judged.
    let unauthenticated = app.post_bytes("junk", "/api/v1/units", b"{oops", "application/json");
    assert_eq!(
        (unauthenticated.status, unauthenticated.code()),
        (401, "invalid_token")
    );
    app.call("GET", "/api/v1/units?limit=abc", None, None)
        .expect_error(401, "missing_token");
}

fn wrong_passwords_and_unknown_users_look_the_same(app: TestApp) {
    app.create_user("tuan.le", "trainer", None);
    let a = app.try_login("tuan.le", "nope-nope").expect(401);
    let b = app.try_login("nobody.here", "nope-nope").expect(401);
    assert_eq!(a.json, b.json);
    assert_eq!(a.code(), "invalid_credentials");
    let extra = json!({"username": "tuan.le", "password": "trainer-password", "device_name": "x", "role": "admin"});
    app.call("POST", "/api/v1/auth/login", None, Some(&extra))
        .expect_error(422, "validation_failed");
}

fn refresh_tokens_rotate_and_reuse_revokes_the_device(app: TestApp) {
    app.create_user("trainer.a", "trainer", None);
    let first = app.login("trainer.a", "trainer-password");
    let refresh = |token: &serde_json::Value| app.refresh(token);
    let second = refresh(&first["refresh_token"]).expect(200).json;
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["device_id"], first["device_id"]);
    let token = second["access_token"].as_str().unwrap();
    app.get(token, "/api/v1/me").expect(200);
    let third = refresh(&second["refresh_token"]).expect(200).json;
    let token = third["access_token"].as_str().unwrap();
    // The first refresh token was used already and the chain has moved on since: presenting it
    // again means it was copied.
    refresh(&first["refresh_token"]).expect_error(401, "refresh_token_reused");
    app.get(token, "/api/v1/me")
        .expect_error(401, "device_revoked");
    refresh(&third["refresh_token"]).expect_error(401, "invalid_refresh_token");
    refresh(&json!("garbage")).expect_error(401, "invalid_refresh_token");
}

/// Sends a refresh over a connection of its own and cuts it as soon as the answer starts to
/// arrive: the server has answered, and the phone never read its new tokens.
fn refresh_and_lose_the_answer(app: &TestApp, refresh_token: &serde_json::Value) {
    use std::io::{Read, Write};
    let address = app.base.trim_start_matches("http://");
    let body = json!({ "refresh_token": refresh_token }).to_string();
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "POST /api/v1/auth/refresh HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut status_line = [0u8; 12];
    stream.read_exact(&mut status_line).expect("answer");
    assert_eq!(&status_line, b"HTTP/1.1 200");
    stream
        .shutdown(std::net::Shutdown::Both)
        .expect("cut the connection");
}

fn a_refresh_retried_after_a_lost_answer_keeps_the_device_signed_in(app: TestApp) {
    app.create_user("trainer.weak", "trainer", None);
    let login = app.login("trainer.weak", "trainer-password");
    refresh_and_lose_the_answer(&app, &login["refresh_token"]);
    // The phone retries with the only refresh token it has.
    let retried = app.refresh(&login["refresh_token"]).expect(200).json;
    assert_eq!(retried["device_id"], login["device_id"]);
    let token = retried["access_token"].as_str().unwrap();
    app.get(token, "/api/v1/me").expect(200);
    // The chain it was given goes on working.
    let next = app.refresh(&retried["refresh_token"]).expect(200).json;
    let token = next["access_token"].as_str().unwrap();
    app.get(token, "/api/v1/me").expect(200);
    // Once the chain has moved on, the first token is a copy again.
    app.refresh(&login["refresh_token"])
        .expect_error(401, "refresh_token_reused");
    app.get(token, "/api/v1/me")
        .expect_error(401, "device_revoked");
}

fn a_repeated_refresh_leaves_the_device_one_working_chain(app: TestApp) {
    app.create_user("trainer.twice", "trainer", None);
    let login = app.login("trainer.twice", "trainer-password");
    let lost = app.refresh(&login["refresh_token"]).expect(200).json;
    let kept = app.refresh(&login["refresh_token"]).expect(200).json;
    assert_ne!(lost["refresh_token"], kept["refresh_token"]);
    let live: i64 = {
        use diemdanh::db::schema::refresh_tokens;
        use diesel::prelude::*;
        let mut conn = app.pool.get().unwrap();
        refresh_tokens::table
            .filter(refresh_tokens::used_at.is_null())
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(
        live, 1,
        "one unused refresh token: the device has one chain"
    );
    // The answer that was lost carried a token that no longer works: whoever presents it holds
    // a copy, and the device is signed out with every token it had.
    app.refresh(&lost["refresh_token"])
        .expect_error(401, "refresh_token_reused");
    app.refresh(&kept["refresh_token"])
        .expect_error(401, "invalid_refresh_token");
    let token = kept["access_token"].as_str().unwrap();
    app.get(token, "/api/v1/me")
        .expect_error(401, "device_revoked");
}

fn a_refresh_reused_after_the_grace_period_revokes_the_device(app: TestApp) {
    app.create_user("trainer.late", "trainer", None);
    let login = app.login("trainer.late", "trainer-password");
    let refreshed = app.refresh(&login["refresh_token"]).expect(200).json;
    {
        // A minute and a second pass.
        use diemdanh::db::schema::refresh_tokens;
        use diesel::prelude::*;
        let mut conn = app.pool.get().unwrap();
        diesel::update(refresh_tokens::table.filter(refresh_tokens::used_at.is_not_null()))
            .set(refresh_tokens::used_at.eq(refresh_tokens::used_at - 61_000))
            .execute(&mut *conn)
            .unwrap();
    }
    app.refresh(&login["refresh_token"])
        .expect_error(401, "refresh_token_reused");
    let token = refreshed["access_token"].as_str().unwrap();
    app.get(token, "/api/v1/me")
        .expect_error(401, "device_revoked");
}

fn logout_and_admin_revocation_take_effect_on_the_next_request(app: TestApp) {
    let admin = app.admin_token();
    app.create_user("trainer.b", "trainer", None);
    let phone = app.login("trainer.b", "trainer-password");
    let tablet = app.login("trainer.b", "trainer-password");
    let phone_token = phone["access_token"].as_str().unwrap();
    let tablet_token = tablet["access_token"].as_str().unwrap();
    app.post_empty(phone_token, "/api/v1/auth/logout")
        .expect(204);
    app.get(phone_token, "/api/v1/me")
        .expect_error(401, "device_revoked");
    app.get(tablet_token, "/api/v1/me").expect(200);
    let path = format!(
        "/api/v1/devices/{}/revoke",
        tablet["device_id"].as_str().unwrap()
    );
    let revoked = app.post_empty(&admin, &path).expect(200);
    assert!(revoked.json["revoked_at"].is_string());
    app.get(tablet_token, "/api/v1/me")
        .expect_error(401, "device_revoked");
    let again = app.call(
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(&json!({"refresh_token": tablet["refresh_token"]})),
    );
    again.expect_error(401, "invalid_refresh_token");
}

fn disabling_a_user_locks_them_out(app: TestApp) {
    let admin = app.admin_token();
    let user_id = app.create_user("trainer.c", "trainer", None);
    let token = app.token("trainer.c", "trainer-password");
    let path = format!("/api/v1/users/{user_id}");
    let disabled = app
        .patch(&admin, &path, &json!({"disabled": true}))
        .expect(200);
    assert!(disabled.json["disabled_at"].is_string());
    app.get(&token, "/api/v1/me")
        .expect_error(401, "device_revoked");
    app.try_login("trainer.c", "trainer-password")
        .expect_error(403, "account_disabled");
    app.patch(&admin, &path, &json!({"disabled": false}))
        .expect(200);
    app.try_login("trainer.c", "trainer-password").expect(200);
    // Admins cannot lock themselves out.
    let me = app.me(&admin);
    let own = format!("/api/v1/users/{}", me["id"].as_str().unwrap());
    app.patch(&admin, &own, &json!({"disabled": true}))
        .expect(422);
}

fn changing_a_password_signs_out_other_devices(app: TestApp) {
    app.create_user("trainer.d", "trainer", None);
    let here = app.token("trainer.d", "trainer-password");
    let elsewhere = app.token("trainer.d", "trainer-password");
    let wrong = json!({"current_password": "not-it-at-all", "new_password": "mật-khẩu-mới-2026"});
    app.post(&here, "/api/v1/me/password", &wrong).expect(422);
    let weak = json!({"current_password": "trainer-password", "new_password": "short"});
    app.post(&here, "/api/v1/me/password", &weak).expect(422);
    let change =
        json!({"current_password": "trainer-password", "new_password": "mật-khẩu-mới-2026"});
    app.post(&here, "/api/v1/me/password", &change).expect(204);
    app.get(&here, "/api/v1/me").expect(200);
    app.get(&elsewhere, "/api/v1/me").expect(401);
    app.try_login("trainer.d", "trainer-password").expect(401);
    app.token("trainer.d", "mật-khẩu-mới-2026");
}

fn login_failures_are_rate_limited(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.login_max_failures = 3);
    app.create_user("trainer.e", "trainer", None);
    for _ in 0..3 {
        app.try_login("trainer.e", "wrong-password").expect(401);
    }
    let limited = app
        .try_login("trainer.e", "trainer-password")
        .expect_error(429, "rate_limited");
    let retry_after: u64 = limited.required_header("retry-after").parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 900);
    // Other accounts are not affected by one account's limit.
    app.create_user("trainer.f", "trainer", None);
    app.token("trainer.f", "trainer-password");
}

/// A login attempt from a client address (the server trusts `X-Forwarded-For` in these tests).
fn login_from(app: &TestApp, username: &str, password: &str, address: &str) -> Response {
    let body = json!({"username": username, "password": password, "device_name": "phone"});
    app.call_with(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&body),
        &[("X-Forwarded-For", address)],
    )
}

#[track_caller]
fn retry_after(response: Response) -> u64 {
    let response = response.expect_error(429, "rate_limited");
    response
        .required_header("retry-after")
        .parse()
        .expect("seconds")
}

/// Moves every counted login failure `ms` into the past, as if that much time went by.
fn pass_time(app: &TestApp, ms: i64) {
    use diemdanh::db::schema::login_failures;
    use diesel::prelude::*;
    let mut conn = app.pool.get().unwrap();
    diesel::update(login_failures::table)
        .set(login_failures::failed_at.eq(login_failures::failed_at - ms))
        .execute(&mut *conn)
        .unwrap();
}

fn failures_from_one_address_slow_the_account_but_never_lock_its_owner_out(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.trust_proxy = true);
    app.create_user("trainer.owner", "trainer", None);
    let guesser = "203.0.113.9";
    let owner = "198.51.100.7";
    for _ in 0..5 {
        login_from(&app, "trainer.owner", "guess-guess", guesser).expect(401);
    }
    // The guessing address waits for the window to pass.
    assert!(retry_after(login_from(&app, "trainer.owner", "guess-guess", guesser)) > 800);
    // The owner, from an address of their own, is slowed down for a second, not locked out.
    assert_eq!(
        retry_after(login_from(&app, "trainer.owner", "trainer-password", owner)),
        1
    );
    pass_time(&app, 1_000);
    login_from(&app, "trainer.owner", "trainer-password", owner).expect(200);
    // Signing in clears the account's failures, not the guessing address's.
    assert!(retry_after(login_from(&app, "trainer.owner", "guess-guess", guesser)) > 800);
    login_from(&app, "trainer.owner", "trainer-password", owner).expect(200);
}

fn an_account_guessed_from_many_addresses_waits_longer_after_each_failure(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.trust_proxy = true);
    app.create_user("trainer.target", "trainer", None);
    let address = |i: usize| format!("192.0.2.{i}");
    for i in 0..5 {
        login_from(&app, "trainer.target", "guess-guess", &address(i)).expect(401);
    }
    let mut waits = Vec::new();
    for i in 5..8 {
        let wait = retry_after(login_from(
            &app,
            "trainer.target",
            "guess-guess",
            &address(i),
        ));
        waits.push(wait);
        pass_time(&app, wait as i64 * 1000);
        login_from(&app, "trainer.target", "guess-guess", &address(i)).expect(401);
    }
    assert_eq!(waits, [1, 2, 4]);
}

fn login_limits_survive_a_restart_because_every_instance_shares_them(backend: Backend) {
    let mut app = TestApp::start_with(backend, |c| {
        c.trust_proxy = true;
        c.login_max_failures_per_ip = 3;
    });
    for name in ["trainer.p", "trainer.q", "trainer.r", "trainer.s"] {
        app.create_user(name, "trainer", None);
    }
    let sprayer = "203.0.113.50";
    for name in ["trainer.p", "trainer.q", "trainer.r"] {
        login_from(&app, name, "guess-guess", sprayer).expect(401);
    }
    // Another process on the same database (here: the server restarted) counts the same.
    app.restart();
    assert!(retry_after(login_from(&app, "trainer.s", "trainer-password", sprayer)) > 800);
    login_from(&app, "trainer.s", "trainer-password", "198.51.100.8").expect(200);
}

fn forged_and_expired_tokens_are_refused(app: TestApp) {
    app.create_user("trainer.g", "trainer", None);
    let tokens = app.login("trainer.g", "trainer-password");
    let token = tokens["access_token"].as_str().unwrap();
    let secret = {
        let mut conn = app.pool.get().unwrap();
        diemdanh::db::get_setting(&mut conn, "jwt_secret")
            .unwrap()
            .unwrap()
    };
    let claims = |exp_offset: i64, sub: &str| {
        let now = chrono::Utc::now().timestamp();
        json!({"sub": sub, "dev": tokens["device_id"], "iss": "diemdanh", "iat": now, "exp": now + exp_offset})
    };
    let sign = |claims: serde_json::Value, key: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let user_id = tokens["user"]["id"].as_str().unwrap();
    let expired = sign(claims(-3600, user_id), secret.as_bytes());
    app.get(&expired, "/api/v1/me")
        .expect_error(401, "token_expired");
    let wrong_key = sign(claims(600, user_id), b"another-secret-another-secret-123");
    app.get(&wrong_key, "/api/v1/me")
        .expect_error(401, "invalid_token");
    // An edited payload keeps the old signature, which no longer matches.
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let edited_claims = engine.encode(serde_json::to_vec(&claims(600, "someone-else")).unwrap());
    let edited = format!("{}.{}.{}", parts[0], edited_claims, parts[2]);
    app.get(&edited, "/api/v1/me")
        .expect_error(401, "invalid_token");
    let none_header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    app.get(&alg_none, "/api/v1/me")
        .expect_error(401, "invalid_token");
    // A token signed for a user that does not own the device is refused too.
    let other = app.create_user("trainer.h", "trainer", None);
    let mismatched = sign(claims(600, &other), secret.as_bytes());
    app.get(&mismatched, "/api/v1/me")
        .expect_error(401, "invalid_token");
}
