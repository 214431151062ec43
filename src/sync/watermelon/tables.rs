//! The WatermelonDB view of the synced collections: their tables and columns, a record as
//! WatermelonDB stores it, and whether a device's copy is the server's.

use serde::Serialize;
use serde_json::Value;

use crate::sync::pull::Record;
use crate::sync::records::Collection;

/// The type of a WatermelonDB column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Number,
}

/// One synced column: its name, type and whether it may be null.
pub type Column = (&'static str, ColumnType, bool);

use ColumnType::{Number, String as Text};

/// The WatermelonDB view of every synced collection: the record's data columns as the admin API
/// names and formats them (ids, RFC 3339 times, ISO dates). Server bookkeeping (`rev`,
/// `created_at`, `updated_at`, who recorded attendance) is left out: WatermelonDB keeps its own
/// sync state and its own `created_at`/`updated_at` conventions, and a column the server
/// rewrites on every write would make every pushed record differ from the device's copy.
/// `api-spec/watermelondb/schema.js` declares the same tables and columns (a test compares them).
pub const TABLES: [(Collection, &[Column]); 8] = [
    (
        Collection::Units,
        &[
            ("code", Text, false),
            ("name", Text, false),
            ("kind", Text, false),
            ("parent_id", Text, true),
            ("valid_from", Text, true),
            ("valid_to", Text, true),
            ("merged_into_id", Text, true),
        ],
    ),
    (
        Collection::People,
        &[
            ("full_name", Text, false),
            ("birth_date", Text, true),
            ("gender", Text, true),
            ("phone", Text, true),
            ("position", Text, false),
            ("unit_id", Text, true),
            ("term", Text, true),
        ],
    ),
    (
        Collection::Courses,
        &[
            ("code", Text, true),
            ("title", Text, false),
            ("description", Text, true),
            ("organizing_unit_id", Text, true),
            ("management_level", Text, false),
            ("start_date", Text, false),
            ("end_date", Text, false),
            ("place", Text, true),
        ],
    ),
    (
        Collection::CourseTrainers,
        &[
            ("course_id", Text, false),
            ("user_id", Text, false),
            ("role", Text, false),
        ],
    ),
    (
        Collection::Sessions,
        &[
            ("course_id", Text, false),
            ("topic", Text, false),
            ("starts_at", Text, false),
            ("ends_at", Text, false),
            ("place", Text, true),
            ("trainer_id", Text, true),
        ],
    ),
    (
        Collection::Enrollments,
        &[
            ("course_id", Text, false),
            ("person_id", Text, false),
            ("status", Text, false),
        ],
    ),
    (
        Collection::Attendance,
        &[
            ("session_id", Text, false),
            ("person_id", Text, false),
            ("status", Text, false),
            ("checked_in_at", Text, true),
            ("note", Text, true),
        ],
    ),
    (
        Collection::Materials,
        &[
            ("course_id", Text, false),
            ("title", Text, false),
            ("kind", Text, false),
            ("language", Text, false),
            ("file_name", Text, true),
            ("content_type", Text, true),
            ("size_bytes", Number, true),
            ("sha256", Text, true),
            ("version", Number, false),
        ],
    ),
];

pub(super) fn columns(collection: Collection) -> &'static [Column] {
    TABLES
        .iter()
        .find(|(c, _)| *c == collection)
        .map_or(&[], |(_, columns)| columns)
}

/// A record as WatermelonDB stores it: `id` and the view's columns. It stays typed until the
/// response is written, one record at a time: a first sync holds a whole scope of these.
#[derive(Debug)]
pub struct RawRecord {
    pub(super) collection: Collection,
    pub(super) id: String,
    pub(super) record: Record,
}

impl Serialize for RawRecord {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let data = serde_json::to_value(&self.record).map_err(S::Error::custom)?;
        let columns = columns(self.collection);
        let mut raw = serializer.serialize_map(Some(columns.len() + 1))?;
        raw.serialize_entry("id", &self.id)?;
        for (name, _, _) in columns {
            raw.serialize_entry(name, data.get(*name).unwrap_or(&Value::Null))?;
        }
        raw.end()
    }
}

/// Whether the device's copy of a record (its raw record as pushed) equals the server's.
pub(super) fn same_columns(collection: Collection, device: &Value, server: &Value) -> bool {
    columns(collection)
        .iter()
        .all(|(name, _, _)| device.get(*name).unwrap_or(&Value::Null) == &server[*name])
}
