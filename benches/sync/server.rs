//! The real server binary as a subprocess, stopped when its guard drops (also on panic).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "../../tests/it/support/server_output.rs"]
mod server_output;

pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Server {
    /// Starts `diemdanh serve` on 127.0.0.1 with a port of the OS's choosing and waits until it
    /// listens. `database_url` None means SQLite in `data_dir`.
    pub fn start(data_dir: &Path, database_url: Option<&str>, workers: Option<usize>) -> Server {
        Self::start_with(data_dir, database_url, workers, &[])
    }

    /// `start` with settings given as `DIEMDANH_*` environment variables: a build that does not
    /// know one ignores it, so that the same run can measure an older binary
    /// (`DIEMDANH_BENCH_SERVER`, the path of another `diemdanh` binary, instead of this build's).
    pub fn start_with(
        data_dir: &Path,
        database_url: Option<&str>,
        workers: Option<usize>,
        settings: &[(&str, String)],
    ) -> Server {
        let log = data_dir.join("server.log");
        let stderr = File::create(&log).expect("server log file");
        let binary = std::env::var_os("DIEMDANH_BENCH_SERVER").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_diemdanh")),
            PathBuf::from,
        );
        let mut cmd = Command::new(binary);
        cmd.envs(settings.iter().map(|(name, value)| (name, value)));
        cmd.arg("--data-dir").arg(data_dir);
        match database_url {
            Some(url) => {
                cmd.arg("--database-url").arg(url);
            }
            None => {
                cmd.env_remove("DATABASE_URL");
            }
        }
        cmd.args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            // Longer than any run: tokens are taken once, before the measurements.
            "--access-token-ttl-secs",
            "86400",
        ]);
        if let Some(workers) = workers {
            cmd.arg("--workers").arg(workers.to_string());
        }
        // Should the benchmark die without unwinding (SIGKILL), the server goes too. The signal
        // follows the spawning thread: the main thread, which lives as long as the process.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("start the diemdanh binary");
        let stdout = child.stdout.take().expect("server stdout");

        // Request logs go to stdout: drained into a file so that the pipe never fills.
        let address = server_output::drain(stdout, File::create(data_dir.join("server.out")).ok());

        let mut server = Server {
            child,
            base: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match address.recv_timeout(Duration::from_millis(100)) {
                Ok(base) => {
                    server.base = base;
                    return server;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        panic!(
                            "the server exited ({status}) before listening:\n{}",
                            server.log_tail()
                        );
                    }
                }
                Err(_) => panic!(
                    "the server did not report its address:\n{}",
                    server.log_tail()
                ),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) of the server process in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU time the server process has used so far (user + system).
    pub fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        // SAFETY: sysconf has no preconditions.
        let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / per_sec)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM first (graceful shutdown), SIGKILL if it takes too long.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child, not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
