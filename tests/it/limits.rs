//! Hostile input and limits: oversized, compressed, malformed and odd bodies, headers and
//! queries get a clear `{code, message}` error with the right status — never a 500, never a
//! crash — and every response carries the security headers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::process::start_process;
use crate::support::spec::Spec;
use crate::support::{Backend, TestApp};

backend_tests!(
    oversized_bodies_are_413_with_or_without_a_length,
    push_bodies_read_off_the_workers_are_refused_like_every_json_body,
    a_gzip_bomb_is_refused_and_memory_stays_flat,
    malformed_bodies_get_clear_errors,
    nul_characters_are_refused_on_every_path,
    oversized_headers_are_refused,
    a_push_of_100000_tiny_mutations_is_refused_whole,
    security_headers_on_every_response,
    huge_numbers_are_refused_and_change_nothing,
    every_json_route_refuses_other_content_types,
    login_guessing_is_limited_per_account_and_per_address,
);

/// A response read off the socket: status, headers (lower-case names) and body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends bytes as they are (no client rewrites framing or encoding) and reads the answer until
/// the server closes the connection.
fn raw(app: &TestApp, request: &[u8]) -> Raw {
    raw_to(&app.base, request)
}

fn raw_to(base: &str, request: &[u8]) -> Raw {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer (413) and close before it has read everything: that is fine.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Raw {
        status,
        headers,
        body,
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..end]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&bytes[end + 2..end + 2 + size]);
        bytes = &bytes[end + 4 + size..];
    }
    out
}

/// A request head with `Connection: close` and the given extra header lines.
fn head(method: &str, path: &str, token: &str, extra: &[String]) -> Vec<u8> {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n"
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

fn with_body(
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
    extra: &[&str],
) -> Vec<u8> {
    let mut lines = vec![
        format!("Content-Type: {content_type}"),
        format!("Content-Length: {}", body.len()),
    ];
    lines.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut request = head(method, path, token, &lines);
    request.extend_from_slice(body);
    request
}

fn chunked(method: &str, path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut request = head(
        method,
        path,
        token,
        &[
            "Content-Type: application/json".to_owned(),
            "Transfer-Encoding: chunked".to_owned(),
        ],
    );
    for chunk in body.chunks(64 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

/// An error answer: the status, JSON with a code and a message, the security headers.
#[track_caller]
fn assert_error(response: &Raw, status: u16, code: &str) {
    let body = response.json();
    assert_eq!(
        (response.status, body["code"].as_str()),
        (status, Some(code)),
        "body: {}",
        String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
    );
    assert!(body["message"].is_string());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_security_headers(response);
}

#[track_caller]
fn assert_security_headers(response: &Raw) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            response.header(name),
            Some(value),
            "{name} on a {} answer",
            response.status
        );
    }
}

fn start(backend: Backend) -> (TestApp, String) {
    let app = TestApp::start(backend).with_demo();
    let admin = app.demo_token("admin");
    (app, admin)
}

fn unit_body(name: &str) -> String {
    json!({"code": "99001", "name": name, "kind": "commune"}).to_string()
}

fn oversized_bodies_are_413_with_or_without_a_length(backend: Backend) {
    let (app, admin) = start(backend);
    let total = app.get_ok(&admin, "/api/v1/units?limit=1")["total"].clone();
    let big = unit_body(&"a".repeat(2 << 20));
    let with_length = raw(
        &app,
        &with_body("POST", "/api/v1/units", &admin, JSON, big.as_bytes(), &[]),
    );
    assert_error(&with_length, 413, "payload_too_large");
    let without_length = raw(
        &app,
        &chunked("POST", "/api/v1/units", &admin, big.as_bytes()),
    );
    assert_error(&without_length, 413, "payload_too_large");
    let units = app.get(&admin, "/api/v1/units?limit=1").expect(200);
    assert_eq!(units.json["total"], total, "nothing was created");
}

const JSON: &str = "application/json";

