//! Attendance: one record per (session, person) with status, check-in time and note, stamped with
//! the user and device that recorded it (taken from the caller, never from the body).

use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::personal_records;
use super::courses::CourseCount;
use super::sessions::Sessions;
use super::values::{Checker, MAX_TEXT_CHARS, resolve_id, serialize_ms, serialize_opt_ms};
use super::{Caller, PageRequest, Paged, Resource, Role, SortRequest, personal, sorted_page};
use crate::db::schema::{attendance, people, sessions};
use crate::db::{Backend, DbConn};
use crate::error::{Error, Result};

pub const STATUSES: [&str; 4] = ["present", "late", "excused", "absent"];
const SORTS: [&str; 3] = ["created_at", "updated_at", "checked_in_at"];

/// An attendance record's values, checked and in stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct AttendanceValues {
    pub status: String,
    pub checked_in_at: Option<i64>,
    pub note: Option<String>,
}

/// The rule for an attendance record's values: a known status, an RFC 3339 check-in time, a note
/// of at most `MAX_TEXT_CHARS` without control characters.
pub fn check_values(
    status: &str,
    checked_in_at: Option<&str>,
    note: Option<&str>,
) -> Result<AttendanceValues> {
    let mut check = Checker::new();
    let status = check.one_of("status", status, &STATUSES);
    let checked_in_at = check.opt_instant("checked_in_at", checked_in_at);
    let note = check.opt_long_text("note", note, MAX_TEXT_CHARS);
    check.finish()?;
    Ok(AttendanceValues {
        status,
        checked_in_at,
        note,
    })
}

/// The rule for who records attendance in a course: administrators, the organisers of its unit
/// and the trainers assigned to it (`assigned_to_course`: for an organiser, the course is of
/// their subtree).
pub fn may_record(role: Role, assigned_to_course: bool) -> bool {
    match role {
        Role::Admin => true,
        Role::Organiser | Role::Trainer => assigned_to_course,
        Role::Trainee => false,
    }
}

/// An attendance record as the API shows it, and as stored but for its field stamps: the row the
/// one writer reads and writes (`sync::records`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = attendance, treat_none_as_default_value = false)]
pub struct Attendance {
    pub id: String,
    pub session_id: String,
    pub person_id: String,
    pub status: String,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub checked_in_at: Option<i64>,
    pub note: Option<String>,
    pub recorded_by: String,
    pub recorded_device: Option<String>,
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
pub struct AttendanceInput {
    pub id: Option<String>,
    pub session_id: String,
    pub person_id: String,
    pub status: String,
    pub checked_in_at: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendanceFilter {
    pub session_id: Option<String>,
    pub course_id: Option<String>,
    pub person_id: Option<String>,
    pub status: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub struct AttendanceRecords;

impl AttendanceRecords {
    /// How many live attendance records the sessions hold: sessions and courses that hold any
    /// cannot be deleted (what a trainer recorded is kept).
    pub fn count_in_sessions(conn: &mut DbConn, session_ids: &[String]) -> Result<i64> {
        Ok(attendance::table
            .filter(attendance::session_id.eq_any(session_ids))
            .filter(attendance::deleted_at.is_null())
            .count()
            .get_result(conn)?)
    }

    /// How many live attendance records a person has (a person with any is not deleted).
    pub fn count_of_person(conn: &mut DbConn, person_id: &str) -> Result<i64> {
        Ok(attendance::table
            .filter(attendance::person_id.eq(person_id))
            .filter(attendance::deleted_at.is_null())
            .count()
            .get_result(conn)?)
    }

    fn values(input: &AttendanceInput) -> Result<AttendanceValues> {
        check_values(
            &input.status,
            input.checked_in_at.as_deref(),
            input.note.as_deref(),
        )
    }
}

impl Resource for AttendanceRecords {
    const WHAT: &'static str = "attendance record";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::Attendance);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Attendance;
    const EXISTS: &'static str = "already_recorded";
    type Record = Attendance;
    type Input = AttendanceInput;
    type Filter = AttendanceFilter;

    fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &AttendanceFilter,
    ) -> Result<Paged<Attendance>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "created_at", &SORTS)?;
        let mut filter_check = Checker::new();
        let session_id = filter_check.opt_id("session_id", filter.session_id.as_deref());
        let course_id = filter_check.opt_id("course_id", filter.course_id.as_deref());
        let person_id = filter_check.opt_id("person_id", filter.person_id.as_deref());
        let status = filter_check.opt_one_of("status", filter.status.as_deref(), &STATUSES);
        filter_check.finish()?;
        let scope = personal_records(conn, caller)?;
        let query = || {
            let live = attendance::table
                .inner_join(sessions::table)
                .filter(attendance::deleted_at.is_null())
                .into_boxed::<Backend>();
            let mut query = personal!(live, &scope, attendance::person_id, sessions::course_id);
            if let Some(session) = &session_id {
                query = query.filter(attendance::session_id.eq(session.clone()));
            }
            if let Some(course) = &course_id {
                query = query.filter(sessions::course_id.eq(course.clone()));
            }
            if let Some(person) = &person_id {
                query = query.filter(attendance::person_id.eq(person.clone()));
            }
            if let Some(status) = &status {
                query = query.filter(attendance::status.eq(status.clone()));
            }
            query
        };
        Ok(
            sorted_page!(conn, query, page, sort, attendance::id, Attendance, {
                "created_at" => [attendance::created_at],
                "updated_at" => [attendance::updated_at],
                "checked_in_at" => [attendance::checked_in_at],
            }),
        )
    }

