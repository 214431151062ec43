//! Material files: upload streamed to the store, resumable ranged downloads, who may fetch what,
//! content-addressed dedupe, new versions and tombstones in the feed, refused and interrupted
//! uploads leaving nothing behind — on local storage and on S3 (moto), on both databases.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::cli::diemdanh;
use crate::support::sync::OnTheDemo;
use crate::support::{Backend, TestApp, files_under, id_of, item_where};
use diemdanh::config::StoreConfig;

backend_tests!(
    files_download_whole_and_in_ranges,
    a_cut_download_resumes_where_it_stopped,
    only_the_course_people_may_fetch_a_file,
    identical_content_is_stored_once,
    replaced_content_is_a_new_version_and_deletion_a_tombstone,
    an_interrupted_upload_leaves_nothing,
    oversized_uploads_are_refused_and_leave_nothing,
    the_command_line_adds_files,
    unused_files_are_collected_from_the_command_line,
    s3_storage_serves_the_same,
    file_names_that_mislead_are_refused_and_long_ones_get_a_title_that_fits,
);

const PDF: &str = "application/pdf";

/// Deterministic bytes that do not compress to nothing.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `query` is already percent-encoded.
#[track_caller]
fn upload(app: &TestApp, token: &str, course: &str, query: &str, bytes: &[u8]) -> Value {
    app.send_file(
        token,
        "POST",
        &format!("/api/v1/courses/{course}/materials?{query}"),
        (bytes, PDF),
    )
    .expect(201)
    .json
}

fn new_course(app: &TestApp, admin: &str, code: &str) -> String {
    let body = json!({
        "code": code,
        "title": format!("Lớp {code}"),
        "management_level": "province",
        "start_date": "2026-12-01",
        "end_date": "2026-12-03",
    });
    id_of(&app.create(admin, "/api/v1/courses", body.clone()))
}

fn store_dir(app: &TestApp) -> PathBuf {
    app.storage.data_dir.join("materials")
}

fn material_count(app: &TestApp, admin: &str) -> i64 {
    app.get_ok(admin, "/api/v1/materials")["total"]
        .as_i64()
        .unwrap()
}

/// Waits (a little) for background clean-up to leave the store with exactly `expected` files.
#[track_caller]
fn assert_store_settles(app: &TestApp, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let files = files_under(&store_dir(app));
        if files.len() == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {expected} stored files, found {files:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    let stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads a response's status line and headers from a raw socket; returns the status, the
/// header block and whatever body bytes came with it.
fn read_head(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            return (status, head, received[end + 4..].to_vec());
        }
        let read = stream.read(&mut buffer).expect("read response");
        assert!(read > 0, "connection closed before the response head");
        received.extend_from_slice(&buffer[..read]);
    }
}

