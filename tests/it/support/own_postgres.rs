//! A PostgreSQL server of one test's own, for tests that stop it under the server (the shared
//! cluster of `postgres.rs` serves every other test and must stay up).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use super::postgres::{Cluster, RunAs, find_psql, postgres_required, run, server_bin_dir};

/// A PostgreSQL server of one test's own, which it may stop and start again (on the same
/// port) without disturbing the other tests. Stopped and removed when dropped.
pub struct OwnCluster {
    cluster: Cluster,
    port: u16,
    psql: PathBuf,
}

/// None when PostgreSQL's server programs are missing and PostgreSQL is not required (a server
/// named by `TEST_DATABASE_URL` is not one a test may stop).
pub fn own_cluster() -> Option<OwnCluster> {
    let Some((bin, _)) = server_bin_dir() else {
        assert!(
            !postgres_required(),
            "DIEMDANH_REQUIRE_POSTGRES is set but initdb and pg_ctl are not available"
        );
        return None;
    };
    let run_as = RunAs::detect();
    let dir = tempfile::Builder::new()
        .prefix("diemdanh-own-pg-")
        .tempdir_in(run_as.cluster_parent())
        .expect("a directory for the cluster")
        .keep();
    let cluster = Cluster {
        dir,
        pg_ctl: bin.join("pg_ctl"),
        run_as,
    };
    // Unlike the shared cluster, durable: a test that crashes this server must not lose
    // what it acknowledged.
    let durable = |cluster: &Cluster| {
        let conf = cluster.data_dir().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| {
                file.write_all(b"\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\n")
            })
            .map_err(|err| format!("could not write {}: {err}", conf.display()))
    };
    let port = cluster
        .init(&bin.join("initdb"))
        .and_then(|()| durable(&cluster))
        .and_then(|()| cluster.start())
        .unwrap_or_else(|err| {
            let _ = cluster.stop_and_remove();
            panic!("could not start a PostgreSQL cluster: {err}")
        });
    Some(OwnCluster {
        cluster,
        port,
        psql: find_psql(Some(&bin)).expect("psql"),
    })
}

impl OwnCluster {
    /// A new empty database on this server, by URL.
    pub fn create_database(&self, name: &str) -> String {
        let mut cmd = Command::new(&self.psql);
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url("postgres"))
            .args(["-c", &format!("CREATE DATABASE \"{name}\"")]);
        run(cmd, "psql CREATE DATABASE").expect("create the database");
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl stop -m <mode>`: `fast` ends sessions cleanly, `immediate` as a crash would.
    pub fn stop(&self, mode: &str) {
        let mut cmd = Command::new(&self.cluster.pg_ctl);
        cmd.args(["stop", "-w", "-m", mode, "-D"])
            .arg(self.cluster.data_dir());
        self.cluster
            .run(cmd, "pg_ctl stop")
            .expect("stop PostgreSQL");
    }

    /// Starts the stopped server again on its port.
    pub fn start(&self) {
        self.cluster
            .start_on(self.port)
            .expect("start PostgreSQL again");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop_and_remove();
    }
}
