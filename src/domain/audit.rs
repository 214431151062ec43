//! The audit trail (`audit_log`, owned here): who changed what and when, from which device and
//! address. Every entry is written in the transaction of the change it records, so an entry
//! exists exactly when the change committed; a failed login, which changes nothing else, is a
//! small write of its own. Administrators read it paged and filtered, or as CSV/XLSX.
//!
//! What is recorded: logins, failed logins, logouts, refresh tokens presented twice (the device
//! is signed out), password changes and resets, account and device administration, writes
//! through the admin API, material uploads, roster imports, unit merges and renames, conflict
//! resolutions and quarantine re-applications and dismissals. Not recorded: token refreshes
//! (one every quarter of an hour per device) and trainers' sync pushes, whose mutation log is
//! already their trail. Passwords, password hashes and tokens never reach an entry: the
//! callers never hand them over, and `harmless` drops any detail whose name says it holds one.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::db::schema::audit_log;
use crate::db::{Backend, DbConn, now_ms};
use crate::domain::users::Users;
use crate::domain::values::{Checker, new_id, serialize_ms};
use crate::domain::{Caller, PageRequest, Paged};
use crate::error::{Error, Result};

/// The longest failed-login username kept, in characters.
const MAX_USERNAME_CHARS: usize = 100;
/// Text values in `details` are cut to this many characters.
const MAX_DETAIL_CHARS: usize = 200;
/// The most entries one CSV or XLSX export holds; narrow the period for more.
pub const MAX_EXPORT_ROWS: i64 = 100_000;

/// What was done. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Login,
    LoginFailed,
    Logout,
    /// A refresh token was presented a second time: the device was signed out.
    RefreshTokenReused,
    /// The account's owner changed their password.
    PasswordChanged,
    /// An administrator set an account's password.
    PasswordReset,
    UserCreated,
    /// Display name, role or disabled state changed.
    UserUpdated,
    DeviceRevoked,
    /// A record created through the admin API (`object_type` says which kind).
    Created,
    Updated,
    Deleted,
    MaterialUploaded,
    MaterialContentReplaced,
    ImportApplied,
    UnitsMerged,
    UnitRenamed,
    ConflictResolved,
    QuarantineReapplied,
    QuarantineDismissed,
}

impl AuditAction {
    pub const ALL: [AuditAction; 20] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::RefreshTokenReused,
        AuditAction::PasswordChanged,
        AuditAction::PasswordReset,
        AuditAction::UserCreated,
        AuditAction::UserUpdated,
        AuditAction::DeviceRevoked,
        AuditAction::Created,
        AuditAction::Updated,
        AuditAction::Deleted,
        AuditAction::MaterialUploaded,
        AuditAction::MaterialContentReplaced,
        AuditAction::ImportApplied,
        AuditAction::UnitsMerged,
        AuditAction::UnitRenamed,
        AuditAction::ConflictResolved,
        AuditAction::QuarantineReapplied,
        AuditAction::QuarantineDismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::RefreshTokenReused => "refresh_token_reused",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::UserCreated => "user_created",
            AuditAction::UserUpdated => "user_updated",
            AuditAction::DeviceRevoked => "device_revoked",
            AuditAction::Created => "created",
            AuditAction::Updated => "updated",
            AuditAction::Deleted => "deleted",
            AuditAction::MaterialUploaded => "material_uploaded",
            AuditAction::MaterialContentReplaced => "material_content_replaced",
            AuditAction::ImportApplied => "import_applied",
            AuditAction::UnitsMerged => "units_merged",
            AuditAction::UnitRenamed => "unit_renamed",
            AuditAction::ConflictResolved => "conflict_resolved",
            AuditAction::QuarantineReapplied => "quarantine_reapplied",
            AuditAction::QuarantineDismissed => "quarantine_dismissed",
        }
    }

    pub fn parse(raw: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }
}

/// The kind of thing an entry is about. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditObject {
    User,
    Device,
    Unit,
    Person,
    Course,
    CourseTrainer,
    Session,
    Enrollment,
    Attendance,
    Material,
    Conflict,
    QuarantinedMutation,
    TrainingPlan,
}