fn files_download_whole_and_in_ranges(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-01");
    let bytes = content(300_000, 1);
    let material = upload(
        &app,
        &admin,
        &course,
        "file_name=B%C3%A0i%20gi%E1%BA%A3ng%20%C4%91%E1%BA%A7u.pdf&title=B%C3%A0i%201",
        &bytes,
    );
    assert_eq!(material["sha256"], sha256(&bytes));
    assert_eq!(material["size_bytes"], 300_000);
    assert_eq!(material["version"], 1);
    assert_eq!(material["kind"], "pdf", "the kind follows the file");
    assert_eq!(material["title"], "Bài 1");
    assert_eq!(material["file_name"], "Bài giảng đầu.pdf");
    let path = format!(
        "/api/v1/materials/{}/content",
        material["id"].as_str().unwrap()
    );
    let size = bytes.len();

    // Whole, never compressed even when the client would accept it.
    let whole = app
        .get_file_with(&admin, &path, &[("Accept-Encoding", "gzip, br")])
        .expect(200);
    assert_eq!(whole.body, bytes);
    let tag = format!("\"{}\"", sha256(&bytes));
    assert_eq!(whole.header("etag"), Some(tag.as_str()));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("content-length"), Some("300000"));
    assert_eq!(whole.header("content-type"), Some(PDF));
    assert_eq!(whole.header("content-encoding"), None);
    assert_eq!(
        whole.header("content-disposition"),
        Some(
            "attachment; filename=\"Bai giang dau.pdf\"; \
             filename*=UTF-8''B%C3%A0i%20gi%E1%BA%A3ng%20%C4%91%E1%BA%A7u.pdf"
        )
    );
    // JSON, by contrast, is compressed for a client that accepts it.
    let json = app.get_file_with(&admin, "/api/v1/materials", &[("Accept-Encoding", "gzip")]);
    assert_eq!(json.header("content-encoding"), Some("gzip"));
    assert_eq!(json.json["total"], 1);

    let range = |spec: &str| {
        app.get_file_with(
            &admin,
            &path,
            &[("Range", spec), ("Accept-Encoding", "gzip")],
        )
    };
    let first = range("bytes=0-0").expect(206);
    assert_eq!(first.body, &bytes[..1]);
    assert_eq!(first.header("content-range"), Some("bytes 0-0/300000"));
    assert_eq!(first.header("content-length"), Some("1"));
    assert_eq!(first.header("content-encoding"), None);
    let last = range("bytes=299999-299999").expect(206);
    assert_eq!(last.body, &bytes[size - 1..]);
    assert_eq!(
        last.header("content-range"),
        Some("bytes 299999-299999/300000")
    );
    let suffix = range("bytes=-1000").expect(206);
    assert_eq!(suffix.body, &bytes[size - 1000..]);
    assert_eq!(
        suffix.header("content-range"),
        Some("bytes 299000-299999/300000")
    );
    let open = range("bytes=123456-").expect(206);
    assert_eq!(open.body, &bytes[123_456..]);
    let middle = range("bytes=1000-1999").expect(206);
    assert_eq!(middle.body, &bytes[1000..2000]);
    let overlong = range("bytes=299000-999999").expect(206);
    assert_eq!(overlong.body, &bytes[299_000..]);
    for unsatisfiable in ["bytes=300000-", "bytes=300000-300010", "bytes=-0"] {
        let refused = range(unsatisfiable).expect(416);
        assert_eq!(refused.header("content-range"), Some("bytes */300000"));
        assert_eq!(refused.json["code"], "range_not_satisfiable");
    }
    // Several ranges are not served: the whole file instead.
    assert_eq!(range("bytes=0-1,5-6").expect(200).body, bytes);

    // ETag and If-None-Match.
    let cached = app
        .get_file_with(&admin, &path, &[("If-None-Match", &tag)])
        .expect(304);
    assert_eq!(cached.header("etag"), Some(tag.as_str()));
    assert!(cached.body.is_empty());
    app.get_file_with(&admin, &path, &[("If-None-Match", "\"other\"")])
        .expect(200);
    // If-Range: the current tag lets the range through, anything else gets the whole file.
    let resumed = app
        .resume_file(&admin, &path, "bytes=100-", &tag)
        .expect(206);
    assert_eq!(resumed.body, &bytes[100..]);
    let changed = app
        .resume_file(&admin, &path, "bytes=100-", "\"stale\"")
        .expect(200);
    assert_eq!(changed.body, bytes);

    // HEAD: the headers without the body.
    let head = app
        .fetch("HEAD", &path, Some(&admin), None, &[])
        .expect(200);
    assert_eq!(head.header("content-length"), Some("300000"));
    assert!(head.body.is_empty());
    let head = app
        .fetch("HEAD", &path, Some(&admin), None, &[("Range", "bytes=-10")])
        .expect(206);
    assert_eq!(head.header("content-length"), Some("10"));

    // Refusals before any byte is stored.
    let empty = app
        .send_file(
            &admin,
            "POST",
            &format!("/api/v1/courses/{course}/materials?file_name=x.pdf"),
            (b"", PDF),
        )
        .expect(422);
    assert_eq!(empty.json["details"][0]["code"], "empty_file");
    let missing = app
        .send_file(
            &admin,
            "POST",
            "/api/v1/courses/0196f4e2-0000-7000-8000-000000000000/materials?file_name=x.pdf",
            (b"abc", PDF),
        )
        .expect(404);
    assert_eq!(missing.json["code"], "not_found");
    let bad_name = app
        .send_file(
            &admin,
            "POST",
            &format!("/api/v1/courses/{course}/materials?file_name=..%2Fetc%2Fpasswd"),
            (b"abc", PDF),
        )
        .expect(422);
    assert_eq!(bad_name.json["details"][0]["field"], "file_name");
    app.send_file(
        &admin,
        "POST",
        &format!("/api/v1/courses/{course}/materials?title=no-file-name"),
        (b"abc", PDF),
    )
    .expect(400);
    assert_eq!(material_count(&app, &admin), 1);
    assert_store_settles(&app, 1);
}

