//! A phone or tablet as the sync protocol sees it: signed in as one account on a device of its
//! own, with its own hybrid logical clock, its pull cursor and what it holds. The same `Device`
//! drives an in-process [`TestApp`] (the integration suites) and a fleet of server processes
//! (`fleet.rs`: the multi-instance test, the crash loop, the soak), through [`Server`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fleet::Fleet;
use super::{Response, TestApp};

/// Something that answers the API: an in-process app, or a fleet of processes behind a "load
/// balancer". Every answer is checked against the contract.
pub trait Server {
    /// `method path` with a bearer token and a JSON body, as `TestApp::call` sends it.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>)
    -> Response;
}

impl Server for TestApp {
    fn call(&self, m: &str, p: &str, t: Option<&str>, b: Option<&Value>) -> Response {
        TestApp::call(self, m, p, t, b)
    }
}

impl Server for Fleet {
    fn call(&self, m: &str, p: &str, t: Option<&str>, b: Option<&Value>) -> Response {
        Fleet::call(self, m, p, t, b)
    }
}

/// The demo data's accounts (`diemdanh demo` prints them; passwords from
/// `diemdanh::demo::logins()`).
#[derive(Debug, Clone, Copy)]
pub enum Persona {
    /// Trainer `hoa.nguyen`: the province's three-day class and the ward's class.
    Hoa,
    /// Trainer `tuan.le`: the province's three-day class and the skills class, not the ward's.
    Tuan,
    /// Trainee `hocvien.demo`, enrolled in the province's three-day class.
    Trainee,
}

impl Persona {
    pub fn username(self) -> &'static str {
        match self {
            Persona::Hoa => "hoa.nguyen",
            Persona::Tuan => "tuan.le",
            Persona::Trainee => "hocvien.demo",
        }
    }

    fn password(self) -> String {
        let username = self.username();
        diemdanh::demo::logins()
            .into_iter()
            .find(|login| login.username == username)
            .unwrap_or_else(|| panic!("{username} is not a demo account"))
            .password
    }
}

/// A signed-in device: its clock, its cursor, what it holds (by collection and id) and which
/// record id it uses for each (session, person) of attendance.
pub struct Device {
    pub token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub device_id: String,
    millis: u64,
    counter: u32,
    cursor: Option<String>,
    pub held: BTreeMap<(String, String), Value>,
    pub ids: BTreeMap<(String, String), String>,
}

/// Pages of the native feed a device pulls.
const PAGE: usize = 50;

impl Device {
    /// A demo persona signs in on a new device called `device_name`.
    #[track_caller]
    pub fn login(server: &impl Server, persona: Persona, device_name: &str) -> Device {
        Self::sign_in(server, persona.username(), &persona.password(), device_name)
    }