/// The two push routes read their bodies themselves, to parse them on the blocking pool
/// (`extractors::BulkJson`); they must refuse what every other JSON route refuses, with the
/// same status, code and message, and take nothing of it.
fn push_bodies_read_off_the_workers_are_refused_like_every_json_body(backend: Backend) {
    let (app, admin) = start(backend);
    let send = |path: &str, request: &dyn Fn(&str) -> Vec<u8>| raw(&app, &request(path));
    let units = "/api/v1/units";
    let pushes = [
        "/api/v1/sync/push",
        "/api/v1/watermelon/sync?last_pulled_at=1",
    ];
    let big = format!("{{\"mutations\":[\"{}\"]}}", "a".repeat(2 << 20));
    let with_length = |path: &str| with_body("POST", path, &admin, JSON, big.as_bytes(), &[]);
    let without_length = |path: &str| chunked("POST", path, &admin, big.as_bytes());
    let not_json = |path: &str| with_body("POST", path, &admin, JSON, b"{\"mutat", &[]);
    let as_text = |path: &str| with_body("POST", path, &admin, "text/plain", b"{}", &[]);
    type Request<'a> = &'a dyn Fn(&str) -> Vec<u8>;
    let cases: [(&str, Request, u16, &str); 4] = [
        (
            "2 MiB with a length",
            &with_length,
            413,
            "payload_too_large",
        ),
        ("2 MiB chunked", &without_length, 413, "payload_too_large"),
        ("cut-off JSON", &not_json, 400, "malformed_json"),
        ("text", &as_text, 415, "unsupported_media_type"),
    ];
    for (what, request, status, code) in cases {
        let expected = send(units, request);
        assert_error(&expected, status, code);
        for push in pushes {
            let response = send(push, request);
            assert_error(&response, status, code);
            assert_eq!(
                response.json()["message"],
                expected.json()["message"],
                "{what} to {push}"
            );
        }
    }
    // The native push's body has a shape: a member named twice, or mutations that are not a
    // list, are refused as any typed body's are.
    let token = admin.as_str();
    let native = |body: &'static [u8]| {
        send(pushes[0], &move |path: &str| {
            with_body("POST", path, token, JSON, body, &[])
        })
    };
    assert_error(
        &native(b"{\"mutations\":[],\"mutations\":[]}"),
        400,
        "duplicate_key",
    );
    assert_error(&native(b"{\"mutations\":5}"), 422, "validation_failed");
    // And a good one still goes through.
    let empty = native(b"{\"mutations\":[]}");
    assert_eq!(
        empty.status,
        200,
        "{}",
        String::from_utf8_lossy(&empty.body)
    );
    let quarantine = app.get_ok(&admin, "/api/v1/sync/quarantine?limit=1");
    assert_eq!(quarantine["total"], 0, "nothing was filed");
}

fn a_gzip_bomb_is_refused_and_memory_stays_flat(backend: Backend) {
    // The real binary in a process of its own, so that its memory is its own and not that of
    // the tests running beside this one.
    let dir = tempfile::tempdir().unwrap();
    let (server, _pg) = start_process(backend, dir.path(), &[]);
    let admin = server.token("admin", "diemdanh-admin");
    // 256 MiB of spaces inside a JSON array, about 250 KiB gzipped: under the 1 MiB limit as
    // sent, far over it once inflated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"{\"mutations\":[").unwrap();
    let filler = vec![b' '; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&filler).unwrap();
    }
    gz.write_all(b"]}").unwrap();
    let bomb = gz.finish().unwrap();
    assert!(
        bomb.len() < 1 << 20,
        "the bomb fits under the limit as sent"
    );
    let before = server.peak_rss();
    let response = raw_to(
        &server.base,
        &with_body(
            "POST",
            "/api/v1/sync/push",
            &admin,
            JSON,
            &bomb,
            &["Content-Encoding: gzip"],
        ),
    );
    // Refused before a byte is inflated (actix would inflate each received chunk whole, 64 KiB
    // into 64 MiB, before the body limit is checked).
    assert_error(&response, 415, "unsupported_media_type");
    let grown = server.peak_rss().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "the server's peak memory grew by {grown} bytes"
    );
    // Not even read as plain bytes: an encoding actix does not know it would take for plain.
    let unknown = raw_to(
        &server.base,
        &with_body(
            "POST",
            "/api/v1/sync/push",
            &admin,
            JSON,
            b"{\"mutations\":[]}",
            &["Content-Encoding: zstd"],
        ),
    );
    assert_error(&unknown, 415, "unsupported_media_type");
}

