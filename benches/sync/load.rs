//! Simulated devices over real HTTP: logins, push batches (closed and open loop), pulls.

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::seed::Pair;

const STATUSES: [&str; 4] = ["present", "late", "excused", "absent"];

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub gzip: bool,
    pub retry_after: Option<u64>,
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, String> {
    let status = response.status().as_u16();
    let gzip = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    // ureq is built without its gzip feature: the body arrives exactly as sent.
    let body = response
        .body_mut()
        .with_config()
        .limit(512 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(Reply {
        status,
        body,
        gzip,
        retry_after,
    })
}

pub fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<Reply, String> {
    let mut request = agent.post(url).header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request.send(body).map_err(|e| e.to_string()).and_then(read)
}

pub fn get(agent: &ureq::Agent, url: &str, token: &str, gzip: bool) -> Result<Reply, String> {
    let mut request = agent
        .get(url)
        .header("Authorization", format!("Bearer {token}"));
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    request.call().map_err(|e| e.to_string()).and_then(read)
}

/// The body as JSON bytes, gunzipped when it came compressed.
pub fn plain_body(reply: &Reply) -> Vec<u8> {
    if !reply.gzip {
        return reply.body.clone();
    }
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(reply.body.as_slice())
        .read_to_end(&mut plain)
        .expect("gunzip a response");
    plain
}

/// Most sends of one batch: a device keeps its outbox and sends the same batch again after a
/// failure (sync.md), so a 503 or a dropped connection costs time, not data.
const ATTEMPTS: usize = 5;

/// Pushes one batch as a device does: again, unchanged, after a transport error or a 503/429
/// (waiting as Retry-After says). Returns the last reply and how many sends were retries.
pub fn push(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    body: &[u8],
) -> (Result<Reply, String>, usize) {
    let mut retries = 0;
    loop {
        let reply = post(agent, url, Some(token), body);
        let wait = match &reply {
            Err(_) => Duration::from_millis(50),
            Ok(r) if matches!(r.status, 429 | 503) => {
                Duration::from_secs(r.retry_after.unwrap_or(1).min(5))
            }
            Ok(_) => return (reply, retries),
        };
        if retries + 1 >= ATTEMPTS {
            return (reply, retries);
        }
        retries += 1;
        thread::sleep(wait);
    }
}

/// A signed-in device.
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub device_id: String,
}

pub fn login(base: &str, username: &str, password: &str, device: &str) -> Session {
    let body = json!({"username": username, "password": password, "device_name": device});
    let reply = post(
        &agent(),
        &format!("{base}/api/v1/auth/login"),
        None,
        body.to_string().as_bytes(),
    )
    .unwrap_or_else(|e| panic!("login {username}: {e}"));
    let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    assert_eq!(
        reply.status,
        200,
        "login {username}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    Session {
        token: answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        device_id: answer["device_id"].as_str().expect("device_id").to_owned(),
    }
}

/// A device's hybrid logical clock, stamping changes as sync.md says.
struct Clock {
    millis: u64,
    counter: u32,
}

impl Clock {
    fn stamp(&mut self, node: &str) -> String {
        let wall = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        if wall > self.millis {
            self.millis = wall;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        if self.counter > 0xffff {
            self.millis += 1;
            self.counter = 0;
        }
        format!("{:013}-{:04x}-{node}", self.millis, self.counter)
    }
}

/// A trainer's device recording attendance of its share of one course's (session, person)
/// slots: the first pass over its share creates the records, later passes change their status.
pub struct PushDevice {
    pub session: Session,
    /// Indexes into the data set's pairs.
    pub share: Vec<usize>,
    /// Mutations made so far.
    pub made: usize,
    clock: Clock,
}

impl PushDevice {
    pub fn new(session: Session, share: Vec<usize>) -> PushDevice {
        PushDevice {
            session,
            share,
            made: 0,
            clock: Clock {
                millis: 0,
                counter: 0,
            },
        }
    }

