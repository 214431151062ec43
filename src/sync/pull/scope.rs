//! Who is pulling and from where: the filters each collection's feed applies for a caller's
//! courses, in a window of revisions, for the feed or a backfill.

use diesel::prelude::*;

use crate::db::schema::{
    attendance, course_trainers, courses, enrollments, materials, people, sessions, units,
};
use crate::db::{Backend, DbConn};
use crate::domain::access::Reach;
use crate::domain::sessions::Sessions;
use crate::error::Result;

/// Which records a scope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Every change in the window: records and deletions.
    Feed,
    /// The live records of courses that came into scope, the courses' own (not the unit tree,
    /// nor a trainee's own person record, which do not come with a course).
    Backfill,
}

/// Who is pulling and from where: the filters every collection's feed applies.
#[derive(Clone)]
pub(super) struct Scope<'a> {
    /// Whose records of those courses (`domain::access`).
    reach: &'a Reach,
    /// None: every course (administrators).
    courses: Option<&'a [String]>,
    part: Part,
    pub(super) after: i64,
    /// The revision read before the feed: the collections are read one after another, and a
    /// revision committed meanwhile could pass a lower one that an earlier query missed. Up to
    /// here, every revision was committed before any query ran.
    pub(super) upto: i64,
    /// How a trainer's attendance is found; see `AttendancePath`.
    attendance_path: AttendancePath,
}

/// Two ways to read a trainer's attendance feed in revision order. By session: one range of the
/// (session, revision) index per session of the trainer's courses, then a sort; cheap when the
/// courses hold a small share of all attendance, but a page then sorts every remaining row of
/// the scope. By revision: the revision index walked in order, each row kept when its session is
/// the trainer's; no sort, and when most rows are in scope it reads little more than the page.
/// SQLite's planner cannot tell the two cases apart (it sees a list of sessions, not how much of
/// the table they hold), so on SQLite the feed decides from the share of sessions and tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AttendancePath {
    BySession,
    ByRevision,
}

impl AttendancePath {
    /// By revision when the trainer's courses hold at least a quarter of all sessions: the walk
    /// then reads at most about four rows per row it sends.
    fn choose(conn: &mut DbConn, reach: &Reach, courses: Option<&[String]>) -> Result<Self> {
        let courses = match (reach, courses) {
            (Reach::CourseStaff(_), Some(courses)) => courses,
            (Reach::CourseStaff(_), None) | (Reach::Everything | Reach::OwnRecords(_), _) => {
                return Ok(AttendancePath::BySession);
            }
        };
        // PostgreSQL's planner weighs both ways from its statistics.
        if let DbConn::Postgres(_) = conn {
            return Ok(AttendancePath::BySession);
        }
        let all = Sessions::count_all(conn)?;
        let in_scope = Sessions::count_of_courses(conn, courses)?;
        Ok(if in_scope * 4 >= all {
            AttendancePath::ByRevision
        } else {
            AttendancePath::BySession
        })
    }
}

/// A table's rows with a revision in the scope's window; for a backfill, the live ones only (a
/// device that never held a record has nothing to delete).
macro_rules! window {
    ($scope:expr, $table:ident) => {{
        let query = $table::table
            .filter($table::rev.gt($scope.after))
            .filter($table::rev.le($scope.upto))
            .into_boxed();
        match $scope.part {
            Part::Feed => query,
            Part::Backfill => query.filter($table::deleted_at.is_null()),
        }
    }};
}

/// A table's rows in the window that belong to the scope's courses by `column` (all of them when
/// the scope is every course).
macro_rules! of_courses {
    ($scope:expr, $table:ident, $column:ident) => {{
        let query = window!($scope, $table);
        match $scope.courses {
            None => query,
            Some(_) => query.filter($table::$column.eq_any($scope.course_ids())),
        }
    }};
}

impl<'a> Scope<'a> {
    pub(super) fn new(
        conn: &mut DbConn,
        reach: &'a Reach,
        courses: Option<&'a [String]>,
        after: i64,
        upto: i64,
        part: Part,
    ) -> Result<Self> {
        Ok(Scope {
            reach,
            courses,
            part,
            after,
            upto,
            attendance_path: AttendancePath::choose(conn, reach, courses)?,
        })
    }

    fn course_ids(&self) -> Vec<String> {
        self.courses.map(<[String]>::to_vec).unwrap_or_default()
    }

