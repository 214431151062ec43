//! Material files: one upload, then downloads by 1..N clients at once, beside the same bytes
//! served by a plain static-file handler (actix-files) on the same machine.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::load;

/// Some bytes that do not compress (a video does not).
pub fn content(bytes: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..bytes)
        .map(|_| {
            // xorshift64: cheap, and incompressible enough for a transfer measurement.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Uploads `bytes` as a video of the first course the admin sees; returns the material's id
/// and how long the upload took.
pub fn upload(base: &str, admin_token: &str, bytes: &[u8]) -> (String, Duration) {
    let agent = load::agent();
    let courses = load::get(
        &agent,
        &format!("{base}/api/v1/courses?limit=1"),
        admin_token,
        false,
    )
    .expect("list courses");
    assert_eq!(courses.status, 200, "list courses");
    let courses: Value = serde_json::from_slice(&courses.body).expect("a course page");
    let course = courses["items"][0]["id"].as_str().expect("a course id");
    let url = format!(
        "{base}/api/v1/courses/{course}/materials?file_name=B%C3%A0i%20gi%E1%BA%A3ng.mp4&kind=video"
    );
    let started = Instant::now();
    let mut response = agent
        .post(&url)
        .header("Authorization", format!("Bearer {admin_token}"))
        .header("Content-Type", "video/mp4")
        .send(bytes)
        .expect("upload a material");
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_vec()
        .expect("the upload's reply");
    assert_eq!(status, 201, "upload: {}", String::from_utf8_lossy(&body));
    let material: Value = serde_json::from_slice(&body).expect("a material");
    let id = material["id"].as_str().expect("a material id").to_owned();
    (id, elapsed)
}

/// `clients` downloads of `url` at once, each checked for its length; the time from the start
/// signal until the last one finished.
pub fn download_together(url: &str, token: Option<&str>, clients: usize, size: usize) -> Duration {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (url, token, barrier) = (
                url.to_owned(),
                token.map(str::to_owned),
                Arc::clone(&barrier),
            );
            thread::spawn(move || {
                let agent = load::agent();
                barrier.wait();
                let mut request = agent.get(&url);
                if let Some(token) = token {
                    request = request.header("Authorization", format!("Bearer {token}"));
                }
                let mut response = request.call().expect("download");
                assert_eq!(response.status().as_u16(), 200, "download of {url}");
                let mut reader = response.body_mut().as_reader();
                let got =
                    std::io::copy(&mut reader, &mut std::io::sink()).expect("read a download");
                assert_eq!(got as usize, size, "download of {url}: wrong length");
                Instant::now()
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let finished = handles
        .into_iter()
        .map(|h| h.join().expect("download thread"))
        .max()
        .unwrap_or(started);
    finished - started
}

/// A plain static-file server (actix-files, one worker per core like diemdanh) for `dir` on
/// 127.0.0.1, on a thread of its own for the rest of the process; returns its base URL.
pub fn static_file_server(dir: &Path) -> String {
    let dir = dir.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().service(actix_files::Files::new("/", dir.clone()))
            })
            .bind(("127.0.0.1", 0))
            .expect("bind the static-file server");
            let port = server.addrs()[0].port();
            tx.send(format!("http://127.0.0.1:{port}"))
                .expect("report the port");
            server.run().await.expect("the static-file server");
        });
    });
    rx.recv().expect("the static-file server's address")
}
