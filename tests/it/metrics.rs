//! `GET /metrics`: closed on the public port unless a token opens it, served alone on its own
//! listener, and read as Prometheus reads it: the counters move with the work done.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::resources::plan_class;
use crate::support::{Backend, TestApp};

backend_tests!(
    the_public_port_has_no_metrics_page_by_default,
    the_metrics_token_opens_the_page_on_the_public_port,
    the_metrics_listener_serves_the_page_and_nothing_else,
    the_counters_move_with_a_sync,
);

const TOKEN: &str = "metrics-token-for-tests";

/// Every sample of a page as Prometheus parses it, keyed by name and sorted labels.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

fn scrape(base: &str, token: Option<&str>) -> Samples {
    let url = format!("{base}/metrics");
    let mut request = ureq::get(&url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().expect("metrics page");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.body_mut().read_to_string().unwrap();
    assert!(
        text.ends_with("# EOF\n"),
        "the page ends as OpenMetrics says"
    );
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("a Prometheus text page");
    parsed
        .samples
        .into_iter()
        .map(|sample| {
            let mut labels: Vec<(String, String)> = sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            ((sample.metric, labels), value)
        })
        .collect()
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut key: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    key.sort();
    samples.get(&(name.to_owned(), key)).copied().unwrap_or(0.0)
}

fn the_public_port_has_no_metrics_page_by_default(app: TestApp) {
    app.call("GET", "/metrics", None, None)
        .expect_error(404, "not_found");
    // Not even an administrator's access token opens it.
    let admin = app.admin_token();
    app.get(&admin, "/metrics").expect(404);
}

fn the_metrics_token_opens_the_page_on_the_public_port(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.metrics_token = Some(TOKEN.into());
    });
    app.call("GET", "/metrics", None, None)
        .expect_error(401, "missing_token");
    let admin = app.admin_token();
    app.get(&admin, "/metrics")
        .expect_error(401, "invalid_metrics_token");
    let samples = scrape(&app.base, Some(TOKEN));
    assert!(
        value(&samples, "diemdanh_sync_revision", &[]) >= 0.0
            && samples
                .keys()
                .any(|(name, _)| name == "diemdanh_sync_revision"),
        "the page holds the revision counter"
    );
}

fn the_metrics_listener_serves_the_page_and_nothing_else(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.metrics_bind = Some("127.0.0.1:0".into());
    });
    let listener = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(listener, app.base);
    let samples = scrape(&listener, None);
    assert!(
        samples
            .keys()
            .any(|(name, _)| name == "diemdanh_db_pool_connections")
    );
    // The public port still has none, and the listener serves nothing but the page.
    app.call("GET", "/metrics", None, None).expect(404);
    for path in ["/api/v1/me", "/healthz", "/app/", "/api/v1/auth/login"] {
        let response = ureq::get(&format!("{listener}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("answer");
        assert_eq!(response.status(), 404, "{path} on the metrics listener");
    }
}

fn the_counters_move_with_a_sync(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.metrics_token = Some(TOKEN.into());
    });
    let admin = app.admin_token();
    let class = plan_class(&app, &admin, "hoa.metrics");
    let trainer = app.token("hoa.metrics", "trainer-password");
    let before = scrape(&app.base, Some(TOKEN));

    let hlc = format!(
        "{:013}-0000-metrics-device",
        chrono::Utc::now().timestamp_millis()
    );
    let mutation = |fields: Value| {
        json!({
            "mutation_id": uuid::Uuid::new_v4().to_string(),
            "collection": "attendance",
            "record_id": uuid::Uuid::new_v4().to_string(),
            "op": "upsert",
            "fields": fields,
            "hlc": hlc,
        })
    };
    let taken = mutation(
        json!({"session_id": class.session, "person_id": class.person, "status": "present"}),
    );
    // A session of no course the trainer teaches: refused and kept for an administrator.
    let refused = mutation(
        json!({"session_id": uuid::Uuid::new_v4().to_string(), "person_id": class.person, "status": "present"}),
    );
    let results = app
        .post(
            &trainer,
            "/api/v1/sync/push",
            &json!({ "mutations": [taken, refused] }),
        )
        .expect(200)
        .json["results"]
        .clone();
    assert_eq!(results[0]["status"], "applied");
    assert_eq!(results[1]["status"], "rejected");
    let reason = results[1]["reason"].as_str().unwrap().to_owned();
    let page = app.get(&trainer, "/api/v1/sync/pull").expect(200);
    let pulled = page.json["changes"].as_array().unwrap().len() as f64;

    let after = scrape(&app.base, Some(TOKEN));
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let push_route = [
        ("route", "/api/v1/sync/push"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(moved("diemdanh_http_requests_total", &push_route), 1.0);
    assert_eq!(
        moved(
            "diemdanh_http_request_duration_seconds_count",
            &[("route", "/api/v1/sync/push"), ("method", "POST")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "diemdanh_sync_push_mutations_total",
            &[("result", "applied"), ("reason", "")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "diemdanh_sync_push_mutations_total",
            &[("result", "rejected"), ("reason", &reason)]
        ),
        1.0
    );
    assert_eq!(moved("diemdanh_sync_quarantine_open", &[]), 1.0);
    assert!(moved("diemdanh_sync_revision", &[]) >= 1.0);
    let native = [("protocol", "native")];
    assert_eq!(moved("diemdanh_sync_pull_pages_total", &native), 1.0);
    assert_eq!(moved("diemdanh_sync_pull_records_total", &native), pulled);
    assert!(pulled >= 1.0, "the pull sent the class");
    // Unknown paths count under one label, not one series per path.
    let unknown = app.send_raw("GET", "/api/v1/no-such-thing", Some(&trainer), None, &[]);
    assert_eq!(unknown.status, 404);
    let last = scrape(&app.base, Some(TOKEN));
    assert!(
        last.keys().all(|(_, labels)| labels
            .iter()
            .all(|(k, v)| k != "route" || !v.contains("no-such-thing"))),
        "no series is named after a path"
    );
    assert_eq!(
        value(
            &last,
            "diemdanh_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ) - value(
            &after,
            "diemdanh_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
}

/// Every metric the shipped Grafana dashboard queries is one the server exposes.
#[test]
fn the_dashboard_queries_only_metrics_the_server_exposes() {
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.metrics_token = Some(TOKEN.into());
    });
    // One request of every kind the page labels, so that every family has a series.
    let admin = app.admin_token();
    app.get(&admin, "/api/v1/sync/pull").expect(200);
    let stray = json!({
        "mutation_id": uuid::Uuid::new_v4().to_string(),
        "collection": "attendance",
        "record_id": uuid::Uuid::new_v4().to_string(),
        "op": "upsert",
        "fields": {"session_id": uuid::Uuid::new_v4().to_string(), "person_id": uuid::Uuid::new_v4().to_string(), "status": "present"},
        "hlc": format!("{:013}-0000-metrics-device", chrono::Utc::now().timestamp_millis()),
    });
    app.post(
        &admin,
        "/api/v1/sync/push",
        &json!({ "mutations": [stray] }),
    )
    .expect(200);
    let page = ureq::get(&format!("{}/metrics", app.base))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call()
        .expect("metrics page")
        .body_mut()
        .read_to_string()
        .unwrap();
    let exposed: std::collections::BTreeSet<&str> = page
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/grafana/dashboards/diemdanh.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            queried.extend(
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| word.starts_with("diemdanh_"))
                    .map(str::to_owned),
            );
        }
    }
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        assert!(
            exposed.contains(name.as_str()),
            "the dashboard queries {name}, which /metrics does not expose"
        );
    }
}
