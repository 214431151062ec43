//! The route table: every path and method the server answers. `api-spec/openapi.yaml` must list
//! exactly these (a test compares them).

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpResponse, Responder, Route, web};

use super::handlers::{
    audit, auth, health, imports, materials, metrics, reorganisation, reports, resources, roster,
    sync, users, watermelon,
};
use crate::domain::Resource;
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

/// A path, a method and the route that answers it.
type Endpoint = (&'static str, Method, Route);

/// Adds to `table` the administration endpoints of each `Resource`, named with its collection's
/// path; a record's path is the collection's with `/{id}` after it.
macro_rules! crud_routes {
    ($table:ident; $($resource:ty => $collection:literal,)*) => {
        $($table.extend(crud::<$resource>($collection, concat!($collection, "/{id}")));)*
    };
}

/// (path, method, route) for every endpoint.
pub fn route_table() -> Vec<Endpoint> {
    let mut table = vec![
        endpoint("/healthz", Method::GET, health::healthz),
        endpoint("/readyz", Method::GET, health::readyz),
        endpoint(metrics::PATH, Method::GET, metrics::metrics),
        endpoint("/api/v1/auth/login", Method::POST, auth::login),
        endpoint("/api/v1/auth/refresh", Method::POST, auth::refresh),
        endpoint("/api/v1/auth/logout", Method::POST, auth::logout),
        endpoint("/api/v1/me", Method::GET, auth::me),
        endpoint("/api/v1/me/password", Method::POST, auth::change_password),
        endpoint("/api/v1/users", Method::GET, users::list),
        endpoint("/api/v1/users", Method::POST, users::create),
        endpoint("/api/v1/users/{id}", Method::GET, users::get),
        endpoint("/api/v1/users/{id}", Method::PATCH, users::change),
        endpoint(
            "/api/v1/users/{id}/password",
            Method::POST,
            users::reset_password,
        ),
        endpoint("/api/v1/devices", Method::GET, users::list_devices),
        endpoint(
            "/api/v1/devices/{id}/revoke",
            Method::POST,
            users::revoke_device,
        ),
        endpoint("/api/v1/sync/push", Method::POST, sync::push),
        endpoint("/api/v1/sync/pull", Method::GET, sync::pull),
        endpoint(
            "/api/v1/sync/quarantine",
            Method::GET,
            sync::list_quarantine,
        ),
        endpoint(
            "/api/v1/sync/quarantine/{id}/dismiss",
            Method::POST,
            sync::dismiss_quarantined,
        ),
        endpoint(
            "/api/v1/sync/quarantine/{id}/reapply",
            Method::POST,
            sync::reapply_quarantined,
        ),
        endpoint("/api/v1/sync/conflicts", Method::GET, sync::list_conflicts),
        endpoint(
            "/api/v1/sync/conflicts/{id}/resolve",
            Method::POST,
            sync::resolve_conflict,
        ),
        endpoint("/api/v1/watermelon/sync", Method::GET, watermelon::pull),
        endpoint("/api/v1/watermelon/sync", Method::POST, watermelon::push),
        endpoint("/api/v1/imports/people", Method::POST, imports::people),
        // Before the unit CRUD routes: `/units/merge` must not be taken for `/units/{id}`.
        endpoint("/api/v1/units/merge", Method::POST, reorganisation::merge),
        endpoint(
            "/api/v1/units/{id}/rename",
            Method::POST,
            reorganisation::rename,
        ),
        endpoint(
            "/api/v1/units/{id}/history",
            Method::GET,
            reorganisation::history,
        ),
        endpoint("/api/v1/reports/courses/{id}", Method::GET, reports::course),
        endpoint("/api/v1/reports/coverage", Method::GET, reports::coverage),
        endpoint(
            "/api/v1/reports/trainers/{id}",
            Method::GET,
            reports::trainer,
        ),
        endpoint(
            "/api/v1/reports/training-plans/{id}",
            Method::GET,
            reports::training_plan,
        ),
        endpoint("/api/v1/audit", Method::GET, audit::list),
    ];
    crud_routes!(table;
        Units => "/api/v1/units",
        People => "/api/v1/people",
        Courses => "/api/v1/courses",
        CourseTrainers => "/api/v1/course-trainers",
        Sessions => "/api/v1/sessions",
        Enrollments => "/api/v1/enrollments",
        AttendanceRecords => "/api/v1/attendance",
        Materials => "/api/v1/materials",
        TrainingPlans => "/api/v1/training-plans",
    );
    table.extend([
        endpoint(
            "/api/v1/courses/{id}/materials",
            Method::POST,
            materials::upload,
        ),
        endpoint(
            "/api/v1/materials/{id}/content",
            Method::GET,
            materials::download,
        ),
        endpoint(
            "/api/v1/materials/{id}/content",
            Method::HEAD,
            materials::download,
        ),
        endpoint(
            "/api/v1/materials/{id}/content",
            Method::PUT,
            materials::replace,
        ),
        endpoint(
            "/api/v1/courses/{id}/roster",
            Method::GET,
            roster::course_roster,
        ),
        endpoint("/api/v1/me/materials", Method::GET, materials::held),
    ]);
    table
}

/// The endpoint answering `method` at `path` with `handler` (the method said once, for the table
/// and the route alike).
fn endpoint<F, Args>(path: &'static str, method: Method, handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let route = web::method(method.clone()).to(handler);
    (path, method, route)
}

/// The administration endpoints of a `Resource` (`handlers::resources`): its list and creation
/// at `collection`, and the reading, replacement and deletion of one record at `item`.
fn crud<R: Resource>(collection: &'static str, item: &'static str) -> [Endpoint; 5] {
    [
        endpoint(collection, Method::GET, resources::list::<R>),
        endpoint(collection, Method::POST, resources::create::<R>),
        endpoint(item, Method::GET, resources::get::<R>),
        endpoint(item, Method::PUT, resources::update::<R>),
        endpoint(item, Method::DELETE, resources::delete::<R>),
    ]
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
