//! `deploy/compose.yaml` parses and describes the documented setup: PostgreSQL, an S3 store with
//! its bucket, three instances of the repository's image on both, and a load balancer whose
//! configuration sends to all three. No container engine runs here; `docker compose config`
//! where one exists checks the rest.

use std::path::Path;

use serde_norway::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const INSTANCES: [&str; 3] = ["diemdanh-1", "diemdanh-2", "diemdanh-3"];

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut value = value;
    for key in path {
        value = &value[*key];
    }
    value
        .as_str()
        .unwrap_or_else(|| panic!("{} is not a string: {value:?}", path.join(".")))
}

/// A list of strings (a command in exec form).
fn words(value: &Value) -> Vec<&str> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect()
}

#[test]
fn the_compose_file_runs_three_instances_on_shared_storage() {
    let compose: Value = serde_norway::from_str(&read("deploy/compose.yaml")).expect("valid YAML");
    let services = &compose["services"];
    assert!(text(services, &["postgres", "image"]).starts_with("postgres:15"));
    assert!(services["postgres"]["healthcheck"].is_mapping());
    assert!(services["minio"]["healthcheck"].is_mapping());
    assert!(
        words(&services["create-bucket"]["entrypoint"])
            .iter()
            .any(|w| w.contains("mc mb --ignore-existing store/diemdanh-materials")),
        "the bucket the instances use is created"
    );

    let built = &services["diemdanh-1"]["build"];
    assert_eq!(text(built, &["context"]), "..");
    assert!(
        Path::new(ROOT)
            .join("deploy")
            .join(text(built, &["context"]))
            .join(text(built, &["dockerfile"]))
            .is_file(),
        "the build names the repository's Dockerfile"
    );
    let documented = read("README.md");
    for name in INSTANCES {
        let service = &services[name];
        assert_eq!(text(service, &["image"]), "diemdanh:local", "{name}");
        let env = &service["environment"];
        assert!(text(env, &["DATABASE_URL"]).starts_with("postgres://diemdanh:"));
        assert!(text(env, &["DATABASE_URL"]).ends_with("@postgres:5432/diemdanh"));
        assert!(text(env, &["DIEMDANH_STORE_URL"]).starts_with("s3://diemdanh-materials/"));
        assert_eq!(text(env, &["DIEMDANH_S3_ENDPOINT"]), "http://minio:9000");
        // Every setting passed is one the server has (a misspelt one would be ignored).
        for key in env.as_mapping().unwrap().keys() {
            let key = key.as_str().unwrap();
            assert!(
                documented.contains(&format!("`{key}`")),
                "{name}: {key} is not a setting in README's Configuration"
            );
        }
        assert_eq!(
            text(service, &["depends_on", "postgres", "condition"]),
            "service_healthy"
        );
        assert_eq!(
            text(service, &["depends_on", "create-bucket", "condition"]),
            "service_completed_successfully"
        );
        assert!(
            words(&service["healthcheck"]["test"]).contains(&"http://127.0.0.1:8080/readyz"),
            "{name}: healthy only when its database answers"
        );
        assert_eq!(
            services["lb"]["depends_on"][name]["condition"].as_str(),
            Some("service_healthy")
        );
    }

    let mount = services["lb"]["volumes"][0].as_str().unwrap();
    let config = mount.split(':').next().unwrap();
    let nginx = read(&format!("deploy/{}", config.trim_start_matches("./")));
    for name in INSTANCES {
        assert!(
            nginx.contains(&format!("server {name}:8080")),
            "nginx sends to {name}"
        );
    }
    assert!(read("deploy/OPERATIONS.md").contains("pg_dump"));
}

#[test]
fn prometheus_scrapes_every_instance_and_grafana_shows_the_dashboard() {
    let compose: Value = serde_norway::from_str(&read("deploy/compose.yaml")).expect("valid YAML");
    let services = &compose["services"];
    let prometheus_mount = services["prometheus"]["volumes"][0].as_str().unwrap();
    let (config, target) = prometheus_mount.split_once(':').unwrap();
    assert!(target.starts_with("/etc/prometheus/prometheus.yml"));
    let prometheus: Value = serde_norway::from_str(&read(&format!(
        "deploy/{}",
        config.trim_start_matches("./")
    )))
    .expect("valid YAML");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(text(job, &["metrics_path"]), "/metrics");
    let targets = words(&job["static_configs"][0]["targets"]);
    for name in INSTANCES {
        let env = &services[name]["environment"];
        let bind = text(env, &["DIEMDANH_METRICS_BIND"]);
        let port = bind.rsplit(':').next().unwrap();
        assert!(
            targets.contains(&format!("{name}:{port}").as_str()),
            "Prometheus scrapes {name} where it serves its metrics ({bind}): {targets:?}"
        );
        // The metrics listener is for the compose network: never published on the host.
        let published = services[name]["ports"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        assert!(published.is_empty(), "{name} publishes no port");
        assert!(services[name]["environment"]["DIEMDANH_METRICS_TOKEN"].is_null());
    }
    let grafana_mounts = words(&services["grafana"]["volumes"]);
    for (source, target) in grafana_mounts.iter().filter_map(|m| m.split_once(':')) {
        if let Some(relative) = source.strip_prefix("./") {
            assert!(
                Path::new(ROOT).join("deploy").join(relative).exists(),
                "{source} is in the repository"
            );
            assert!(
                target.starts_with("/etc/grafana/provisioning")
                    || target.starts_with("/var/lib/grafana/dashboards")
            );
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/diemdanh.json")).expect("JSON");
    assert!(!dashboard["panels"].as_array().unwrap().is_empty());
    // Grafana reaches Prometheus by its compose name.
    let datasource = read("deploy/grafana/provisioning/datasources/prometheus.yaml");
    assert!(datasource.contains("http://prometheus:9090"));
}
