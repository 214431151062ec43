//! Accounts and devices in use: login, access tokens (short-lived JWT, HS256), refresh tokens
//! (long-lived, opaque, rotated, bound to one device), logout, and turning a bearer token into
//! the caller's identity. Every request re-checks the device and the account in the database,
//! so a revoked device or disabled user is refused on its next request.

pub mod limiter;
pub mod password;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ServerConfig;
use crate::db::{self, DbConn, now_ms, write_tx};
use crate::domain::Caller;
use crate::domain::access::Manages;
use crate::domain::audit::{Actor, Audit, AuditAction, AuditObject, Entry, FailedLogin};
use crate::domain::users::{
    Device, Devices, RefreshToken, RefreshTokens, SignedInAccount, User, Users,
};
use crate::error::{Error, Result};
use limiter::LoginThrottle;

const ISSUER: &str = "diemdanh";
const JWT_SECRET_SETTING: &str = "jwt_secret";
/// Seen-time is written at most this often per device, so reads do not all become writes.
const LAST_SEEN_GRANULARITY_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub device_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub device_id: String,
    pub user: User,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    dev: String,
    iss: String,
    iat: i64,
    exp: i64,
}

pub struct Auth {
    cursor_key: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
    refresh_retry_grace: Duration,
    throttle: LoginThrottle,
}

/// 32 random bytes, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the slow password check of a login or a password change found.
pub enum Verdict<T> {
    /// The password was right.
    Accepted(T),
    /// The password was wrong: the failure is to be counted, then the refusal answered.
    WrongPassword(Error),
    /// The password was right but the account is disabled: not counted as a guess, put in the
    /// audit trail, then the refusal answered.
    Disabled(Error),
}

/// How a presented refresh token is answered.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    /// Never used and not expired: exchanged for a new one.
    Fresh,
    /// Used less than the grace period ago, and its successor never used: the answer was lost
    /// and this is the device's retry. The successor is retired.
    Retried {
        successor: String,
    },
    /// Used before, and not a retry: the token was copied.
    Reused,
    Expired,
}

fn judge_presented(
    token: &RefreshToken,
    successor_unused: bool,
    now: i64,
    grace_ms: i64,
) -> Presented {
    match (token.used_at, &token.replaced_by) {
        (None, _) if token.expires_at <= now => Presented::Expired,
        (None, _) => Presented::Fresh,
        (Some(used_at), Some(successor)) if successor_unused && now - used_at < grace_ms => {
            Presented::Retried {
                successor: successor.clone(),
            }
        }
        (Some(_), _) => Presented::Reused,
    }
}

fn invalid_token() -> Error {
    Error::unauthorized(
        "invalid_token",
        "the access token is missing, malformed or not valid",
    )
}