fn malformed_bodies_get_clear_errors(backend: Backend) {
    let (app, admin) = start(backend);
    let post = |path: &str, content_type: &str, body: &[u8]| {
        raw(
            &app,
            &with_body("POST", path, &admin, content_type, body, &[]),
        )
    };
    let push = "/api/v1/sync/push";
    // serde_json stops at 128 levels: no stack overflow, a 400.
    let nested = post(push, JSON, "[".repeat(100_000).as_bytes());
    assert_error(&nested, 400, "malformed_json");
    // Deep inside a free-form member (a mutation's fields), where any JSON value would do.
    let deep = format!(
        "{{\"mutations\":[{{\"fields\":{{\"note\":{}",
        "{\"a\":".repeat(50_000)
    );
    let nested = post(push, JSON, deep.as_bytes());
    assert_error(&nested, 400, "malformed_json");
    let invalid_utf8 = post(
        "/api/v1/units",
        JSON,
        b"{\"code\":\"99002\",\"name\":\"X\xff\xfe\",\"kind\":\"commune\"}",
    );
    assert_error(&invalid_utf8, 400, "malformed_json");
    // A number no float holds is not JSON serde can read; one an integer field cannot hold
    // is a field error.
    let material = |size: &str| {
        format!(
            "{{\"course_id\":\"01a2a2a2-0000-7000-8000-000000000000\",\"title\":\"t\",\"kind\":\"document\",\"file_name\":\"a.pdf\",\"size_bytes\":{size}}}"
        )
    };
    let out_of_range = post("/api/v1/materials", JSON, material("1e999").as_bytes());
    assert_error(&out_of_range, 400, "malformed_json");
    let too_big = post(
        "/api/v1/materials",
        JSON,
        material("99999999999999999999999999").as_bytes(),
    );
    assert_error(&too_big, 422, "validation_failed");
    let huge_limit = raw(
        &app,
        &head(
            "GET",
            "/api/v1/people?limit=99999999999999999999999",
            &admin,
            &[],
        ),
    );
    assert_error(&huge_limit, 400, "invalid_query");
    // A member named twice is ambiguous: refused, not "the last one wins".
    let duplicate = post(
        "/api/v1/units",
        JSON,
        b"{\"code\":\"99003\",\"code\":\"99004\",\"name\":\"X\",\"kind\":\"commune\"}",
    );
    assert_error(&duplicate, 400, "duplicate_key");
    let wrong_type = post("/api/v1/units", "text/plain", unit_body("X").as_bytes());
    assert_error(&wrong_type, 415, "unsupported_media_type");
    let form = post(
        "/api/v1/units",
        "application/x-www-form-urlencoded",
        b"code=99005&name=X&kind=commune",
    );
    assert_error(&form, 415, "unsupported_media_type");
    let units = app.get(&admin, "/api/v1/units?limit=500").expect(200);
    assert!(
        !units.text.contains("\"9900"),
        "no refused body created a unit"
    );
}

