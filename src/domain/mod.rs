//! The records the service keeps (units, people, users, courses, trainer assignments, sessions,
//! enrollments, attendance, materials): validation, visibility rules and database methods.
//! Knows no HTTP: handlers call the `Resource` methods with the caller's identity.

pub mod access;
pub mod attendance;
pub mod audit;
pub mod collections;
pub mod courses;
pub mod enrollments;
pub mod imports;
pub mod materials;
pub mod people;
pub mod plans;
pub mod reorganisation;
pub mod sessions;
pub mod text;
pub mod trainers;
pub mod units;
pub mod users;
pub mod values;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use access::{Caller, Role};

use crate::db::DbConn;
use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// One page of a list, with the total count of matching records.
#[derive(Debug, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

impl<T> Paged<T> {
    /// The page `page` asked for: its rows, of `total` matching records.
    pub fn new(items: Vec<T>, total: i64, page: PageRequest) -> Self {
        Paged {
            items,
            total,
            limit: page.limit,
            offset: page.offset,
        }
    }
}

/// Paging and sorting parameters shared by every list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub offset: i64,
}

impl PageRequest {
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        let offset = offset.unwrap_or(0);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(Error::invalid_field(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if offset < 0 {
            return Err(Error::invalid_field(
                "offset",
                "out_of_range",
                "must not be negative",
            ));
        }
        Ok(PageRequest { limit, offset })
    }
}

/// A requested sort: a field name from the resource's list, ascending or (`-field`) descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortRequest<'a> {
    pub field: &'a str,
    pub descending: bool,
}