impl Auth {
    /// Uses the configured secret, else the one stored in the database (created on first start),
    /// so that every instance on one database verifies every other's tokens.
    pub fn new(conn: &mut DbConn, config: &ServerConfig) -> Result<Self> {
        let secret = match &config.jwt_secret {
            Some(secret) if secret.len() >= 32 => secret.clone(),
            Some(_) => {
                return Err(Error::Internal(
                    "DIEMDANH_JWT_SECRET must be at least 32 characters".into(),
                ));
            }
            None => db::get_or_init_setting(conn, JWT_SECRET_SETTING, &random_token())?,
        };
        Ok(Auth {
            // Pull cursors are signed with a key derived from the same secret, kept apart from
            // token signing by a label.
            cursor_key: Sha256::digest(format!("diemdanh pull cursor:{secret}").as_bytes())
                .to_vec(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            access_ttl: config.access_token_ttl(),
            refresh_ttl: config.refresh_token_ttl(),
            refresh_retry_grace: config.refresh_retry_grace(),
            throttle: LoginThrottle::new(
                config.login_window(),
                config.login_max_failures,
                config.login_max_failures_per_ip,
                config.login_max_delay(),
            ),
        })
    }

    /// The key that signs pull cursors.
    pub fn cursor_key(&self) -> &[u8] {
        &self.cursor_key
    }

    /// Refuses a login attempt (or a password change) that must wait: 429 with Retry-After.
    /// Read before the password is checked, so that a throttled guess costs no hashing.
    pub fn check_login_throttle(
        &self,
        conn: &mut DbConn,
        username: &str,
        address: &str,
    ) -> Result<()> {
        self.throttle.check(conn, username, address, now_ms())
    }

    /// Counts a wrong password and puts it in the audit trail, with the account when the name
    /// is one (`user_id`). Runs inside the caller's write transaction.
    pub fn record_login_failure(
        &self,
        conn: &mut DbConn,
        username: &str,
        user_id: Option<&str>,
        address: &str,
    ) -> Result<()> {
        self.throttle
            .record_failure(conn, username, address, now_ms())?;
        let reason = match user_id {
            Some(_) => FailedLogin::WrongPassword,
            None => FailedLogin::UnknownUser,
        };
        Audit::record_failed_login(conn, user_id, username, address, reason)
    }

    /// The slow half of a login, run without holding a database connection because argon2 is
    /// deliberately slow: checks the password and that the account is enabled.
    pub fn verify_login(
        &self,
        user: Option<User>,
        request: &LoginRequest,
    ) -> Result<Verdict<User>> {
        let verified = match &user {
            Some(user) => password::verify(&request.password, &user.password_hash),
            None => {
                password::burn_time(&request.password);
                false
            }
        };
        let Some(user) = user.filter(|_| verified) else {
            return Ok(Verdict::WrongPassword(Error::unauthorized(
                "invalid_credentials",
                "wrong username or password",
            )));
        };
        if user.disabled_at.is_some() {
            return Ok(Verdict::Disabled(account_disabled()));
        }
        Ok(Verdict::Accepted(user))
    }

    /// The second half of a login: clears the account's failed attempts, registers the device
    /// and issues its first tokens. Runs inside the caller's write transaction.
    pub fn start_session(
        &self,
        conn: &mut DbConn,
        user: User,
        request: &LoginRequest,
        address: &str,
    ) -> Result<TokenResponse> {
        self.throttle
            .record_success(conn, &request.username, address)?;
        let device = Devices::register(conn, &user.id, &request.device_name)?;
        let actor = Actor {
            user_id: Some(user.id.clone()),
            device_id: Some(device.id.clone()),
            address: Some(address.to_owned()),
        };
        Audit::record(
            conn,
            &actor,
            Entry::new(AuditAction::Login)
                .about(AuditObject::Device, &device.id)
                .detail("device_name", device.name.clone()),
        )?;
        self.issue(conn, user, &device)
    }

    /// Rotates a refresh token. Presenting a token that was already used means it was copied:
    /// the device is revoked and must sign in again, unless the token was used within the retry
    /// grace period and what it was exchanged for was never used. That is a phone repeating a
    /// refresh whose answer it lost: the unused successor is retired and a new one issued, so
    /// the device keeps exactly one working chain.
    /// A reuse signs the device out and is put in the audit trail with the client `address`.
    pub fn refresh(
        &self,
        conn: &mut DbConn,
        refresh_token: &str,
        address: &str,
    ) -> Result<TokenResponse> {
        let hash = token_hash(refresh_token.trim());
        let grace_ms = self.refresh_retry_grace.as_millis() as i64;
        let reused = write_tx(conn, |conn| {
            // Two rounds at most: a refresh that loses the race to claim a fresh token (the same
            // request arriving twice at once, on PostgreSQL) reads it again as a retry.
            for _ in 0..2 {
                let Some(stored) = RefreshTokens::find(conn, &hash)? else {
                    return Err(Error::unauthorized(
                        "invalid_refresh_token",
                        "the refresh token is not valid",
                    ));
                };
                let successor_unused = match &stored.replaced_by {
                    Some(successor) => RefreshTokens::is_unused(conn, successor)?,
                    None => false,
                };
                let now = now_ms();
                let claimed = match judge_presented(&stored, successor_unused, now, grace_ms) {
                    Presented::Reused => {
                        Devices::revoke_unchecked(conn, &stored.device_id)?;
                        let device = Devices::find(conn, &stored.device_id)?;
                        let actor = Actor {
                            user_id: Some(device.user_id),
                            device_id: Some(device.id),
                            address: Some(address.to_owned()),
                        };
                        Audit::record(
                            conn,
                            &actor,
                            Entry::new(AuditAction::RefreshTokenReused)
                                .about(AuditObject::Device, &stored.device_id),
                        )?;
                        return Ok(Err(stored.device_id));
                    }
                    Presented::Expired => {
                        return Err(Error::unauthorized(
                            "refresh_token_expired",
                            "the refresh token has expired; sign in again",
                        ));
                    }
                    // Conditional updates: whoever changes the row first wins; the loser reads
                    // it again.
                    Presented::Fresh => RefreshTokens::claim(conn, &hash, now)?,
                    Presented::Retried { successor } => {
                        RefreshTokens::claim(conn, &successor, now)?
                    }
                };
                if !claimed {
                    continue;
                }
                let device = Devices::find(conn, &stored.device_id)?;
                let user = Users::find(conn, &device.user_id)?;
                if device.revoked_at.is_some() || user.disabled_at.is_some() {
                    return Err(Error::unauthorized(
                        "device_revoked",
                        "this device was signed out; sign in again",
                    ));
                }
                let tokens = self.issue(conn, user, &device)?;
                RefreshTokens::record_successor(conn, &hash, &token_hash(&tokens.refresh_token))?;
                return Ok(Ok(tokens));
            }
            Err(Error::Unavailable(
                "a refresh token changed twice while it was being exchanged".into(),
            ))
        })?;
        reused.map_err(|_| {
            Error::unauthorized(
                "refresh_token_reused",
                "the refresh token was already used; the device has been signed out",
            )
        })
    }

    fn issue(&self, conn: &mut DbConn, user: User, device: &Device) -> Result<TokenResponse> {
        let now = now_ms();
        let refresh_token = random_token();
        RefreshTokens::insert(
            conn,
            &token_hash(&refresh_token),
            &device.id,
            now,
            now + self.refresh_ttl.as_millis() as i64,
        )?;
        let claims = Claims {
            sub: user.id.clone(),
            dev: device.id.clone(),
            iss: ISSUER.into(),
            iat: now / 1000,
            exp: now / 1000 + self.access_ttl.as_secs() as i64,
        };
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|e| Error::Internal(format!("token signing failed: {e}")))?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
            refresh_token,
            refresh_expires_in: self.refresh_ttl.as_secs(),
            device_id: device.id.clone(),
            user,
        })
    }

    /// Verifies a bearer token (signature, algorithm, issuer, expiry) and loads the caller.
    pub fn authenticate(&self, conn: &mut DbConn, token: &str) -> Result<Caller> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::unauthorized("token_expired", "the access token has expired; refresh it")
                }
                _ => invalid_token(),
            })?
            .claims;
        let Some(SignedInAccount {
            revoked_at,
            last_seen_at,
            disabled_at,
            role,
            person_id,
            unit_id,
        }) = Devices::signed_in_account(conn, &claims.dev, &claims.sub)?
        else {
            return Err(invalid_token());
        };
        if revoked_at.is_some() {
            return Err(Error::unauthorized(
                "device_revoked",
                "this device was signed out; sign in again",
            ));
        }
        if disabled_at.is_some() {
            return Err(account_disabled());
        }
        let now = now_ms();
        if now - last_seen_at > LAST_SEEN_GRANULARITY_MS {
            // Best effort: a busy database must not fail the request over a seen-time.
            let _ = Devices::record_seen(conn, &claims.dev, now);
        }
        let role = crate::domain::Role::parse(&role).ok_or_else(invalid_token)?;
        // What the caller manages, derived once for the request.
        let manages = Manages::derive(conn, role, unit_id.as_deref())?;
        Ok(Caller {
            user_id: claims.sub,
            device_id: claims.dev,
            role,
            person_id,
            address: None,
            unit_id,
            manages,
        })
    }

    /// Signs the calling device out.
    pub fn logout(&self, conn: &mut DbConn, caller: &Caller) -> Result<()> {
        write_tx(conn, |conn| {
            Devices::revoke_unchecked(conn, &caller.device_id)?;
            Audit::record_by(
                conn,
                caller,
                Entry::new(AuditAction::Logout).about(AuditObject::Device, &caller.device_id),
            )
        })
    }

    /// Checks the current password (a wrong one counts toward the login limits) and the new
    /// one's strength, and returns the new hash. Runs without a database connection.
    pub fn prepare_password_change(
        &self,
        user: &User,
        change: &PasswordChange,
    ) -> Result<Verdict<String>> {
        if !password::verify(&change.current_password, &user.password_hash) {
            return Ok(Verdict::WrongPassword(Error::invalid_field(
                "current_password",
                "wrong_password",
                "the current password is wrong",
            )));
        }
        password::check_strength("new_password", &change.new_password)?;
        password::hash(&change.new_password).map(Verdict::Accepted)
    }
}

