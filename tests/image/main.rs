//! The container image, as a deployment runs it: the image built from the Dockerfile
//! (`tests/image/build.sh`) started by podman with its data directory as a volume, on SQLite and
//! on PostgreSQL (two containers on one database). Through the containers: `/healthz`, the web
//! apps with their security headers, an administrator made with the image's command line, a
//! login, and trainers' devices pushing and pulling attendance; nothing acknowledged is lost and
//! the devices converge.
//!
//! Not part of plain `cargo test` (it needs podman and a built image):
//! `DIEMDANH_IMAGE=localhost/diemdanh:test cargo test --test image` (`.ci/run` does).

#[path = "../it/support/mod.rs"]
// Only the process fleet is used here, with containers instead of the test binary.
#[allow(dead_code)]
mod support;

use diemdanh::db;

use serde_json::Value;

use support::device::Device;
use support::fleet::{Acked, Fleet, Instance, Launcher, World, podman};
use support::{fleet::check_nothing_lost_and_converged, postgres};

const TRAINERS: usize = 2;
const SESSIONS: usize = 3;
const PEOPLE: usize = 6;
const ROUNDS: usize = 4;
const BATCH: usize = 10;

fn image() -> String {
    std::env::var("DIEMDANH_IMAGE")
        .expect("DIEMDANH_IMAGE names the image to test (tests/image/build.sh builds it)")
}

/// The checks every backend shares, on a fleet whose containers are listening.
fn serves_and_syncs(fleet: &Fleet, instances: &[Instance]) {
    for instance in instances {
        let health = fleet.call_on(&instance.base, "GET", "/healthz", None, None);
        assert_eq!(health.status, 200, "{}", health.text);
        // The web apps are in the binary: the console and the field app, under the strict CSP
        // (pages, not API operations: no contract to check them against).
        for page in ["/", "/app/"] {
            let response = fleet
                .send(&instance.base, "GET", page, None, None)
                .unwrap_or_else(|e| panic!("GET {page}: {e}"));
            assert_eq!(response.status, 200, "{page}");
            assert!(response.text.contains("<html"), "{page}: {}", response.text);
            let csp = response
                .header("content-security-policy")
                .unwrap_or_default();
            assert!(csp.contains("script-src 'self'"), "{page}: {csp}");
        }
    }

    let admin = fleet.add_admin();
    let world = World::create(fleet, &admin, TRAINERS, SESSIONS, PEOPLE);
    let mut devices: Vec<Device> = world
        .trainers
        .iter()
        .map(|trainer| Device::trainer(fleet, trainer))
        .collect();
    let mut acked: Vec<Acked> = Vec::new();
    for _ in 0..ROUNDS {
        for device in &mut devices {
            acked.extend(device.push_batch(fleet, &world, BATCH));
            device.pull(fleet);
        }
    }
    assert_eq!(acked.len(), ROUNDS * TRAINERS * BATCH);
    let pool = db::open(&fleet.storage()).unwrap();
    let mut conn = pool.get().unwrap();
    check_nothing_lost_and_converged(fleet, &mut conn, &admin, &acked, &mut devices);
    assert_eq!(fleet.server_errors(), Vec::<String>::new());
}

/// What the Dockerfile promises about how the server runs: as its own user, with its data in
/// the `/data` volume and a health check on `/healthz` (kept only in Docker's image format,
/// which tests/image/build.sh asks for).
#[test]
fn image_runs_unprivileged_with_a_health_check() {
    let output = podman()
        .args(["image", "inspect", &image()])
        .output()
        .expect("run podman");
    assert!(output.status.success(), "{output:?}");
    let images: Value = serde_json::from_slice(&output.stdout).unwrap();
    let inspected = &images[0];
    let config = &inspected["Config"];
    assert_eq!(config["User"], "diemdanh", "{config}");
    assert!(config["Volumes"].get("/data").is_some(), "{config}");
    assert_eq!(config["Entrypoint"][0], "diemdanh", "{config}");
    let check = inspected["Healthcheck"]["Test"].to_string();
    assert!(
        check.contains("/healthz"),
        "no health check on /healthz: {check}"
    );
}

#[test]
fn image_serves_on_sqlite() {
    let fleet = Fleet::launched_by(Launcher::Image(image()), None, Vec::new());
    let instance = fleet.spawn(&[]).wait();
    *fleet.bases.write().unwrap() = vec![instance.base.clone()];
    serves_and_syncs(&fleet, std::slice::from_ref(&instance));
}

#[test]
fn image_serves_on_postgres() {
    let pg = postgres::fresh_database()
        .expect("PostgreSQL for the image test (its server programs or TEST_DATABASE_URL)");
    let fleet = Fleet::launched_by(Launcher::Image(image()), Some(pg.url.clone()), Vec::new());
    let instances: Vec<Instance> = (0..2).map(|_| fleet.spawn(&[]).wait()).collect();
    *fleet.bases.write().unwrap() = instances.iter().map(|i| i.base.clone()).collect();
    serves_and_syncs(&fleet, &instances);
}
