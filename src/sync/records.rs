//! How the collections that devices write look to the sync layer: their wire fields, loading a
//! stored record as fields plus per-field stamps, natural keys, who may write them, and writing
//! a merged state back. Attendance and enrollments are device-writable; the other collections
//! change only through the admin API and reach devices through the pull feed.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{Value, json};

use super::merge::{DELETED_FIELD, FieldStamps, Fields};
use crate::db::schema::{attendance, enrollments};
use crate::db::{DbConn, on_backend};
use crate::domain::values::{Checker, MAX_TEXT_CHARS, format_ms, parse_id};
use crate::domain::{attendance as attendance_rules, enrollments as enrollment_rules};
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

pub fn text<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(Value::as_str)
}

/// The natural key the fields name: (session, person) for attendance, (course, person) for
/// enrollments; None unless both are there.
pub fn natural_key(collection: Collection, fields: &Fields) -> Option<(String, String)> {
    let (_, [first, second]) = collection.fields();
    Some((
        text(fields, first)?.to_owned(),
        text(fields, second)?.to_owned(),
    ))
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

/// An attendance row with its field stamps, as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = attendance, treat_none_as_default_value = false)]
pub struct AttendanceRow {
    pub id: String,
    pub session_id: String,
    pub person_id: String,
    pub status: String,
    pub checked_in_at: Option<i64>,
    pub note: Option<String>,
    pub recorded_by: String,
    pub recorded_device: Option<String>,
    pub rev: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub stamps: String,
}

/// An enrollment row with its field stamps, as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = enrollments, treat_none_as_default_value = false)]
pub struct EnrollmentRow {
    pub id: String,
    pub course_id: String,
    pub person_id: String,
    pub status: String,
    pub rev: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub stamps: String,
}

/// A stored row of a device-writable collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Attendance(AttendanceRow),
    Enrollment(EnrollmentRow),
}

/// Who wrote a state, and when: the columns of a row that the merge does not decide.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub now: i64,
}

impl Row {
    pub fn collection(&self) -> Collection {
        match self {
            Row::Attendance(_) => Collection::Attendance,
            Row::Enrollment(_) => Collection::Enrollments,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Row::Attendance(row) => &row.id,
            Row::Enrollment(row) => &row.id,
        }
    }

    pub fn rev(&self) -> i64 {
        match self {
            Row::Attendance(row) => row.rev,
            Row::Enrollment(row) => row.rev,
        }
    }

    pub fn set_rev(&mut self, rev: i64) {
        match self {
            Row::Attendance(row) => row.rev = rev,
            Row::Enrollment(row) => row.rev = rev,
        }
    }

    pub fn stamps_text(&self) -> &str {
        match self {
            Row::Attendance(row) => &row.stamps,
            Row::Enrollment(row) => &row.stamps,
        }
    }

    /// The row's synced fields as the merge sees them, and their stamps.
    pub fn state(&self) -> Result<(Fields, FieldStamps)> {
        let fields = match self {
            Row::Attendance(row) => json!({
                "session_id": row.session_id,
                "person_id": row.person_id,
                "status": row.status,
                "checked_in_at": row.checked_in_at.map(format_ms),
                "note": row.note,
                DELETED_FIELD: row.deleted_at.is_some(),
            }),
            Row::Enrollment(row) => json!({
                "course_id": row.course_id,
                "person_id": row.person_id,
                "status": row.status,
                DELETED_FIELD: row.deleted_at.is_some(),
            }),
        };
        let Value::Object(fields) = fields else {
            unreachable!("a JSON object literal")
        };
        Ok((fields, parse_stamps(self.stamps_text())?))
    }

    /// The row holding a merged state, written by `writer`: `previous` is the row it replaces
    /// (None for a new record). Refuses a state that breaks the collection's rules for values
    /// (`attendance_rules::check_values`, `enrollment_rules::check_values`). The revision is
    /// set when the batch is written.
    pub fn of_state(
        collection: Collection,
        id: &str,
        fields: &Fields,
        stamps: &FieldStamps,
        previous: Option<&Row>,
        writer: &Writer,
    ) -> Result<Row> {
        let deleted = fields
            .get(DELETED_FIELD)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let previous_deleted_at = previous.and_then(|row| match row {
            Row::Attendance(row) => row.deleted_at,
            Row::Enrollment(row) => row.deleted_at,
        });
        // A record deleted again keeps the time of its first deletion.
        let deleted_at = deleted.then(|| previous_deleted_at.unwrap_or(writer.now));
        let created_at = previous.map_or(writer.now, |row| match row {
            Row::Attendance(row) => row.created_at,
            Row::Enrollment(row) => row.created_at,
        });
        let rev = previous.map_or(0, Row::rev);
        let stamps = stamps_text(stamps)?;
        let status = text(fields, "status");
        Ok(match collection {
            Collection::Attendance => {
                let values = attendance_rules::check_values(
                    status.unwrap_or_default(),
                    text(fields, "checked_in_at"),
                    text(fields, "note"),
                )?;
                Row::Attendance(AttendanceRow {
                    id: id.to_owned(),
                    session_id: text(fields, "session_id").unwrap_or_default().to_owned(),
                    person_id: text(fields, "person_id").unwrap_or_default().to_owned(),
                    status: values.status,
                    checked_in_at: values.checked_in_at,
                    note: values.note,
                    recorded_by: writer.user_id.to_owned(),
                    recorded_device: Some(writer.device_id.to_owned()),
                    rev,
                    created_at,
                    updated_at: writer.now,
                    deleted_at,
                    stamps,
                })
            }
            _ => Row::Enrollment(EnrollmentRow {
                id: id.to_owned(),
                course_id: text(fields, "course_id").unwrap_or_default().to_owned(),
                person_id: text(fields, "person_id").unwrap_or_default().to_owned(),
                status: enrollment_rules::check_status(status)?,
                rev,
                created_at,
                updated_at: writer.now,
                deleted_at,
                stamps,
            }),
        })
    }

