//! PostgreSQL databases for the integration tests.
//!
//! Every suite runs on SQLite and on PostgreSQL. A test asks [`fresh_database`]
//! for an empty database of its own. The server behind it is the one named by
//! `TEST_DATABASE_URL` (a `postgres://` URL) or, failing that, a private cluster
//! that this test process starts on first use and stops when it exits.
//!
//! SQL runs through `psql`, which every PostgreSQL installation ships, so the
//! tests need no client library of their own.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, empty database for one test; dropped (`DROP DATABASE ... WITH (FORCE)`)
/// when the guard drops.
pub struct PgDatabase {
    pub url: String,
    name: String,
    server: &'static Server,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // FORCE ends connections that a failing test may have left open.
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(err) = self.server.execute(&sql) {
            log(&format!(
                "could not drop test database {}: {err}",
                self.name
            ));
        }
    }
}

/// None when PostgreSQL is not available and not required.
///
/// Panics when it is required (`DIEMDANH_REQUIRE_POSTGRES` set to anything but
/// empty or `0`) yet unavailable, and when an available server cannot be used:
/// a broken setup must fail, not be skipped.
pub fn fresh_database() -> Option<PgDatabase> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);

    let server = server()?;
    // The pid keeps names apart when several test processes share TEST_DATABASE_URL.
    let name = format!(
        "diemdanh_test_{}_{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(err) = server.execute(&format!("CREATE DATABASE \"{name}\"")) {
        panic!("could not create test database {name}: {err}");
    }
    Some(PgDatabase {
        url: with_database(&server.admin_url, &name),
        name,
        server,
    })
}

/// Whether PostgreSQL is there for the tests, with the same panics as [`fresh_database`].
// The benches include this file for `fresh_database` alone.
#[allow(dead_code)]
pub fn available() -> bool {
    server().is_some()
}

/// The server the test databases are created on: None when it is not available and not
/// required (see [`fresh_database`]).
fn server() -> Option<&'static Server> {
    match SERVER.get_or_init(locate_server) {
        Ok(Some(server)) => Some(server),
        Ok(None) if postgres_required() => panic!(
            "DIEMDANH_REQUIRE_POSTGRES is set but PostgreSQL is not available: set \
             TEST_DATABASE_URL, or install the server programs (initdb and pg_ctl on PATH \
             or in {DEBIAN_ROOT}/<version>/bin, e.g. `apt-get install postgresql`)"
        ),
        Ok(None) => None,
        Err(err) => panic!("PostgreSQL for the tests could not be set up: {err}"),
    }
}

/// Found (or started) once per process; an error is kept so that every test
/// reports it instead of each retrying a broken setup.
static SERVER: OnceLock<Result<Option<Server>, String>> = OnceLock::new();

const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

struct Server {
    /// URL of the maintenance database, where test databases are created and dropped.
    admin_url: String,
    psql: PathBuf,
    /// The private cluster to stop at exit; None for `TEST_DATABASE_URL`'s server.
    cluster: Option<Cluster>,
}

impl Server {
    fn execute(&self, sql: &str) -> Result<(), String> {
        let mut cmd = Command::new(&self.psql);
        // -X: a ~/.psqlrc must not change what runs.
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(&self.admin_url)
            .args(["-c", sql]);
        // Described by its SQL: the URL may hold a password.
        run(cmd, &format!("psql -c '{sql}'")).map(drop)
    }
}

fn locate_server() -> Result<Option<Server>, String> {
    if let Some(url) = env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        let server = Server {
            admin_url: url,
            psql: find_psql(None)?,
            cluster: None,
        };
        log("PostgreSQL tests: using the server named by TEST_DATABASE_URL");
        return Ok(Some(server));
    }
    let Some((bin, found)) = server_bin_dir() else {
        log(&format!(
            "PostgreSQL tests: not available (no TEST_DATABASE_URL, and no initdb/pg_ctl \
             on PATH or in {DEBIAN_ROOT}/*/bin)"
        ));
        return Ok(None);
    };
    start_cluster(&bin, found).map(Some)
}

pub(crate) fn postgres_required() -> bool {
    env::var("DIEMDANH_REQUIRE_POSTGRES").is_ok_and(|value| !matches!(value.as_str(), "" | "0"))
}

/// Directory holding the server programs, and how it was found.
pub(crate) fn server_bin_dir() -> Option<(PathBuf, &'static str)> {
    if let Some(initdb) = on_path("initdb")
        && on_path("pg_ctl").is_some()
        // Resolve symlinks such as /usr/local/bin/initdb, so that psql comes from
        // the same installation.
        && let Some(dir) = fs::canonicalize(initdb)
            .ok()
            .and_then(|path| path.parent().map(Path::to_path_buf))
        && dir.join("pg_ctl").is_file()
    {
        return Some((dir, "initdb and pg_ctl found on PATH"));
    }
    newest_debian_bin_dir(&["initdb", "pg_ctl"])
        .map(|dir| (dir, "newest version in /usr/lib/postgresql"))
}