impl AuditObject {
    pub const ALL: [AuditObject; 13] = [
        AuditObject::User,
        AuditObject::Device,
        AuditObject::Unit,
        AuditObject::Person,
        AuditObject::Course,
        AuditObject::CourseTrainer,
        AuditObject::Session,
        AuditObject::Enrollment,
        AuditObject::Attendance,
        AuditObject::Material,
        AuditObject::Conflict,
        AuditObject::QuarantinedMutation,
        AuditObject::TrainingPlan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditObject::User => "user",
            AuditObject::Device => "device",
            AuditObject::Unit => "unit",
            AuditObject::Person => "person",
            AuditObject::Course => "course",
            AuditObject::CourseTrainer => "course_trainer",
            AuditObject::Session => "session",
            AuditObject::Enrollment => "enrollment",
            AuditObject::Attendance => "attendance",
            AuditObject::Material => "material",
            AuditObject::Conflict => "conflict",
            AuditObject::QuarantinedMutation => "quarantined_mutation",
            AuditObject::TrainingPlan => "training_plan",
        }
    }

    pub fn parse(raw: &str) -> Option<AuditObject> {
        Self::ALL.into_iter().find(|object| object.as_str() == raw)
    }
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedLogin {
    /// No account has the name typed.
    UnknownUser,
    WrongPassword,
    /// The password was right; the account is disabled.
    AccountDisabled,
}

impl FailedLogin {
    pub fn as_str(self) -> &'static str {
        match self {
            FailedLogin::UnknownUser => "unknown_user",
            FailedLogin::WrongPassword => "wrong_password",
            FailedLogin::AccountDisabled => "account_disabled",
        }
    }
}

/// Who acted, and from where. Empty ids (the command line acts with none) are stored as NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub address: Option<String>,
}

impl Actor {
    pub fn of(caller: &Caller) -> Actor {
        let present = |id: &str| Some(id.to_owned()).filter(|id| !id.is_empty());
        Actor {
            user_id: present(&caller.user_id),
            device_id: present(&caller.device_id),
            address: caller.address.clone(),
        }
    }
}

/// One thing done, about to be recorded.
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: AuditAction,
    pub object: Option<(AuditObject, String)>,
    pub details: Map<String, Value>,
}

impl Entry {
    pub fn new(action: AuditAction) -> Entry {
        Entry {
            action,
            object: None,
            details: Map::new(),
        }
    }

    pub fn about(mut self, object: AuditObject, id: impl Into<String>) -> Entry {
        self.object = Some((object, id.into()));
        self
    }

    pub fn detail(mut self, name: &str, value: impl Into<Value>) -> Entry {
        self.details.insert(name.to_owned(), value.into());
        self
    }

    /// The fields of a record written through the admin API: on a creation every field set,
    /// on a replacement the fields whose value changed, each with its new value. Bookkeeping
    /// fields (id, revision, times) are left out.
    pub fn record_fields(mut self, before: Option<&Value>, after: &Value) -> Entry {
        const BOOKKEEPING: [&str; 5] = ["id", "rev", "created_at", "updated_at", "deleted_at"];
        let (Value::Object(after), before) = (after, before.and_then(Value::as_object)) else {
            return self;
        };
        let mut fields = Map::new();
        for (name, value) in after {
            let changed = match before {
                Some(before) => before.get(name) != Some(value),
                None => !value.is_null(),
            };
            if changed && !BOOKKEEPING.contains(&name.as_str()) {
                fields.insert(name.clone(), value.clone());
            }
        }
        self.details
            .insert("fields".to_owned(), Value::Object(fields));
        self
    }
}

/// An entry as stored and listed.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: String,
    #[serde(serialize_with = "serialize_ms")]
    pub at: i64,
    pub user_id: Option<String>,
    /// The account's username; for a failed login, the name as typed.
    pub username: Option<String>,
    pub device_id: Option<String>,
    pub address: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    #[serde(serialize_with = "serialize_json_text")]
    pub details: String,
}

fn serialize_json_text<S: Serializer>(text: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Object(Map::new()));
    value.serialize(s)
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewRow<'a> {
    id: String,
    at: i64,
    user_id: Option<&'a str>,
    username: Option<String>,
    device_id: Option<&'a str>,
    address: Option<&'a str>,
    action: &'static str,
    object_type: Option<&'static str>,
    object_id: Option<&'a str>,
    details: String,
}

/// The list's filters; `from`/`to` are RFC 3339 (`from` inclusive, `to` exclusive).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A filter once checked.
struct Criteria {
    user_id: Option<String>,
    action: Option<AuditAction>,
    object_type: Option<AuditObject>,
    object_id: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
}

