//! The integration-test harness: a real diemdanh server on 127.0.0.1 (port 0) over a fresh
//! database of the chosen backend, and an HTTP client whose every response is checked against
//! `api-spec/openapi.yaml`.

pub mod calls;
pub mod device;
pub mod fleet;
pub mod own_postgres;
pub mod postgres;
pub mod process;
pub mod server_output;
pub mod sheets;
pub mod spec;
pub mod storage;
pub mod sync;
pub mod watermelon_kit;

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::web;
use clap::Parser;
use diemdanh::api::{self, AppState};
use diemdanh::auth::Auth;
use diemdanh::config::{ServerConfig, StorageConfig, StoreConfig};
use diemdanh::db::{self, Pool};
use serde_json::{Value, json};

use self::postgres::PgDatabase;
use self::spec::Spec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates a `sqlite` and a `postgres` test for each named test function, which takes either
/// the app, started with the default settings on a fresh database of the backend, or the
/// `Backend`, to start the app its own way (see `BackendTest`).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(@on sqlite, Sqlite, $($name),*);
        $crate::backend_tests!(@on postgres, Postgres, $($name),*);
    };
    (@on $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(#[test]
            fn $name() {
                $crate::support::BackendTest::run(
                    super::$name as fn(_),
                    $crate::support::Backend::$backend,
                )
            })*
        }
    };
}

/// A scenario run on one backend, skipped (like every test here) when the backend is not
/// available: `fn(TestApp)` gets an app started with the default settings; `fn(Backend)` starts
/// what it needs itself (`TestApp::start_with(backend, settings)`, a fleet, …).
pub trait BackendTest {
    fn run(self, backend: Backend);
}

impl BackendTest for fn(Backend) {
    fn run(self, backend: Backend) {
        if backend.available() {
            self(backend)
        }
    }
}

impl BackendTest for fn(TestApp) {
    fn run(self, backend: Backend) {
        if backend.available() {
            self(TestApp::start(backend))
        }
    }
}

impl Backend {
    /// SQLite always is; PostgreSQL is when the tests find or start a server (a failure
    /// instead of a skip when `DIEMDANH_REQUIRE_POSTGRES=1`).
    pub fn available(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::Postgres => {
                let found = postgres::available();
                if !found {
                    eprintln!("PostgreSQL not available: skipping the PostgreSQL variant");
                }
                found
            }
        }
    }

    /// The fresh PostgreSQL database of a scenario on PostgreSQL (available: `backend_tests!`
    /// checked); None on SQLite.
    pub fn fresh_database(self) -> Option<PgDatabase> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                postgres::fresh_database()
                    .expect("PostgreSQL is available: the scenario's backend_tests! checked"),
            ),
        }
    }
}

#[derive(Parser)]
struct ServerArgs {
    #[command(flatten)]
    server: ServerConfig,
}

/// The server's settings as a fresh install has them, listening on a free port.
pub fn default_server_config() -> ServerConfig {
    ServerArgs::parse_from(["diemdanh-test", "--bind", "127.0.0.1:0", "--workers", "2"]).server
}

pub struct TestApp {
    pub base: String,
    /// The metrics-only listener, when the test configured one.
    pub metrics_base: Option<String>,
    pub pool: Pool,
    /// Where the database is, for running the CLI against the same data.
    pub storage: StorageConfig,
    config: ServerConfig,
    agent: ureq::Agent,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Response {
    /// Reads an answer of [`exchange`] whole: the body as text (empty when it is not UTF-8: a
    /// file), and parsed when it is JSON (else null). Err when the connection is cut before the
    /// body's end.
    pub fn read(answer: ureq::http::Response<ureq::Body>) -> Result<Response, ureq::Error> {
        let BytesResponse {
            status,
            headers,
            body,
            ..
        } = read_whole(answer)?;
        let text = String::from_utf8(body).unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Response {
            status,
            headers,
            text,
            json,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// A header the answer must carry.
    #[track_caller]
    pub fn required_header(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
}

/// One HTTP response with its body as bytes.
#[derive(Debug)]
pub struct BytesResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body when it is JSON (decompressed if need be), else null.
    pub json: Value,
}

impl BytesResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
        );
        self
    }
}