/// psql from `dir` when it has one, else from PATH or the newest Debian installation.
pub(crate) fn find_psql(dir: Option<&Path>) -> Result<PathBuf, String> {
    match dir
        .map(|dir| dir.join("psql"))
        .filter(|psql| psql.is_file())
    {
        Some(psql) => Ok(psql),
        None => find_client("psql"),
    }
}

/// A PostgreSQL client program (`psql`, `pg_dump`, `pg_restore`) from PATH or the newest Debian
/// installation.
pub(crate) fn find_client(program: &str) -> Result<PathBuf, String> {
    on_path(program)
        .or_else(|| newest_debian_bin_dir(&[program]).map(|dir| dir.join(program)))
        .ok_or_else(|| format!("{program} not found on PATH or in {DEBIAN_ROOT}/*/bin"))
}

fn on_path(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Debian keeps the server programs off PATH, in `/usr/lib/postgresql/<version>/bin`.
fn newest_debian_bin_dir(programs: &[&str]) -> Option<PathBuf> {
    fs::read_dir(DEBIAN_ROOT)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            programs
                .iter()
                .all(|program| bin.join(program).is_file())
                .then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// A throwaway cluster in a directory of its own, which holds the data
/// directory, the server log and the Unix socket.
pub(crate) struct Cluster {
    pub(crate) dir: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    pub(crate) run_as: RunAs,
}

fn start_cluster(bin: &Path, found: &str) -> Result<Server, String> {
    let psql = find_psql(Some(bin))?;
    let run_as = RunAs::detect();
    let parent = run_as.cluster_parent();
    let dir = tempfile::Builder::new()
        .prefix("diemdanh-pg-")
        .tempdir_in(&parent)
        .map_err(|err| {
            format!(
                "could not create a directory in {}: {err}",
                parent.display()
            )
        })?
        // A TempDir in a static is never dropped; the atexit hook removes it.
        .keep();
    let cluster = Cluster {
        dir,
        pg_ctl: bin.join("pg_ctl"),
        run_as,
    };
    let port = match cluster
        .init(&bin.join("initdb"))
        .and_then(|()| cluster.start())
    {
        Ok(port) => port,
        Err(err) => {
            // The server is most likely not running, so a failing stop is expected.
            let _ = cluster.stop_and_remove();
            return Err(err);
        }
    };
    // SAFETY: stop_cluster is an extern "C" fn that takes no arguments and does not unwind.
    if unsafe { libc::atexit(stop_cluster) } != 0 {
        let _ = cluster.stop_and_remove();
        return Err("could not register the atexit hook that stops the cluster".to_owned());
    }
    log(&format!(
        "PostgreSQL tests: private cluster in {} listening on 127.0.0.1:{port} ({found}: {})",
        cluster.dir.display(),
        bin.display()
    ));
    Ok(Server {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        psql,
        cluster: Some(cluster),
    })
}

/// Runs when the test process exits: libtest ends through `exit`, which runs
/// atexit hooks, while Rust never drops statics.
extern "C" fn stop_cluster() {
    if let Some(Ok(Some(Server {
        cluster: Some(cluster),
        ..
    }))) = SERVER.get()
        && let Err(err) = cluster.stop_and_remove()
    {
        log(&format!(
            "could not clean up the PostgreSQL test cluster: {err}"
        ));
    }
}

impl Cluster {
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub(crate) fn init(&self, initdb: &Path) -> Result<(), String> {
        if self.run_as != RunAs::CurrentUser {
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(&self.dir);
            run(chown, "chown postgres")?;
        }
        let initdb = |locale: &str| {
            let mut cmd = Command::new(initdb);
            cmd.arg("-D").arg(self.data_dir()).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                locale,
            ]);
            self.run(cmd, "initdb")
        };
        // Not every system has the C.UTF-8 locale; the C locale works everywhere.
        // A failed initdb removes the data directory it created, so retrying is safe.
        initdb("--locale=C.UTF-8").or_else(|first| {
            initdb("--no-locale").map_err(|second| format!("{first}\n{second}"))
        })?;

        // Set in the config file rather than with `pg_ctl -o`, which goes through a
        // shell and would need the directory quoted. Durability is pointless for
        // throwaway data, and many tests connect at once.
        let socket_dir = self
            .dir
            .to_str()
            .ok_or("the cluster directory is not UTF-8")?;
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_connections = 300\n",
            socket_dir.replace('\'', "''")
        );
        let conf = self.data_dir().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .map_err(|err| format!("could not write {}: {err}", conf.display()))
    }

    /// Starts the server and returns its port. Another process may take the
    /// probed port before the server binds it, hence the retries.
    pub(crate) fn start(&self) -> Result<u16, String> {
        let mut errors = Vec::new();
        for _ in 0..3 {
            let port = free_port()?;
            match self.start_on(port) {
                Ok(()) => return Ok(port),
                Err(err) => errors.push(err),
            }
        }
        let server_log = fs::read_to_string(self.log_file()).unwrap_or_default();
        Err(format!(
            "{}\nserver log:\n{}",
            errors.join("\n"),
            server_log.trim_end()
        ))
    }

    pub(crate) fn start_on(&self, port: u16) -> Result<(), String> {
        let mut cmd = Command::new(&self.pg_ctl);
        // -l also keeps the server off our pipes, which would make output() wait for it.
        cmd.args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-o", &format!("-p {port}")]);
        self.run(cmd, &format!("pg_ctl start on port {port}"))
            .map(drop)
    }

    /// Stops the server, if running, and deletes the cluster directory.
    pub(crate) fn stop_and_remove(&self) -> Result<(), String> {
        let mut cmd = Command::new(&self.pg_ctl);
        cmd.args(["stop", "-m", "immediate", "-D"])
            .arg(self.data_dir());
        let stopped = self.run(cmd, "pg_ctl stop").map(drop);
        let removed = fs::remove_dir_all(&self.dir)
            .map_err(|err| format!("could not remove {}: {err}", self.dir.display()));
        stopped.and(removed)
    }

    pub(crate) fn run(&self, cmd: Command, what: &str) -> Result<Output, String> {
        let mut cmd = self.run_as.wrap(cmd);
        // The test's working directory may be closed to the postgres user.
        cmd.current_dir(&self.dir);
        run(cmd, what)
    }
}

