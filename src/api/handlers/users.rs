//! Account and device administration.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{read_json, write_json};
use crate::api::extractors::Authenticated;
use crate::api::state::AppState;
use crate::auth::password;
use crate::domain::users::{DeviceFilter, Devices, NewUser, UserChanges, UserFilter, Users};
use crate::domain::values::path_id;
use crate::error::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub display_name: Option<String>,
    pub role: String,
    pub person_id: Option<String>,
    pub unit_id: Option<String>,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub new_password: String,
}

pub async fn list(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    filter: web::Query<UserFilter>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| Users::list(conn, &caller, &filter)).await
}

pub async fn create(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse> {
    caller.require_manager()?;
    let CreateUser {
        username,
        display_name,
        role,
        person_id,
        unit_id,
        password: plain,
    } = body.into_inner();
    let user = NewUser {
        username,
        display_name,
        role,
        person_id,
        unit_id,
    };
    password::check_strength("password", &plain)?;
    let hash = state.compute(move |_| password::hash(&plain)).await?;
    let created = state
        .write(move |_, conn| Users::create_by(conn, &caller, user, hash))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", created.id)))
        .json(created))
}

pub async fn get(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| {
        Users::find_managed(conn, &caller.manages, &path_id(&id, "user")?)
    })
    .await
}

pub async fn change(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    body: web::Json<UserChanges>,
) -> Result<HttpResponse> {
    write_json(&state, move |_, conn| {
        Users::change(conn, &caller, &path_id(&id, "user")?, body.into_inner())
    })
    .await
}

/// An administrator sets a new password; the user's devices are all signed out.
pub async fn reset_password(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    body: web::Json<NewPassword>,
) -> Result<HttpResponse> {
    caller.require_manager()?;
    let plain = body.into_inner().new_password;
    password::check_strength("new_password", &plain)?;
    let id = path_id(&id, "user")?;
    let hash = state.compute(move |_| password::hash(&plain)).await?;
    state
        .write(move |_, conn| Users::reset_password(conn, &caller, &id, &hash))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_devices(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    filter: web::Query<DeviceFilter>,
) -> Result<HttpResponse> {
    read_json(&state, move |_, conn| Devices::list(conn, &caller, &filter)).await
}

pub async fn revoke_device(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    write_json(&state, move |_, conn| {
        Devices::revoke(conn, &caller, &path_id(&id, "device")?)
    })
    .await
}