impl<'a> SortRequest<'a> {
    pub fn parse(raw: Option<&'a str>, default: &'a str, allowed: &[&str]) -> Result<Self> {
        let raw = raw.unwrap_or(default);
        let (field, descending) = match raw.strip_prefix('-') {
            Some(field) => (field, true),
            None => (raw, false),
        };
        if !allowed.contains(&field) {
            return Err(Error::invalid_field(
                "sort",
                "unknown_sort_field",
                format!(
                    "sort by one of: {} (prefix - for descending)",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(SortRequest { field, descending })
    }
}

/// A kind of record administered through the generic CRUD endpoints.
///
/// For a synced collection (attendance, enrollments) `create`, `update_found` and `delete_found`
/// check the request against what the caller sees and return the record unwritten (their
/// `find_to_change` is `get`): the handler hands it to the one writer
/// (`sync::writer::write_server_changes`), which applies the collection's rules, the If-Match
/// revision and the server's stamp, like any other write of a synced record.
pub trait Resource: 'static {
    /// Singular name used in messages ("unit", "course").
    const WHAT: &'static str;
    /// The synced collection its records are; None for records devices do not receive.
    const COLLECTION: Option<collections::Collection>;
    /// What the audit trail calls this kind of record.
    const AUDIT: audit::AuditObject;
    /// The code of the conflict when a record to create already exists (for a synced
    /// collection, whose creations the one writer refuses).
    const EXISTS: &'static str = "already_exists";
    type Record: Versioned + Serialize + Send + 'static;
    type Input: DeserializeOwned + Send + 'static;
    type Filter: DeserializeOwned + Send + 'static;

    fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &Self::Filter,
    ) -> Result<Paged<Self::Record>>;
    /// The live record `id` names, if the caller sees it: `not_found` otherwise, as for a record
    /// that does not exist.
    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Self::Record>;
    /// The record a request's path names: its id checked, then `find_visible`.
    fn get(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Self::Record> {
        Self::find_visible(conn, caller, &values::path_id(id, Self::WHAT)?)
    }
    fn create(conn: &mut DbConn, caller: &Caller, input: Self::Input) -> Result<Self::Record>;
    /// Replaces the record's fields. `expected_rev` comes from If-Match; a stale one fails with
    /// `precondition_failed` and changes nothing.
    fn update(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
        input: Self::Input,
    ) -> Result<Self::Record> {
        let existing = Self::find_to_change(conn, caller, id, expected_rev)?;
        Self::update_found(conn, caller, existing, input)
    }
    /// The update of a record `find_to_change` found: checks the input against it and stores
    /// the new version.
    fn update_found(
        conn: &mut DbConn,
        caller: &Caller,
        existing: Self::Record,
        input: Self::Input,
    ) -> Result<Self::Record>;
    /// Decides the deletion of a record `find_to_change` found, before anything is written: the
    /// synced records that go with it (a course's enrollments), which the handler removes through
    /// the one writer as server-stamped deletions before `delete_found` writes. A record another
    /// record needs is refused here or in `delete_found`, before its first write.
    fn plan_delete(_conn: &mut DbConn, _existing: &Self::Record) -> Result<Vec<SyncedRecord>> {
        Ok(Vec::new())
    }
    /// Leaves a tombstone of a record `find_to_change` found, so that devices learn of the
    /// deletion: refuses it while other records need it, then tombstones it (and what belongs to
    /// it, but for the synced records `plan_delete` named).
    fn delete_found(conn: &mut DbConn, caller: &Caller, existing: Self::Record) -> Result<()>;

    /// Refuses a change (update, delete) of a record the caller sees but may not change; by
    /// default, everyone who manages no unit (trainers, trainees) may change none.
    fn may_change(caller: &Caller, _record: &Self::Record) -> Result<()> {
        caller.manages.require_some()
    }

    /// The stored record an update or a delete applies to: as `get` finds it, if the caller may
    /// change it (`may_change`), and still at the caller's If-Match revision.
    fn find_to_change(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
    ) -> Result<Self::Record> {
        let existing = Self::get(conn, caller, id)?;
        Self::may_change(caller, &existing)?;
        check_revision(Self::WHAT, existing.revision(), expected_rev)?;
        Ok(existing)
    }
}

/// A record of a synced collection, named by id (what a deletion takes with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedRecord {
    /// What the record is called in messages ("enrollment").
    pub what: &'static str,
    pub collection: collections::Collection,
    pub id: String,
}

/// A stored record's id and the revision that identifies this version of it (its ETag).
pub trait Versioned {
    fn id(&self) -> &str;
    fn revision(&self) -> i64;
}

/// Every administered record keeps its id and revision in fields of those names.
macro_rules! versioned {
    ($($record:ty),+ $(,)?) => {
        $(impl $crate::domain::Versioned for $record {
            fn id(&self) -> &str {
                &self.id
            }

            fn revision(&self) -> i64 {
                self.rev
            }
        })+
    };
}

pub(crate) use versioned;

// The synced collections' rows are versioned where they are listed (`collections`).
versioned!(plans::TrainingPlan);

/// Fails with 412 when the caller's If-Match revision is not the stored one.
pub fn check_revision(what: &'static str, current: i64, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(expected) if expected != current => Err(Error::PreconditionFailed { what, current }),
        _ => Ok(()),
    }
}

/// Orders a boxed query by a requested sort (each listed column in turn), then by `$tiebreak`
/// so that pages are stable.
macro_rules! sorted {
    ($query:expr, $sort:expr, $tiebreak:expr, { $($name:literal => [$($col:expr),+]),+ $(,)? }) => {{
        let mut query = $query;
        match $sort.field {
            $($name => {
                $(query = if $sort.descending {
                    query.then_order_by($col.desc())
                } else {
                    query.then_order_by($col.asc())
                };)+
            })+
            _ => {}
        }
        query.then_order_by($tiebreak.asc())
    }};
}
pub(crate) use sorted;

/// One page of a list: the count of every row `$query()` matches, then the page's rows as
/// `$record`s, `$query()` put in order by `$in_order` (the query named `$rows`).
macro_rules! list_page {
    ($conn:expr, $query:ident, $page:expr, $record:ty, |$rows:ident| $in_order:expr) => {{
        let total = $query().count().get_result($conn)?;
        let $rows = $query();
        let items = $in_order
            .select(<$record>::as_select())
            .limit($page.limit)
            .offset($page.offset)
            .load($conn)?;
        $crate::domain::Paged::new(items, total, $page)
    }};
}
pub(crate) use list_page;

/// One page of a list in the requested order (`sorted!`).
macro_rules! sorted_page {
    ($conn:expr, $query:ident, $page:expr, $sort:expr, $tiebreak:expr, $record:ty, { $($sorts:tt)+ }) => {
        $crate::domain::list_page!($conn, $query, $page, $record, |rows| {
            $crate::domain::sorted!(rows, $sort, $tiebreak, { $($sorts)+ })
        })
    };
}
pub(crate) use sorted_page;

/// One page of a list in a fixed order, `$order` (a list with no `sort` parameter).
macro_rules! ordered_page {
    ($conn:expr, $query:ident, $page:expr, $order:expr, $record:ty) => {
        $crate::domain::list_page!($conn, $query, $page, $record, |rows| rows.order($order))
    };
}
pub(crate) use ordered_page;

/// The live (not tombstoned) row of `$table` with id `$id`, as a `$record`, or `not_found`
/// naming `$what`.
macro_rules! find_live {
    ($conn:expr, $table:ident, $record:ty, $id:expr, $what:expr) => {
        $table::table
            .find($id)
            .filter($table::deleted_at.is_null())
            .select(<$record>::as_select())
            .first($conn)
            .optional()?
            .ok_or($crate::error::Error::NotFound { what: $what })
    };
}
pub(crate) use find_live;

/// Inserts a newly built row into `$table` and gives it back (a `create` of a record the
/// administration API writes itself).
macro_rules! inserted {
    ($conn:expr, $table:ident, $row:expr) => {{
        let row = $row;
        diesel::insert_into($table::table)
            .values(&row)
            .execute($conn)?;
        Ok(row)
    }};
}
pub(crate) use inserted;

/// Writes a rebuilt row over the stored one of the same id in `$table` and gives it back (an
/// `update` of a record the administration API writes itself).
macro_rules! replaced {
    ($conn:expr, $table:ident, $row:expr) => {{
        let row = $row;
        diesel::update($table::table.find(&row.id))
            .set(&row)
            .execute($conn)?;
        Ok(row)
    }};
}
pub(crate) use replaced;

/// The live rows of `$table` (a table with a `course_id`) that belong to the courses in
/// `$visible` (`access::visible_courses`: `None` for every course) and to `$course` when a list
/// names one, as a boxed query to filter further.
macro_rules! live_of_courses {
    ($table:ident, $visible:expr, $course:expr) => {{
        let mut query = $table::table
            .filter($table::deleted_at.is_null())
            .into_boxed::<$crate::db::Backend>();
        if let Some(ids) = $visible {
            query = query.filter($table::course_id.eq_any(ids.clone()));
        }
        if let Some(course) = $course {
            query = query.filter($table::course_id.eq(course.clone()));
        }
        query
    }};
}
pub(crate) use live_of_courses;

/// Narrows a boxed query of enrollments or attendance records to those the caller reads
/// (`access::personal_records`): everyone's, those of some courses (`$course`, the record's
/// course column), or a trainee's own (`$person`, its person column).
macro_rules! personal {
    ($query:expr, $scope:expr, $person:expr, $course:expr) => {
        match $scope {
            $crate::domain::access::PersonalRecords::Everyone => $query,
            $crate::domain::access::PersonalRecords::Own(person) => {
                $query.filter($person.nullable().eq(person.clone()))
            }
            $crate::domain::access::PersonalRecords::OfCourses(courses) => {
                $query.filter($course.eq_any(courses.clone()))
            }
        }
    };
}
pub(crate) use personal;

/// Leaves a tombstone instead of deleting: the row is marked deleted with a new revision, so
/// devices learn of the deletion through the feed.
macro_rules! tombstone {
    ($conn:expr, $table:ident, $id:expr, $now:expr) => {
        diesel::update($table::table.find($id))
            .set((
                $table::deleted_at.eq($now),
                $table::updated_at.eq($now),
                $table::rev.eq($crate::db::next_revision($conn)?),
            ))
            .execute($conn)
    };
}
pub(crate) use tombstone;

/// Tombstones every live row of `$table` that belongs to a course, each with its own revision so
/// that devices see every deletion (the course is being deleted).
macro_rules! tombstone_of_course {
    ($conn:expr, $table:ident, $course_id:expr, $now:expr) => {{
        let ids = $table::table
            .filter($table::course_id.eq($course_id))
            .filter($table::deleted_at.is_null())
            .select($table::id)
            .load::<String>($conn)?;
        for id in ids {
            $crate::domain::tombstone!($conn, $table, &id, $now)?;
        }
        Ok(())
    }};
}
pub(crate) use tombstone_of_course;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_are_bounded() {
        assert_eq!(
            PageRequest::new(None, None).unwrap(),
            PageRequest {
                limit: DEFAULT_PAGE_SIZE,
                offset: 0
            }
        );
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(MAX_PAGE_SIZE + 1), None).is_err());
        assert!(PageRequest::new(Some(10), Some(-1)).is_err());
    }

    #[test]
    fn sorts_accept_only_listed_fields() {
        let allowed = ["name", "code"];
        let sort = SortRequest::parse(Some("-code"), "name", &allowed).unwrap();
        assert_eq!(
            sort,
            SortRequest {
                field: "code",
                descending: true
            }
        );
        assert_eq!(
            SortRequest::parse(None, "name", &allowed).unwrap().field,
            "name"
        );
        let err = SortRequest::parse(Some("password"), "name", &allowed).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
    }

    #[test]
    fn stale_revisions_are_refused() {
        assert!(check_revision("unit", 5, Some(5)).is_ok());
        assert!(check_revision("unit", 5, None).is_ok());
        assert_eq!(
            check_revision("unit", 6, Some(5)).unwrap_err().code(),
            "precondition_failed"
        );
    }
}