    /// An account signs in on a new device.
    #[track_caller]
    pub fn sign_in(
        server: &impl Server,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Device {
        let body = json!({"username": username, "password": password, "device_name": device_name});
        let login = server
            .call("POST", "/api/v1/auth/login", None, Some(&body))
            .expect(200)
            .json;
        let text = |value: &Value| value.as_str().expect("a token or an id").to_owned();
        Device {
            token: text(&login["access_token"]),
            refresh_token: text(&login["refresh_token"]),
            user_id: text(&login["user"]["id"]),
            device_id: login["device_id"].as_str().expect("a device").to_owned(),
            millis: 0,
            counter: 0,
            cursor: None,
            held: BTreeMap::new(),
            ids: BTreeMap::new(),
        }
    }

    /// The device's next stamp: its wall clock, or its last stamp's counter plus one.
    pub fn stamp(&mut self) -> String {
        let wall = chrono::Utc::now().timestamp_millis() as u64;
        if wall > self.millis {
            (self.millis, self.counter) = (wall, 0);
        } else {
            self.counter += 1;
        }
        format!(
            "{:013}-{:04x}-{}",
            self.millis, self.counter, self.device_id
        )
    }

    /// The merge of `server_hlc` from api-spec/sync.md, so later stamps follow the server's.
    pub fn merge_server_clock(&mut self, server: &str) {
        let mut parts = server.splitn(3, '-');
        let remote: u64 = parts.next().unwrap().parse().unwrap();
        let remote_counter = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let wall = chrono::Utc::now().timestamp_millis() as u64;
        let next = self.millis.max(remote).max(wall);
        self.counter = if next == self.millis && next == remote {
            self.counter.max(remote_counter) + 1
        } else if next == self.millis {
            self.counter + 1
        } else if next == remote {
            remote_counter + 1
        } else {
            0
        };
        self.millis = next;
    }

    /// Sends `mutations` as one push, expecting 200; merges the server's clock from the answer
    /// and returns one result per mutation, in order.
    #[track_caller]
    pub fn push<T: serde::Serialize>(
        &mut self,
        server: &impl Server,
        mutations: &[T],
    ) -> Vec<Value> {
        let answer = server
            .call(
                "POST",
                "/api/v1/sync/push",
                Some(&self.token),
                Some(&json!({ "mutations": mutations })),
            )
            .expect(200)
            .json;
        self.merge_server_clock(answer["server_hlc"].as_str().expect("server_hlc"));
        let results = answer["results"].as_array().expect("results").clone();
        assert_eq!(results.len(), mutations.len());
        results
    }

    /// Records `fields` (a session, a person, a status, …) as an attendance upsert stamped now,
    /// on the record the device holds for the pair or a new one, and pushes it alone: the
    /// push's one result.
    #[track_caller]
    pub fn record_attendance(&mut self, server: &impl Server, fields: Value) -> Value {
        let pair = (
            fields["session_id"].as_str().expect("a session").to_owned(),
            fields["person_id"].as_str().expect("a person").to_owned(),
        );
        let record_id = self.record_of(&pair);
        let hlc = self.stamp();
        let mutation = super::sync::upsert_attendance(&record_id, fields, &hlc);
        let result = self.push(server, &[mutation]).remove(0);
        if let Some(into) = result["merged_into"].as_str() {
            self.ids.insert(pair, into.to_owned());
        }
        result
    }

    /// The attendance record the device edits for a (session, person): the one it holds, or a
    /// new id (when another device created the pair first, the server merges the two).
    pub fn record_of(&mut self, pair: &(String, String)) -> String {
        self.ids
            .entry(pair.clone())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }

    /// Pulls every page after its cursor and applies them to what it holds: the changes, in
    /// order.
    #[track_caller]
    pub fn pull(&mut self, server: &impl Server) -> Vec<Value> {
        self.pull_in_pages_of(server, PAGE).concat()
    }

    /// Pulls every page after its cursor in pages of `limit` and applies them to what it
    /// holds: each page's changes, in order.
    #[track_caller]
    pub fn pull_in_pages_of(&mut self, server: &impl Server, limit: usize) -> Vec<Vec<Value>> {
        let (cursor, pages) = pages_from(server, &self.token, self.cursor.take(), limit);
        self.cursor = Some(cursor);
        for change in pages.iter().flatten() {
            let key = (
                change["collection"].as_str().unwrap().to_owned(),
                change["id"].as_str().unwrap().to_owned(),
            );
            if change["deleted"].as_bool().unwrap() {
                self.held.remove(&key);
                continue;
            }
            let data = &change["data"];
            if key.0 == "attendance" {
                // From now on the device edits the server's record for the pair.
                let pair = (
                    data["session_id"].as_str().unwrap().to_owned(),
                    data["person_id"].as_str().unwrap().to_owned(),
                );
                self.ids.insert(pair, key.1.clone());
            }
            self.held.insert(key, data.clone());
        }
        pages
    }

    /// Pulls as [`Device::pull`] does, unless the server answers its cursor 410
    /// `resync_required`: then it drops what it pulled and pulls from nothing, as the field app
    /// does (its pushes do not depend on the cursor). Returns whether it started over.
    #[track_caller]
    pub fn pull_or_start_over(&mut self, server: &impl Server) -> bool {
        if let Some(cursor) = &self.cursor {
            let path = format!("/api/v1/sync/pull?limit={PAGE}&cursor={cursor}");
            let answer = server.call("GET", &path, Some(&self.token), None);
            if answer.status == 410 {
                assert_eq!(answer.code(), "resync_required", "{}", answer.text);
                self.held.clear();
                self.cursor = None;
                self.pull(server);
                return true;
            }
            answer.expect(200);
        }
        self.pull(server);
        false
    }

    /// The page of `limit` after its last pull, as the server answers it, neither applied nor
    /// remembered (a device that loses the answer, or stores only this page).
    #[track_caller]
    pub fn next_page(&self, server: &impl Server, limit: usize) -> Value {
        let cursor = self.cursor.as_deref().expect("pulled before");
        let path = format!("/api/v1/sync/pull?limit={limit}&cursor={cursor}");
        server
            .call("GET", &path, Some(&self.token), None)
            .expect(200)
            .json
    }

    /// What a new device of the same account would hold: a pull from nothing.
    #[track_caller]
    pub fn fresh_view(&self, server: &impl Server) -> BTreeMap<(String, String), Value> {
        apply(&pull_from(server, &self.token, None, PAGE).1)
    }

    /// The ids it holds of one collection.
    pub fn held_ids(&self, collection: &str) -> Vec<String> {
        self.held
            .keys()
            .filter(|(c, _)| c == collection)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// Every page of the native feed after `cursor`, in pages of `limit`: the last cursor and the
/// changes, in order. A page that says more follow is never empty: each page is a round trip.
#[track_caller]
pub fn pull_from(
    server: &impl Server,
    token: &str,
    cursor: Option<String>,
    limit: usize,
) -> (String, Vec<Value>) {
    let (cursor, pages) = pages_from(server, token, cursor, limit);
    (cursor, pages.concat())
}

/// `pull_from`, page by page: the last cursor and each page's changes, in order.
#[track_caller]
pub fn pages_from(
    server: &impl Server,
    token: &str,
    cursor: Option<String>,
    limit: usize,
) -> (String, Vec<Vec<Value>>) {
    let mut cursor = cursor;
    let mut pages: Vec<Vec<Value>> = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/sync/pull?limit={limit}&cursor={c}"),
            None => format!("/api/v1/sync/pull?limit={limit}"),
        };
        let page = server
            .call("GET", &path, Some(token), None)
            .expect(200)
            .json;
        let page_changes = page["changes"].as_array().expect("changes");
        let has_more = page["has_more"].as_bool().expect("has_more");
        assert!(
            !(has_more && page_changes.is_empty()),
            "an empty page says more follow (limit {limit}, after {} pages)",
            pages.len()
        );
        pages.push(page_changes.clone());
        cursor = Some(page["cursor"].as_str().expect("a cursor").to_owned());
        if !has_more {
            return (cursor.expect("a cursor"), pages);
        }
    }
}

/// What a device holds after applying a feed of changes from nothing.
pub fn apply(changes: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut held = BTreeMap::new();
    apply_onto(&mut held, changes);
    held
}

/// Applies a feed of changes, in order, to what a device holds.
pub fn apply_onto(held: &mut BTreeMap<(String, String), Value>, changes: &[Value]) {
    for change in changes {
        let key = (
            change["collection"].as_str().unwrap().to_owned(),
            change["id"].as_str().unwrap().to_owned(),
        );
        if change["deleted"].as_bool().unwrap() {
            held.remove(&key);
        } else {
            held.insert(key, change["data"].clone());
        }
    }
}
