//! User accounts (admin, organiser, trainer, trainee; a trainee is linked to a person, an
//! organiser to a unit), the devices they sign in from and the devices' refresh tokens.
//! Passwords are argon2id hashes; tokens are stored by their hash. Nothing here issues, hashes
//! or judges tokens (see `auth`): it stores and reads what `auth` decides.
//!
//! An admin manages every account. An organiser manages the trainer and trainee accounts of the
//! people of their subtree: they list, read, create, change and reset those, never an admin's or
//! an organiser's account (403 `role_not_allowed`); other accounts are not found.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::Manages;
use super::audit::{Audit, AuditAction, AuditObject, Entry};
use super::people::People;
use super::units::Units;
use super::values::{Checker, MAX_NAME_CHARS, new_id, serialize_ms, serialize_opt_ms};
use super::{Caller, PageRequest, Paged, Role, SortRequest, ordered_page, sorted_page, text};
use crate::db::schema::{devices, refresh_tokens, users};
use crate::db::{Backend, DbConn, now_ms};
use crate::error::{Error, Result};

const SORTS: [&str; 3] = ["username", "display_name", "created_at"];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub person_id: Option<String>,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub disabled_at: Option<i64>,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub updated_at: i64,
    /// An organiser's unit; `None` for the other roles.
    pub unit_id: Option<String>,
}

impl User {
    pub fn role(&self) -> Role {
        // The column only ever holds values written through Role::as_str.
        Role::parse(&self.role).unwrap_or(Role::Trainee)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = devices)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub last_seen_at: i64,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub revoked_at: Option<i64>,
    /// Set when the device sent clock stamps too far in the future (they were re-stamped).
    #[serde(serialize_with = "serialize_opt_ms")]
    pub clock_flagged_at: Option<i64>,
    /// Set when a push of the device was refused because the device's quarantine was full
    /// (429 `quarantine_full`); cleared by its next push that files within the limit.
    #[serde(serialize_with = "serialize_opt_ms")]
    pub quarantine_full_at: Option<i64>,
}

/// A new account. The password arrives already hashed so that slow hashing happens outside
/// the database transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub role: String,
    pub person_id: Option<String>,
    /// An organiser's unit (required for an organiser, refused for the other roles).
    pub unit_id: Option<String>,
}

/// Changes an admin (or, within their subtree, an organiser) may make to an account.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub disabled: Option<bool>,
    /// An organiser's unit (admins only).
    pub unit_id: Option<String>,
}