fn nul_characters_are_refused_on_every_path(backend: Backend) {
    let (app, admin) = start(backend);
    // In a query string: PostgreSQL cannot compare text holding NUL, which used to be a 500.
    for path in [
        "/api/v1/people?q=a%00b",
        "/api/v1/units?q=%00",
        "/api/v1/sync/pull?cursor=%00",
    ] {
        assert_error(
            &raw(&app, &head("GET", path, &admin, &[])),
            400,
            "invalid_query",
        );
    }
    // In a path: not an id, so no such record.
    let in_path = raw(&app, &head("GET", "/api/v1/people/a%00b", &admin, &[]));
    assert_error(&in_path, 404, "not_found");
    // In JSON text: refused as a control character, on both backends alike.
    let login = app.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "admin", "password": "diemdanh-admin", "device_name": "a\u{0}b"})),
    );
    assert_eq!(
        login.expect(422).json["details"][0]["code"],
        "invalid_characters"
    );
    let session = app.get_ok(&admin, "/api/v1/sessions?limit=1")["items"][0].clone();
    let person = app.get_ok(
        &admin,
        &format!(
            "/api/v1/enrollments?course_id={}&limit=1",
            session["course_id"].as_str().unwrap()
        ),
    )["items"][0]["person_id"]
        .clone();
    let fields = json!({"session_id": session["id"], "person_id": person, "status": "present", "note": "a\u{0}b"});
    let mutation = json!({
        "mutation_id": uuid::Uuid::new_v4().to_string(),
        "collection": "attendance",
        "record_id": uuid::Uuid::new_v4().to_string(),
        "op": "upsert",
        "fields": fields,
        "hlc": format!("{:013}-0000-device", chrono::Utc::now().timestamp_millis()),
    });
    let pushed = app
        .post(
            &admin,
            "/api/v1/sync/push",
            &json!({ "mutations": [mutation] }),
        )
        .expect(200);
    assert_eq!(pushed.json["results"][0]["status"], "rejected");
    let record = json!({"session_id": session["id"], "person_id": person, "status": "late", "note": "x\u{0}"});
    let created = app.post(&admin, "/api/v1/attendance", &record);
    assert_eq!(
        created.expect(422).json["details"][0]["code"],
        "invalid_characters"
    );
    // In a roster file: the row is refused, nothing is written.
    let csv = "Họ và tên,Chức vụ,Đơn vị\nLò\0 Văn Nul,Bí thư,23590\n";
    let import = app.import_csv(&admin, "?dry_run=false", csv.as_bytes());
    assert_eq!(
        import.expect(422).json["details"][0]["code"],
        "invalid_characters"
    );
}

fn oversized_headers_are_refused(backend: Backend) {
    let (app, admin) = start(backend);
    // actix answers these itself, before any middleware: a bare 431, never a 500.
    let long = format!("X-Long: {}", "a".repeat(1 << 20));
    assert_eq!(
        raw(&app, &head("GET", "/api/v1/me", &admin, &[long])).status,
        431
    );
    let many: Vec<String> = (0..200).map(|i| format!("X-Header-{i}: v")).collect();
    assert_eq!(
        raw(&app, &head("GET", "/api/v1/me", &admin, &many)).status,
        431
    );
    // The server is still there.
    app.get(&admin, "/api/v1/me").expect(200);
}

fn a_push_of_100000_tiny_mutations_is_refused_whole(backend: Backend) {
    let (app, admin) = start(backend);
    let mutations: Vec<Value> = (0..100_000).map(|_| json!({})).collect();
    let body = json!({ "mutations": mutations }).to_string();
    assert!(body.len() < 1 << 20, "under the byte limit");
    let response = raw(
        &app,
        &with_body(
            "POST",
            "/api/v1/sync/push",
            &admin,
            JSON,
            body.as_bytes(),
            &[],
        ),
    );
    assert_error(&response, 422, "validation_failed");
    assert_eq!(response.json()["details"][0]["code"], "too_many_mutations");
}

