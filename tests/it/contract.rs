//! The route table and the OpenAPI document describe the same API, and every route is live.

use std::collections::BTreeSet;

use crate::support::spec::Spec;
use crate::support::{Backend, TestApp};

#[test]
fn the_spec_lists_exactly_the_routes_the_app_serves() {
    let served: BTreeSet<(String, String)> = diemdanh::api::route_table()
        .into_iter()
        .map(|(path, method, _)| (method.as_str().to_owned(), path.to_owned()))
        .collect();
    let documented: BTreeSet<(String, String)> = Spec::get().operations().into_iter().collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from api-spec/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "spec operations the app does not serve: {unserved:?}"
    );
}

#[test]
fn every_route_in_the_table_is_reachable() {
    // With a metrics token, `/metrics` on the public port asks for it instead of not existing.
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.metrics_token = Some("metrics-token".into());
    });
    for (path, method, _) in diemdanh::api::route_table() {
        let concrete = path.replace("{id}", "0196f4e2-0000-7000-8000-000000000000");
        let response = app.send_raw(method.as_str(), &concrete, None, None, &[]);
        assert_ne!(
            response.code(),
            "not_found",
            "{method} {path} is not routed: {}",
            response.text
        );
        assert_ne!(response.status, 405, "{method} {path} answered 405");
    }
}

#[test]
fn unknown_routes_and_methods_answer_json_errors() {
    let app = TestApp::start(Backend::Sqlite);
    let missing = app.send_raw("GET", "/api/v1/nothing-here", None, None, &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "not_found");
    let admin = app.admin_token();
    let wrong_method = app.send_raw("PATCH", "/api/v1/units", Some(&admin), None, &[]);
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.code(), "method_not_allowed");
}

#[test]
fn health_and_readiness_answer() {
    let app = TestApp::start(Backend::Sqlite);
    assert_eq!(
        app.call("GET", "/healthz", None, None).expect(200).json["status"],
        "ok"
    );
    let ready = app.call("GET", "/readyz", None, None).expect(200);
    assert_eq!(ready.json["database"], "sqlite");
    assert!(
        ready.header("x-request-id").is_some(),
        "responses carry a request id"
    );
}