impl Criteria {
    fn check(filter: &AuditFilter) -> Result<Criteria> {
        let mut check = Checker::new();
        let user_id = check.opt_id("user_id", filter.user_id.as_deref());
        let action_names = AuditAction::ALL.map(AuditAction::as_str);
        let action = check
            .opt_one_of("action", filter.action.as_deref(), &action_names)
            .and_then(|name| AuditAction::parse(&name));
        let object_names = AuditObject::ALL.map(AuditObject::as_str);
        let object_type = check
            .opt_one_of("object_type", filter.object_type.as_deref(), &object_names)
            .and_then(|name| AuditObject::parse(&name));
        let object_id = check.opt_id("object_id", filter.object_id.as_deref());
        if object_id.is_some() && filter.object_type.is_none() {
            check.fail(
                "object_type",
                "required",
                "name the object's type along with its id",
            );
        }
        let from = check.opt_instant("from", filter.from.as_deref());
        let to = check.opt_instant("to", filter.to.as_deref());
        if let (Some(from), Some(to)) = (&from, &to) {
            check.ordered("to", from, to, "must not be before from");
        }
        check.finish()?;
        Ok(Criteria {
            user_id,
            action,
            object_type,
            object_id,
            from,
            to,
        })
    }

    fn query(&self) -> audit_log::BoxedQuery<'static, Backend> {
        let mut query = audit_log::table.into_boxed::<Backend>();
        if let Some(user) = &self.user_id {
            query = query.filter(audit_log::user_id.eq(user.clone()));
        }
        if let Some(action) = self.action {
            query = query.filter(audit_log::action.eq(action.as_str()));
        }
        if let Some(object) = self.object_type {
            query = query.filter(audit_log::object_type.eq(object.as_str()));
        }
        if let Some(id) = &self.object_id {
            query = query.filter(audit_log::object_id.eq(id.clone()));
        }
        if let Some(from) = self.from {
            query = query.filter(audit_log::at.ge(from));
        }
        if let Some(to) = self.to {
            query = query.filter(audit_log::at.lt(to));
        }
        query
    }
}

/// Drops every detail whose name says it could hold a secret, at any depth, and cuts long text.
fn harmless(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(name, _)| {
                    let name = name.to_ascii_lowercase();
                    !["password", "token", "secret", "hash"]
                        .iter()
                        .any(|word| name.contains(word))
                })
                .map(|(name, value)| (name, harmless(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(harmless).collect()),
        Value::String(text) if text.chars().count() > MAX_DETAIL_CHARS => {
            Value::String(text.chars().take(MAX_DETAIL_CHARS).collect::<String>() + "…")
        }
        other => other,
    }
}

/// Names each entry's account by its username (a failed login keeps the name as typed).
fn with_usernames(conn: &mut DbConn, mut entries: Vec<AuditEntry>) -> Result<Vec<AuditEntry>> {
    let mut ids: Vec<&str> = entries
        .iter()
        .filter(|entry| entry.username.is_none())
        .filter_map(|entry| entry.user_id.as_deref())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut names: HashMap<String, String> = HashMap::new();
    for chunk in ids.chunks(500) {
        names.extend(Users::usernames(conn, chunk)?);
    }
    for entry in &mut entries {
        if entry.username.is_none() {
            entry.username = entry.user_id.as_ref().and_then(|id| names.get(id).cloned());
        }
    }
    Ok(entries)
}

/// A typed username as kept: no control characters, at most `MAX_USERNAME_CHARS`.
fn bounded_username(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(MAX_USERNAME_CHARS)
        .collect()
}

pub struct Audit;

impl Audit {
    /// Records what an actor did. Call it inside the transaction of the change.
    pub fn record(conn: &mut DbConn, actor: &Actor, entry: Entry) -> Result<()> {
        Self::insert(conn, actor, None, entry)
    }

    /// Records what the caller did. Call it inside the transaction of the change.
    pub fn record_by(conn: &mut DbConn, caller: &Caller, entry: Entry) -> Result<()> {
        Self::insert(conn, &Actor::of(caller), None, entry)
    }

    /// Records a refused login: the account when one has that name (else none), the name as
    /// typed and why.
    pub fn record_failed_login(
        conn: &mut DbConn,
        user_id: Option<&str>,
        username: &str,
        address: &str,
        reason: FailedLogin,
    ) -> Result<()> {
        let actor = Actor {
            user_id: user_id.map(str::to_owned),
            device_id: None,
            address: Some(address.to_owned()),
        };
        let mut entry = Entry::new(AuditAction::LoginFailed).detail("reason", reason.as_str());
        if let Some(id) = user_id {
            entry = entry.about(AuditObject::User, id);
        }
        Self::insert(conn, &actor, Some(bounded_username(username)), entry)
    }

