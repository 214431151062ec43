//! How the collections that devices write look to the sync layer: their wire fields, loading a
//! stored record as fields plus per-field stamps, natural keys, who may write them, and writing
//! a merged state back. Attendance and enrollments are device-writable; the other collections
//! change only through the admin API and reach devices through the pull feed.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{Value, json};

use super::clock::{Hlc, ServerClock};
use super::merge::{DELETED_FIELD, FieldStamps, Fields};
use crate::db::schema::{attendance, course_trainers, courses, enrollments, people, sessions};
use crate::db::{DbConn, Revisions, now_ms, on_backend};
use crate::domain::values::{Checker, MAX_TEXT_CHARS, format_ms, parse_id};
use crate::domain::{
    Caller, Role, attendance as attendance_rules, enrollments as enrollment_rules,
};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    Units,
    People,
    Courses,
    CourseTrainers,
    Sessions,
    Enrollments,
    Attendance,
    Materials,
}

impl Collection {
    pub const ALL: [Collection; 8] = [
        Collection::Units,
        Collection::People,
        Collection::Courses,
        Collection::CourseTrainers,
        Collection::Sessions,
        Collection::Enrollments,
        Collection::Attendance,
        Collection::Materials,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collection::Units => "units",
            Collection::People => "people",
            Collection::Courses => "courses",
            Collection::CourseTrainers => "course_trainers",
            Collection::Sessions => "sessions",
            Collection::Enrollments => "enrollments",
            Collection::Attendance => "attendance",
            Collection::Materials => "materials",
        }
    }

    pub fn parse(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn device_writable(self) -> bool {
        matches!(self, Collection::Attendance | Collection::Enrollments)
    }

    /// The fields a device may set (none for a read-only collection).
    pub fn writable_fields(self) -> &'static [&'static str] {
        if self.device_writable() {
            self.fields().0
        } else {
            &[]
        }
    }

    /// The fields a device may set, and the pair of them that is the natural key.
    fn fields(self) -> (&'static [&'static str], [&'static str; 2]) {
        match self {
            Collection::Attendance => (
                &["session_id", "person_id", "status", "checked_in_at", "note"],
                ["session_id", "person_id"],
            ),
            _ => (
                &["course_id", "person_id", "status"],
                ["course_id", "person_id"],
            ),
        }
    }
}

/// A stored record as the merge sees it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub id: String,
    pub fields: Fields,
    pub stamps: FieldStamps,
}

fn rejected(code: &'static str, message: impl Into<String>) -> Error {
    Error::conflict(code, message)
}

/// Checks that every field is one the collection has, with a value of the right type, and puts
/// values in their stored form (canonical ids, UTC times, NFC text), so that the same value sent
/// in another spelling is not taken for a change.
pub fn normalize_fields(collection: Collection, incoming: Fields) -> Result<Fields> {
    let (allowed, _) = collection.fields();
    let mut normalized = Fields::new();
    for (name, value) in incoming {
        let value = match (name.as_str(), value) {
            (DELETED_FIELD, value @ Value::Bool(_)) => value,
            ("checked_in_at" | "note", Value::Null) => Value::Null,
            ("checked_in_at", Value::String(raw)) => {
                let mut check = Checker::new();
                let ms = check.instant("checked_in_at", &raw);
                check.finish()?;
                Value::String(format_ms(ms))
            }
            ("note", Value::String(raw)) => {
                let mut check = Checker::new();
                let note = check.opt_long_text("note", Some(&raw), MAX_TEXT_CHARS);
                check.finish()?;
                note.map_or(Value::Null, Value::String)
            }
            ("status", value @ Value::String(_)) => value,
            (id_field, Value::String(raw)) if allowed.contains(&id_field) => {
                let id = parse_id(&raw)
                    .ok_or_else(|| rejected("invalid_id", format!("{id_field} must be a UUID")))?;
                Value::String(id)
            }
            (known, _) if allowed.contains(&known) || known == DELETED_FIELD => {
                return Err(rejected(
                    "invalid_field_type",
                    format!("{known} has the wrong type"),
                ));
            }
            (unknown, _) => {
                return Err(rejected(
                    "unknown_field",
                    format!("{} has no field {unknown:?}", collection.name()),
                ));
            }
        };
        normalized.insert(name, value);
    }
    Ok(normalized)
}