    /// The same row with other stamps (newer stamps on unchanged values still count for later
    /// merges).
    pub fn with_stamps(&self, stamps: &FieldStamps) -> Result<Row> {
        let stamps = stamps_text(stamps)?;
        let mut row = self.clone();
        match &mut row {
            Row::Attendance(row) => row.stamps = stamps,
            Row::Enrollment(row) => row.stamps = stamps,
        }
        Ok(row)
    }
}

fn parse_stamps(raw: &str) -> Result<FieldStamps> {
    serde_json::from_str(raw).map_err(|e| Error::Internal(format!("stored stamps unreadable: {e}")))
}

fn stamps_text(stamps: &FieldStamps) -> Result<String> {
    serde_json::to_string(stamps).map_err(|e| Error::Internal(e.to_string()))
}

/// Rows by id, of one collection.
pub fn rows_by_id(conn: &mut DbConn, collection: Collection, ids: &[String]) -> Result<Vec<Row>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match collection {
        Collection::Attendance => on_backend!(conn, |backend| attendance::table
            .filter(attendance::id.eq_any(ids))
            .select(AttendanceRow::as_select())
            .load(backend))?
        .into_iter()
        .map(Row::Attendance)
        .collect(),
        _ => on_backend!(conn, |backend| enrollments::table
            .filter(enrollments::id.eq_any(ids))
            .select(EnrollmentRow::as_select())
            .load(backend))?
        .into_iter()
        .map(Row::Enrollment)
        .collect(),
    })
}

/// Rows whose natural key is among `firsts` × `persons` (sessions or courses, and people): a
/// superset of the keys a batch names, read in one statement.
pub fn rows_by_key(
    conn: &mut DbConn,
    collection: Collection,
    firsts: &[String],
    persons: &[String],
) -> Result<Vec<Row>> {
    if firsts.is_empty() || persons.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match collection {
        Collection::Attendance => on_backend!(conn, |backend| attendance::table
            .filter(attendance::session_id.eq_any(firsts))
            .filter(attendance::person_id.eq_any(persons))
            .select(AttendanceRow::as_select())
            .load(backend))?
        .into_iter()
        .map(Row::Attendance)
        .collect(),
        _ => on_backend!(conn, |backend| enrollments::table
            .filter(enrollments::course_id.eq_any(firsts))
            .filter(enrollments::person_id.eq_any(persons))
            .select(EnrollmentRow::as_select())
            .load(backend))?
        .into_iter()
        .map(Row::Enrollment)
        .collect(),
    })
}

/// The (revision, stamps) of rows by id, to tell whether anyone wrote them since they were read.
pub fn versions(
    conn: &mut DbConn,
    collection: Collection,
    ids: &[String],
) -> Result<HashMap<String, (i64, String)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, String)> = match collection {
        Collection::Attendance => on_backend!(conn, |backend| attendance::table
            .filter(attendance::id.eq_any(ids))
            .select((attendance::id, attendance::rev, attendance::stamps))
            .load(backend))?,
        _ => on_backend!(conn, |backend| enrollments::table
            .filter(enrollments::id.eq_any(ids))
            .select((enrollments::id, enrollments::rev, enrollments::stamps))
            .load(backend))?,
    };
    Ok(rows
        .into_iter()
        .map(|(id, rev, stamps)| (id, (rev, stamps)))
        .collect())
}

/// Rows per statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound values.
pub const ROWS_PER_STATEMENT: usize = 500;

/// Writes rows, new and changed, in multi-row upserts (one statement per 500 rows). A natural
/// key already taken fails with the driver's unique violation, which the writer tells apart.
pub fn upsert(conn: &mut DbConn, rows: Vec<Row>) -> diesel::QueryResult<()> {
    use diesel::upsert::excluded;
    let (mut marks, mut enrolled) = (Vec::new(), Vec::new());
    for row in rows {
        match row {
            Row::Attendance(row) => marks.push(row),
            Row::Enrollment(row) => enrolled.push(row),
        }
    }
    for chunk in enrolled.chunks(ROWS_PER_STATEMENT) {
        on_backend!(conn, |backend| diesel::insert_into(enrollments::table)
            .values(chunk)
            .on_conflict(enrollments::id)
            .do_update()
            .set((
                enrollments::status.eq(excluded(enrollments::status)),
                enrollments::rev.eq(excluded(enrollments::rev)),
                enrollments::updated_at.eq(excluded(enrollments::updated_at)),
                enrollments::deleted_at.eq(excluded(enrollments::deleted_at)),
                enrollments::stamps.eq(excluded(enrollments::stamps)),
            ))
            .execute(backend))?;
    }
    for chunk in marks.chunks(ROWS_PER_STATEMENT) {
        on_backend!(conn, |backend| diesel::insert_into(attendance::table)
            .values(chunk)
            .on_conflict(attendance::id)
            .do_update()
            .set((
                attendance::status.eq(excluded(attendance::status)),
                attendance::checked_in_at.eq(excluded(attendance::checked_in_at)),
                attendance::note.eq(excluded(attendance::note)),
                attendance::recorded_by.eq(excluded(attendance::recorded_by)),
                attendance::recorded_device.eq(excluded(attendance::recorded_device)),
                attendance::rev.eq(excluded(attendance::rev)),
                attendance::updated_at.eq(excluded(attendance::updated_at)),
                attendance::deleted_at.eq(excluded(attendance::deleted_at)),
                attendance::stamps.eq(excluded(attendance::stamps)),
            ))
            .execute(backend))?;
    }
    Ok(())
}