fn a_cut_download_resumes_where_it_stopped(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-02");
    let bytes = content(3 * 1024 * 1024 + 17, 2);
    let material = upload(&app, &admin, &course, "file_name=video.mp4", &bytes);
    let path = format!(
        "/api/v1/materials/{}/content",
        material["id"].as_str().unwrap()
    );

    // A phone on a dropping link: the connection dies after some of the body.
    let mut stream = connect(&app);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\r\n"
    )
    .unwrap();
    let (status, head, mut received) = read_head(&mut stream);
    assert_eq!(status, 200, "{head}");
    let tag = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .expect("etag")
        .to_owned();
    let mut buffer = [0u8; 16 * 1024];
    while received.len() < 700_001 {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0);
        received.extend_from_slice(&buffer[..read]);
    }
    received.truncate(700_001);
    drop(stream);

    // Resumed in two more pieces, each from where the last one stopped.
    let mut have = received;
    for end in [Some(2_000_000), None] {
        let spec = match end {
            Some(end) => format!("bytes={}-{end}", have.len()),
            None => format!("bytes={}-", have.len()),
        };
        let piece = app.resume_file(&admin, &path, &spec, &tag).expect(206);
        have.extend_from_slice(&piece.body);
    }
    assert_eq!(have.len(), bytes.len());
    assert_eq!(sha256(&have), material["sha256"].as_str().unwrap());
}

fn only_the_course_people_may_fetch_a_file(OnTheDemo { app, demo }: OnTheDemo) {
    let admin = &demo.admin;
    let both = app.demo_token("hoa.nguyen");
    let one = app.demo_token("tuan.le");
    let trainee = app.demo_token("hocvien.demo");
    app.create_user("lone.trainer", "trainer", None);
    let lone = app.token("lone.trainer", "trainer-password");

    let courses = app.get_ok(&one, "/api/v1/courses");
    assert_eq!(courses["total"], 1);
    let big = courses["items"][0]["id"].as_str().unwrap().to_owned();
    // The one-day class hoa.nguyen teaches with the big one (not the ward's, which no trainer
    // teaches).
    let small = &demo.skills_course;
    let trainee_courses = app.get_ok(&trainee, "/api/v1/courses");
    assert_eq!(trainee_courses["total"], 1);
    assert_eq!(trainee_courses["items"][0]["id"], big.as_str());

    // Only administrators upload.
    let refused = app
        .send_file(
            &both,
            "POST",
            &format!("/api/v1/courses/{big}/materials?file_name=a.pdf"),
            (b"%PDF", PDF),
        )
        .expect(403);
    assert_eq!(refused.json["code"], "forbidden");

    let in_big = upload(&app, admin, &big, "file_name=big.pdf", &content(10_000, 3));
    let in_small = upload(
        &app,
        admin,
        small,
        "file_name=small.pdf",
        &content(20_000, 4),
    );
    let path = |m: &Value| format!("/api/v1/materials/{}/content", m["id"].as_str().unwrap());
    let matrix = [
        ("admin", admin, 200, 200),
        ("trainer of both", &both, 200, 200),
        ("trainer of the big class", &one, 200, 404),
        ("trainer of neither", &lone, 404, 404),
        ("trainee of the big class", &trainee, 200, 404),
    ];
    for (who, token, big_status, small_status) in matrix {
        for (material, expected) in [(&in_big, big_status), (&in_small, small_status)] {
            for method in ["GET", "HEAD"] {
                let got = app.fetch(method, &path(material), Some(token), None, &[]);
                assert_eq!(got.status, expected, "{who}: {method} {}", path(material));
                if expected == 404 && method == "GET" {
                    assert_eq!(got.json["code"], "not_found");
                }
            }
        }
    }
    app.get_file(admin, "/api/v1/materials/not-a-uuid/content")
        .expect(404);
    app.fetch("GET", &path(&in_big), None, None, &[])
        .expect(401);

    // What each device should hold, with the total size.
    let held = |token: &str| app.get_ok(token, "/api/v1/me/materials");
    let mine = held(&trainee);
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["total_bytes"], 10_000);
    assert_eq!(mine["items"][0]["id"], in_big["id"]);
    assert_eq!(mine["items"][0]["content_url"], path(&in_big).as_str());
    assert_eq!(mine["items"][0]["sha256"], in_big["sha256"]);
    assert_eq!(held(&one)["count"], 1);
    assert_eq!(held(&lone)["count"], 0);
    assert_eq!(held(&lone)["total_bytes"], 0);
    // The demo's catalogue records have no stored file, so they are not listed.
    let everything = held(admin);
    assert_eq!(everything["count"], 2);
    assert_eq!(everything["total_bytes"], 30_000);
}

