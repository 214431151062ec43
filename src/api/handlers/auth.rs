use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::AppState;
use crate::api::extractors::{Authenticated, client_address};
use crate::auth::{LoginRequest, PasswordChange, RefreshRequest};
use crate::domain::users::Users;
use crate::error::Result;

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let address = client_address(&req, state.config.trust_proxy);
    let body = body.into_inner();
    let tokens = state
        .run(move |state, conn| state.auth.login(conn, &body, &address))
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

pub async fn change_password(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    state
        .run(move |state, conn| state.auth.change_password(conn, &caller, &body))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
