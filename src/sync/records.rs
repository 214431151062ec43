//! How the collections that devices write look to the sync layer: their wire fields, loading a
//! stored record as fields plus per-field stamps, natural keys, who may write them, and writing
//! a merged state back. Attendance and enrollments are device-writable; the other collections
//! change only through the admin API and reach devices through the pull feed.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde_json::{Value, json};

use super::clock::Hlc;
use super::merge::{DELETED_FIELD, FieldStamps, Fields};
use super::nodes;
use super::writer::WriteError;
use crate::db::schema::{attendance, enrollments};
use crate::db::{DbConn, on_backend};
use crate::domain::attendance::{self as attendance_rules, Attendance};
use crate::domain::enrollments::{self as enrollment_rules, Enrollment};
use crate::domain::values::{Checker, MAX_TEXT_CHARS, format_ms, parse_id};
use crate::error::{Error, Result};

/// The synced collections (listed once, in `domain::collections`).
pub use crate::domain::collections::Collection;

impl Collection {
    /// The collection as one devices write, if it is one.
    pub fn writable(self) -> Option<Writable> {
        match self {
            Collection::Attendance => Some(Writable::Attendance),
            Collection::Enrollments => Some(Writable::Enrollments),
            Collection::Units
            | Collection::People
            | Collection::Courses
            | Collection::CourseTrainers
            | Collection::Sessions
            | Collection::Materials => None,
        }
    }

    pub fn device_writable(self) -> bool {
        self.writable().is_some()
    }

    /// The fields a device may set (none for a read-only collection).
    pub fn writable_fields(self) -> &'static [&'static str] {
        self.writable().map_or(&[], Writable::fields)
    }

    /// The pair of fields that is the natural key (none for a read-only collection).
    fn natural_key_fields(self) -> Option<[&'static str; 2]> {
        self.writable().map(Writable::natural_key)
    }
}

/// The collections devices write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Writable {
    Attendance,
    Enrollments,
}

impl Writable {
    pub const ALL: [Writable; 2] = [Writable::Attendance, Writable::Enrollments];

    pub fn collection(self) -> Collection {
        match self {
            Writable::Attendance => Collection::Attendance,
            Writable::Enrollments => Collection::Enrollments,
        }
    }

    /// The fields a device may set.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Writable::Attendance => &["session_id", "person_id", "status", "checked_in_at", "note"],
            Writable::Enrollments => &["course_id", "person_id", "status"],
        }
    }

    /// The pair of fields that is the natural key.
    fn natural_key(self) -> [&'static str; 2] {
        match self {
            Writable::Attendance => ["session_id", "person_id"],
            Writable::Enrollments => ["course_id", "person_id"],
        }
    }

    /// The fields that carry a stamp, in the order of their slots in the stored stamps.
    fn stamped(self) -> &'static [&'static str] {
        match self {
            Writable::Attendance => &[
                "session_id",
                "person_id",
                "status",
                "checked_in_at",
                "note",
                DELETED_FIELD,
            ],
            Writable::Enrollments => &["course_id", "person_id", "status", DELETED_FIELD],
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
    let allowed = collection.writable_fields();
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
    let [first, second] = collection.natural_key_fields()?;
    Some((
        text(fields, first)?.to_owned(),
        text(fields, second)?.to_owned(),
    ))
}

/// The natural key of a record never changes.
pub fn check_immutable(collection: Collection, stored: &Fields, incoming: &Fields) -> Result<()> {
    let Some(key) = collection.natural_key_fields() else {
        return Ok(());
    };
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

/// An attendance row with its stamps in their stored form, as inserted.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = attendance, treat_none_as_default_value = false)]
pub struct AttendanceInsert {
    #[diesel(embed)]
    pub row: Attendance,
    pub stamps: String,
}

/// An enrollment row with its stamps in their stored form, as inserted.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = enrollments, treat_none_as_default_value = false)]
struct EnrollmentInsert {
    #[diesel(embed)]
    row: Enrollment,
    stamps: String,
}

/// A stored row of a device-writable collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Attendance(Attendance),
    Enrollment(Enrollment),
}

/// A row as read: the row, its field stamps and its version.
#[derive(Debug, Clone)]
pub struct Stored {
    pub row: Row,
    pub stamps: FieldStamps,
    pub version: Version,
}

/// What tells whether anyone wrote a row since it was read: its revision and its stamps as
/// stored (newer stamps on the same values change no revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    rev: i64,
    stamps: String,
}

