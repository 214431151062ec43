//! Sessions: one teaching slot of a course (start and end, place, topic, the trainer who leads it).

use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::{ensure_course_visible, ensure_named_course_visible, visible_courses};
use super::attendance::AttendanceRecords;
use super::courses::{CourseCount, Courses};
use super::trainers::CourseTrainers;
use super::values::{Checker, MAX_NAME_CHARS, resolve_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, SortRequest, find_live, inserted, live_of_courses,
    replaced, sorted_page, tombstone,
};
use crate::db::schema::{courses, sessions};
use crate::db::{DbConn, next_revision, now_ms};
use crate::error::{Error, Result};

const SORTS: [&str; 4] = ["starts_at", "topic", "created_at", "updated_at"];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sessions, treat_none_as_null = true)]
pub struct Session {
    pub id: String,
    pub course_id: String,
    pub topic: String,
    #[serde(serialize_with = "serialize_ms")]
    pub starts_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub ends_at: i64,
    pub place: Option<String>,
    pub trainer_id: Option<String>,
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
pub struct SessionInput {
    pub id: Option<String>,
    pub course_id: String,
    pub topic: String,
    pub starts_at: String,
    pub ends_at: String,
    pub place: Option<String>,
    pub trainer_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    pub course_id: Option<String>,
    pub trainer_id: Option<String>,
    /// Sessions ending at or after this instant (RFC 3339).
    pub from: Option<String>,
    /// Sessions starting at or before this instant (RFC 3339).
    pub to: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub struct Sessions;

impl Sessions {
    /// The live sessions of a course.
    pub fn ids_of_course(conn: &mut DbConn, course_id: &str) -> Result<Vec<String>> {
        Ok(sessions::table
            .filter(sessions::course_id.eq(course_id))
            .filter(sessions::deleted_at.is_null())
            .select(sessions::id)
            .load(conn)?)
    }

    /// Tombstones the sessions, each with its own revision so that devices see every deletion.
    pub fn tombstone_all(conn: &mut DbConn, ids: &[String], now: i64) -> Result<()> {
        for id in ids {
            tombstone!(conn, sessions, id, now)?;
        }
        Ok(())
    }

