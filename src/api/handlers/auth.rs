use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::extractors::{Authenticated, client_address};
use crate::api::state::AppState;
use crate::auth::{LoginRequest, PasswordChange, RefreshRequest, Verdict};
use crate::domain::audit::{Audit, AuditAction, AuditObject, Entry, FailedLogin};
use crate::domain::users::Users;
use crate::error::Result;

/// Checks the login limits and looks the account up, checks the password off the database
/// pool, then counts the failure or opens the session.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let address = client_address(&req, state.config.trust_proxy);
    let body = body.into_inner();
    let (username, checked_address) = (body.username.clone(), address.clone());
    let user = state
        .run(move |state, conn| {
            state
                .auth
                .check_login_throttle(conn, &username, &checked_address)?;
            Users::find_by_username(conn, &username)
        })
        .await?;
    let known_user = user.as_ref().map(|user| user.id.clone());
    let (verdict, body) = state
        .compute(move |state| Ok((state.auth.verify_login(user, &body)?, body)))
        .await?;
    let user = match verdict {
        Verdict::Accepted(user) => user,
        Verdict::WrongPassword(refusal) => {
            state
                .write(move |state, conn| {
                    state.auth.record_login_failure(
                        conn,
                        &body.username,
                        known_user.as_deref(),
                        &address,
                    )
                })
                .await?;
            return Err(refusal);
        }
        Verdict::Disabled(refusal) => {
            state
                .write(move |_, conn| {
                    Audit::record_failed_login(
                        conn,
                        known_user.as_deref(),
                        &body.username,
                        &address,
                        FailedLogin::AccountDisabled,
                    )
                })
                .await?;
            return Err(refusal);
        }
    };
    let tokens = state
        .write(move |state, conn| state.auth.start_session(conn, user, &body, &address))
        .await?;
    Ok(HttpResponse::Ok().json(tokens))
}

pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse> {
    let address = client_address(&req, state.config.trust_proxy);
    let body = body.into_inner();
    let tokens = state
        .run(move |state, conn| state.auth.refresh(conn, &body.refresh_token, &address))
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

/// Changes the caller's password; the other devices of the account are signed out. A wrong
/// current password counts toward the login limits.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse> {
    let address = client_address(&req, state.config.trust_proxy);
    let body = body.into_inner();
    let (me, checked_address) = (caller.clone(), address.clone());
    let user = state
        .run(move |state, conn| {
            let user = Users::me(conn, &me)?;
            state
                .auth
                .check_login_throttle(conn, &user.username, &checked_address)?;
            Ok(user)
        })
        .await?;
    let (username, user_id) = (user.username.clone(), user.id.clone());
    let verdict = state
        .compute(move |state| state.auth.prepare_password_change(&user, &body))
        .await?;
    let hash = match verdict {
        Verdict::Accepted(hash) => hash,
        // Not reached: a disabled account's token is refused before its handler runs.
        Verdict::Disabled(refusal) => return Err(refusal),
        Verdict::WrongPassword(refusal) => {
            state
                .write(move |state, conn| {
                    state
                        .auth
                        .record_login_failure(conn, &username, Some(&user_id), &address)
                })
                .await?;
            return Err(refusal);
        }
    };
    state
        .write(move |_, conn| {
            Users::set_password_hash(conn, &caller.user_id, &hash, Some(&caller.device_id))?;
            Audit::record_by(
                conn,
                &caller,
                Entry::new(AuditAction::PasswordChanged).about(AuditObject::User, &caller.user_id),
            )
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