impl TestApp {
    /// A server on a fresh database of an available backend (`backend_tests!` skips the others
    /// before its scenario starts).
    pub fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {})
    }

    /// A server with the settings `configure` makes.
    pub fn start_with(backend: Backend, configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
        Self::start_with_store(backend, StoreConfig::default(), configure)
    }

    /// A server whose material files go to the given store (default: under its data dir).
    pub fn start_with_store(
        backend: Backend,
        store: StoreConfig,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestApp {
        Self::start_prepared(backend, store, configure, |_| {})
    }

    /// A server on a database that `prepare` fills before the server first opens it (and
    /// migrates it), as an upgrade finds the database an earlier version left.
    pub fn start_prepared(
        backend: Backend,
        store: StoreConfig,
        configure: impl FnOnce(&mut ServerConfig),
        prepare: impl FnOnce(&StorageConfig),
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = backend.fresh_database();
        let storage = StorageConfig {
            store,
            ..storage::default_storage(
                dir.path().to_path_buf(),
                pg.as_ref().map(|pg| pg.url.clone()),
                8,
            )
        };
        let mut config = default_server_config();
        configure(&mut config);
        prepare(&storage);
        let (pool, server) = launch(&storage, &config);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        TestApp {
            base: server.base,
            metrics_base: server.metrics_base,
            pool,
            storage,
            config,
            agent,
            handle: server.handle,
            thread: Some(server.thread),
            _dir: dir,
            _pg: pg,
        }
    }

    /// Stops the server and starts a new one on the same database, as after a crash or an
    /// upgrade: nothing held in memory survives.
    pub fn restart(&mut self) {
        self.stop();
        let (pool, server) = launch(&self.storage, &self.config);
        self.pool = pool;
        self.base = server.base;
        self.metrics_base = server.metrics_base;
        self.handle = server.handle;
        self.thread = Some(server.thread);
    }

    fn stop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::System::new().block_on(handle.stop(true));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// The backend the server's database is on.
    pub fn backend(&self) -> Backend {
        match self.storage.database_url {
            Some(_) => Backend::Postgres,
            None => Backend::Sqlite,
        }
    }

    /// Loads the demo data set into this server's database.
    pub fn with_demo(self) -> Self {
        diemdanh::demo::load(&mut self.pool.get().expect("connection")).expect("demo data");
        self
    }

    /// Sends a request and checks the response against the spec.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        self.call_with(method, path, token, body, &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let json = JsonBody::of(body);
        let response = self.send_raw(method, path, token, json.bytes(), headers);
        check_against_spec(method, path, &response);
        response
    }

    /// Sends any bytes with any content type, without checking against the spec.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&[u8], &str)>,
        headers: &[(&str, &str)],
    ) -> Response {
        Response::read(self.exchange(method, path, token, body, headers))
            .unwrap_or_else(|e| panic!("{method} {path}: the body was cut: {e}"))
    }

    /// Sends one request, which must be answered.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&[u8], &str)>,
        headers: &[(&str, &str)],
    ) -> ureq::http::Response<ureq::Body> {
        let url = format!("{}{path}", self.base);
        exchange(&self.agent, method, &url, token, body, headers)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// Sends any bytes with any content type and checks the response against the spec.
    pub fn send_checked(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: (&[u8], &str),
    ) -> Response {
        let response = self.send_raw(method, path, token, Some(body), &[]);
        check_against_spec(method, path, &response);
        response
    }

    /// A GET whose body is kept as bytes (XLSX, CSV): status, headers and body.
    pub fn download(
        &self,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let answer = read_whole(self.exchange("GET", path, Some(token), None, headers))
            .unwrap_or_else(|e| panic!("GET {path}: the body was cut: {e}"));
        (answer.status, answer.headers, answer.body)
    }

    /// Sends a request and returns the body as bytes (files, not JSON). The status must be one
    /// the spec documents, and a JSON body (an error) must match its schema.
    pub fn fetch(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&[u8], &str)>,
        headers: &[(&str, &str)],
    ) -> BytesResponse {
        let BytesResponse {
            status,
            headers,
            body,
            ..
        } = read_whole(self.exchange(method, path, token, body, headers))
            .unwrap_or_else(|e| panic!("{method} {path}: the body was cut: {e}"));
        let is_json =
            header_in(&headers, "content-type").is_some_and(|v| v.starts_with("application/json"));
        // The raw body is kept as sent; a gzip-compressed JSON body is checked decoded.
        let gzip = header_in(&headers, "content-encoding") == Some("gzip");
        let decoded = if gzip {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
                .expect("a gzip body");
            plain
        } else {
            body.clone()
        };
        let json = if is_json {
            serde_json::from_slice(&decoded).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let checked = Response {
            status,
            headers: headers.clone(),
            text: if is_json {
                String::from_utf8_lossy(&decoded).into_owned()
            } else {
                String::new()
            },
            json,
        };
        check_against_spec(method, path, &checked);
        BytesResponse {
            status,
            headers,
            body,
            json: checked.json,
        }
    }

    /// `GET path` as `token`, expecting 200: the body.
    #[track_caller]
    pub fn get_ok(&self, token: &str, path: &str) -> Value {
        self.call("GET", path, Some(token), None).expect(200).json
    }

    /// Every item of a list (`limit=500`, the most a page holds): the page.
    #[track_caller]
    pub fn list_all(&self, token: &str, path: &str) -> Value {
        let separator = if path.contains('?') { '&' } else { '?' };
        self.get_ok(token, &format!("{path}{separator}limit=500"))
    }

    /// `POST path` as `token`, expecting 201: the created record.
    #[track_caller]
    pub fn create(&self, token: &str, path: &str, body: Value) -> Value {
        self.call("POST", path, Some(token), Some(&body))
            .expect(201)
            .json
    }

    /// A native push of `mutations` as `token`, expecting 200: one result per mutation.
    #[track_caller]
    pub fn push(&self, token: &str, mutations: &[Value]) -> Vec<Value> {
        let body = json!({ "mutations": mutations });
        self.call("POST", "/api/v1/sync/push", Some(token), Some(&body))
            .expect(200)
            .json["results"]
            .as_array()
            .expect("results")
            .clone()
    }

    /// Logs in and returns the token response.
    #[track_caller]
    pub fn login(&self, username: &str, password: &str) -> Value {
        self.try_login(username, password).expect(200).json
    }

    /// An access token for a user.
    #[track_caller]
    pub fn token(&self, username: &str, password: &str) -> String {
        self.login(username, password)["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates an admin account directly in the database and returns its token.
    pub fn admin_token(&self) -> String {
        self.create_user("root.admin", "admin", None);
        self.token("root.admin", "admin-password")
    }

    /// Creates an account (password `<role>-password`) and returns its id.
    pub fn create_user(&self, username: &str, role: &str, person_id: Option<&str>) -> String {
        self.create_account(username, role, person_id, None)
    }

    /// Creates an organiser of a unit (password `organiser-password`) and returns its id.
    pub fn create_organiser(&self, username: &str, unit_id: &str) -> String {
        self.create_account(username, "organiser", None, Some(unit_id))
    }

    fn create_account(
        &self,
        username: &str,
        role: &str,
        person_id: Option<&str>,
        unit_id: Option<&str>,
    ) -> String {
        let hash = diemdanh::auth::password::hash(&format!("{role}-password")).expect("hash");
        let mut conn = self.pool.get().expect("connection");
        let user = diemdanh::domain::users::Users::create(
            &mut conn,
            diemdanh::domain::users::NewUser {
                username: username.into(),
                display_name: None,
                role: role.into(),
                person_id: person_id.map(Into::into),
                unit_id: unit_id.map(Into::into),
            },
            hash,
        )
        .expect("create user");
        user.id
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens the database and serves it on a free port in a thread of its own.
fn launch(storage: &StorageConfig, config: &ServerConfig) -> (Pool, Launched) {
    let pool = db::open(storage).expect("open database");
    let auth = Auth::new(&mut pool.get().expect("connection"), config).expect("auth");
    let store = diemdanh::storage::BlobStore::open(storage).expect("material store");
    let state = web::Data::new(AppState::new(pool.clone(), store, auth, config.clone()));
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let listening = api::bind(state).expect("bind");
            sender
                .send((
                    listening.server.handle(),
                    listening.addresses[0],
                    listening.metrics_address,
                ))
                .expect("send handle");
            listening.server.await.expect("server");
        })
    });
    let (handle, address, metrics) = receiver.recv().expect("server started");
    let server = Launched {
        base: format!("http://{address}"),
        metrics_base: metrics.map(|address| format!("http://{address}")),
        handle,
        thread,
    };
    (pool, server)
}

