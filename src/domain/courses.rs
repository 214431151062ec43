//! Courses (training classes): title, organising unit, management level, dates and place.
//! Deleting a course tombstones its sessions, trainer assignments and materials and removes its
//! enrollments (through the one writer), but a course with recorded attendance cannot be deleted.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::{Manages, ensure_course_visible, visible_courses};
use super::attendance::AttendanceRecords;
use super::enrollments::Enrollments;
use super::materials::Materials;
use super::sessions::Sessions;
use super::trainers::CourseTrainers;
use super::units::Units;
use super::values::{Checker, MAX_NAME_CHARS, MAX_TEXT_CHARS, resolve_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, SortRequest, SyncedRecord, find_live, inserted, replaced,
    sorted_page, text, tombstone,
};
use crate::db::schema::courses;
use crate::db::{Backend, DbConn, next_revision, now_ms};
use crate::domain::collections::Collection;
use crate::error::{Error, Result};

pub const MANAGEMENT_LEVELS: [&str; 3] = ["central", "province", "commune"];
const SORTS: [&str; 5] = [
    "start_date",
    "end_date",
    "title",
    "created_at",
    "updated_at",
];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = courses, treat_none_as_null = true)]
pub struct Course {
    pub id: String,
    pub code: Option<String>,
    pub title: String,
    #[serde(skip)]
    pub title_key: String,
    pub description: Option<String>,
    pub organizing_unit_id: Option<String>,
    pub management_level: String,
    pub start_date: String,
    pub end_date: String,
    pub place: Option<String>,
    pub rev: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub updated_at: i64,
    #[serde(skip)]
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseInput {
    pub id: Option<String>,
    pub code: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub organizing_unit_id: Option<String>,
    pub management_level: String,
    pub start_date: String,
    pub end_date: String,
    pub place: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseFilter {
    /// Matches title or code, ignoring case and diacritics.
    pub q: Option<String>,
    pub organizing_unit_id: Option<String>,
    pub management_level: Option<String>,
    /// Courses still running on or after this date.
    pub from: Option<String>,
    /// Courses starting on or before this date.
    pub to: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub struct Courses;

impl Courses {
    pub fn find(conn: &mut DbConn, id: &str) -> Result<Course> {
        find_live!(conn, courses, Course, id, Self::WHAT)
    }

    /// How many live courses a unit organises (a unit in use is not deleted).
    pub fn count_organised_by(conn: &mut DbConn, unit_id: &str) -> Result<i64> {
        Ok(courses::table
            .filter(courses::organizing_unit_id.eq(unit_id))
            .filter(courses::deleted_at.is_null())
            .count()
            .get_result(conn)?)
    }

    /// Checks input and builds the stored row; an organiser's course must be organised by a unit
    /// of their subtree (422 `outside_your_unit`), and only an admin's may name no unit.
    fn build(
        conn: &mut DbConn,
        manages: &Manages,
        input: CourseInput,
        existing: Option<&Course>,
    ) -> Result<Course> {
        let mut check = Checker::new();
        let code = check.opt_text("code", input.code.as_deref(), 40);
        let title = check.text("title", &input.title, MAX_NAME_CHARS);
        let description =
            check.opt_long_text("description", input.description.as_deref(), MAX_TEXT_CHARS);
        let organizing_unit_id =
            check.opt_id("organizing_unit_id", input.organizing_unit_id.as_deref());
        let management_level = check.one_of(
            "management_level",
            &input.management_level,
            &MANAGEMENT_LEVELS,
        );
        let start_date = check.date("start_date", &input.start_date);
        let end_date = check.date("end_date", &input.end_date);
        check.ordered(
            "end_date",
            &start_date,
            &end_date,
            "must not be before start_date",
        );
        let place = check.opt_text("place", input.place.as_deref(), MAX_NAME_CHARS);
        let id = resolve_id(
            &mut check,
            existing.map(|c| c.id.as_str()),
            input.id.as_deref(),
        );
        check.finish()?;
        if let Some(unit) = &organizing_unit_id {
            let unit = Units::find(conn, unit).map_err(|_| {
                Error::invalid_field("organizing_unit_id", "unknown_unit", "no such unit")
            })?;
            if !unit.in_force_during(&start_date, &end_date) {
                return Err(Error::invalid_field(
                    "organizing_unit_id",
                    "unit_not_in_force",
                    "the unit was not in force on the course's dates (merged into another, or \
                     not yet created): choose the unit in force then",
                ));
            }
        }
        manages.require_unit("organizing_unit_id", organizing_unit_id.as_deref())?;
        let now = now_ms();
        Ok(Course {
            title_key: text::fold(&title),
            id,
            code,
            title,
            description,
            organizing_unit_id,
            management_level,
            start_date,
            end_date,
            place,
            rev: next_revision(conn)?,
            created_at: existing.map_or(now, |c| c.created_at),
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Resource for Courses {
    const WHAT: &'static str = "course";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::Courses);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Course;
    type Record = Course;
    type Input = CourseInput;
    type Filter = CourseFilter;

    fn list(conn: &mut DbConn, caller: &Caller, filter: &CourseFilter) -> Result<Paged<Course>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "start_date", &SORTS)?;
        let mut filter_check = Checker::new();
        let organizing_unit_id =
            filter_check.opt_id("organizing_unit_id", filter.organizing_unit_id.as_deref());
        let management_level = filter_check.opt_one_of(
            "management_level",
            filter.management_level.as_deref(),
            &MANAGEMENT_LEVELS,
        );
        filter_check.finish()?;
        let mut check = Checker::new();
        let from = check.opt_date("from", filter.from.as_deref());
        let to = check.opt_date("to", filter.to.as_deref());
        check.finish()?;
        let visible = visible_courses(conn, caller)?;
        let query = || {
            let mut query = courses::table
                .filter(courses::deleted_at.is_null())
                .into_boxed::<Backend>();
            if let Some(ids) = &visible {
                query = query.filter(courses::id.eq_any(ids.clone()));
            }
            if let Some(q) = &filter.q {
                let pattern = text::contains_pattern(q);
                query = query.filter(
                    courses::title_key
                        .like(pattern.clone())
                        .escape('\\')
                        .or(text::lower(courses::code).like(pattern).escape('\\')),
                );
            }
            if let Some(unit) = &organizing_unit_id {
                query = query.filter(courses::organizing_unit_id.eq(unit.clone()));
            }
            if let Some(level) = &management_level {
                query = query.filter(courses::management_level.eq(level.clone()));
            }
            if let Some(from) = &from {
                query = query.filter(courses::end_date.ge(from.clone()));
            }
            if let Some(to) = &to {
                query = query.filter(courses::start_date.le(to.clone()));
            }
            query
        };
        Ok(sorted_page!(conn, query, page, sort, courses::id, Course, {
            "start_date" => [courses::start_date],
            "end_date" => [courses::end_date],
            "title" => [courses::title_key, courses::title],
            "created_at" => [courses::created_at],
            "updated_at" => [courses::updated_at],
        }))
    }

    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Course> {
        let course = Self::find(conn, id)?;
        ensure_course_visible(conn, caller, &course.id, "course")?;
        Ok(course)
    }

    fn create(conn: &mut DbConn, caller: &Caller, input: CourseInput) -> Result<Course> {
        let manages = &caller.manages;
        manages.require_some()?;
        inserted!(conn, courses, Self::build(conn, manages, input, None)?)
    }

    fn update_found(
        conn: &mut DbConn,
        caller: &Caller,
        existing: Course,
        input: CourseInput,
    ) -> Result<Course> {
        let row = Self::build(conn, &caller.manages, input, Some(&existing))?;
        replaced!(conn, courses, row)
    }

    /// Refuses a course with recorded attendance; its enrollments go with it, through the one
    /// writer.
    fn plan_delete(conn: &mut DbConn, existing: &Course) -> Result<Vec<SyncedRecord>> {
        let session_ids = Sessions::ids_of_course(conn, &existing.id)?;
        let recorded = AttendanceRecords::count_in_sessions(conn, &session_ids)?;
        if recorded > 0 {
            return Err(Error::conflict(
                "course_has_attendance",
                format!("the course has {recorded} attendance records; they must be kept"),
            ));
        }
        Ok(Enrollments::live_ids_of_course(conn, &existing.id)?
            .into_iter()
            .map(|id| SyncedRecord {
                what: Enrollments::WHAT,
                collection: Collection::Enrollments,
                id,
            })
            .collect())
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: Course) -> Result<()> {
        let session_ids = Sessions::ids_of_course(conn, &existing.id)?;
        let now = now_ms();
        Sessions::tombstone_all(conn, &session_ids, now)?;
        CourseTrainers::tombstone_of_course(conn, &existing.id, now)?;
        Materials::tombstone_of_course(conn, &existing.id, now)?;
        tombstone!(conn, courses, &existing.id, now)?;
        Ok(())
    }
}

// Reads for reports

/// How many of something a course has (its live sessions, the attendance records someone
/// recorded in it), as a report counts them per course.
#[derive(Debug, Clone, Queryable)]
pub struct CourseCount {
    pub course_id: String,
    pub count: i64,
}

/// A course as a report names it: code, title and dates.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = courses)]
pub struct CourseOutline {
    pub id: String,
    pub code: Option<String>,
    pub title: String,
    pub start_date: String,
    pub end_date: String,
}

impl Courses {
    /// The live courses among `ids`, by start date (ties by id).
    pub fn outlines(conn: &mut DbConn, ids: &[String]) -> Result<Vec<CourseOutline>> {
        Ok(courses::table
            .filter(courses::id.eq_any(ids))
            .filter(courses::deleted_at.is_null())
            .order((courses::start_date.asc(), courses::id.asc()))
            .select(CourseOutline::as_select())
            .load(conn)?)
    }
}

// Reads for who sees what

impl Courses {
    /// The live courses organised by one of the units (what an organiser of them sees,
    /// `access::visible_courses`).
    pub fn live_ids_organised_by(conn: &mut DbConn, units: Vec<String>) -> Result<Vec<String>> {
        Ok(courses::table
            .filter(courses::organizing_unit_id.eq_any(units))
            .filter(courses::deleted_at.is_null())
            .select(courses::id)
            .load(conn)?)
    }
}

// Reads for the one writer

/// A live course's organising unit (none: the province organises it).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = courses)]
pub struct CourseUnit {
    pub id: String,
    pub organizing_unit_id: Option<String>,
}

impl Courses {
    /// Those of the courses `ids` that are live, with their organising units.
    pub fn live_units_of(conn: &mut DbConn, ids: &[String]) -> Result<Vec<CourseUnit>> {
        Ok(courses::table
            .filter(courses::id.eq_any(ids))
            .filter(courses::deleted_at.is_null())
            .select(CourseUnit::as_select())
            .load(conn)?)
    }
}