fn identical_content_is_stored_once(app: TestApp) {
    let admin = app.admin_token();
    let first_course = new_course(&app, &admin, "TL-03");
    let second_course = new_course(&app, &admin, "TL-04");
    let bytes = content(50_000, 5);
    let first = upload(&app, &admin, &first_course, "file_name=a.pdf", &bytes);
    let second = upload(&app, &admin, &second_course, "file_name=b.pdf", &bytes);
    assert_ne!(first["id"], second["id"]);
    assert_eq!(first["sha256"], second["sha256"]);
    let other = upload(
        &app,
        &admin,
        &first_course,
        "file_name=c.pdf",
        &content(50_000, 6),
    );
    assert_ne!(other["sha256"], first["sha256"]);
    let files = files_under(&store_dir(&app));
    assert_eq!(files.len(), 2, "one file per distinct content: {files:?}");
    let hash = first["sha256"].as_str().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with(&format!("sha256/{}/{}/{hash}", &hash[..2], &hash[2..4]))),
        "{files:?}"
    );
    for material in [&first, &second] {
        let path = format!(
            "/api/v1/materials/{}/content",
            material["id"].as_str().unwrap()
        );
        assert_eq!(app.get_file(&admin, &path).expect(200).body, bytes);
    }
}

fn replaced_content_is_a_new_version_and_deletion_a_tombstone(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-05");
    let old_bytes = content(40_000, 7);
    let material = upload(&app, &admin, &course, "file_name=slides.pptx", &old_bytes);
    assert_eq!(material["kind"], "slides");
    let id = material["id"].as_str().unwrap().to_owned();
    let content_path = format!("/api/v1/materials/{id}/content");
    let (cursor, _) = app.pull_all(&admin, None, 500);

    // A stale If-Match is refused before the body is stored.
    let stale = app
        .fetch(
            "PUT",
            &content_path,
            Some(&admin),
            Some((b"new", PDF)),
            &[("If-Match", "\"1\"")],
        )
        .expect(412);
    assert_eq!(stale.json["code"], "precondition_failed");

    let new_bytes = content(45_000, 8);
    let etag = format!("\"{}\"", material["rev"]);
    let replaced = app
        .fetch(
            "PUT",
            &format!("{content_path}?file_name=slides-v2.pptx"),
            Some(&admin),
            Some((
                &new_bytes,
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            )),
            &[("If-Match", &etag)],
        )
        .expect(200)
        .json;
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["sha256"], sha256(&new_bytes));
    assert_eq!(replaced["size_bytes"], 45_000);
    assert_eq!(replaced["file_name"], "slides-v2.pptx");
    assert_eq!(replaced["title"], material["title"]);

    let (cursor, changes) = app.pull_all(&admin, Some(&cursor), 500);
    let change = changes
        .iter()
        .find(|c| c["collection"] == "materials" && c["id"] == id.as_str())
        .expect("the new version is in the feed");
    assert_eq!(change["data"]["version"], 2);
    assert_eq!(change["data"]["sha256"], sha256(&new_bytes));

    // A device resuming the old version gets the whole new file instead of a mix.
    let old_tag = format!("\"{}\"", sha256(&old_bytes));
    let fresh = app
        .resume_file(&admin, &content_path, "bytes=1000-", &old_tag)
        .expect(200);
    assert_eq!(fresh.body, new_bytes);
    // The old content stays for devices that have not synced yet.
    assert_eq!(files_under(&store_dir(&app)).len(), 2);

    // Editing the record's title keeps its file.
    let edited = app
        .put(
            &admin,
            &format!("/api/v1/materials/{id}"),
            &json!({"course_id": course, "title": "Slide mới", "kind": "slides"}),
        )
        .expect(200)
        .json;
    assert_eq!(edited["sha256"], replaced["sha256"]);
    assert_eq!(edited["version"], 2);

    app.delete(&admin, &format!("/api/v1/materials/{id}"))
        .expect(204);
    let (_, changes) = app.pull_all(&admin, Some(&cursor), 500);
    let tombstone = changes
        .iter()
        .find(|c| c["collection"] == "materials" && c["id"] == id.as_str())
        .expect("the deletion is in the feed");
    assert_eq!(tombstone["deleted"], true);
    app.get_file(&admin, &content_path).expect(404);
    let held = app.get_ok(&admin, "/api/v1/me/materials");
    assert_eq!(held["count"], 0);
}