/// A server running in a thread of its own.
struct Launched {
    base: String,
    metrics_base: Option<String>,
    handle: ServerHandle,
    thread: JoinHandle<()>,
}

/// A request's JSON body, encoded, as [`exchange`] takes it.
pub struct JsonBody(Option<Vec<u8>>);

impl JsonBody {
    pub fn of(body: Option<&Value>) -> JsonBody {
        JsonBody(body.map(|body| serde_json::to_vec(body).expect("JSON")))
    }

    /// The bytes and their content type; None without a body.
    pub fn bytes(&self) -> Option<(&[u8], &str)> {
        self.0.as_deref().map(|bytes| (bytes, "application/json"))
    }
}

/// Sends one request to `url`: `token` as a bearer token, `body` with its content type, and
/// `headers`; whatever the status, the answer (Err: not answered).
pub fn exchange(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&[u8], &str)>,
    headers: &[(&str, &str)],
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match body {
        Some((bytes, content_type)) => agent.run(
            request
                .header("Content-Type", content_type)
                .body(bytes.to_vec())
                .expect("request"),
        ),
        None => agent.run(request.body(()).expect("request")),
    }
}

/// A header's value (the name in any case).
fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// An answer of [`exchange`] read whole, however large: status, headers (names as sent) and
/// body, not parsed (`json` null).
fn read_whole(mut answer: ureq::http::Response<ureq::Body>) -> Result<BytesResponse, ureq::Error> {
    let headers = answer
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = answer
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()?;
    Ok(BytesResponse {
        status: answer.status().as_u16(),
        headers,
        body,
        json: Value::Null,
    })
}