impl Version {
    /// The row's revision when read.
    pub fn rev(&self) -> i64 {
        self.rev
    }
}

/// A row to write with its field stamps.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub row: Row,
    pub stamps: FieldStamps,
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
        self.writable().collection()
    }

    pub fn writable(&self) -> Writable {
        match self {
            Row::Attendance(_) => Writable::Attendance,
            Row::Enrollment(_) => Writable::Enrollments,
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

    /// The row's synced fields as the merge sees them.
    pub fn fields(&self) -> Fields {
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
        fields
    }

    /// The row holding a merged state, written by `writer`: `previous` is the row it replaces
    /// (None for a new record). Refuses a state that breaks the collection's rules for values
    /// (`attendance_rules::check_values`, `enrollment_rules::check_values`). The revision is
    /// set when the batch is written.
    pub fn of_state(
        collection: Writable,
        id: &str,
        fields: &Fields,
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
        let status = text(fields, "status");
        Ok(match collection {
            Writable::Attendance => {
                let values = attendance_rules::check_values(
                    status.unwrap_or_default(),
                    text(fields, "checked_in_at"),
                    text(fields, "note"),
                )?;
                Row::Attendance(Attendance {
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
                })
            }
            Writable::Enrollments => Row::Enrollment(Enrollment {
                id: id.to_owned(),
                course_id: text(fields, "course_id").unwrap_or_default().to_owned(),
                person_id: text(fields, "person_id").unwrap_or_default().to_owned(),
                status: enrollment_rules::check_status(status)?,
                rev,
                created_at,
                updated_at: writer.now,
                deleted_at,
            }),
        })
    }
}

// Stored stamps: one slot per stamped field of the collection (`Writable::stamped`), in that
// order, joined by ','. A slot is empty for a field never stamped, '=' for the same stamp as the
// slot before, else the 13 digits of the stamp's millis, the 4 hex digits of its counter and its
// node's number (`nodes`): about 40 bytes for a record one device wrote, where a JSON object of
// text stamps repeating a 36-character device id took about 420.

const SAME_AS_BEFORE: &str = "=";

fn encode_stamps(
    collection: Writable,
    stamps: &FieldStamps,
    numbers: &HashMap<String, i32>,
) -> Result<String> {
    let stamped = collection.stamped();
    if let Some(field) = stamps
        .keys()
        .find(|field| !stamped.contains(&field.as_str()))
    {
        return Err(Error::Internal(format!(
            "a stamp for a field without a slot: {field}"
        )));
    }
    let mut text = String::with_capacity(64);
    let mut before: Option<&Hlc> = None;
    for (index, field) in stamped.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        let stamp = stamps.get(*field);
        match stamp {
            Some(stamp) if before == Some(stamp) => text.push_str(SAME_AS_BEFORE),
            Some(stamp) => {
                let number = numbers
                    .get(&stamp.node)
                    .ok_or_else(|| Error::Internal("a stamp node without a number".into()))?;
                text.push_str(&format!(
                    "{:013}{:04x}{number}",
                    stamp.millis, stamp.counter
                ));
            }
            None => {}
        }
        before = stamp;
    }
    Ok(text)
}

/// The node numbers stored stamps name.
fn stamp_numbers(stored: &str) -> impl Iterator<Item = i32> + '_ {
    stored
        .split(',')
        .filter_map(|slot| slot.get(17..).and_then(|number| number.parse().ok()))
}

