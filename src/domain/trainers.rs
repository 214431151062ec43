//! Trainer assignments: which trainer accounts teach which course. An assignment is what lets a
//! trainer see a course and record its attendance.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::{ensure_course_visible, visible_courses};
use super::courses::Courses;
use super::sessions::Sessions;
use super::users::Users;
use super::values::{Checker, resolve_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, Role, SortRequest, find_live, live_of_courses,
    sorted_page, tombstone,
};
use crate::db::schema::{course_trainers, courses};
use crate::db::{DbConn, next_revision, now_ms};
use crate::error::{Error, Result};

pub const TRAINER_ROLES: [&str; 2] = ["lead", "assistant"];
const SORTS: [&str; 2] = ["created_at", "updated_at"];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = course_trainers, treat_none_as_null = true)]
pub struct CourseTrainer {
    pub id: String,
    pub course_id: String,
    pub user_id: String,
    pub role: String,
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
pub struct CourseTrainerInput {
    pub id: Option<String>,
    pub course_id: String,
    pub user_id: String,
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseTrainerFilter {
    pub course_id: Option<String>,
    pub user_id: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub struct CourseTrainers;

impl CourseTrainers {
    /// Tombstones every live trainer assignment of a course (the course is being deleted).
    pub fn tombstone_of_course(conn: &mut DbConn, course_id: &str, now: i64) -> Result<()> {
        super::tombstone_of_course!(conn, course_trainers, course_id, now)
    }

    fn find_pair(
        conn: &mut DbConn,
        course_id: &str,
        user_id: &str,
    ) -> Result<Option<CourseTrainer>> {
        Ok(course_trainers::table
            .filter(course_trainers::course_id.eq(course_id))
            .filter(course_trainers::user_id.eq(user_id))
            .select(CourseTrainer::as_select())
            .first(conn)
            .optional()?)
    }
}

impl Resource for CourseTrainers {
    const WHAT: &'static str = "trainer assignment";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::CourseTrainers);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::CourseTrainer;
    type Record = CourseTrainer;
    type Input = CourseTrainerInput;
    type Filter = CourseTrainerFilter;

    fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &CourseTrainerFilter,
    ) -> Result<Paged<CourseTrainer>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "created_at", &SORTS)?;
        let mut filter_check = Checker::new();
        let course_id = filter_check.opt_id("course_id", filter.course_id.as_deref());
        let user_id = filter_check.opt_id("user_id", filter.user_id.as_deref());
        filter_check.finish()?;
        let visible = visible_courses(conn, caller)?;
        let query = || {
            let mut query = live_of_courses!(course_trainers, &visible, &course_id);
            if let Some(user) = &user_id {
                query = query.filter(course_trainers::user_id.eq(user.clone()));
            }
            query
        };
        Ok(
            sorted_page!(conn, query, page, sort, course_trainers::id, CourseTrainer, {
                "created_at" => [course_trainers::created_at],
                "updated_at" => [course_trainers::updated_at],
            }),
        )
    }

    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<CourseTrainer> {
        let assignment = find_live!(conn, course_trainers, CourseTrainer, id, Self::WHAT)?;
        ensure_course_visible(conn, caller, &assignment.course_id, Self::WHAT)?;
        Ok(assignment)
    }