fn an_interrupted_upload_leaves_nothing(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-06");
    let bytes = content(8 * 1024 * 1024, 9);
    for announced in [true, false] {
        let mut stream = connect(&app);
        let framing = if announced {
            format!("Content-Length: {}", bytes.len())
        } else {
            "Transfer-Encoding: chunked".to_owned()
        };
        write!(
            stream,
            "POST /api/v1/courses/{course}/materials?file_name=cut.mp4 HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {admin}\r\nContent-Type: video/mp4\r\n{framing}\r\n\r\n"
        )
        .unwrap();
        // More than one upload part (5 MiB), so that a part reached the store.
        let sent = &bytes[..6 * 1024 * 1024];
        if announced {
            stream.write_all(sent).unwrap();
        } else {
            write!(stream, "{:x}\r\n", sent.len()).unwrap();
            stream.write_all(sent).unwrap();
            stream.write_all(b"\r\n").unwrap();
        }
        stream.flush().unwrap();
        // The upload really is under way: its temporary object is in the store.
        let deadline = Instant::now() + Duration::from_secs(10);
        while files_under(&store_dir(&app)).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the upload never reached the store"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stream);
    }
    // The server notices the closed connection and aborts both uploads.
    assert_store_settles(&app, 0);
    assert_eq!(material_count(&app, &admin), 0);
    // The server is fine afterwards.
    upload(&app, &admin, &course, "file_name=ok.pdf", &bytes[..1000]);
    assert_store_settles(&app, 1);
}