fn decode_stamps(
    collection: Writable,
    stored: &str,
    names: &HashMap<i32, String>,
) -> Result<FieldStamps> {
    let unreadable = || Error::Internal(format!("stored stamps unreadable: {stored:?}"));
    let mut stamps = FieldStamps::new();
    let mut before: Option<Hlc> = None;
    let slots = stored.split(',');
    for (field, slot) in collection.stamped().iter().zip(slots) {
        let stamp = match slot {
            "" => None,
            SAME_AS_BEFORE => Some(before.clone().ok_or_else(unreadable)?),
            slot => {
                let millis = slot.get(..13).and_then(|m| m.parse().ok());
                let counter = slot
                    .get(13..17)
                    .and_then(|c| u32::from_str_radix(c, 16).ok());
                let node = slot
                    .get(17..)
                    .and_then(|n| n.parse::<i32>().ok())
                    .and_then(|n| names.get(&n));
                let (Some(millis), Some(counter), Some(node)) = (millis, counter, node) else {
                    return Err(unreadable());
                };
                Some(Hlc {
                    millis,
                    counter,
                    node: node.clone(),
                })
            }
        };
        if let Some(stamp) = &stamp {
            stamps.insert((*field).to_owned(), stamp.clone());
        }
        before = stamp;
    }
    Ok(stamps)
}

/// Rows read with their stamps in their stored form: the stamps decoded (one read of the
/// nodes they name).
fn stored(
    conn: &mut DbConn,
    collection: Writable,
    rows: Vec<(Row, String)>,
) -> Result<Vec<Stored>> {
    let numbers: HashSet<i32> = rows
        .iter()
        .flat_map(|(_, stamps)| stamp_numbers(stamps))
        .collect();
    let names = nodes::names(conn, &numbers)?;
    rows.into_iter()
        .map(|(row, stamps)| {
            Ok(Stored {
                stamps: decode_stamps(collection, &stamps, &names)?,
                version: Version {
                    rev: row.rev(),
                    stamps,
                },
                row,
            })
        })
        .collect()
}

/// Rows by id, of one collection.
pub fn rows_by_id(conn: &mut DbConn, collection: Writable, ids: &[String]) -> Result<Vec<Stored>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    rows_where(conn, collection, Which::Ids(ids))
}

/// Rows whose natural key is among `firsts` × `persons` (sessions or courses, and people): a
/// superset of the keys a batch names, read in one statement.
pub fn rows_by_key(
    conn: &mut DbConn,
    collection: Writable,
    firsts: &[String],
    persons: &[String],
) -> Result<Vec<Stored>> {
    if firsts.is_empty() || persons.is_empty() {
        return Ok(Vec::new());
    }
    rows_where(conn, collection, Which::Keys { firsts, persons })
}

/// Which rows of a collection `rows_where` reads.
enum Which<'a> {
    Ids(&'a [String]),
    /// Those whose natural key is among `firsts` × `persons`.
    Keys {
        firsts: &'a [String],
        persons: &'a [String],
    },
}

/// The rows `which` names, with their stamps, in one statement.
fn rows_where(conn: &mut DbConn, collection: Writable, which: Which) -> Result<Vec<Stored>> {
    let rows: Vec<(Row, String)> = match collection {
        Writable::Attendance => on_backend!(conn, |backend| {
            let query = attendance::table
                .select((Attendance::as_select(), attendance::stamps))
                .into_boxed();
            match which {
                Which::Ids(ids) => query.filter(attendance::id.eq_any(ids)),
                Which::Keys { firsts, persons } => query
                    .filter(attendance::session_id.eq_any(firsts))
                    .filter(attendance::person_id.eq_any(persons)),
            }
            .load::<(Attendance, String)>(backend)
        })?
        .into_iter()
        .map(|(row, stamps)| (Row::Attendance(row), stamps))
        .collect(),
        Writable::Enrollments => on_backend!(conn, |backend| {
            let query = enrollments::table
                .select((Enrollment::as_select(), enrollments::stamps))
                .into_boxed();
            match which {
                Which::Ids(ids) => query.filter(enrollments::id.eq_any(ids)),
                Which::Keys { firsts, persons } => query
                    .filter(enrollments::course_id.eq_any(firsts))
                    .filter(enrollments::person_id.eq_any(persons)),
            }
            .load::<(Enrollment, String)>(backend)
        })?
        .into_iter()
        .map(|(row, stamps)| (Row::Enrollment(row), stamps))
        .collect(),
    };
    stored(conn, collection, rows)
}