fn parse_stamps(raw: &str) -> Result<FieldStamps> {
    serde_json::from_str(raw).map_err(|e| Error::Internal(format!("stored stamps unreadable: {e}")))
}

fn stamps_text(stamps: &FieldStamps) -> Result<String> {
    serde_json::to_string(stamps).map_err(|e| Error::Internal(e.to_string()))
}

pub fn load(conn: &mut DbConn, collection: Collection, id: &str) -> Result<Option<StoredRecord>> {
    match collection {
        Collection::Attendance => {
            let row = on_backend!(conn, |backend| attendance::table
                .find(id)
                .select((
                    attendance::session_id,
                    attendance::person_id,
                    attendance::status,
                    attendance::checked_in_at,
                    attendance::note,
                    attendance::deleted_at,
                    attendance::stamps,
                ))
                .get_result::<(
                    String,
                    String,
                    String,
                    Option<i64>,
                    Option<String>,
                    Option<i64>,
                    String,
                )>(backend)
                .optional())?;
            row.map(
                |(session, person, status, checked_in, note, deleted, stamps)| {
                    let fields = json!({
                        "session_id": session,
                        "person_id": person,
                        "status": status,
                        "checked_in_at": checked_in.map(format_ms),
                        "note": note,
                        DELETED_FIELD: deleted.is_some(),
                    });
                    Ok(StoredRecord {
                        id: id.to_owned(),
                        fields: object(fields),
                        stamps: parse_stamps(&stamps)?,
                    })
                },
            )
            .transpose()
        }
        Collection::Enrollments => {
            let row = on_backend!(conn, |backend| enrollments::table
                .find(id)
                .select((
                    enrollments::course_id,
                    enrollments::person_id,
                    enrollments::status,
                    enrollments::deleted_at,
                    enrollments::stamps,
                ))
                .get_result::<(String, String, String, Option<i64>, String)>(backend)
                .optional())?;
            row.map(|(course, person, status, deleted, stamps)| {
                let fields = json!({
                    "course_id": course,
                    "person_id": person,
                    "status": status,
                    DELETED_FIELD: deleted.is_some(),
                });
                Ok(StoredRecord {
                    id: id.to_owned(),
                    fields: object(fields),
                    stamps: parse_stamps(&stamps)?,
                })
            })
            .transpose()
        }
        other => Err(rejected(
            "read_only_collection",
            format!("{} cannot be changed by devices", other.name()),
        )),
    }
}

fn object(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Fields::new(),
    }
}

fn text<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(Value::as_str)
}

/// The record that already holds the natural key the incoming fields name, if any.
pub fn find_by_natural_key(
    conn: &mut DbConn,
    collection: Collection,
    incoming: &Fields,
) -> Result<Option<StoredRecord>> {
    let (_, [first, second]) = collection.fields();
    let (Some(a), Some(b)) = (text(incoming, first), text(incoming, second)) else {
        return Ok(None);
    };
    let id = match collection {
        Collection::Attendance => on_backend!(conn, |backend| attendance::table
            .filter(attendance::session_id.eq(a))
            .filter(attendance::person_id.eq(b))
            .select(attendance::id)
            .get_result::<String>(backend)
            .optional())?,
        _ => on_backend!(conn, |backend| enrollments::table
            .filter(enrollments::course_id.eq(a))
            .filter(enrollments::person_id.eq(b))
            .select(enrollments::id)
            .get_result::<String>(backend)
            .optional())?,
    };
    match id {
        Some(id) => load(conn, collection, &id),
        None => Ok(None),
    }
}