fn security_headers_on_every_response(backend: Backend) {
    let (app, admin) = start(backend);
    let get = |path: &str, token: &str| raw(&app, &head("GET", path, token, &[]));
    let me = get("/api/v1/me", &admin);
    assert_eq!(me.status, 200);
    assert_security_headers(&me);
    assert_eq!(me.header("cache-control"), Some("no-store"));
    let health = get("/healthz", "");
    assert_eq!(health.status, 200);
    assert_security_headers(&health);
    assert_error(&get("/nope", &admin), 404, "not_found");
    let refused = get("/api/v1/me", "not-a-token");
    assert_error(&refused, 401, "invalid_token");
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert!(refused.header("x-request-id").is_some());
    assert_error(
        &raw(&app, &head("PATCH", "/api/v1/me", &admin, &[])),
        405,
        "method_not_allowed",
    );
    let big = unit_body(&"a".repeat(2 << 20));
    assert_error(
        &raw(
            &app,
            &with_body("POST", "/api/v1/units", &admin, JSON, big.as_bytes(), &[]),
        ),
        413,
        "payload_too_large",
    );
    // Material content: devices revalidate their copy by ETag, so it is `private, no-cache`
    // (no shared cache keeps a course's files) rather than `no-store`.
    let course = app.get_ok(&admin, "/api/v1/courses?limit=1")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let material = app
        .fetch(
            "POST",
            &format!("/api/v1/courses/{course}/materials?file_name=a.pdf"),
            Some(&admin),
            Some((b"%PDF-1.4 headers", "application/pdf")),
            &[],
        )
        .expect(201)
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let content = get(&format!("/api/v1/materials/{material}/content"), &admin);
    assert_eq!(content.status, 200);
    assert_security_headers(&content);
    assert_eq!(content.header("cache-control"), Some("private, no-cache"));
    assert!(content.header("etag").is_some());
}

