use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::AppState;
use crate::api::extractors::{Authenticated, client_address};
use crate::auth::{LoginRequest, PasswordChange, RefreshRequest};
use crate::domain::users::Users;
use crate::error::{Error, Result};

/// Looks the account up, checks the password off the database pool, then opens the session.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let address = client_address(&req, state.config.trust_proxy);
    let body = body.into_inner();
    let username = body.username.clone();
    let user = state
        .run(move |_, conn| Users::find_by_username(conn, &username))
        .await?;
    let (user, body) = state
        .compute(move |state| {
            state
                .auth
                .verify_login(user.as_ref(), &body, &address)
                .map(|()| (user, body))
        })
        .await?;
    let user = user.ok_or_else(|| Error::Internal("verified login without a user".into()))?;
    let tokens = state
        .write(move |state, conn| state.auth.start_session(conn, user, &body.device_name))
        .await?;
    Ok(HttpResponse::Ok().json(tokens))
}

pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let tokens = state
        .run(move |state, conn| state.auth.refresh(conn, &body.refresh_token))
        .await?;
    Ok(HttpResponse::Ok().json(tokens))
}

pub async fn logout(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse> {
    state
        .run(move |state, conn| state.auth.logout(conn, &caller))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn me(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse> {
    let user = state.run(move |_, conn| Users::me(conn, &caller)).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Changes the caller's password; the other devices of the account are signed out.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse> {
    let address = client_address(&req, state.config.trust_proxy);
    let body = body.into_inner();
    let me = caller.clone();
    let user = state.run(move |_, conn| Users::me(conn, &me)).await?;
    let hash = state
        .compute(move |state| state.auth.prepare_password_change(&user, &body, &address))
        .await?;
    state
        .write(move |_, conn| {
            Users::set_password_hash(conn, &caller.user_id, &hash, Some(&caller.device_id))
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
