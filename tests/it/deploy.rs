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