    /// Joins `sessions` for the record's course: the query finds an attendance record.
    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Attendance> {
        let (record, course_id) = attendance::table
            .inner_join(sessions::table)
            .filter(attendance::id.eq(id))
            .filter(attendance::deleted_at.is_null())
            .select((Attendance::as_select(), sessions::course_id))
            .first::<(Attendance, String)>(conn)
            .optional()?
            .ok_or(Error::NotFound { what: Self::WHAT })?;
        if personal_records(conn, caller)?.covers(&course_id, &record.person_id) {
            Ok(record)
        } else {
            Err(Error::NotFound { what: Self::WHAT })
        }
    }

    /// Checks a new record for an existing session the caller sees and returns it unwritten
    /// (see `Resource`): who may record, and for whom, are the one writer's rules, as is the
    /// refusal of a pair already recorded. A removed record of the same pair is revived under its
    /// own id (the writer finds it by its natural key).
    fn create(conn: &mut DbConn, caller: &Caller, input: AttendanceInput) -> Result<Attendance> {
        let mut check = Checker::new();
        let session_id = check.id("session_id", &input.session_id);
        let person_id = check.id("person_id", &input.person_id);
        let id = resolve_id(&mut check, None, input.id.as_deref());
        check.finish()?;
        let AttendanceValues {
            status,
            checked_in_at,
            note,
        } = Self::values(&input)?;
        Sessions::find_visible(conn, caller, &session_id).map_err(|_| {
            Error::invalid_field("session_id", "unknown_session", "no such session")
        })?;
        Ok(Attendance {
            id,
            session_id,
            person_id,
            status,
            checked_in_at,
            note,
            recorded_by: caller.user_id.clone(),
            recorded_device: Some(caller.device_id.clone()),
            rev: 0,
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        })
    }

    /// A record the caller sees, whatever its revision: the one writer checks the expected
    /// revision (see `Resource`).
    fn find_to_change(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        _expected_rev: Option<i64>,
    ) -> Result<Attendance> {
        Self::get(conn, caller, id)
    }

    /// Checks new status, check-in time and note (session and person identify the record) and
    /// returns the record unwritten (see `Resource`).
    fn update_found(
        _conn: &mut DbConn,
        _caller: &Caller,
        existing: Attendance,
        input: AttendanceInput,
    ) -> Result<Attendance> {
        const INSTEAD: &str = "delete the record and create another";
        let mut check = Checker::new();
        resolve_id(&mut check, Some(&existing.id), input.id.as_deref());
        check.unchanged_id(
            "session_id",
            &input.session_id,
            &existing.session_id,
            INSTEAD,
        );
        check.unchanged_id("person_id", &input.person_id, &existing.person_id, INSTEAD);
        check.finish()?;
        let AttendanceValues {
            status,
            checked_in_at,
            note,
        } = Self::values(&input)?;
        Ok(Attendance {
            status,
            checked_in_at,
            note,
            ..existing
        })
    }

    /// Nothing more to check: the one writer removes the record (see `Resource`).
    fn delete_found(_conn: &mut DbConn, _caller: &Caller, _existing: Attendance) -> Result<()> {
        Ok(())
    }
}

// Reads for the sync feed