fn huge_numbers_are_refused_and_change_nothing(backend: Backend) {
    let (app, admin) = start(backend);
    let course = app.get_ok(&admin, "/api/v1/courses?limit=1")["items"][0].clone();
    let course_id = course["id"].as_str().unwrap().to_owned();
    let material = app.create(&admin, "/api/v1/materials", json!({"course_id": course_id, "title": "t", "kind": "document", "file_name": "a.pdf", "size_bytes": 10}));
    let material_path = format!("/api/v1/materials/{}", material["id"].as_str().unwrap());
    let counts = |app: &TestApp| {
        ["materials", "attendance", "sessions", "people"].map(|collection| {
            app.get_ok(&admin, &format!("/api/v1/{collection}?limit=1"))["total"].clone()
        })
    };
    let before = counts(&app);
    let post = |path: &str, body: &str| {
        raw(
            &app,
            &with_body("POST", path, &admin, JSON, body.as_bytes(), &[]),
        )
    };
    let material_body = |size: &str| {
        format!(
            "{{\"course_id\":\"{course_id}\",\"title\":\"t\",\"kind\":\"document\",\"file_name\":\"b.pdf\",\"size_bytes\":{size}}}"
        )
    };
    // Past f64: not a number serde can read at all.
    for huge in ["1e400", "-1e400", "1E999999"] {
        assert_error(
            &post("/api/v1/materials", &material_body(huge)),
            400,
            "malformed_json",
        );
    }
    // A number, but not one the field (an i64) holds: a field error.
    for huge in [
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1e300",
        "0.5",
    ] {
        assert_error(
            &post("/api/v1/materials", &material_body(huge)),
            422,
            "validation_failed",
        );
    }
    let replace = |size: &str| {
        let body = format!(
            "{{\"course_id\":\"{course_id}\",\"title\":\"t2\",\"kind\":\"document\",\"file_name\":\"a.pdf\",\"size_bytes\":{size}}}"
        );
        raw(
            &app,
            &with_body("PUT", &material_path, &admin, JSON, body.as_bytes(), &[]),
        )
    };
    assert_error(&replace("1e400"), 400, "malformed_json");
    assert_error(&replace("99999999999999999999"), 422, "validation_failed");
    // In a push, where fields are free-form JSON: unreadable past f64, refused where a field
    // wants text or a time.
    let session = app.get_ok(
        &admin,
        &format!("/api/v1/sessions?course_id={course_id}&limit=1"),
    )["items"][0]["id"]
        .clone();
    let person = app.get_ok(
        &admin,
        &format!("/api/v1/enrollments?course_id={course_id}&limit=1"),
    )["items"][0]["person_id"]
        .clone();
    let stamped_push = |millis: &str, field: &str, value: &str| {
        format!(
            "{{\"mutations\":[{{\"mutation_id\":\"{}\",\"collection\":\"attendance\",\"record_id\":\"{}\",\"op\":\"upsert\",\"hlc\":\"{millis}-0000-device\",\"fields\":{{\"session_id\":{session},\"person_id\":{person},\"status\":\"present\",\"{field}\":{value}}}}}]}}",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        )
    };
    let push_body = |field: &str, value: &str| {
        let now = format!("{:013}", chrono::Utc::now().timestamp_millis());
        stamped_push(&now, field, value)
    };
    assert_error(
        &post("/api/v1/sync/push", &push_body("note", "1e400")),
        400,
        "malformed_json",
    );
    for (field, number) in [
        ("note", "18446744073709551616"),
        ("checked_in_at", "99999999999999999999999"),
        ("checked_in_at", "-9223372036854775809"),
        ("status", "1e308"),
    ] {
        let pushed = post("/api/v1/sync/push", &push_body(field, number));
        assert_eq!(pushed.status, 200, "{field}: {number}");
        let result = &pushed.json()["results"][0];
        assert_eq!(result["status"], "rejected", "{field}: {number}: {result}");
    }
    // The hybrid clock of a mutation is text; a numeric-looking one past i64 is refused.
    let past_i64 = stamped_push("99999999999999999999", "note", "\"x\"");
    let pushed = post("/api/v1/sync/push", &past_i64);
    assert_eq!(
        pushed.status,
        200,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    let result = &pushed.json()["results"][0];
    assert_eq!(
        (&result["status"], &result["reason"]),
        (&json!("rejected"), &json!("invalid_hlc")),
        "an hlc past i64: {result}"
    );
    // WatermelonDB pushes: the same rule.
    let watermelon = format!(
        "{{\"changes\":{{\"attendance\":{{\"created\":[{{\"id\":\"{}\",\"session_id\":{session},\"person_id\":{person},\"status\":\"present\",\"checked_in_at\":1e400}}],\"updated\":[],\"deleted\":[]}}}}}}",
        uuid::Uuid::new_v4()
    );
    assert_error(
        &post("/api/v1/watermelon/sync?last_pulled_at=null", &watermelon),
        400,
        "malformed_json",
    );
    // In query strings: no integer parameter takes a number past i64, and no rate is infinite.
    let get = |path: &str| raw(&app, &head("GET", path, &admin, &[]));
    for path in [
        "/api/v1/people?limit=9223372036854775808",
        "/api/v1/people?offset=-9223372036854775809",
        "/api/v1/people?limit=1e400",
        "/api/v1/sync/pull?limit=18446744073709551616",
    ] {
        assert_error(&get(path), 400, "invalid_query");
    }
    let far_future = get("/api/v1/watermelon/sync?last_pulled_at=99999999999999999999");
    assert_error(&far_future, 400, "invalid_last_pulled_at");
    for rate in ["1e400", "NaN", "inf", "-1e400"] {
        let report = get(&format!(
            "/api/v1/reports/courses/{course_id}?min_rate={rate}"
        ));
        assert_error(&report, 422, "validation_failed");
        assert_eq!(
            report.json()["details"][0]["code"],
            "out_of_range",
            "{rate}"
        );
    }
    // In a header: an If-Match revision past i64 matches nothing.
    let stale = raw(
        &app,
        &with_body(
            "PUT",
            &material_path,
            &admin,
            JSON,
            material_body("10").as_bytes(),
            &["If-Match: \"99999999999999999999\""],
        ),
    );
    assert_error(&stale, 412, "precondition_failed");
    assert_eq!(counts(&app), before, "no refused request changed anything");
    let unchanged = app.get_ok(&admin, &material_path);
    assert_eq!(unchanged, material);
}

fn every_json_route_refuses_other_content_types(backend: Backend) {
    let (app, admin) = start(backend);
    let operations = Spec::get().json_body_operations();
    assert!(
        operations.len() >= 25,
        "the spec lists {} JSON-body operations",
        operations.len()
    );
    let units_before = app.get_ok(&admin, "/api/v1/units?limit=1")["total"].clone();
    let body = unit_body("Loại sai");
    for (method, template) in &operations {
        let path = template.replace("{id}", &uuid::Uuid::new_v4().to_string());
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            let response = raw(
                &app,
                &with_body(method, &path, &admin, content_type, body.as_bytes(), &[]),
            );
            assert_eq!(
                response.status,
                415,
                "{method} {template} as {content_type}: {}",
                String::from_utf8_lossy(&response.body)
            );
            assert_error(&response, 415, "unsupported_media_type");
        }
        // No Content-Type at all is not JSON either.
        let mut untyped = head(
            method,
            &path,
            &admin,
            &[format!("Content-Length: {}", body.len())],
        );
        untyped.extend_from_slice(body.as_bytes());
        let response = raw(&app, &untyped);
        assert_eq!(
            response.status,
            415,
            "{method} {template} without a type: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_error(&response, 415, "unsupported_media_type");
    }
    let units = app.get(&admin, "/api/v1/units?limit=1").expect(200);
    assert_eq!(units.json["total"], units_before, "nothing was created");
    // JSON with its charset is JSON.
    let typed = raw(
        &app,
        &with_body(
            "POST",
            "/api/v1/units",
            &admin,
            "application/json; charset=utf-8",
            body.as_bytes(),
            &[],
        ),
    );
    assert_eq!(
        typed.status,
        201,
        "{}",
        String::from_utf8_lossy(&typed.body)
    );
}

fn login_guessing_is_limited_per_account_and_per_address(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.login_max_failures = 3;
        c.login_max_failures_per_ip = 5;
        c.trust_proxy = true;
    });
    app.create_user("hoa.guess", "trainer", None);
    app.create_user("tuan.guess", "trainer", None);
    app.create_user("lan.guess", "trainer", None);
    let login = |username: &str, password: &str, address: &str| {
        let body =
            json!({"username": username, "password": password, "device_name": "phone"}).to_string();
        raw(
            &app,
            &with_body(
                "POST",
                "/api/v1/auth/login",
                "",
                JSON,
                body.as_bytes(),
                &[&format!("X-Forwarded-For: {address}")],
            ),
        )
    };
    #[track_caller]
    fn limited(response: &Raw) {
        assert_error(response, 429, "rate_limited");
        let retry_after: u64 = response
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!(
            (1..=900).contains(&retry_after),
            "Retry-After {retry_after}"
        );
    }
    // Per account: three wrong guesses from three addresses lock the account everywhere,
    // even for the right password.
    for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert_error(
            &login("hoa.guess", "wrong-password", address),
            401,
            "invalid_credentials",
        );
    }
    limited(&login("hoa.guess", "trainer-password", "10.0.0.4"));
    limited(&login("HOA.GUESS", "trainer-password", "10.0.0.5"));
    // Per address: five wrong guesses over five accounts, real or not, lock the address for
    // every account, without locking those accounts elsewhere.
    let guesser = "10.9.9.9";
    for username in [
        "tuan.guess",
        "nobody.1",
        "nobody.2",
        "nobody.3",
        "lan.guess",
    ] {
        assert_error(
            &login(username, "wrong-password", guesser),
            401,
            "invalid_credentials",
        );
    }
    limited(&login("tuan.guess", "trainer-password", guesser));
    limited(&login("nobody.4", "whatever", guesser));
    assert_eq!(
        login("tuan.guess", "trainer-password", "10.8.8.8").status,
        200
    );
    assert_eq!(
        login("lan.guess", "trainer-password", "10.8.8.8").status,
        200
    );
    // A refused login signed no device in.
    let admin = app.admin_token();
    let devices = |username: &str| {
        let id = {
            let mut conn = app.pool.get().unwrap();
            diemdanh::domain::users::Users::find_by_username(&mut conn, username)
                .unwrap()
                .expect("the account")
                .id
        };
        app.get_ok(&admin, &format!("/api/v1/devices?user_id={id}"))["total"].clone()
    };
    assert_eq!(devices("hoa.guess"), 0);
    assert_eq!(devices("tuan.guess"), 1);
}