fn oversized_uploads_are_refused_and_leave_nothing(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.max_material_bytes = 64 * 1024);
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-07");
    let bytes = content(200 * 1024, 10);

    // Announced: refused before a byte of the body is read.
    let mut stream = connect(&app);
    write!(
        stream,
        "POST /api/v1/courses/{course}/materials?file_name=big.mp4 HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {admin}\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    let (status, head, _) = read_head(&mut stream);
    assert_eq!(status, 413, "{head}");
    drop(stream);

    // Not announced: cut off as soon as the limit is passed (the client is still sending).
    let mut stream = connect(&app);
    write!(
        stream,
        "POST /api/v1/courses/{course}/materials?file_name=big.mp4 HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {admin}\r\nContent-Type: video/mp4\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let over = &bytes[..64 * 1024 + 1];
    for piece in over.chunks(16 * 1024) {
        write!(stream, "{:x}\r\n", piece.len()).unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.flush().unwrap();
    let (status, head, body) = read_head(&mut stream);
    assert_eq!(status, 413, "{head}");
    assert!(
        String::from_utf8_lossy(&body).contains("payload_too_large") || body.is_empty(),
        "{head}"
    );
    drop(stream);

    // Exactly at the limit is fine.
    let at_limit = upload(
        &app,
        &admin,
        &course,
        "file_name=fits.mp4",
        &bytes[..64 * 1024],
    );
    assert_eq!(at_limit["size_bytes"], 64 * 1024);
    assert_eq!(material_count(&app, &admin), 1);
    assert_store_settles(&app, 1);
}

fn the_command_line_adds_files(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-08");
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("Tài liệu học tập.pdf");
    let video = dir.path().join("Video bài 2.mp4");
    let video_bytes = content(9 * 1024 * 1024, 11);
    std::fs::write(&pdf, content(5000, 12)).unwrap();
    std::fs::write(&video, &video_bytes).unwrap();

    let (ok, out, err) = diemdanh(
        &app,
        &[
            "materials",
            "add",
            "--course",
            &course,
            pdf.to_str().unwrap(),
            video.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("added ")).count(), 2);
    // The large file reports its progress (a line per tenth when stderr is not a terminal).
    assert!(
        err.contains("Video bài 2.mp4") && err.contains("(100%)"),
        "{err}"
    );

    let held = app.get_ok(&admin, "/api/v1/me/materials");
    assert_eq!(held["count"], 2);
    let video_item = item_where(&held, "title", "Video bài 2");
    assert_eq!(video_item["kind"], "video");
    assert_eq!(video_item["content_type"], "video/mp4");
    let got = app
        .get_file(&admin, video_item["content_url"].as_str().unwrap())
        .expect(200);
    assert_eq!(sha256(&got.body), sha256(&video_bytes));

    let (ok, _, err) = diemdanh(
        &app,
        &[
            "materials",
            "add",
            "--course",
            "0196f4e2-0000-7000-8000-000000000000",
            pdf.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok && err.contains("course"), "{err}");
    assert_eq!(files_under(&store_dir(&app)).len(), 2);
}

fn unused_files_are_collected_from_the_command_line(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-09");
    let deleted = upload(&app, &admin, &course, "file_name=a.pdf", &content(1000, 14));
    let replaced = upload(&app, &admin, &course, "file_name=b.pdf", &content(2000, 15));
    let kept_bytes = content(3000, 16);
    let kept = upload(&app, &admin, &course, "file_name=c.pdf", &kept_bytes);
    // The same content as `kept`, in a material that goes away: the content stays in use.
    let twin = upload(&app, &admin, &course, "file_name=d.pdf", &kept_bytes);
    let content_path =
        |m: &Value| format!("/api/v1/materials/{}/content", m["id"].as_str().unwrap());
    app.send_file(
        &admin,
        "PUT",
        &content_path(&replaced),
        (&content(2500, 17), PDF),
    )
    .expect(200);
    for gone in [&deleted, &twin] {
        app.delete(
            &admin,
            &format!("/api/v1/materials/{}", gone["id"].as_str().unwrap()),
        )
        .expect(204);
    }
    assert_eq!(files_under(&store_dir(&app)).len(), 4);

    let (ok, out, err) = diemdanh(&app, &["materials", "gc"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("deleted 0 unused files") && out.contains("2 newer than"),
        "{out}"
    );
    let (ok, out, err) = diemdanh(
        &app,
        &["materials", "gc", "--min-age-hours", "0", "--dry-run"],
        None,
    );
    assert!(
        ok && out.starts_with("would delete 2 unused files (3000 bytes)"),
        "{out}{err}"
    );
    assert_eq!(files_under(&store_dir(&app)).len(), 4);
    let (ok, out, err) = diemdanh(&app, &["materials", "gc", "--min-age-hours", "0"], None);
    assert!(
        ok && out.starts_with("deleted 2 unused files"),
        "{out}{err}"
    );
    assert_eq!(files_under(&store_dir(&app)).len(), 2);

    assert_eq!(
        app.get_file(&admin, &content_path(&kept)).expect(200).body,
        kept_bytes
    );
    app.get_file(&admin, &content_path(&replaced)).expect(200);
}

/// moto's S3 server on a free port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Makes a bucket: moto accepts any credentials, so a plain request does.
    pub fn create_bucket(&self, name: &str) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let created = agent
            .put(format!("{}/{name}", self.endpoint))
            .send_empty()
            .unwrap();
        assert_eq!(created.status(), 200, "bucket {name}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `moto_server` (installed by `tests/s3/setup.sh`), or says why it cannot.
pub fn start_moto() -> Option<Moto> {
    let venv = std::env::var("DIEMDANH_MOTO_VENV")
        .unwrap_or_else(|_| "/tmp/diemdanh-moto-venv".to_owned());
    let candidates = [
        PathBuf::from(&venv).join("bin/moto_server"),
        PathBuf::from("moto_server"),
    ];
    let required = std::env::var("DIEMDANH_REQUIRE_S3").is_ok_and(|v| v == "1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = candidates.iter().find_map(|program| {
        Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    });
    let Some(child) = child else {
        assert!(
            !required,
            "DIEMDANH_REQUIRE_S3=1 but moto_server was not found (run tests/s3/setup.sh)"
        );
        eprintln!("moto_server not found (run tests/s3/setup.sh): skipping the S3 test");
        return None;
    };
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

fn s3_storage_serves_the_same(backend: Backend) {
    let Some(moto) = start_moto() else {
        return;
    };
    moto.create_bucket("materials");
    let store = StoreConfig {
        store_url: Some("s3://materials/diemdanh".into()),
        s3_endpoint: Some(moto.endpoint.clone()),
        s3_region: "us-east-1".into(),
        s3_access_key_id: Some("test".into()),
        s3_secret_access_key: Some("test".into()),
        s3_allow_http: true,
    };
    let app = TestApp::start_with_store(backend, store, |_| {});
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TL-S3");
    // Larger than one multipart part (5 MiB), so that the upload really is multipart.
    let bytes = content(6 * 1024 * 1024 + 3, 13);
    let first = upload(&app, &admin, &course, "file_name=s3.mp4", &bytes);
    let second = upload(&app, &admin, &course, "file_name=again.mp4", &bytes);
    assert_eq!(first["sha256"], sha256(&bytes));
    assert_eq!(second["sha256"], first["sha256"]);

    let path = format!(
        "/api/v1/materials/{}/content",
        second["id"].as_str().unwrap()
    );
    let whole = app.get_file(&admin, &path).expect(200);
    assert_eq!(sha256(&whole.body), sha256(&bytes));
    let tail = app
        .get_file_with(&admin, &path, &[("Range", "bytes=-100")])
        .expect(206);
    assert_eq!(tail.body, &bytes[bytes.len() - 100..]);
    let piece = app
        .get_file_with(&admin, &path, &[("Range", "bytes=5242870-5242889")])
        .expect(206);
    assert_eq!(piece.body, &bytes[5_242_870..5_242_890]);
    app.get_file_with(&admin, &path, &[("Range", "bytes=99999999-")])
        .expect(416);
    let oversized = app.get_file_with(
        &admin,
        &path,
        &[("If-None-Match", &format!("\"{}\"", sha256(&bytes)))],
    );
    assert_eq!(oversized.status, 304);

    // One object for the content, none left in tmp/, nothing written locally.
    let blobs = diemdanh::storage::BlobStore::open(&app.storage).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stored, temporary) = runtime.block_on(async {
        (
            blobs.list("sha256").await.unwrap(),
            blobs.list("tmp").await.unwrap(),
        )
    });
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(temporary.is_empty(), "{temporary:?}");
    assert!(files_under(&store_dir(&app)).is_empty());
}

/// Percent-encodes a query value.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn file_names_that_mislead_are_refused_and_long_ones_get_a_title_that_fits(app: TestApp) {
    let admin = app.admin_token();
    let course = new_course(&app, &admin, "TN-01");
    let refused = |query: &str| {
        app.send_file(
            &admin,
            "POST",
            &format!("/api/v1/courses/{course}/materials?{query}"),
            (b"%PDF-1.7 content", PDF),
        )
        .expect(422)
        .json["details"][0]
            .clone()
    };
    for name in [".", "..", "hoa-don\u{202e}fdp.exe", "\u{2067}bao-cao.pdf"] {
        let problem = refused(&format!("file_name={}", encoded(name)));
        assert_eq!(problem["field"], "file_name", "{name:?}");
        assert_eq!(problem["code"], "invalid_file_name", "{name:?}");
    }
    let problem = refused(&format!(
        "file_name=a.pdf&title={}",
        encoded("Hoá đơn\u{202e}fdp.exe")
    ));
    assert_eq!(
        (problem["field"].as_str(), problem["code"].as_str()),
        (Some("title"), Some("invalid_characters"))
    );
    assert_eq!(material_count(&app, &admin), 0);

    // A name longer than a title may be: the title is derived to fit, the name kept whole.
    let long_name = format!("{}.pdf", "Tài liệu bồi dưỡng Bí thư Đoàn cơ sở ".repeat(6));
    assert!(long_name.chars().count() > 200 && long_name.chars().count() <= 255);
    let material = upload(
        &app,
        &admin,
        &course,
        &format!("file_name={}", encoded(&long_name)),
        b"%PDF-1.7 long",
    );
    assert_eq!(material["file_name"], long_name.trim());
    let title = material["title"].as_str().unwrap();
    assert!(title.chars().count() <= 200, "{title}");
    assert!(title.starts_with("Tài liệu bồi dưỡng Bí thư Đoàn cơ sở Tài liệu"));

    // Replacing the content under a misleading name is refused the same way.
    let content_path = format!(
        "/api/v1/materials/{}/content",
        material["id"].as_str().unwrap()
    );
    let replaced = app
        .send_file(
            &admin,
            "PUT",
            &format!("{content_path}?file_name=.."),
            (b"%PDF-1.7 other", PDF),
        )
        .expect(422);
    assert_eq!(replaced.json["details"][0]["code"], "invalid_file_name");
    let kept = app.get_file(&admin, &content_path).expect(200);
    assert_eq!(kept.body, b"%PDF-1.7 long");
}