/// initdb and postgres refuse to run as root, so root runs them as the
/// `postgres` system user that Debian's packages create.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAs {
    CurrentUser,
    Runuser,
    Su,
}

impl RunAs {
    pub(crate) fn detect() -> RunAs {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            RunAs::CurrentUser
        } else if on_path("runuser").is_some() {
            RunAs::Runuser
        } else {
            RunAs::Su
        }
    }

    /// Where a cluster's directory goes: the postgres user must be able to reach it, and
    /// TMPDIR may be somewhere it cannot (e.g. under /root).
    pub(crate) fn cluster_parent(self) -> PathBuf {
        match self {
            RunAs::CurrentUser => env::temp_dir(),
            RunAs::Runuser | RunAs::Su => PathBuf::from("/tmp"),
        }
    }

    fn wrap(self, cmd: Command) -> Command {
        match self {
            RunAs::CurrentUser => cmd,
            RunAs::Runuser => {
                let mut wrapped = Command::new("runuser");
                wrapped
                    .args(["-u", "postgres", "--"])
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                wrapped
            }
            RunAs::Su => {
                // su takes one shell command line, so every word is quoted for /bin/sh.
                let words = std::iter::once(cmd.get_program()).chain(cmd.get_args());
                let mut line = Vec::new();
                for word in words {
                    line.push(b'\'');
                    for &byte in word.as_bytes() {
                        match byte {
                            b'\'' => line.extend_from_slice(b"'\\''"),
                            _ => line.push(byte),
                        }
                    }
                    line.extend_from_slice(b"' ");
                }
                let mut wrapped = Command::new("su");
                wrapped
                    .args(["postgres", "-s", "/bin/sh", "-c"])
                    .arg(OsString::from_vec(line));
                wrapped
            }
        }
    }
}

/// Runs `cmd`; a failure to start or a non-zero exit becomes an error that
/// carries the command's output.
pub(crate) fn run(mut cmd: Command, what: &str) -> Result<Output, String> {
    let output = cmd
        .output()
        .map_err(|err| format!("could not run {what}: {err}"))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr).trim_end()
    ))
}

/// A port that is free right now: the OS picks it for a listener we drop at once.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("could not find a free port: {err}"))
}

/// `url` with its database name (the path) replaced by `name`, keeping any
/// query parameters.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |index| index + 3);
    let (scheme, rest) = url.split_at(authority_start);
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map_or("", |index| &tail[index..]);
    format!("{scheme}{authority}/{name}{query}")
}

/// Writes straight to stderr: libtest captures `eprintln!` per test, which
/// would hide these lines unless that test fails.
fn log(message: &str) {
    let _ = writeln!(io::stderr(), "{message}");
}

#[test]
fn with_database_replaces_only_the_database_name() {
    let cases = [
        ("postgres://u:p@h:5432/postgres", "postgres://u:p@h:5432/x"),
        (
            "postgres://u@h/db?sslmode=disable",
            "postgres://u@h/x?sslmode=disable",
        ),
        ("postgresql://h:5432", "postgresql://h:5432/x"),
        (
            "postgres://h?sslmode=require",
            "postgres://h/x?sslmode=require",
        ),
        (
            "postgresql:///db?host=/run/postgresql",
            "postgresql:///x?host=/run/postgresql",
        ),
    ];
    for (url, expected) in cases {
        assert_eq!(with_database(url, "x"), expected, "{url}");
    }
}