fn account_disabled() -> Error {
    Error::Forbidden {
        code: "account_disabled",
        message: "this account is disabled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    fn stored(used_at: Option<i64>, replaced_by: Option<&str>) -> RefreshToken {
        RefreshToken {
            device_id: "d".into(),
            expires_at: 10_000_000,
            used_at,
            replaced_by: replaced_by.map(Into::into),
        }
    }

    #[test]
    fn a_used_token_is_a_retry_only_within_the_grace_and_while_its_successor_is_unused() {
        let grace = 60_000;
        assert_eq!(
            judge_presented(&stored(None, None), false, 1_000, grace),
            Presented::Fresh
        );
        assert_eq!(
            judge_presented(&stored(None, None), false, 10_000_000, grace),
            Presented::Expired
        );
        let used = stored(Some(1_000), Some("next"));
        assert_eq!(
            judge_presented(&used, true, 60_999, grace),
            Presented::Retried {
                successor: "next".into()
            }
        );
        assert_eq!(
            judge_presented(&used, true, 61_000, grace),
            Presented::Reused
        );
        assert_eq!(
            judge_presented(&used, false, 2_000, grace),
            Presented::Reused
        );
        assert_eq!(judge_presented(&used, true, 2_000, 0), Presented::Reused);
        // Retired without a successor: any presentation is a copy.
        assert_eq!(
            judge_presented(&stored(Some(1_000), None), true, 2_000, grace),
            Presented::Reused
        );
    }
}
