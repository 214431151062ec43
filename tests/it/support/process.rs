//! The real `diemdanh` binary as a child process, for tests that need what an in-process server
//! cannot give: its own memory figures, its own mount namespace (a full disk), a database server
//! of its own to stop under it.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::postgres::PgDatabase;
use super::{Backend, JsonBody, Response, check_against_spec, exchange, server_output};

/// `diemdanh --data-dir DIR [global…] serve --bind 127.0.0.1:0 [serve…]`, as program and
/// arguments, so that a caller can run it under a wrapper (`unshare …`).
pub fn serve_args(data_dir: &Path, global: &[&str], serve: &[&str]) -> Vec<String> {
    let mut args = vec![
        env!("CARGO_BIN_EXE_diemdanh").to_owned(),
        "--data-dir".to_owned(),
        data_dir.to_string_lossy().into_owned(),
    ];
    args.extend(global.iter().map(|s| (*s).to_owned()));
    args.extend(["serve", "--bind", "127.0.0.1:0"].map(str::to_owned));
    args.extend(serve.iter().map(|s| (*s).to_owned()));
    args
}

/// A server process over a fresh database of the backend, with the demo data.
pub fn start_process(
    backend: Backend,
    dir: &Path,
    global: &[&str],
) -> (ServerProcess, Option<PgDatabase>) {
    let pg = backend.fresh_database();
    let mut args: Vec<&str> = global.to_vec();
    if let Some(pg) = &pg {
        args.extend(["--database-url", pg.url.as_str()]);
    }
    let program = serve_args(dir, &args, &["--demo", "--workers", "2"]);
    let server =
        ServerProcess::start(&program, &dir.join("server.log")).unwrap_or_else(|e| panic!("{e}"));
    (server, pg)
}

pub struct ServerProcess {
    child: Child,
    pub base: String,
    agent: ureq::Agent,
}

/// Spawns a server (`command`, its stderr to `log`), killed should the test process die
/// without unwinding; the receiver gets the address of its "listening on" line. Its stdout is
/// drained into `log` too, so that the pipe never fills.
pub fn spawn_server(mut command: Command, log: &Path) -> (Child, mpsc::Receiver<String>) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(File::create(log).expect("server log")));
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().expect("start the diemdanh binary");
    let stdout = child.stdout.take().unwrap();
    let out = File::options().append(true).open(log).ok();
    let address = server_output::drain(stdout, out);
    (child, address)
}

impl ServerProcess {
    /// Runs `program` (the binary, or a wrapper that ends by exec'ing it, so that the child's
    /// pid is the server's) and waits for its "listening on" line, its output going to `log`.
    /// The log is the error when it never gets there.
    pub fn start(program: &[String], log: &Path) -> Result<ServerProcess, String> {
        let mut command = Command::new(&program[0]);
        command.args(&program[1..]).env("DIEMDANH_LOG", "warn");
        let (mut child, address) = spawn_server(command, log);
        let Ok(base) = address.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the server did not start:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(ServerProcess { child, base, agent })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident memory so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// A path as the server sees it (through its mount namespace).
    pub fn seen_path(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid())).join(path.strip_prefix("/").unwrap())
    }

    /// Sends a request; the response must be one the spec documents. `Err` when the
    /// connection fails.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&[u8], &str)>,
    ) -> Result<Response, String> {
        let url = format!("{}{path}", self.base);
        let response = exchange(&self.agent, method, &url, token, body, &[])
            .and_then(Response::read)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        check_against_spec(method, path, &response);
        Ok(response)
    }

    #[track_caller]
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        self.try_send(method, path, token, JsonBody::of(body).bytes())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Logs in and returns the access token.
    #[track_caller]
    pub fn token(&self, username: &str, password: &str) -> String {
        let body =
            serde_json::json!({"username": username, "password": password, "device_name": "test"});
        let response = self
            .send("POST", "/api/v1/auth/login", None, Some(&body))
            .expect(200);
        response.json["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