impl AttendanceRecords {
    /// The stored records among `ids`, removed ones included.
    pub fn by_ids(conn: &mut DbConn, ids: &[&str]) -> Result<Vec<Attendance>> {
        Ok(attendance::table
            .filter(attendance::id.eq_any(ids))
            .select(Attendance::as_select())
            .load(conn)?)
    }

    /// The attendance records of the sessions, removed ones included.
    pub fn ids_in_sessions(conn: &mut DbConn, session_ids: &[String]) -> Result<Vec<String>> {
        Ok(attendance::table
            .filter(attendance::session_id.eq_any(session_ids))
            .select(attendance::id)
            .load(conn)?)
    }

    /// A person's attendance records in the sessions, removed ones included.
    pub fn ids_of_person_in_sessions(
        conn: &mut DbConn,
        person_id: &str,
        session_ids: &[String],
    ) -> Result<Vec<String>> {
        Ok(attendance::table
            .filter(attendance::session_id.eq_any(session_ids))
            .filter(attendance::person_id.eq(person_id))
            .select(attendance::id)
            .load(conn)?)
    }
}

// Reads for reports

/// The status recorded for a person at a session.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attendance)]
pub struct Mark {
    pub session_id: String,
    pub person_id: String,
    pub status: String,
}

/// How many sessions of a course a person attended with a counting status.
#[derive(Debug, Clone, Queryable)]
pub struct AttendedInCourse {
    pub course_id: String,
    pub person_id: String,
    pub sessions: i64,
}

impl AttendanceRecords {
    /// The live records of the people at the sessions.
    pub fn marks(
        conn: &mut DbConn,
        session_ids: &[&String],
        person_ids: &[&String],
    ) -> Result<Vec<Mark>> {
        Ok(attendance::table
            .filter(attendance::session_id.eq_any(session_ids))
            .filter(attendance::person_id.eq_any(person_ids))
            .filter(attendance::deleted_at.is_null())
            .select(Mark::as_select())
            .load(conn)?)
    }

    /// How many live records `user_id` recorded in each of the courses. Joins `sessions` for
    /// their course: the query counts attendance.
    pub fn count_recorded_by(
        conn: &mut DbConn,
        user_id: &str,
        course_ids: &[String],
    ) -> Result<Vec<CourseCount>> {
        Ok(attendance::table
            .inner_join(sessions::table)
            .filter(attendance::recorded_by.eq(user_id))
            .filter(attendance::deleted_at.is_null())
            .filter(sessions::course_id.eq_any(course_ids))
            .group_by(sessions::course_id)
            .select((sessions::course_id, count_star()))
            .load(conn)?)
    }

    /// Per course and person, the live sessions of `course_ids` that living people holding one
    /// of `positions` attended with one of `statuses`, in one aggregated pass. Joins `sessions`
    /// (their course, whether live) and `people` (position, whether living): the query counts
    /// attendance.
    pub fn attended_by_positions(
        conn: &mut DbConn,
        course_ids: &[&String],
        statuses: &[String],
        positions: &[String],
    ) -> Result<Vec<AttendedInCourse>> {
        Ok(attendance::table
            .inner_join(sessions::table)
            .inner_join(people::table)
            .filter(attendance::deleted_at.is_null())
            .filter(attendance::status.eq_any(statuses))
            .filter(sessions::course_id.eq_any(course_ids))
            .filter(sessions::deleted_at.is_null())
            .filter(people::position.eq_any(positions))
            .filter(people::deleted_at.is_null())
            .group_by((sessions::course_id, attendance::person_id))
            .select((sessions::course_id, attendance::person_id, count_star()))
            .load(conn)?)
    }

    /// Per course and person, how many of the sessions the people attended with one of
    /// `statuses`. Joins `sessions` for their course: the query counts attendance.
    pub fn attended_in_courses(
        conn: &mut DbConn,
        session_ids: &[&String],
        person_ids: &[&String],
        statuses: &[String],
    ) -> Result<Vec<AttendedInCourse>> {
        Ok(attendance::table
            .inner_join(sessions::table)
            .filter(attendance::deleted_at.is_null())
            .filter(attendance::status.eq_any(statuses))
            .filter(attendance::session_id.eq_any(session_ids))
            .filter(attendance::person_id.eq_any(person_ids))
            .group_by((sessions::course_id, attendance::person_id))
            .select((sessions::course_id, attendance::person_id, count_star()))
            .load(conn)?)
    }
}