fn role_not_allowed() -> Error {
    Error::Forbidden {
        code: "role_not_allowed",
        message: "organisers manage only trainer and trainee accounts".to_owned(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    pub q: Option<String>,
    pub role: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFilter {
    pub user_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// An organiser's account names its unit; no other account names one.
fn check_unit_for_role(check: &mut Checker, role: Option<Role>, unit_id: Option<&str>) {
    match (role, unit_id) {
        (Some(Role::Organiser), None) => check.fail(
            "unit_id",
            "required",
            "an organiser's account names its unit",
        ),
        (Some(Role::Admin | Role::Trainer | Role::Trainee), Some(_)) => check.fail(
            "unit_id",
            "organisers_only",
            "only an organiser's account names a unit",
        ),
        (Some(Role::Organiser), Some(_))
        | (Some(Role::Admin | Role::Trainer | Role::Trainee), None)
        | (None, _) => {}
    }
}

/// Usernames are case-insensitive: stored folded to lower case ASCII.
pub fn normalize_username(raw: &str) -> Option<String> {
    let name = raw.trim().to_lowercase();
    let valid = (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    valid.then_some(name)
}

pub struct Users;

impl Users {
    pub fn find(conn: &mut DbConn, id: &str) -> Result<User> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()?
            .ok_or(Error::NotFound { what: "user" })
    }

    pub fn find_by_username(conn: &mut DbConn, username: &str) -> Result<Option<User>> {
        let Some(name) = normalize_username(username) else {
            return Ok(None);
        };
        Ok(users::table
            .filter(users::username.eq(name))
            .select(User::as_select())
            .first(conn)
            .optional()?)
    }

    /// Creates an account on an administrator's behalf, recorded in the audit trail.
    pub fn create_by(
        conn: &mut DbConn,
        caller: &Caller,
        input: NewUser,
        password_hash: String,
    ) -> Result<User> {
        let manages = &caller.manages;
        manages.require_some()?;
        if let Manages::Subtree(_) = manages {
            if Role::parse(&input.role).is_some_and(|role| !role.managed_by_organisers()) {
                return Err(role_not_allowed());
            }
            // The account's person must be one of the subtree's people; a person outside it is
            // answered as one that does not exist.
            let person = match input.person_id.as_deref() {
                Some(person) => {
                    super::values::parse_id(person).and_then(|id| People::find(conn, &id).ok())
                }
                None => None,
            };
            match person {
                Some(person) if manages.covers(person.unit_id.as_deref()) => {}
                Some(_) => {
                    return Err(Error::invalid_field(
                        "person_id",
                        "unknown_person",
                        "no such person",
                    ));
                }
                None => {
                    return Err(Error::invalid_field(
                        "person_id",
                        "required",
                        "an organiser creates accounts for people of their unit",
                    ));
                }
            }
        }
        let created = Self::create(conn, input, password_hash)?;
        Audit::record_by(
            conn,
            caller,
            Entry::new(AuditAction::UserCreated)
                .about(AuditObject::User, &created.id)
                .detail("username", created.username.clone())
                .detail("role", created.role.clone())
                .detail("person_id", created.person_id.clone())
                .detail("unit_id", created.unit_id.clone()),
        )?;
        Ok(created)
    }

    /// Creates an account, unrecorded (the demo loader and tests seed accounts this way).
    pub fn create(conn: &mut DbConn, input: NewUser, password_hash: String) -> Result<User> {
        let mut check = Checker::new();
        let username = normalize_username(&input.username).unwrap_or_else(|| {
            check.fail(
                "username",
                "invalid_username",
                "3-64 characters: letters, digits, . _ - @",
            );
            input.username.clone()
        });
        let role = check.one_of("role", &input.role, &Role::ALL);
        let display_name = check
            .opt_text(
                "display_name",
                input.display_name.as_deref(),
                MAX_NAME_CHARS,
            )
            .unwrap_or_else(|| username.clone());
        let person_id = check.opt_id("person_id", input.person_id.as_deref());
        if role == "trainee" && person_id.is_none() {
            check.fail(
                "person_id",
                "required",
                "a trainee account must be linked to a person",
            );
        }
        let unit_id = check.opt_id("unit_id", input.unit_id.as_deref());
        check_unit_for_role(&mut check, Role::parse(&role), unit_id.as_deref());
        check.finish()?;
        if let Some(person) = &person_id {
            People::find(conn, person).map_err(|_| {
                Error::invalid_field("person_id", "unknown_person", "no such person")
            })?;
        }
        if let Some(unit) = &unit_id {
            Units::find(conn, unit)
                .map_err(|_| Error::invalid_field("unit_id", "unknown_unit", "no such unit"))?;
        }
        if Self::find_by_username(conn, &username)?.is_some() {
            return Err(Error::conflict(
                "username_taken",
                format!("the username {username} is taken"),
            ));
        }
        let now = now_ms();
        let user = User {
            id: new_id(),
            username,
            display_name,
            role,
            person_id,
            password_hash,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            unit_id,
        };
        diesel::insert_into(users::table)
            .values(&user)
            .execute(conn)?;
        Ok(user)
    }

    pub fn list(conn: &mut DbConn, caller: &Caller, filter: &UserFilter) -> Result<Paged<User>> {
        let manages = &caller.manages;
        manages.require_some()?;
        let units = manages.units();
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "username", &SORTS)?;
        let mut filter_check = Checker::new();
        let role = filter_check.opt_one_of("role", filter.role.as_deref(), &Role::ALL);
        filter_check.finish()?;
        let query = || {
            let mut query = users::table.into_boxed::<Backend>();
            if let Some(units) = &units {
                query = query
                    .filter(users::role.eq_any([Role::Trainer.as_str(), Role::Trainee.as_str()]))
                    .filter(users::person_id.eq_any(People::ids_in_units_subquery(units.clone())));
            }
            if let Some(q) = &filter.q {
                // Usernames are ASCII; display names are matched as typed (with escaping).
                let username = text::contains_pattern(q);
                let display = text::escaped_contains(&text::clean(q));
                query = query.filter(
                    users::username
                        .like(username)
                        .escape('\\')
                        .or(users::display_name.like(display).escape('\\')),
                );
            }
            if let Some(role) = &role {
                query = query.filter(users::role.eq(role.clone()));
            }
            query
        };
        Ok(sorted_page!(conn, query, page, sort, users::id, User, {
            "username" => [users::username],
            "display_name" => [users::display_name],
            "created_at" => [users::created_at],
        }))
    }

    /// Applies an admin's changes. Disabling an account revokes its devices at once.
    pub fn change(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        changes: UserChanges,
    ) -> Result<User> {
        let manages = &caller.manages;
        let user = Self::find_managed(conn, manages, id)?;
        if let Manages::Subtree(_) = manages
            && (changes.role.as_deref().and_then(Role::parse))
                .is_some_and(|role| !role.managed_by_organisers())
        {
            return Err(role_not_allowed());
        }
        let mut check = Checker::new();
        let display_name = check.opt_text(
            "display_name",
            changes.display_name.as_deref(),
            MAX_NAME_CHARS,
        );
        let role = check.opt_one_of("role", changes.role.as_deref(), &Role::ALL);
        let changed_unit = check.opt_id("unit_id", changes.unit_id.as_deref());
        if changed_unit.is_some() && *manages != Manages::Everything {
            check.fail(
                "unit_id",
                "admins_only",
                "only administrators move an organiser",
            );
        }
        let new_role = role.as_deref().unwrap_or(&user.role);
        // The unit goes with the organiser role: kept (or moved) while an organiser, cleared
        // when the account becomes another role.
        let unit_id = match Role::parse(new_role) {
            Some(Role::Organiser) => changed_unit.or(user.unit_id.clone()),
            _ => changed_unit,
        };
        check_unit_for_role(&mut check, Role::parse(new_role), unit_id.as_deref());
        if role.as_deref() == Some("trainee") && user.person_id.is_none() {
            check.fail(
                "role",
                "person_required",
                "a trainee account must be linked to a person",
            );
        }
        if user.id == caller.user_id
            && (changes.disabled == Some(true) || role.as_deref().is_some_and(|r| r != "admin"))
        {
            check.fail(
                "role",
                "self_lockout",
                "administrators cannot disable or demote themselves",
            );
        }
        check.finish()?;
        if let Some(unit) = &unit_id {
            Units::find(conn, unit)
                .map_err(|_| Error::invalid_field("unit_id", "unknown_unit", "no such unit"))?;
        }
        let now = now_ms();
        let disabled_at = match changes.disabled {
            Some(true) => user.disabled_at.or(Some(now)),
            Some(false) => None,
            None => user.disabled_at,
        };
        diesel::update(users::table.find(&user.id))
            .set((
                users::display_name.eq(display_name.unwrap_or(user.display_name.clone())),
                users::role.eq(role.unwrap_or(user.role.clone())),
                users::disabled_at.eq(disabled_at),
                users::unit_id.eq(&unit_id),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        if disabled_at.is_some() && user.disabled_at.is_none() {
            Devices::revoke_all(conn, &user.id, None)?;
        }
        let changed = Self::find(conn, &user.id)?;
        let mut entry = Entry::new(AuditAction::UserUpdated).about(AuditObject::User, &user.id);
        if changed.display_name != user.display_name {
            entry = entry.detail("display_name", changed.display_name.clone());
        }
        if changed.role != user.role {
            entry = entry.detail("role", changed.role.clone());
        }
        if changed.unit_id != user.unit_id {
            entry = entry.detail("unit_id", changed.unit_id.clone());
        }
        if changed.disabled_at.is_some() != user.disabled_at.is_some() {
            entry = entry.detail("disabled", changed.disabled_at.is_some());
        }
        Audit::record_by(conn, caller, entry)?;
        Ok(changed)
    }

    /// Stores a new password hash and signs out every other device of the user.
    /// An administrator sets an account's password (every device signed out), recorded in the
    /// audit trail.
    pub fn reset_password(
        conn: &mut DbConn,
        caller: &Caller,
        user_id: &str,
        hash: &str,
    ) -> Result<()> {
        let manages = &caller.manages;
        let user = Self::find_managed(conn, manages, user_id)?;
        Self::set_password_hash(conn, &user.id, hash, None)?;
        Audit::record_by(
            conn,
            caller,
            Entry::new(AuditAction::PasswordReset).about(AuditObject::User, &user.id),
        )
    }

    pub fn set_password_hash(
        conn: &mut DbConn,
        user_id: &str,
        hash: &str,
        keep_device: Option<&str>,
    ) -> Result<()> {
        diesel::update(users::table.find(user_id))
            .set((
                users::password_hash.eq(hash),
                users::updated_at.eq(now_ms()),
            ))
            .execute(conn)?;
        Devices::revoke_all(conn, user_id, keep_device)
    }

    /// An account the caller manages: any for an admin; for an organiser, the trainer and
    /// trainee accounts of the people of their subtree (others are not found); 403 for a caller
    /// managing nothing.
    pub fn find_managed(conn: &mut DbConn, manages: &Manages, id: &str) -> Result<User> {
        manages.require_some()?;
        let user = Self::find(conn, id)?;
        let managed = match manages {
            Manages::Everything => true,
            Manages::Subtree(_) => {
                // A person removed since leaves the account outside every subtree.
                let person_unit = match &user.person_id {
                    Some(person) => People::find(conn, person).ok().and_then(|p| p.unit_id),
                    None => None,
                };
                user.role().managed_by_organisers() && manages.covers(person_unit.as_deref())
            }
            Manages::Nothing => false,
        };
        if managed {
            Ok(user)
        } else {
            Err(Error::NotFound { what: "user" })
        }
    }

    /// Moves the organisers of `from` to `to` (a merge of `from` into `to`: their scope goes
    /// with the unit's people); returns the accounts moved.
    pub fn move_organisers(conn: &mut DbConn, from: &str, to: &str) -> Result<Vec<String>> {
        let moved = users::table
            .filter(users::role.eq(Role::Organiser.as_str()))
            .filter(users::unit_id.eq(from))
            .select(users::id)
            .load::<String>(conn)?;
        diesel::update(users::table.filter(users::id.eq_any(&moved)))
            .set((users::unit_id.eq(to), users::updated_at.eq(now_ms())))
            .execute(conn)?;
        Ok(moved)
    }

    /// How many organisers a unit has (a unit in use is not deleted).
    pub fn count_organisers_of(conn: &mut DbConn, unit_id: &str) -> Result<i64> {
        Ok(users::table
            .filter(users::role.eq(Role::Organiser.as_str()))
            .filter(users::unit_id.eq(unit_id))
            .count()
            .get_result(conn)?)
    }

    /// How many accounts a person has (a person with any is not deleted).
    pub fn count_of_person(conn: &mut DbConn, person_id: &str) -> Result<i64> {
        Ok(users::table
            .filter(users::person_id.eq(person_id))
            .count()
            .get_result(conn)?)
    }

    /// The usernames of the accounts among `ids`, by account id.
    pub fn usernames(conn: &mut DbConn, ids: &[&str]) -> Result<HashMap<String, String>> {
        Ok(users::table
            .filter(users::id.eq_any(ids))
            .select((users::id, users::username))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect())
    }

    /// The caller's own account.
    pub fn me(conn: &mut DbConn, caller: &Caller) -> Result<User> {
        Self::find(conn, &caller.user_id)
    }
}

pub struct Devices;

impl Devices {
    pub fn register(conn: &mut DbConn, user_id: &str, name: &str) -> Result<Device> {
        let mut check = Checker::new();
        let name = check.text("device_name", name, 100);
        check.finish()?;
        let now = now_ms();
        let device = Device {
            id: new_id(),
            user_id: user_id.to_owned(),
            name,
            created_at: now,
            last_seen_at: now,
            revoked_at: None,
            clock_flagged_at: None,
            quarantine_full_at: None,
        };
        diesel::insert_into(devices::table)
            .values(&device)
            .execute(conn)?;
        Ok(device)
    }

    /// Devices still in use whose clock was found too far ahead (an operator's figure).
    pub fn count_clock_flagged(conn: &mut DbConn) -> Result<i64> {
        Ok(devices::table
            .filter(devices::revoked_at.is_null())
            .filter(devices::clock_flagged_at.is_not_null())
            .count()
            .get_result(conn)?)
    }

    /// Devices still in use whose last push was refused for a full quarantine.
    pub fn count_quarantine_full(conn: &mut DbConn) -> Result<i64> {
        Ok(devices::table
            .filter(devices::revoked_at.is_null())
            .filter(devices::quarantine_full_at.is_not_null())
            .count()
            .get_result(conn)?)
    }

    /// Flags a device whose push was refused because its quarantine is full (the first
    /// refusal's time is kept until the flag clears); false when it was flagged already.
    pub fn flag_quarantine_full(conn: &mut DbConn, id: &str) -> Result<bool> {
        let flagged = diesel::update(
            devices::table
                .find(id)
                .filter(devices::quarantine_full_at.is_null()),
        )
        .set(devices::quarantine_full_at.eq(now_ms()))
        .execute(conn)?;
        Ok(flagged == 1)
    }

    /// Clears the flag once the device's quarantine has room again (a push of it was filed).
    pub fn clear_quarantine_full(conn: &mut DbConn, id: &str) -> Result<()> {
        diesel::update(
            devices::table
                .find(id)
                .filter(devices::quarantine_full_at.is_not_null()),
        )
        .set(devices::quarantine_full_at.eq(None::<i64>))
        .execute(conn)?;
        Ok(())
    }

    /// Flags a device whose clock stamps ran too far ahead (the first time is kept).
    pub fn flag_clock(conn: &mut DbConn, id: &str) -> Result<()> {
        diesel::update(
            devices::table
                .find(id)
                .filter(devices::clock_flagged_at.is_null()),
        )
        .set(devices::clock_flagged_at.eq(now_ms()))
        .execute(conn)?;
        Ok(())
    }

    /// Takes the device's row lock for the rest of a PostgreSQL transaction (a push filing its
    /// refusals).
    pub fn lock(conn: &mut diesel::PgConnection, id: &str) -> Result<()> {
        devices::table
            .find(id)
            .select(devices::id)
            .for_update()
            .first::<String>(conn)?;
        Ok(())
    }

    pub fn find(conn: &mut DbConn, id: &str) -> Result<Device> {
        devices::table
            .find(id)
            .select(Device::as_select())
            .first(conn)
            .optional()?
            .ok_or(Error::NotFound { what: "device" })
    }

    pub fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &DeviceFilter,
    ) -> Result<Paged<Device>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let mut check = Checker::new();
        let requested_user = check.opt_id("user_id", filter.user_id.as_deref());
        check.finish()?;
        let is_admin = caller.manages == Manages::Everything;
        let user_filter = match (is_admin, &requested_user) {
            (true, user) => user.clone(),
            (false, Some(user)) if user != &caller.user_id => {
                return Err(Error::NotFound { what: "user" });
            }
            (false, _) => Some(caller.user_id.clone()),
        };
        let query = || {
            let mut query = devices::table.into_boxed::<Backend>();
            if let Some(user) = &user_filter {
                query = query.filter(devices::user_id.eq(user.clone()));
            }
            query
        };
        let order = (devices::last_seen_at.desc(), devices::id.asc());
        Ok(ordered_page!(conn, query, page, order, Device))
    }

    /// Revokes one device: its tokens stop working on the next request. Admins may revoke any
    /// device; other users only their own.
    pub fn revoke(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Device> {
        let device = Self::find(conn, id)?;
        if caller.manages != Manages::Everything && device.user_id != caller.user_id {
            return Err(Error::NotFound { what: "device" });
        }
        Self::revoke_unchecked(conn, &device.id)?;
        Audit::record_by(
            conn,
            caller,
            Entry::new(AuditAction::DeviceRevoked)
                .about(AuditObject::Device, &device.id)
                .detail("user_id", device.user_id.clone())
                .detail("name", device.name.clone()),
        )?;
        Self::find(conn, &device.id)
    }

    /// Revokes a device without an ownership check (CLI and internal use).
    pub fn revoke_unchecked(conn: &mut DbConn, id: &str) -> Result<()> {
        let now = now_ms();
        diesel::update(
            devices::table
                .find(id)
                .filter(devices::revoked_at.is_null()),
        )
        .set(devices::revoked_at.eq(now))
        .execute(conn)?;
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::device_id.eq(id)))
            .execute(conn)?;
        Ok(())
    }

    /// Revokes every device of a user except `keep`.
    pub fn revoke_all(conn: &mut DbConn, user_id: &str, keep: Option<&str>) -> Result<()> {
        let ids = devices::table
            .filter(devices::user_id.eq(user_id))
            .filter(devices::revoked_at.is_null())
            .select(devices::id)
            .load::<String>(conn)?;
        for id in ids.iter().filter(|id| Some(id.as_str()) != keep) {
            Self::revoke_unchecked(conn, id)?;
        }
        Ok(())
    }
}

// Sign-in: what `auth` checks and rotates

/// A device's account as a bearer token's check reads it: whether the device is signed out or
/// the account disabled, when the device was last seen, and who the caller is.
#[derive(Debug, Clone, Queryable)]
pub struct SignedInAccount {
    pub revoked_at: Option<i64>,
    pub last_seen_at: i64,
    pub disabled_at: Option<i64>,
    pub role: String,
    pub person_id: Option<String>,
    pub unit_id: Option<String>,
}

impl Devices {
    /// The device `id` of the account `user_id` (joins `users`), whatever their state; `None`
    /// when there is no such device of that account.
    pub fn signed_in_account(
        conn: &mut DbConn,
        id: &str,
        user_id: &str,
    ) -> Result<Option<SignedInAccount>> {
        Ok(devices::table
            .inner_join(users::table)
            .filter(devices::id.eq(id))
            .filter(users::id.eq(user_id))
            .select((
                devices::revoked_at,
                devices::last_seen_at,
                users::disabled_at,
                users::role,
                users::person_id,
                users::unit_id,
            ))
            .get_result(conn)
            .optional()?)
    }

    /// Records that the device was seen at `now`.
    pub fn record_seen(conn: &mut DbConn, id: &str, now: i64) -> Result<()> {
        diesel::update(devices::table.find(id))
            .set(devices::last_seen_at.eq(now))
            .execute(conn)?;
        Ok(())
    }
}

/// A refresh token as stored, under the hash of the token (`auth` hashes and judges them).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub device_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The hash of the token this one was exchanged for.
    pub replaced_by: Option<String>,
}

/// The refresh tokens of devices, by the hash of the token. `Devices::revoke_unchecked` deletes
/// a device's.
pub struct RefreshTokens;

impl RefreshTokens {
    /// Stores a token issued to a device at `issued_at`.
    pub fn insert(
        conn: &mut DbConn,
        hash: &str,
        device_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        diesel::insert_into(refresh_tokens::table)
            .values((
                refresh_tokens::token_hash.eq(hash),
                refresh_tokens::device_id.eq(device_id),
                refresh_tokens::issued_at.eq(issued_at),
                refresh_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn find(conn: &mut DbConn, hash: &str) -> Result<Option<RefreshToken>> {
        Ok(refresh_tokens::table
            .find(hash)
            .select(RefreshToken::as_select())
            .get_result(conn)
            .optional()?)
    }

    /// Whether the token of `hash` is stored and was never used.
    pub fn is_unused(conn: &mut DbConn, hash: &str) -> Result<bool> {
        Ok(refresh_tokens::table
            .find(hash)
            .select(refresh_tokens::used_at)
            .get_result::<Option<i64>>(conn)
            .optional()?
            .is_some_and(|used_at| used_at.is_none()))
    }

    /// Marks the token of `hash` used at `now` unless it was used already; whether this call
    /// did (of two claims racing, one wins).
    pub fn claim(conn: &mut DbConn, hash: &str, now: i64) -> Result<bool> {
        let claimed = diesel::update(
            refresh_tokens::table
                .find(hash)
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(now))
        .execute(conn)?;
        Ok(claimed > 0)
    }

    /// Records the hash of the token the token of `hash` was exchanged for.
    pub fn record_successor(conn: &mut DbConn, hash: &str, successor: &str) -> Result<()> {
        diesel::update(refresh_tokens::table.find(hash))
            .set(refresh_tokens::replaced_by.eq(successor))
            .execute(conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_restricted() {
        assert_eq!(
            normalize_username(" Hoa.Nguyen ").as_deref(),
            Some("hoa.nguyen")
        );
        assert_eq!(normalize_username("ab"), None);
        assert_eq!(normalize_username("hoa nguyen"), None);
        assert_eq!(normalize_username("hòa"), None);
    }
}
