//! The synced collections: the one list the rest is generated from.
//!
//! `synced_collections!(then)` hands the list to the macro `then`, which picks what it needs of
//! each entry: here the `Collection` enum and the records' `Versioned`; in `sync::pull` the typed
//! `Record` and what the feed reads of every row; in `sync::pull::feed` each collection's probe,
//! revisions and rows by revision window; in `sync::watermelon::tables` WatermelonDB's tables and
//! columns; in `sync::retention` the count of what a purge removed. A new synced collection is
//! one entry here plus its table's owner module (see README, "Architecture").

/// Every synced collection, in the order a pull lists them: a record's parents before it (units
/// before people, courses before their sessions, enrollments before the attendance they allow),
/// which is also the order a WatermelonDB push applies its tables in and, reversed, the order
/// old tombstones are purged in. An entry is
///
/// `Variant: table => row type { column: Kind, column: Kind or null, … }`
///
/// where `table` is the table in `db::schema` and the collection's name in the sync protocol,
/// the row type is its stored record (the admin API's JSON), and the columns are the record's
/// data fields a WatermelonDB device keeps, with their type (`Text`, `Number`) and whether they
/// may be null. Server bookkeeping (`rev`, `created_at`, `updated_at`, who recorded attendance)
/// is not a column: WatermelonDB keeps its own sync state, and a field the server rewrites on
/// every write would make every pushed record differ from the device's copy.
/// `api-spec/watermelondb/schema.js` declares the same tables and columns (a test compares them).
macro_rules! synced_collections {
    ($then:ident) => {
        $then! {
            Units: units => crate::domain::units::Unit {
                code: Text,
                name: Text,
                kind: Text,
                parent_id: Text or null,
                valid_from: Text or null,
                valid_to: Text or null,
                merged_into_id: Text or null,
            },
            People: people => crate::domain::people::Person {
                full_name: Text,
                birth_date: Text or null,
                gender: Text or null,
                phone: Text or null,
                position: Text,
                unit_id: Text or null,
                term: Text or null,
            },
            Courses: courses => crate::domain::courses::Course {
                code: Text or null,
                title: Text,
                description: Text or null,
                organizing_unit_id: Text or null,
                management_level: Text,
                start_date: Text,
                end_date: Text,
                place: Text or null,
            },
            CourseTrainers: course_trainers => crate::domain::trainers::CourseTrainer {
                course_id: Text,
                user_id: Text,
                role: Text,
            },
            Sessions: sessions => crate::domain::sessions::Session {
                course_id: Text,
                topic: Text,
                starts_at: Text,
                ends_at: Text,
                place: Text or null,
                trainer_id: Text or null,
            },
            Enrollments: enrollments => crate::domain::enrollments::Enrollment {
                course_id: Text,
                person_id: Text,
                status: Text,
            },
            Attendance: attendance => crate::domain::attendance::Attendance {
                session_id: Text,
                person_id: Text,
                status: Text,
                checked_in_at: Text or null,
                note: Text or null,
            },
            Materials: materials => crate::domain::materials::Material {
                course_id: Text,
                title: Text,
                kind: Text,
                language: Text,
                file_name: Text or null,
                content_type: Text or null,
                size_bytes: Number or null,
                sha256: Text or null,
                version: Number,
            },
        }
    };
}
pub(crate) use synced_collections;

/// The `Collection` enum (one variant per entry, named in the protocol after its table) and
/// the rows' `Versioned`.
macro_rules! collections_in_domain {
    ($($variant:ident: $table:ident => $row:path { $($columns:tt)* }),+ $(,)?) => {
        /// A synced collection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Collection {
            $($variant),+
        }

        impl Collection {
            /// Every synced collection, in the list's order.
            pub const ALL: [Collection; [$(Collection::$variant),+].len()] =
                [$(Collection::$variant),+];

            /// The collection's name in the sync protocol (and its table's).
            pub fn name(self) -> &'static str {
                match self {
                    $(Collection::$variant => stringify!($table)),+
                }
            }
        }

        super::versioned!($($row),+);
    };
}
synced_collections!(collections_in_domain);

impl Collection {
    pub fn parse(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The collection's position in [`Collection::ALL`] (and in every table generated from the
    /// list, such as WatermelonDB's).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A collection is written as its name (in a pull's changes).
impl serde::Serialize for Collection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A collection is read back from its name (in a pull cursor's position).
impl<'de> serde::Deserialize<'de> for Collection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(deserializer)?;
        Collection::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("no synced collection {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_is_found_by_its_name_and_at_its_index() {
        for (index, collection) in Collection::ALL.into_iter().enumerate() {
            assert_eq!(Collection::parse(collection.name()), Some(collection));
            assert_eq!(collection.index(), index);
        }
        assert_eq!(Collection::parse("training_plans"), None);
        assert_eq!(Collection::CourseTrainers.name(), "course_trainers");
    }
}