    /// The body of the next push of `size` mutations.
    pub fn next_batch(&mut self, pairs: &[Pair], size: usize) -> Arc<Vec<u8>> {
        let mut mutations = Vec::with_capacity(size);
        for _ in 0..size {
            let pass = self.made / self.share.len();
            let pair = &pairs[self.share[self.made % self.share.len()]];
            self.made += 1;
            let fields = if pass == 0 {
                json!({
                    "session_id": pair.session_id,
                    "person_id": pair.person_id,
                    "status": "present",
                    "checked_in_at": "2026-03-02T01:05:00.000Z",
                })
            } else {
                json!({"status": STATUSES[pass % STATUSES.len()]})
            };
            mutations.push(json!({
                "mutation_id": uuid::Uuid::new_v4().to_string(),
                "collection": "attendance",
                "record_id": pair.record_id,
                "op": "upsert",
                "fields": fields,
                "hlc": self.clock.stamp(&self.session.device_id),
            }));
        }
        Arc::new(json!({ "mutations": mutations }).to_string().into_bytes())
    }
}

/// Result statuses of a run's pushes.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub applied: usize,
    pub merged: usize,
    pub duplicate: usize,
    pub rejected: usize,
    /// Batches that never got a 200 (after every retry).
    pub failed_requests: usize,
    /// Sends of a batch again after a failure.
    pub retries: usize,
    pub first_problem: Option<String>,
    pub first_rejection: Option<String>,
}

