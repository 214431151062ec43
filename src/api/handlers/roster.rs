//! A course's roster as its trainers see it: the people they may add to the class.

use actix_web::{HttpResponse, web};

use super::read_json;
use crate::api::extractors::Authenticated;
use crate::api::state::AppState;
use crate::domain::people::{People, RosterFilter};
use crate::error::Result;

/// `GET /api/v1/courses/{id}/roster`: people of the course's organising unit not enrolled in it.
pub async fn course_roster(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    course: web::Path<String>,
    filter: web::Query<RosterFilter>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| {
        People::roster_for_course(conn, &caller, &course, &filter)
    })
    .await
}