/// The natural key of a record never changes.
pub fn check_immutable(collection: Collection, stored: &Fields, incoming: &Fields) -> Result<()> {
    let (_, key) = collection.fields();
    for name in key {
        if let Some(value) = incoming.get(name)
            && stored.get(name) != Some(value)
        {
            return Err(rejected(
                "immutable_field",
                format!("{name} of an existing record cannot change"),
            ));
        }
    }
    Ok(())
}

/// What `authorize` has read during one push, so that a batch of 200 mutations on a few sessions
/// and trainees asks the database once per session, course and person instead of five times per
/// mutation. Sessions, courses, assignments and people do not change inside a push (devices do
/// not write them); enrollments do, so writing one forgets what was read about them.
#[derive(Debug, Default)]
pub struct PushFacts {
    /// Session → (its course, whether it was deleted); None when it does not exist.
    sessions: HashMap<String, Option<(String, bool)>>,
    live_courses: HashMap<String, bool>,
    assigned_courses: HashMap<String, bool>,
    live_people: HashMap<String, bool>,
    /// (course, person) → an enrollment that is not withdrawn exists.
    enrolled: HashMap<(String, String), bool>,
}

impl PushFacts {
    /// Called before an enrollment is written (whether or not the write then stands).
    pub fn forget_enrollments(&mut self) {
        self.enrolled.clear();
    }
}

/// A cached answer, or the database's, remembered.
fn remembered<K, V, F>(cache: &mut HashMap<K, V>, key: K, read: F) -> Result<V>
where
    K: std::hash::Hash + Eq,
    V: Clone,
    F: FnOnce() -> Result<V>,
{
    if let Some(value) = cache.get(&key) {
        return Ok(value.clone());
    }
    let value = read()?;
    cache.insert(key, value.clone());
    Ok(value)
}

/// Checks that the caller may write this record and that what it points at still exists;
/// returns the record's course.
pub fn authorize(
    conn: &mut DbConn,
    facts: &mut PushFacts,
    caller: &Caller,
    collection: Collection,
    fields: &Fields,
) -> Result<Option<String>> {
    let deleted = fields
        .get(DELETED_FIELD)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let person = text(fields, "person_id")
        .ok_or_else(|| rejected("missing_field", "person_id is required"))?;
    let course_id = match collection {
        Collection::Attendance => {
            let session = text(fields, "session_id")
                .ok_or_else(|| rejected("missing_field", "session_id is required"))?;
            let found = remembered(&mut facts.sessions, session.to_owned(), || {
                Ok(sessions::table
                    .find(session)
                    .select((sessions::course_id, sessions::deleted_at))
                    .get_result::<(String, Option<i64>)>(conn)
                    .optional()?
                    .map(|(course, deleted_at)| (course, deleted_at.is_some())))
            })?;
            match found {
                None => return Err(rejected("unknown_session", "the session does not exist")),
                Some((_, true)) => {
                    return Err(rejected("session_deleted", "the session was deleted"));
                }
                Some((course, false)) => course,
            }
        }
        _ => text(fields, "course_id")
            .ok_or_else(|| rejected("missing_field", "course_id is required"))?
            .to_owned(),
    };
    let course_live = remembered(&mut facts.live_courses, course_id.clone(), || {
        Ok(courses::table
            .find(&course_id)
            .filter(courses::deleted_at.is_null())
            .count()
            .get_result::<i64>(conn)?
            > 0)
    })?;
    if !course_live {
        return Err(rejected(
            "course_deleted",
            "the course does not exist or was deleted",
        ));
    }
    let assigned = match caller.role {
        Role::Admin => true,
        Role::Trainee => false,
        Role::Trainer => remembered(&mut facts.assigned_courses, course_id.clone(), || {
            Ok(course_trainers::table
                .filter(course_trainers::course_id.eq(&course_id))
                .filter(course_trainers::user_id.eq(&caller.user_id))
                .filter(course_trainers::deleted_at.is_null())
                .count()
                .get_result::<i64>(conn)?
                > 0)
        })?,
    };
    if !assigned {
        return Err(rejected(
            "not_assigned",
            "the user is not (or no longer) a trainer of this course",
        ));
    }
    let person_live = remembered(&mut facts.live_people, person.to_owned(), || {
        Ok(people::table
            .find(person)
            .filter(people::deleted_at.is_null())
            .count()
            .get_result::<i64>(conn)?
            > 0)
    })?;
    if !person_live {
        return Err(rejected("unknown_person", "the person does not exist"));
    }
    if collection == Collection::Attendance && !deleted {
        let key = (course_id.clone(), person.to_owned());
        let enrolled = remembered(&mut facts.enrolled, key, || {
            Ok(enrollments::table
                .filter(enrollments::course_id.eq(&course_id))
                .filter(enrollments::person_id.eq(person))
                .filter(enrollments::deleted_at.is_null())
                .filter(enrollments::status.ne("withdrawn"))
                .count()
                .get_result::<i64>(conn)?
                > 0)
        })?;
        if !enrolled {
            return Err(rejected(
                "not_enrolled",
                "the person is not enrolled in the course",
            ));
        }
    }
    Ok(Some(course_id))
}