impl Outcome {
    fn add(&mut self, (reply, retries): &(Result<Reply, String>, usize)) {
        self.retries += retries;
        let problem = match reply {
            Err(e) => Some(e.clone()),
            Ok(r) if r.status != 200 => Some(format!(
                "HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )),
            Ok(r) => {
                let answer: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let results = answer["results"].as_array().cloned().unwrap_or_default();
                let mut problem = None;
                for result in results {
                    match result["status"].as_str() {
                        Some("applied") => self.applied += 1,
                        Some("merged") => self.merged += 1,
                        Some("duplicate") => self.duplicate += 1,
                        _ => {
                            self.rejected += 1;
                            problem.get_or_insert_with(|| format!("rejected: {result}"));
                        }
                    }
                }
                if let Some(problem) = problem {
                    self.first_rejection.get_or_insert(problem);
                }
                return;
            }
        };
        self.failed_requests += 1;
        if let Some(problem) = problem {
            self.first_problem.get_or_insert(problem);
        }
    }

    pub fn committed(&self) -> usize {
        self.applied + self.merged
    }
}

pub struct PushRun {
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    pub batches: usize,
    pub outcome: Outcome,
}

impl PushRun {
    pub fn batches_per_sec(&self) -> f64 {
        self.batches as f64 / self.elapsed.as_secs_f64()
    }
}

/// Each job is one device pushing its batches one after the other (closed loop); all devices
/// start together, job `i` on instance `i % bases.len()`.
pub fn closed_loop(bases: &[String], jobs: &[(String, Vec<Arc<Vec<u8>>>)]) -> PushRun {
    let barrier = Arc::new(Barrier::new(jobs.len() + 1));
    let handles: Vec<_> = jobs
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, (token, bodies))| {
            let url = format!("{}/api/v1/sync/push", bases[i % bases.len()]);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let agent = agent();
                barrier.wait();
                let mut out = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let sent = Instant::now();
                    let reply = push(&agent, &url, &token, &body);
                    out.push((sent.elapsed(), reply));
                }
                (out, Instant::now())
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut finished = started;
    let mut run = PushRun {
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        batches: 0,
        outcome: Outcome::default(),
    };
    let mut replies = Vec::new();
    for handle in handles {
        let (out, done) = handle.join().expect("device thread");
        finished = finished.max(done);
        for (latency, reply) in out {
            run.latencies.push(latency);
            replies.push(reply);
        }
    }
    run.elapsed = finished - started;
    run.batches = replies.len();
    // Checked after the clock stopped: parsing answers is the client's cost, not the server's.
    for reply in &replies {
        run.outcome.add(reply);
    }
    run
}

/// Batches arrive at a fixed rate whatever the server's pace (open loop); latency counts from
/// the scheduled arrival, so time spent queueing behind a slow answer is included. Client `c`
/// sends to instance `c % bases.len()`.
pub fn open_loop(
    bases: &[String],
    jobs: Vec<(String, Arc<Vec<u8>>)>,
    rate: f64,
    clients: usize,
) -> PushRun {
    let (sender, receiver) = mpsc::channel::<(Instant, String, Arc<Vec<u8>>)>();
    let receiver = Arc::new(Mutex::new(receiver));
    let workers: Vec<_> = (0..clients.max(1))
        .map(|c| {
            let url = format!("{}/api/v1/sync/push", bases[c % bases.len()]);
            let receiver = Arc::clone(&receiver);
            thread::spawn(move || {
                let agent = agent();
                let mut out = Vec::new();
                loop {
                    let job = receiver.lock().expect("queue").recv();
                    let Ok((due, token, body)) = job else { break };
                    let reply = push(&agent, &url, &token, &body);
                    let done = Instant::now();
                    out.push((done - due, reply, done));
                }
                out
            })
        })
        .collect();
    let started = Instant::now() + Duration::from_millis(50);
    let count = jobs.len();
    for (i, (token, body)) in jobs.into_iter().enumerate() {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        sender.send((due, token, body)).expect("queue");
    }
    drop(sender);
    let mut run = PushRun {
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(count),
        batches: count,
        outcome: Outcome::default(),
    };
    let mut finished = started;
    for worker in workers {
        for (latency, reply, done) in worker.join().expect("client thread") {
            run.latencies.push(latency);
            run.outcome.add(&reply);
            finished = finished.max(done);
        }
    }
    run.elapsed = finished - started;
    run
}

#[derive(Deserialize)]
struct PageHead {
    changes: Vec<serde::de::IgnoredAny>,
    cursor: String,
    has_more: bool,
}

#[derive(Default)]
pub struct PullRun {
    pub elapsed: Duration,
    pub records: usize,
    pub pages: usize,
    /// Bytes of the bodies as they came over the wire (compressed when gzip was asked for).
    pub wire_bytes: usize,
    pub json_bytes: usize,
    pub latencies: Vec<Duration>,
}

fn query_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fresh device pulling its whole scope, page after page.
pub fn pull_scope(base: &str, token: &str, limit: usize, gzip: bool) -> PullRun {
    let agent = agent();
    let mut run = PullRun::default();
    let mut cursor: Option<String> = None;
    let started = Instant::now();
    loop {
        let mut url = format!("{base}/api/v1/sync/pull?limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str("&cursor=");
            url.push_str(&query_escape(cursor));
        }
        let sent = Instant::now();
        let reply = get(&agent, &url, token, gzip).unwrap_or_else(|e| panic!("pull: {e}"));
        run.latencies.push(sent.elapsed());
        assert_eq!(
            reply.status,
            200,
            "pull: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.gzip, gzip, "pull: unexpected Content-Encoding");
        run.wire_bytes += reply.body.len();
        let json = plain_body(&reply);
        run.json_bytes += json.len();
        let page: PageHead = serde_json::from_slice(&json).expect("pull page");
        run.records += page.changes.len();
        run.pages += 1;
        cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    run.elapsed = started.elapsed();
    run
}

/// Several fresh devices pulling at once, device `i` from instance `i % bases.len()`; records
/// and bytes are totals, latencies pooled.
pub fn pull_together(bases: &[String], tokens: Vec<String>, limit: usize) -> (PullRun, Vec<usize>) {
    let barrier = Arc::new(Barrier::new(tokens.len() + 1));
    let handles: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (base, barrier) = (bases[i % bases.len()].clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                let run = pull_scope(&base, &token, limit, false);
                (run, Instant::now())
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut total = PullRun::default();
    let mut per_device = Vec::new();
    let mut finished = started;
    for handle in handles {
        let (run, done) = handle.join().expect("pull thread");
        finished = finished.max(done);
        per_device.push(run.records);
        total.records += run.records;
        total.pages += run.pages;
        total.wire_bytes += run.wire_bytes;
        total.json_bytes += run.json_bytes;
        total.latencies.extend(run.latencies);
    }
    total.elapsed = finished - started;
    (total, per_device)
}