/// A record's `id`.
#[track_caller]
pub fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("an id").to_owned()
}

/// The `key` of every element of a JSON list, in order.
#[track_caller]
pub fn strings_of(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|v| {
            v[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {v}"))
                .to_owned()
        })
        .collect()
}

/// The `first` and `second` of every element of a JSON list, in order.
#[track_caller]
pub fn string_pairs_of(list: &Value, first: &str, second: &str) -> Vec<(String, String)> {
    strings_of(list, first)
        .into_iter()
        .zip(strings_of(list, second))
        .collect()
}

/// The `field` of every item of a list page, in order.
#[track_caller]
pub fn item_fields(page: &Value, field: &str) -> Vec<String> {
    strings_of(&page["items"], field)
}

/// The items of a list page, in order.
#[track_caller]
pub fn items(page: &Value) -> std::slice::Iter<'_, Value> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list page: {page}"))
        .iter()
}

/// The item of a list page whose `field` is `value`, which must be there.
#[track_caller]
pub fn item_where<'a>(page: &'a Value, field: &str, value: &str) -> &'a Value {
    items(page)
        .find(|item| item[field] == value)
        .unwrap_or_else(|| panic!("no item whose {field} is {value} in {page}"))
}

/// Every response the tests see must be one the contract describes.
#[track_caller]
pub fn check_against_spec(method: &str, path: &str, response: &Response) {
    let spec = Spec::get();
    let result = if response.text.is_empty() {
        spec.check_status_documented(method, path, response.status)
    } else {
        spec.validate_response(method, path, response.status, &response.json)
    };
    if let Err(problem) = result {
        panic!("response breaks api-spec/openapi.yaml: {problem}");
    }
}

/// The number an environment variable sets (a run's length, its count of cycles), or `default`
/// when it is not set; a value that is not a number fails the run.
pub fn number_from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

/// Installs a Node test suite's packages from its lockfile once (`npm ci`), unless `marker`
/// (a package folder under `node_modules`) is already there.
pub fn install_node_modules(dir: &std::path::Path, marker: &str) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if dir.join("node_modules").join(marker).is_dir() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("run npm ci");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

/// Node, npm and Chromium are there, or the browser tests are skipped (a failure when
/// `DIEMDANH_REQUIRE_BROWSER=1`, as in CI).
fn browser_tools() -> Option<std::path::PathBuf> {
    let required = std::env::var("DIEMDANH_REQUIRE_BROWSER").as_deref() == Ok("1");
    let chromium = std::env::var_os("CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/bin/chromium"));
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    if node && chromium.exists() {
        return Some(chromium);
    }
    assert!(
        !required,
        "node or chromium ({}) missing and DIEMDANH_REQUIRE_BROWSER=1",
        chromium.display()
    );
    eprintln!("node or chromium missing: skipping the browser tests");
    None
}

/// Access tokens of the server the browser drives: 45 s, and the apps refresh 30 s before
/// expiry, so every scenario runs through token refreshes.
const BROWSER_TOKEN_TTL_SECS: u64 = 45;

/// Runs one suite of `tests/browser/` (`script`) in Debian's Chromium against a server of this
/// backend with the demo data; screenshots in `target/<artifacts>/<backend>/` (under
/// `CARGO_TARGET_DIR` when it is set); `env` adds what the suite needs beyond the server.
pub fn run_browser_suite(
    backend: Backend,
    script: &str,
    artifacts: &str,
    env: &[(&str, &std::path::Path)],
) {
    let Some(chromium) = browser_tools() else {
        return;
    };
    let app = TestApp::start_with(backend, |config| {
        config.access_token_ttl_secs = BROWSER_TOKEN_TTL_SECS;
    });
    let app = app.with_demo();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    // The last package added to the lockfile: an older install lacks it and is redone.
    install_node_modules(&dir, "axe-core");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let artifacts = target.join(artifacts).join(match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    });
    let output = std::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", script])
        .current_dir(&dir)
        .env("DIEMDANH_BASE", &app.base)
        .env("DIEMDANH_ARTIFACTS", &artifacts)
        .env(
            "DIEMDANH_ACCESS_TOKEN_TTL_SECS",
            BROWSER_TOKEN_TTL_SECS.to_string(),
        )
        .env("CHROMIUM", chromium)
        .envs(env.iter().copied())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser tests ({script}) failed"
    );
    // Node's spec reporter closes with the counts: a scenario skipped or lost would show.
    assert!(
        stdout.contains("ℹ fail 0") && stdout.contains("ℹ skipped 0"),
        "every browser scenario of {script} ran and passed"
    );
}

/// The regular files under a directory and its subdirectories, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found.sort();
    found
}