/// The versions of rows by id, to tell whether anyone wrote them since they were read.
pub fn versions(
    conn: &mut DbConn,
    collection: Writable,
    ids: &[String],
) -> Result<HashMap<String, Version>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, String)> = match collection {
        Writable::Attendance => on_backend!(conn, |backend| attendance::table
            .filter(attendance::id.eq_any(ids))
            .select((attendance::id, attendance::rev, attendance::stamps))
            .load(backend))?,
        Writable::Enrollments => on_backend!(conn, |backend| enrollments::table
            .filter(enrollments::id.eq_any(ids))
            .select((enrollments::id, enrollments::rev, enrollments::stamps))
            .load(backend))?,
    };
    Ok(rows
        .into_iter()
        .map(|(id, rev, stamps)| (id, Version { rev, stamps }))
        .collect())
}

/// Rows per statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound values.
pub const ROWS_PER_STATEMENT: usize = 500;

/// Inserts `rows` (a slice of rows or of column values) into `table`, `ROWS_PER_STATEMENT` a
/// statement; a `diesel::QueryResult<()>`.
macro_rules! insert_in_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {
        $rows
            .chunks($crate::sync::records::ROWS_PER_STATEMENT)
            .try_for_each(|chunk| {
                $crate::db::on_backend!($conn, |backend| diesel::insert_into($table)
                    .values(chunk)
                    .execute(backend))
                .map(drop)
            })
    };
}
pub(crate) use insert_in_chunks;

/// Writes rows, new and changed, in multi-row upserts (one statement per 500 rows), their
/// stamps in the stored form (numbering the nodes not numbered yet). A natural key already
/// taken fails with the driver's unique violation, which the writer tells apart.
pub fn upsert(conn: &mut DbConn, rows: Vec<Stamped>) -> std::result::Result<(), WriteError> {
    use diesel::upsert::excluded;
    let nodes: HashSet<&str> = rows
        .iter()
        .flat_map(|row| row.stamps.values().map(|stamp| stamp.node.as_str()))
        .collect();
    let numbers = nodes::numbers(conn, &nodes)?;
    let (mut marks, mut enrolled) = (Vec::new(), Vec::new());
    for Stamped { row, stamps } in rows {
        let stamps = encode_stamps(row.writable(), &stamps, &numbers)?;
        match row {
            Row::Attendance(row) => marks.push(AttendanceInsert { row, stamps }),
            Row::Enrollment(row) => enrolled.push(EnrollmentInsert { row, stamps }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(millis: u64, counter: u32, node: &str) -> Hlc {
        Hlc {
            millis,
            counter,
            node: node.into(),
        }
    }

    #[test]
    fn stamps_of_one_write_take_a_slot_each_and_repeat_as_equals() {
        let device = "01a23959-c9fd-72e3-b171-b39fd3c7ea06";
        let created = stamp(1_796_258_515_541, 1, device);
        let changed = stamp(1_796_258_600_000, 0x1f, "server");
        let mut stamps = FieldStamps::new();
        for field in ["session_id", "person_id", "note", DELETED_FIELD] {
            stamps.insert(field.into(), created.clone());
        }
        stamps.insert("status".into(), changed.clone());
        let numbers = HashMap::from([(device.to_owned(), 7), ("server".to_owned(), 12)]);
        let stored = encode_stamps(Writable::Attendance, &stamps, &numbers).unwrap();
        assert_eq!(
            stored,
            "179625851554100017,=,1796258600000001f12,,179625851554100017,="
        );
        let mut found: Vec<i32> = stamp_numbers(&stored).collect();
        found.sort_unstable();
        assert_eq!(found, [7, 7, 12]);
        let names = numbers.into_iter().map(|(node, n)| (n, node)).collect();
        assert_eq!(
            decode_stamps(Writable::Attendance, &stored, &names).unwrap(),
            stamps
        );
    }

    #[test]
    fn a_stamp_for_a_field_the_collection_does_not_stamp_is_an_error() {
        let mut stamps = FieldStamps::new();
        stamps.insert("note".into(), stamp(1, 0, "server"));
        let numbers = HashMap::from([("server".to_owned(), 1)]);
        assert!(encode_stamps(Writable::Enrollments, &stamps, &numbers).is_err());
    }

    #[test]
    fn a_slot_naming_an_unknown_node_is_unreadable() {
        assert!(
            decode_stamps(
                Writable::Enrollments,
                "176430000000000009,,,",
                &HashMap::new()
            )
            .is_err()
        );
    }
}