    /// Assigns a trainer. Re-assigning after a removal revives the earlier assignment (same id),
    /// so a course/trainer pair is always one record.
    fn create(
        conn: &mut DbConn,
        caller: &Caller,
        input: CourseTrainerInput,
    ) -> Result<CourseTrainer> {
        let manages = &caller.manages;
        manages.require_some()?;
        let mut check = Checker::new();
        let course_id = check.id("course_id", &input.course_id);
        let user_id = check.id("user_id", &input.user_id);
        let role = check.one_of(
            "role",
            input.role.as_deref().unwrap_or("lead"),
            &TRAINER_ROLES,
        );
        let id = resolve_id(&mut check, None, input.id.as_deref());
        check.finish()?;
        // A course or trainer outside an organiser's subtree is answered as one that does not
        // exist.
        Courses::find_visible(conn, caller, &course_id)
            .map_err(|_| Error::invalid_field("course_id", "unknown_course", "no such course"))?;
        let user = Users::find_managed(conn, manages, &user_id)
            .map_err(|_| Error::invalid_field("user_id", "unknown_user", "no such user"))?;
        if user.role() != Role::Trainer {
            return Err(Error::invalid_field(
                "user_id",
                "not_a_trainer",
                "the user is not a trainer",
            ));
        }
        let now = now_ms();
        let rev = next_revision(conn)?;
        match Self::find_pair(conn, &course_id, &user_id)? {
            Some(existing) if existing.deleted_at.is_none() => Err(Error::conflict(
                "already_assigned",
                format!(
                    "the trainer is already assigned to this course (assignment {})",
                    existing.id
                ),
            )),
            Some(existing) => {
                let row = CourseTrainer {
                    role,
                    rev,
                    updated_at: now,
                    deleted_at: None,
                    ..existing
                };
                diesel::update(course_trainers::table.find(&row.id))
                    .set(&row)
                    .execute(conn)?;
                Ok(row)
            }
            None => {
                let row = CourseTrainer {
                    id,
                    course_id,
                    user_id,
                    role,
                    rev,
                    created_at: now,
                    updated_at: now,
                    deleted_at: None,
                };
                diesel::insert_into(course_trainers::table)
                    .values(&row)
                    .execute(conn)?;
                Ok(row)
            }
        }
    }

    /// Only the role of an assignment changes; course and trainer identify it.
    fn update_found(
        conn: &mut DbConn,
        _caller: &Caller,
        existing: CourseTrainer,
        input: CourseTrainerInput,
    ) -> Result<CourseTrainer> {
        const INSTEAD: &str = "remove the assignment and create another";
        let mut check = Checker::new();
        resolve_id(&mut check, Some(&existing.id), input.id.as_deref());
        check.unchanged_id("course_id", &input.course_id, &existing.course_id, INSTEAD);
        check.unchanged_id("user_id", &input.user_id, &existing.user_id, INSTEAD);
        let role = check.one_of(
            "role",
            input.role.as_deref().unwrap_or(&existing.role),
            &TRAINER_ROLES,
        );
        check.finish()?;
        let row = CourseTrainer {
            role,
            rev: next_revision(conn)?,
            updated_at: now_ms(),
            ..existing
        };
        diesel::update(course_trainers::table.find(&row.id))
            .set(&row)
            .execute(conn)?;
        Ok(row)
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: CourseTrainer) -> Result<()> {
        let now = now_ms();
        tombstone!(conn, course_trainers, &existing.id, now)?;
        // Sessions of the course no longer name a trainer who is not assigned to it.
        Sessions::clear_trainer(conn, &existing.course_id, &existing.user_id, now)
    }
}

// Reads for the sync feed

impl CourseTrainers {
    /// The trainer assignments of the courses, removed ones included.
    pub fn ids_of_courses(conn: &mut DbConn, courses: &[String]) -> Result<Vec<String>> {
        Ok(course_trainers::table
            .filter(course_trainers::course_id.eq_any(courses))
            .select(course_trainers::id)
            .load(conn)?)
    }
}

// Reads for who sees what

impl CourseTrainers {
    /// The live courses a trainer is assigned to (what they see, `access::visible_courses`);
    /// joins `courses` for whether the course is live.
    pub fn live_courses_of_trainer(conn: &mut DbConn, user_id: &str) -> Result<Vec<String>> {
        Ok(course_trainers::table
            .inner_join(courses::table)
            .filter(course_trainers::user_id.eq(user_id))
            .filter(course_trainers::deleted_at.is_null())
            .filter(courses::deleted_at.is_null())
            .select(course_trainers::course_id)
            .load(conn)?)
    }

    /// Those of the courses a trainer is (still) assigned to (the one writer's rules).
    pub fn assigned_among(
        conn: &mut DbConn,
        user_id: &str,
        courses: &[String],
    ) -> Result<Vec<String>> {
        Ok(course_trainers::table
            .filter(course_trainers::user_id.eq(user_id))
            .filter(course_trainers::course_id.eq_any(courses))
            .filter(course_trainers::deleted_at.is_null())
            .select(course_trainers::course_id)
            .load(conn)?)
    }

    /// Whether a trainer is (still) assigned to a course.
    pub fn is_assigned(conn: &mut DbConn, user_id: &str, course_id: &str) -> Result<bool> {
        Ok(!Self::assigned_among(conn, user_id, &[course_id.to_owned()])?.is_empty())
    }
}
