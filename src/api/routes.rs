//! The route table: every path and method the server answers. `api-spec/openapi.yaml` must list
//! exactly these (a test compares them).

use actix_web::http::Method;
use actix_web::{HttpResponse, Route, web};

use super::handlers::{
    audit, auth, health, imports, materials, metrics, reorganisation, reports, resources, roster,
    sync, users, watermelon,
};
use crate::domain::attendance::AttendanceRecords;
use crate::domain::courses::Courses;
use crate::domain::enrollments::Enrollments;
use crate::domain::materials::Materials;
use crate::domain::people::People;
use crate::domain::plans::TrainingPlans;
use crate::domain::sessions::Sessions;
use crate::domain::trainers::CourseTrainers;
use crate::domain::units::Units;
use crate::error::Error;

/// (path, method, route) for every endpoint.
pub fn route_table() -> Vec<(&'static str, Method, Route)> {
    let mut table = vec![
        ("/healthz", Method::GET, web::get().to(health::healthz)),
        ("/readyz", Method::GET, web::get().to(health::readyz)),
        (metrics::PATH, Method::GET, web::get().to(metrics::metrics)),
        (
            "/api/v1/auth/login",
            Method::POST,
            web::post().to(auth::login),
        ),
        (
            "/api/v1/auth/refresh",
            Method::POST,
            web::post().to(auth::refresh),
        ),
        (
            "/api/v1/auth/logout",
            Method::POST,
            web::post().to(auth::logout),
        ),
        ("/api/v1/me", Method::GET, web::get().to(auth::me)),
        (
            "/api/v1/me/password",
            Method::POST,
            web::post().to(auth::change_password),
        ),
        ("/api/v1/users", Method::GET, web::get().to(users::list)),
        ("/api/v1/users", Method::POST, web::post().to(users::create)),
        ("/api/v1/users/{id}", Method::GET, web::get().to(users::get)),
        (
            "/api/v1/users/{id}",
            Method::PATCH,
            web::patch().to(users::change),
        ),
        (
            "/api/v1/users/{id}/password",
            Method::POST,
            web::post().to(users::reset_password),
        ),
        (
            "/api/v1/devices",
            Method::GET,
            web::get().to(users::list_devices),
        ),
        (
            "/api/v1/devices/{id}/revoke",
            Method::POST,
            web::post().to(users::revoke_device),
        ),
        (
            "/api/v1/sync/push",
            Method::POST,
            web::post().to(sync::push),
        ),
        ("/api/v1/sync/pull", Method::GET, web::get().to(sync::pull)),
        (
            "/api/v1/sync/quarantine",
            Method::GET,
            web::get().to(sync::list_quarantine),
        ),
        (
            "/api/v1/sync/quarantine/{id}/dismiss",
            Method::POST,
            web::post().to(sync::dismiss_quarantined),
        ),
        (
            "/api/v1/sync/quarantine/{id}/reapply",
            Method::POST,
            web::post().to(sync::reapply_quarantined),
        ),
        (
            "/api/v1/sync/conflicts",
            Method::GET,
            web::get().to(sync::list_conflicts),
        ),
        (
            "/api/v1/sync/conflicts/{id}/resolve",
            Method::POST,
            web::post().to(sync::resolve_conflict),
        ),
        (
            "/api/v1/watermelon/sync",
            Method::GET,
            web::get().to(watermelon::pull),
        ),
        (
            "/api/v1/watermelon/sync",
            Method::POST,
            web::post().to(watermelon::push),
        ),
        (
            "/api/v1/imports/people",
            Method::POST,
            web::post().to(imports::people),
        ),
        // Before the unit CRUD routes: `/units/merge` must not be taken for `/units/{id}`.
        (
            "/api/v1/units/merge",
            Method::POST,
            web::post().to(reorganisation::merge),
        ),
        (
            "/api/v1/units/{id}/rename",
            Method::POST,
            web::post().to(reorganisation::rename),
        ),
        (
            "/api/v1/units/{id}/history",
            Method::GET,
            web::get().to(reorganisation::history),
        ),
        (
            "/api/v1/reports/courses/{id}",
            Method::GET,
            web::get().to(reports::course),
        ),
        (
            "/api/v1/reports/coverage",
            Method::GET,
            web::get().to(reports::coverage),
        ),
        (
            "/api/v1/reports/trainers/{id}",
            Method::GET,
            web::get().to(reports::trainer),
        ),
        (
            "/api/v1/reports/training-plans/{id}",
            Method::GET,
            web::get().to(reports::training_plan),
        ),
        ("/api/v1/audit", Method::GET, web::get().to(audit::list)),
    ];
    macro_rules! crud {
        ($collection:literal, $item:literal, $resource:ty) => {
            table.extend([
                (
                    $collection,
                    Method::GET,
                    web::get().to(resources::list::<$resource>),
                ),
                (
                    $collection,
                    Method::POST,
                    web::post().to(resources::create::<$resource>),
                ),
                (
                    $item,
                    Method::GET,
                    web::get().to(resources::get::<$resource>),
                ),
                (
                    $item,
                    Method::PUT,
                    web::put().to(resources::update::<$resource>),
                ),
                (
                    $item,
                    Method::DELETE,
                    web::delete().to(resources::delete::<$resource>),
                ),
            ])
        };
    }
    crud!("/api/v1/units", "/api/v1/units/{id}", Units);
    crud!("/api/v1/people", "/api/v1/people/{id}", People);
    crud!("/api/v1/courses", "/api/v1/courses/{id}", Courses);
    crud!(
        "/api/v1/course-trainers",
        "/api/v1/course-trainers/{id}",
        CourseTrainers
    );
    crud!("/api/v1/sessions", "/api/v1/sessions/{id}", Sessions);
    crud!(
        "/api/v1/enrollments",
        "/api/v1/enrollments/{id}",
        Enrollments
    );
    crud!(
        "/api/v1/attendance",
        "/api/v1/attendance/{id}",
        AttendanceRecords
    );
    crud!("/api/v1/materials", "/api/v1/materials/{id}", Materials);
    crud!(
        "/api/v1/training-plans",
        "/api/v1/training-plans/{id}",
        TrainingPlans
    );
    table.extend([
        (
            "/api/v1/courses/{id}/materials",
            Method::POST,
            web::post().to(materials::upload),
        ),
        (
            "/api/v1/materials/{id}/content",
            Method::GET,
            web::get().to(materials::download),
        ),
        (
            "/api/v1/materials/{id}/content",
            Method::HEAD,
            web::head().to(materials::download),
        ),
        (
            "/api/v1/materials/{id}/content",
            Method::PUT,
            web::put().to(materials::replace),
        ),
        (
            "/api/v1/courses/{id}/roster",
            Method::GET,
            web::get().to(roster::course_roster),
        ),
        (
            "/api/v1/me/materials",
            Method::GET,
            web::get().to(materials::held),
        ),
    ]);
    table
}

pub fn configure(config: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    let mut table = route_table();
    for (path, _, _) in &table {
        if !paths.contains(path) {
            paths.push(path);
        }
    }
    for path in paths {
        // RFC 9110: a 405 names the methods the path does serve.
        let allow = table
            .iter()
            .filter(|(route_path, _, _)| *route_path == path)
            .map(|(_, method, _)| method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut resource = web::resource(path).default_service(web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed(allow) }
        }));
        let mut rest = Vec::new();
        for (route_path, method, route) in table.drain(..) {
            if route_path == path {
                resource = resource.route(route);
            } else {
                rest.push((route_path, method, route));
            }
        }
        table = rest;
        config.service(resource);
    }
    super::webapp::configure(config);
    config.default_service(web::to(route_not_found));
}

pub(super) fn method_not_allowed(allow: String) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .json(serde_json::json!({
            "code": "method_not_allowed",
            "message": "this method is not allowed on this path",
        }))
}

async fn route_not_found() -> actix_web::Result<HttpResponse> {
    Err(Error::NotFound { what: "route" }.into())
}