/// The course a mutation's fields point at, for filing a quarantined mutation.
pub fn course_of_fields(
    conn: &mut DbConn,
    collection: &str,
    fields: &Fields,
) -> Result<Option<String>> {
    if let Some(course) = text(fields, "course_id") {
        return Ok(Some(course.to_owned()));
    }
    match (collection, text(fields, "session_id")) {
        ("attendance", Some(session)) => Ok(sessions::table
            .find(session)
            .select(sessions::course_id)
            .get_result::<String>(conn)
            .optional()?),
        _ => Ok(None),
    }
}

/// Writes a merged state. Returns the new revision when anything changed.
#[allow(clippy::too_many_arguments)]
pub fn write(
    conn: &mut DbConn,
    revisions: &mut Revisions,
    caller: &Caller,
    collection: Collection,
    id: &str,
    fields: &Fields,
    stamps: &FieldStamps,
    is_new: bool,
    changed: bool,
) -> Result<Option<i64>> {
    let now = now_ms();
    let deleted = fields
        .get(DELETED_FIELD)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stamps = stamps_text(stamps)?;
    if !changed {
        // Newer stamps on unchanged values still count for later merges.
        match collection {
            Collection::Attendance => diesel::update(attendance::table.find(id))
                .set(attendance::stamps.eq(&stamps))
                .execute(conn)?,
            _ => diesel::update(enrollments::table.find(id))
                .set(enrollments::stamps.eq(&stamps))
                .execute(conn)?,
        };
        return Ok(None);
    }
    let mut check = Checker::new();
    let status = text(fields, "status").map(str::to_owned);
    let rev = revisions.next(conn)?;
    match collection {
        Collection::Attendance => {
            let status = check.one_of(
                "status",
                status.as_deref().unwrap_or(""),
                &attendance_rules::STATUSES,
            );
            let checked_in_at = check.opt_instant("checked_in_at", text(fields, "checked_in_at"));
            let note = check.opt_long_text("note", text(fields, "note"), MAX_TEXT_CHARS);
            check.finish()?;
            let deleted_at = deleted.then_some(now);
            if is_new {
                on_backend!(conn, |backend| diesel::insert_into(attendance::table)
                    .values((
                        attendance::id.eq(id),
                        attendance::session_id.eq(text(fields, "session_id").unwrap_or_default()),
                        attendance::person_id.eq(text(fields, "person_id").unwrap_or_default()),
                        attendance::status.eq(&status),
                        attendance::checked_in_at.eq(checked_in_at),
                        attendance::note.eq(&note),
                        attendance::recorded_by.eq(&caller.user_id),
                        attendance::recorded_device.eq(&caller.device_id),
                        attendance::rev.eq(rev),
                        attendance::created_at.eq(now),
                        attendance::updated_at.eq(now),
                        attendance::deleted_at.eq(deleted_at),
                        attendance::stamps.eq(&stamps),
                    ))
                    .execute(backend))?;
            } else {
                let previous: Option<i64> = on_backend!(conn, |backend| attendance::table
                    .find(id)
                    .select(attendance::deleted_at)
                    .get_result(backend))?;
                diesel::update(attendance::table.find(id))
                    .set((
                        attendance::status.eq(&status),
                        attendance::checked_in_at.eq(checked_in_at),
                        attendance::note.eq(&note),
                        attendance::recorded_by.eq(&caller.user_id),
                        attendance::recorded_device.eq(&caller.device_id),
                        attendance::rev.eq(rev),
                        attendance::updated_at.eq(now),
                        attendance::deleted_at.eq(if deleted {
                            previous.or(Some(now))
                        } else {
                            None
                        }),
                        attendance::stamps.eq(&stamps),
                    ))
                    .execute(conn)?;
            }
        }
        _ => {
            let status = check.one_of(
                "status",
                status.as_deref().unwrap_or("enrolled"),
                &enrollment_rules::STATUSES,
            );
            check.finish()?;
            if is_new {
                on_backend!(conn, |backend| diesel::insert_into(enrollments::table)
                    .values((
                        enrollments::id.eq(id),
                        enrollments::course_id.eq(text(fields, "course_id").unwrap_or_default()),
                        enrollments::person_id.eq(text(fields, "person_id").unwrap_or_default()),
                        enrollments::status.eq(&status),
                        enrollments::rev.eq(rev),
                        enrollments::created_at.eq(now),
                        enrollments::updated_at.eq(now),
                        enrollments::deleted_at.eq(deleted.then_some(now)),
                        enrollments::stamps.eq(&stamps),
                    ))
                    .execute(backend))?;
            } else {
                let previous: Option<i64> = on_backend!(conn, |backend| enrollments::table
                    .find(id)
                    .select(enrollments::deleted_at)
                    .get_result(backend))?;
                diesel::update(enrollments::table.find(id))
                    .set((
                        enrollments::status.eq(&status),
                        enrollments::rev.eq(rev),
                        enrollments::updated_at.eq(now),
                        enrollments::deleted_at.eq(if deleted {
                            previous.or(Some(now))
                        } else {
                            None
                        }),
                        enrollments::stamps.eq(&stamps),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(Some(rev))
}

/// Gives a record a new revision without changing it, so that the feed carries it again.
pub fn touch(
    conn: &mut DbConn,
    revisions: &mut Revisions,
    collection: Collection,
    id: &str,
) -> Result<i64> {
    let rev = revisions.next(conn)?;
    match collection {
        Collection::Attendance => diesel::update(attendance::table.find(id))
            .set(attendance::rev.eq(rev))
            .execute(conn)?,
        _ => diesel::update(enrollments::table.find(id))
            .set(enrollments::rev.eq(rev))
            .execute(conn)?,
    };
    Ok(rev)
}

/// After an admin-API write, stamps every field of a device-writable record with the server's
/// clock, so that the edit takes part in last-writer-wins like a device's.
pub fn stamp_server_write(
    conn: &mut DbConn,
    collection: Collection,
    id: &str,
    clock: &ServerClock,
) -> Result<()> {
    if !collection.device_writable() {
        return Ok(());
    }
    let Some(record) = load(conn, collection, id)? else {
        return Ok(());
    };
    let stamp: Hlc = clock.now(u64::try_from(now_ms()).unwrap_or_default());
    let stamps: FieldStamps = record
        .fields
        .keys()
        .map(|field| (field.clone(), stamp.clone()))
        .collect();
    let stamps = stamps_text(&stamps)?;
    match collection {
        Collection::Attendance => diesel::update(attendance::table.find(id))
            .set(attendance::stamps.eq(stamps))
            .execute(conn)?,
        _ => diesel::update(enrollments::table.find(id))
            .set(enrollments::stamps.eq(stamps))
            .execute(conn)?,
    };
    Ok(())
}
