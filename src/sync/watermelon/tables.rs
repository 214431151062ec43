//! The WatermelonDB view of the synced collections: their tables and columns, a record as
//! WatermelonDB stores it, and whether a device's copy is the server's.

use serde::Serialize;
use serde_json::Value;

use crate::domain::collections::synced_collections;
use crate::sync::pull::Record;
use crate::sync::records::Collection;

/// The type of a WatermelonDB column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Number,
}

/// One synced column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The record's field, as the admin API names it.
    pub name: &'static str,
    pub kind: ColumnType,
    /// Whether it may be null.
    pub nullable: bool,
}

/// WatermelonDB's table of a synced collection: its data columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub collection: Collection,
    pub columns: &'static [Column],
}

use ColumnType::{Number, String as Text};

/// Whether a column of the list is written `Kind or null`.
macro_rules! nullable {
    () => {
        false
    };
    (null) => {
        true
    };
}

/// WatermelonDB's tables, from the list of synced collections (the columns are described
/// there).
macro_rules! watermelon_tables {
    ($($variant:ident: $table:ident => $row:path {
        $($column:ident: $kind:ident $(or $null:ident)?),* $(,)?
    }),+ $(,)?) => {
        /// The WatermelonDB view of every synced collection, in the list's order: the record's
        /// data columns as the admin API names and formats them (ids, RFC 3339 times, ISO
        /// dates). `api-spec/watermelondb/schema.js` declares the same tables and columns (a
        /// test compares them).
        pub const TABLES: [Table; Collection::ALL.len()] = [$(Table {
            collection: Collection::$variant,
            columns: &[$(Column {
                name: stringify!($column),
                kind: $kind,
                nullable: nullable!($($null)?),
            }),*],
        }),+];
    };
}
synced_collections!(watermelon_tables);

pub(super) fn columns(collection: Collection) -> &'static [Column] {
    TABLES[collection.index()].columns
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
        for Column { name, .. } in columns {
            raw.serialize_entry(name, data.get(*name).unwrap_or(&Value::Null))?;
        }
        raw.end()
    }
}

/// Whether the device's copy of a record (its raw record as pushed) equals the server's.
pub(super) fn same_columns(collection: Collection, device: &Value, server: &Value) -> bool {
    columns(collection)
        .iter()
        .all(|Column { name, .. }| device.get(*name).unwrap_or(&Value::Null) == &server[*name])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_s_table_is_at_its_index() {
        for collection in Collection::ALL {
            assert_eq!(TABLES[collection.index()].collection, collection);
        }
    }
}