    // Each collection's rows in the window, by a method named after its table (the feed calls
    // them from the list of collections); `last` is the highest revision the page may hold.
    // None: the scope does not read the collection.

    /// The unit tree, whole, in the feed; a backfill does not resend it.
    pub(super) fn units(&self, _last: i64) -> Option<units::BoxedQuery<'static, Backend>> {
        (self.part == Part::Feed).then(|| window!(self, units))
    }

    /// People in the window. A trainer's come with an enrollment in their courses up to `last`
    /// (the page's end): a person enrolled only by a later revision arrives with that enrollment
    /// (`people_of_new_enrollments`), so that a fresh device pulling page after page receives
    /// each person once, not once for the person's revision and again for the enrollment's.
    /// A backfill brings people to course staff only (a trainee's own record does not come with
    /// a course).
    pub(super) fn people(&self, last: i64) -> Option<people::BoxedQuery<'static, Backend>> {
        let query = window!(self, people);
        Some(match (self.reach, self.part) {
            (Reach::Everything | Reach::OwnRecords(_), Part::Backfill) => return None,
            (Reach::Everything, Part::Feed) => query,
            (Reach::OwnRecords(person), Part::Feed) => {
                query.filter(people::id.nullable().eq(person.clone()))
            }
            // A subquery, not a list of ids: a course-sized list would be bound on every page.
            (Reach::CourseStaff(_), Part::Feed | Part::Backfill) => query.filter(
                people::id.eq_any(
                    enrollments::table
                        .filter(enrollments::course_id.eq_any(self.course_ids()))
                        .filter(enrollments::deleted_at.is_null())
                        .filter(enrollments::rev.le(last))
                        .select(enrollments::person_id),
                ),
            ),
        })
    }

    pub(super) fn courses(&self, _last: i64) -> Option<courses::BoxedQuery<'static, Backend>> {
        Some(of_courses!(self, courses, id))
    }

    /// None for trainees, who do not receive course-trainer assignments.
    pub(super) fn course_trainers(
        &self,
        _last: i64,
    ) -> Option<course_trainers::BoxedQuery<'static, Backend>> {
        match self.reach {
            Reach::Everything | Reach::CourseStaff(_) => {
                Some(of_courses!(self, course_trainers, course_id))
            }
            Reach::OwnRecords(_) => None,
        }
    }

    pub(super) fn sessions(&self, _last: i64) -> Option<sessions::BoxedQuery<'static, Backend>> {
        Some(of_courses!(self, sessions, course_id))
    }

    pub(super) fn enrollments(
        &self,
        _last: i64,
    ) -> Option<enrollments::BoxedQuery<'static, Backend>> {
        let query = window!(self, enrollments);
        Some(match self.reach {
            Reach::Everything => query,
            // Their own enrollments in the courses they see: a withdrawal takes the course, and
            // the enrollment with it, off the device, as a first pull would have it.
            Reach::OwnRecords(person) => query
                .filter(enrollments::person_id.nullable().eq(person.clone()))
                .filter(enrollments::course_id.eq_any(self.course_ids())),
            Reach::CourseStaff(_) => query.filter(enrollments::course_id.eq_any(self.course_ids())),
        })
    }

    pub(super) fn attendance(
        &self,
        _last: i64,
    ) -> Option<attendance::BoxedQuery<'static, Backend>> {
        let query = window!(self, attendance);
        Some(match self.reach {
            Reach::Everything => query,
            Reach::OwnRecords(person) => query
                .filter(attendance::person_id.nullable().eq(person.clone()))
                .filter(
                    attendance::session_id.eq_any(
                        sessions::table
                            .filter(sessions::course_id.eq_any(self.course_ids()))
                            .select(sessions::id),
                    ),
                ),
            Reach::CourseStaff(_) => {
                let trainer_sessions = sessions::table
                    .filter(sessions::course_id.eq_any(self.course_ids()))
                    .select(sessions::id);
                match self.attendance_path {
                    AttendancePath::BySession => {
                        query.filter(attendance::session_id.eq_any(trainer_sessions))
                    }
                    // `session_id || ''` is the same value, but no index on session_id can
                    // serve it, so the planner walks the revision index instead.
                    AttendancePath::ByRevision => {
                        query.filter(attendance::session_id.concat("").eq_any(trainer_sessions))
                    }
                }
            }
        })
    }

    pub(super) fn materials(&self, _last: i64) -> Option<materials::BoxedQuery<'static, Backend>> {
        Some(of_courses!(self, materials, course_id))
    }
}