    fn insert(
        conn: &mut DbConn,
        actor: &Actor,
        username: Option<String>,
        entry: Entry,
    ) -> Result<()> {
        let details = harmless(Value::Object(entry.details));
        diesel::insert_into(audit_log::table)
            .values(NewRow {
                id: new_id(),
                at: now_ms(),
                user_id: actor.user_id.as_deref(),
                username,
                device_id: actor.device_id.as_deref(),
                address: actor.address.as_deref(),
                action: entry.action.as_str(),
                object_type: entry.object.as_ref().map(|(object, _)| object.as_str()),
                object_id: entry.object.as_ref().map(|(_, id)| id.as_str()),
                details: details.to_string(),
            })
            .execute(conn)?;
        Ok(())
    }

    /// A page of entries, newest first. Administrators only.
    pub fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &AuditFilter,
    ) -> Result<Paged<AuditEntry>> {
        caller.manages.require_everything()?;
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let criteria = Criteria::check(filter)?;
        let total = criteria.query().count().get_result(conn)?;
        let items = criteria
            .query()
            .order((audit_log::at.desc(), audit_log::id.desc()))
            .select(AuditEntry::as_select())
            .limit(page.limit)
            .offset(page.offset)
            .load(conn)?;
        let items = with_usernames(conn, items)?;
        Ok(Paged::new(items, total, page))
    }

    /// Every entry matching the filter (paging ignored), newest first, for a file. More than
    /// `MAX_EXPORT_ROWS` is refused (422 `export_too_large`). Administrators only.
    pub fn export(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        caller.manages.require_everything()?;
        let criteria = Criteria::check(filter)?;
        let total: i64 = criteria.query().count().get_result(conn)?;
        if total > MAX_EXPORT_ROWS {
            return Err(Error::invalid_field(
                "to",
                "export_too_large",
                format!(
                    "{total} entries match; a file holds at most {MAX_EXPORT_ROWS}: narrow the period"
                ),
            ));
        }
        let entries = criteria
            .query()
            .order((audit_log::at.desc(), audit_log::id.desc()))
            .select(AuditEntry::as_select())
            .load(conn)?;
        with_usernames(conn, entries)
    }

    /// Deletes the entries recorded before `cutoff` (Unix ms); returns how many.
    pub fn prune(conn: &mut DbConn, cutoff: i64) -> Result<usize> {
        Ok(diesel::delete(audit_log::table.filter(audit_log::at.lt(cutoff))).execute(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_objects_read_back_from_their_names() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                Value::String(action.as_str().into())
            );
        }
        for object in AuditObject::ALL {
            assert_eq!(AuditObject::parse(object.as_str()), Some(object));
        }
        assert_eq!(AuditAction::parse("Login"), None);
        assert_eq!(AuditObject::parse("users"), None);
    }

    #[test]
    fn details_naming_a_secret_are_dropped_at_any_depth() {
        let details = serde_json::json!({
            "username": "hoa",
            "password": "p",
            "new_password_hash": "h",
            "nested": {"refresh_token": "t", "kept": 1, "list": [{"access_Token": "x", "y": 2}]},
            "client_secret": "s",
        });
        assert_eq!(
            harmless(details),
            serde_json::json!({"username": "hoa", "nested": {"kept": 1, "list": [{"y": 2}]}})
        );
    }

    #[test]
    fn long_text_in_details_and_typed_usernames_are_bounded() {
        let long = "ễ".repeat(MAX_DETAIL_CHARS + 5);
        let Value::String(cut) = harmless(Value::String(long)) else {
            panic!("text stays text")
        };
        assert_eq!(cut.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(cut.ends_with('…'));
        let typed = format!("a\u{0}b{}", "x".repeat(500));
        let kept = bounded_username(&typed);
        assert!(kept.starts_with("ab"));
        assert_eq!(kept.chars().count(), MAX_USERNAME_CHARS);
    }

    #[test]
    fn record_fields_list_what_a_creation_set_and_what_a_replacement_changed() {
        let before =
            serde_json::json!({"id": "1", "rev": 3, "title": "A", "place": null, "days": 2});
        let after =
            serde_json::json!({"id": "1", "rev": 4, "title": "B", "place": null, "days": 2});
        let entry = Entry::new(AuditAction::Updated).record_fields(Some(&before), &after);
        assert_eq!(entry.details["fields"], serde_json::json!({"title": "B"}));
        let entry = Entry::new(AuditAction::Created).record_fields(None, &after);
        assert_eq!(
            entry.details["fields"],
            serde_json::json!({"title": "B", "days": 2})
        );
    }
}