    /// The course's sessions led by `trainer_id` name no trainer any more (the trainer left the
    /// course).
    pub fn clear_trainer(
        conn: &mut DbConn,
        course_id: &str,
        trainer_id: &str,
        now: i64,
    ) -> Result<()> {
        let led = sessions::table
            .filter(sessions::course_id.eq(course_id))
            .filter(sessions::trainer_id.eq(trainer_id))
            .filter(sessions::deleted_at.is_null())
            .select(sessions::id)
            .load::<String>(conn)?;
        for session in led {
            diesel::update(sessions::table.find(&session))
                .set((
                    sessions::trainer_id.eq(None::<String>),
                    sessions::updated_at.eq(now),
                    sessions::rev.eq(next_revision(conn)?),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn find(conn: &mut DbConn, id: &str) -> Result<Session> {
        find_live!(conn, sessions, Session, id, Self::WHAT)
    }

    fn build(
        conn: &mut DbConn,
        input: SessionInput,
        existing: Option<&Session>,
    ) -> Result<Session> {
        let mut check = Checker::new();
        let course_id = check.id("course_id", &input.course_id);
        if let Some(existing) = existing
            && existing.course_id != course_id
        {
            check.fail(
                "course_id",
                "immutable",
                "a session cannot move to another course",
            );
        }
        let topic = check.text("topic", &input.topic, MAX_NAME_CHARS);
        let starts_at = check.instant("starts_at", &input.starts_at);
        let ends_at = check.instant("ends_at", &input.ends_at);
        check.ordered(
            "ends_at",
            &starts_at,
            &ends_at,
            "must not be before starts_at",
        );
        let place = check.opt_text("place", input.place.as_deref(), MAX_NAME_CHARS);
        let trainer_id = check.opt_id("trainer_id", input.trainer_id.as_deref());
        let id = resolve_id(
            &mut check,
            existing.map(|s| s.id.as_str()),
            input.id.as_deref(),
        );
        check.finish()?;
        Courses::find(conn, &course_id)
            .map_err(|_| Error::invalid_field("course_id", "unknown_course", "no such course"))?;
        if let Some(trainer) = &trainer_id
            && !CourseTrainers::is_assigned(conn, trainer, &course_id)?
        {
            return Err(Error::invalid_field(
                "trainer_id",
                "trainer_not_assigned",
                "the trainer is not assigned to this course",
            ));
        }
        let now = now_ms();
        Ok(Session {
            id,
            course_id,
            topic,
            starts_at,
            ends_at,
            place,
            trainer_id,
            rev: next_revision(conn)?,
            created_at: existing.map_or(now, |s| s.created_at),
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Resource for Sessions {
    const WHAT: &'static str = "session";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::Sessions);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Session;
    type Record = Session;
    type Input = SessionInput;
    type Filter = SessionFilter;

    fn list(conn: &mut DbConn, caller: &Caller, filter: &SessionFilter) -> Result<Paged<Session>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "starts_at", &SORTS)?;
        let mut filter_check = Checker::new();
        let course_id = filter_check.opt_id("course_id", filter.course_id.as_deref());
        let trainer_id = filter_check.opt_id("trainer_id", filter.trainer_id.as_deref());
        filter_check.finish()?;
        let mut check = Checker::new();
        let from = check.opt_instant("from", filter.from.as_deref());
        let to = check.opt_instant("to", filter.to.as_deref());
        check.finish()?;
        let visible = visible_courses(conn, caller)?;
        let query = || {
            let mut query = live_of_courses!(sessions, &visible, &course_id);
            if let Some(trainer) = &trainer_id {
                query = query.filter(sessions::trainer_id.eq(trainer.clone()));
            }
            if let Some(from) = from {
                query = query.filter(sessions::ends_at.ge(from));
            }
            if let Some(to) = to {
                query = query.filter(sessions::starts_at.le(to));
            }
            query
        };
        Ok(
            sorted_page!(conn, query, page, sort, sessions::id, Session, {
                "starts_at" => [sessions::starts_at],
                "topic" => [sessions::topic],
                "created_at" => [sessions::created_at],
                "updated_at" => [sessions::updated_at],
            }),
        )
    }

    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Session> {
        let session = Self::find(conn, id)?;
        ensure_course_visible(conn, caller, &session.course_id, "session")?;
        Ok(session)
    }

    fn create(conn: &mut DbConn, caller: &Caller, input: SessionInput) -> Result<Session> {
        caller.manages.require_some()?;
        ensure_named_course_visible(conn, caller, &input.course_id)?;
        inserted!(conn, sessions, Self::build(conn, input, None)?)
    }

    fn update_found(
        conn: &mut DbConn,
        _caller: &Caller,
        existing: Session,
        input: SessionInput,
    ) -> Result<Session> {
        replaced!(conn, sessions, Self::build(conn, input, Some(&existing))?)
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: Session) -> Result<()> {
        let recorded =
            AttendanceRecords::count_in_sessions(conn, std::slice::from_ref(&existing.id))?;
        if recorded > 0 {
            return Err(Error::conflict(
                "session_has_attendance",
                format!("the session has {recorded} attendance records; they must be kept"),
            ));
        }
        let now = now_ms();
        tombstone!(conn, sessions, &existing.id, now)?;
        Ok(())
    }
}

// Reads for the sync feed

impl Sessions {
    /// How many sessions there are, removed ones included (the feed weighs the share of them a
    /// trainer's courses hold).
    pub fn count_all(conn: &mut DbConn) -> Result<i64> {
        Ok(sessions::table.count().get_result(conn)?)
    }

    /// How many sessions the courses hold, removed ones included.
    pub fn count_of_courses(conn: &mut DbConn, courses: &[String]) -> Result<i64> {
        Ok(sessions::table
            .filter(sessions::course_id.eq_any(courses))
            .count()
            .get_result(conn)?)
    }

    /// The sessions of the courses, removed ones included.
    pub fn ids_of_courses(conn: &mut DbConn, courses: &[String]) -> Result<Vec<String>> {
        Ok(sessions::table
            .filter(sessions::course_id.eq_any(courses))
            .select(sessions::id)
            .load(conn)?)
    }

    /// Those of the sessions `ids` that belong to one of the courses.
    pub fn ids_among_of_courses(
        conn: &mut DbConn,
        ids: &[&str],
        courses: &[String],
    ) -> Result<Vec<String>> {
        Ok(sessions::table
            .filter(sessions::id.eq_any(ids))
            .filter(sessions::course_id.eq_any(courses))
            .select(sessions::id)
            .load(conn)?)
    }
}

// Reads for reports

/// A live session as a report lists it: its course, topic and start.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionOutline {
    pub id: String,
    pub course_id: String,
    pub topic: String,
    pub starts_at: i64,
}

/// A live session of a trainer's course: when it starts and who leads it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionLead {
    pub course_id: String,
    pub starts_at: i64,
    pub trainer_id: Option<String>,
}

impl Sessions {
    /// A course's live sessions, in the order they start (ties by id).
    pub fn outlines_of_course(conn: &mut DbConn, course_id: &str) -> Result<Vec<SessionOutline>> {
        Ok(sessions::table
            .filter(sessions::course_id.eq(course_id))
            .filter(sessions::deleted_at.is_null())
            .order((sessions::starts_at.asc(), sessions::id.asc()))
            .select(SessionOutline::as_select())
            .load(conn)?)
    }

    /// The live sessions of the live courses among `course_ids`. Joins `courses` for whether
    /// the course is live: the query is about sessions.
    pub fn outlines_of_live_courses(
        conn: &mut DbConn,
        course_ids: &[String],
    ) -> Result<Vec<SessionOutline>> {
        Ok(sessions::table
            .inner_join(courses::table)
            .filter(courses::deleted_at.is_null())
            .filter(sessions::deleted_at.is_null())
            .filter(sessions::course_id.eq_any(course_ids))
            .select(SessionOutline::as_select())
            .load(conn)?)
    }

    /// The live sessions of the courses, with who leads each.
    pub fn leads_of_courses(conn: &mut DbConn, course_ids: &[String]) -> Result<Vec<SessionLead>> {
        Ok(sessions::table
            .filter(sessions::course_id.eq_any(course_ids))
            .filter(sessions::deleted_at.is_null())
            .select(SessionLead::as_select())
            .load(conn)?)
    }

    /// How many live sessions each live course that ended from `from` to `to` (inclusive) has;
    /// a course without live sessions is not listed. Joins `courses` for their end date: the
    /// query counts sessions.
    pub fn count_of_courses_ended_between(
        conn: &mut DbConn,
        from: &str,
        to: &str,
    ) -> Result<Vec<CourseCount>> {
        Ok(sessions::table
            .inner_join(courses::table)
            .filter(courses::deleted_at.is_null())
            .filter(courses::end_date.ge(from))
            .filter(courses::end_date.le(to))
            .filter(sessions::deleted_at.is_null())
            .group_by(sessions::course_id)
            .select((sessions::course_id, count_star()))
            .load(conn)?)
    }
}

// Reads for the one writer

/// A session as the one writer's rules see it: its course, and whether it was removed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionOfCourse {
    pub id: String,
    pub course_id: String,
    pub deleted_at: Option<i64>,
}

impl Sessions {
    /// The sessions `ids`, removed ones included, with their courses.
    pub fn courses_of(conn: &mut DbConn, ids: &[String]) -> Result<Vec<SessionOfCourse>> {
        Ok(sessions::table
            .filter(sessions::id.eq_any(ids))
            .select(SessionOfCourse::as_select())
            .load(conn)?)
    }
}
