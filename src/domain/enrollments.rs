//! Enrollments: a person in a course. One record per (course, person); enrolling again after a
//! removal revives the earlier record.

use diesel::dsl;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::personal_records;
use super::courses::Courses;
use super::values::{Checker, resolve_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, Role, SortRequest, find_live, personal, sorted_page,
};
use crate::db::schema::{courses, enrollments};
use crate::db::{Backend, DbConn};
use crate::error::{Error, Result};

pub const STATUSES: [&str; 3] = ["enrolled", WITHDRAWN, "completed"];
/// The status of an enrollment that ended: the person left the course.
const WITHDRAWN: &str = "withdrawn";
const SORTS: [&str; 3] = ["created_at", "updated_at", "status"];

/// The rule for an enrollment's status: one of `STATUSES`, `enrolled` when not given.
pub fn check_status(status: Option<&str>) -> Result<String> {
    let mut check = Checker::new();
    let status = check.one_of("status", status.unwrap_or("enrolled"), &STATUSES);
    check.finish()?;
    Ok(status)
}

/// Why a change to an enrollment is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentRefusal {
    /// Trainees enroll nobody.
    Trainee,
    /// A trainer changes the enrollments of the courses they are assigned to only.
    NotAssigned,
    /// A trainer enrolls only people of the course's roster (`people::Roster`).
    NotOnRoster,
}

/// What a change does to an enrollment, for `may_change_enrollment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentChange {
    /// The caller is assigned to the enrollment's course.
    pub assigned: bool,
    /// The change makes someone enrolled who was not (a new enrollment, or one removed or
    /// withdrawn made live again), rather than changing or ending an enrollment.
    pub enrolls: bool,
    /// The course's roster holds the person.
    pub on_roster: bool,
}

/// The rule for who changes enrollments, through every path (a push, the admin API, a roster
/// import, the CLI): administrators any; an organiser, like a trainer, those of the courses of
/// their subtree (`assigned`), enrolling the people of the course's roster; a trainer assigned to the course changes its
/// enrollments (a status, a removal) and enrolls the people of its roster, a walk-in found with
/// `GET /courses/{id}/roster` (so that a trainer cannot enroll anyone at all and then read their
/// contact details); a trainee none.
pub fn may_change_enrollment(
    role: Role,
    change: EnrollmentChange,
) -> std::result::Result<(), EnrollmentRefusal> {
    match role {
        Role::Admin => Ok(()),
        Role::Trainee => Err(EnrollmentRefusal::Trainee),
        Role::Organiser | Role::Trainer if !change.assigned => Err(EnrollmentRefusal::NotAssigned),
        Role::Organiser | Role::Trainer if change.enrolls && !change.on_roster => {
            Err(EnrollmentRefusal::NotOnRoster)
        }
        Role::Organiser | Role::Trainer => Ok(()),
    }
}

/// The rule for whose attendance may be recorded: a person whose enrollment in the course
/// exists, is not removed and is not withdrawn.
pub fn counts_as_enrolled(status: &str, deleted: bool) -> bool {
    !deleted && status != WITHDRAWN
}

/// An enrollment as the API shows it, and as stored but for its field stamps: the row the one
/// writer reads and writes (`sync::records`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = enrollments, treat_none_as_default_value = false)]
pub struct Enrollment {
    pub id: String,
    pub course_id: String,
    pub person_id: String,
    pub status: String,
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
pub struct EnrollmentInput {
    pub id: Option<String>,
    pub course_id: String,
    pub person_id: String,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentFilter {
    pub course_id: Option<String>,
    pub person_id: Option<String>,
    pub status: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub struct Enrollments;

impl Enrollments {
    /// The ids of a course's live enrollments (the course is being deleted).
    pub fn live_ids_of_course(conn: &mut DbConn, course_id: &str) -> Result<Vec<String>> {
        Ok(enrollments::table
            .filter(enrollments::course_id.eq(course_id))
            .filter(enrollments::deleted_at.is_null())
            .order(enrollments::id)
            .select(enrollments::id)
            .load(conn)?)
    }

    /// How many live enrollments a person has (a person with any is not deleted).
    pub fn count_of_person(conn: &mut DbConn, person_id: &str) -> Result<i64> {
        Ok(enrollments::table
            .filter(enrollments::person_id.eq(person_id))
            .filter(enrollments::deleted_at.is_null())
            .count()
            .get_result(conn)?)
    }

    /// Whether a person has a live enrollment (whatever its status) in one of the courses.
    pub fn is_enrolled_in_any(
        conn: &mut DbConn,
        person_id: &str,
        course_ids: &[String],
    ) -> Result<bool> {
        let count: i64 = enrollments::table
            .filter(enrollments::person_id.eq(person_id))
            .filter(enrollments::course_id.eq_any(course_ids))
            .filter(enrollments::deleted_at.is_null())
            .count()
            .get_result(conn)?;
        Ok(count > 0)
    }

    /// The people with a live enrollment (whatever its status) in one of the courses, as a
    /// subquery of a query of people (one statement).
    #[dsl::auto_type(no_type_alias)]
    pub fn people_of_courses_subquery(course_ids: Vec<String>) -> _ {
        enrollments::table
            .filter(enrollments::course_id.eq_any(course_ids))
            .filter(enrollments::deleted_at.is_null())
            .select(enrollments::person_id)
    }

    /// The people with a live enrollment (whatever its status) in one of the courses written at
    /// revision `upto` or before, as a subquery of a query of people (one statement): who a
    /// device that pulled those courses' feed up to `upto` received with them.
    #[dsl::auto_type(no_type_alias)]
    pub fn people_of_courses_upto_subquery(course_ids: Vec<String>, upto: i64) -> _ {
        enrollments::table
            .filter(enrollments::course_id.eq_any(course_ids))
            .filter(enrollments::deleted_at.is_null())
            .filter(enrollments::rev.le(upto))
            .select(enrollments::person_id)
    }

    /// The people following a course (a live enrollment, not withdrawn), as a subquery of a
    /// query of people (one statement).
    #[dsl::auto_type(no_type_alias)]
    pub fn people_following_subquery(course_id: String) -> _ {
        let withdrawn: &'static str = WITHDRAWN;
        enrollments::table
            .filter(enrollments::course_id.eq(course_id))
            .filter(enrollments::deleted_at.is_null())
            .filter(enrollments::status.ne(withdrawn))
            .select(enrollments::person_id)
    }

    /// The people with a live enrollment (whatever its status) in a course.
    pub fn person_ids_of_course(conn: &mut DbConn, course_id: &str) -> Result<Vec<String>> {
        Ok(enrollments::table
            .filter(enrollments::course_id.eq(course_id))
            .filter(enrollments::deleted_at.is_null())
            .select(enrollments::person_id)
            .load(conn)?)
    }
}

impl Resource for Enrollments {
    const WHAT: &'static str = "enrollment";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::Enrollments);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Enrollment;
    const EXISTS: &'static str = "already_enrolled";
    type Record = Enrollment;
    type Input = EnrollmentInput;
    type Filter = EnrollmentFilter;

    fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &EnrollmentFilter,
    ) -> Result<Paged<Enrollment>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "created_at", &SORTS)?;
        let mut filter_check = Checker::new();
        let course_id = filter_check.opt_id("course_id", filter.course_id.as_deref());
        let person_id = filter_check.opt_id("person_id", filter.person_id.as_deref());
        let status = filter_check.opt_one_of("status", filter.status.as_deref(), &STATUSES);
        filter_check.finish()?;
        let scope = personal_records(conn, caller)?;
        let query = || {
            let live = enrollments::table
                .filter(enrollments::deleted_at.is_null())
                .into_boxed::<Backend>();
            let mut query = personal!(live, &scope, enrollments::person_id, enrollments::course_id);
            if let Some(course) = &course_id {
                query = query.filter(enrollments::course_id.eq(course.clone()));
            }
            if let Some(person) = &person_id {
                query = query.filter(enrollments::person_id.eq(person.clone()));
            }
            if let Some(status) = &status {
                query = query.filter(enrollments::status.eq(status.clone()));
            }
            query
        };
        Ok(
            sorted_page!(conn, query, page, sort, enrollments::id, Enrollment, {
                "created_at" => [enrollments::created_at],
                "updated_at" => [enrollments::updated_at],
                "status" => [enrollments::status],
            }),
        )
    }

    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Enrollment> {
        let row = find_live!(conn, enrollments, Enrollment, id, Self::WHAT)?;
        if personal_records(conn, caller)?.covers(&row.course_id, &row.person_id) {
            Ok(row)
        } else {
            Err(Error::NotFound { what: Self::WHAT })
        }
    }

    /// Checks a new enrollment and returns it unwritten (see `Resource`): who may enroll, and
    /// whether the course and person exist, are the one writer's rules, as is the refusal of a
    /// pair already enrolled. Enrolling a person again after a removal revives the earlier
    /// enrollment under its own id (the writer finds it by its natural key).
    fn create(conn: &mut DbConn, caller: &Caller, input: EnrollmentInput) -> Result<Enrollment> {
        let mut check = Checker::new();
        let course_id = check.id("course_id", &input.course_id);
        let person_id = check.id("person_id", &input.person_id);
        let id = resolve_id(&mut check, None, input.id.as_deref());
        check.finish()?;
        let status = check_status(input.status.as_deref())?;
        // A course outside the caller's scope is answered as one that does not exist: the
        // answer must not tell a trainer which ids are other classes.
        Courses::find_visible(conn, caller, &course_id)
            .map_err(|_| Error::invalid_field("course_id", "unknown_course", "no such course"))?;
        Ok(Enrollment {
            id,
            course_id,
            person_id,
            status,
            rev: 0,
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        })
    }

    /// An enrollment the caller sees, whatever its revision: the one writer checks the expected
    /// revision (see `Resource`).
    fn find_to_change(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        _expected_rev: Option<i64>,
    ) -> Result<Enrollment> {
        Self::get(conn, caller, id)
    }

    /// Checks a new status (course and person identify the enrollment) and returns the
    /// enrollment unwritten (see `Resource`); the writer checks the expected revision.
    fn update_found(
        _conn: &mut DbConn,
        _caller: &Caller,
        existing: Enrollment,
        input: EnrollmentInput,
    ) -> Result<Enrollment> {
        const INSTEAD: &str = "remove the enrollment and create another";
        let mut check = Checker::new();
        resolve_id(&mut check, Some(&existing.id), input.id.as_deref());
        check.unchanged_id("course_id", &input.course_id, &existing.course_id, INSTEAD);
        check.unchanged_id("person_id", &input.person_id, &existing.person_id, INSTEAD);
        check.finish()?;
        let status = check_status(Some(input.status.as_deref().unwrap_or(&existing.status)))?;
        Ok(Enrollment { status, ..existing })
    }

    /// Nothing more to check: the one writer removes the enrollment (see `Resource`).
    fn delete_found(_conn: &mut DbConn, _caller: &Caller, _existing: Enrollment) -> Result<()> {
        Ok(())
    }
}

// Reads for the sync feed

/// An enrollment and the person it enrolls.
#[derive(Debug, Clone, Queryable)]
pub struct EnrolledPerson {
    pub id: String,
    pub person_id: String,
}

impl Enrollments {
    /// The stored enrollments among `ids`, removed ones included.
    pub fn by_ids(conn: &mut DbConn, ids: &[&str]) -> Result<Vec<Enrollment>> {
        Ok(enrollments::table
            .filter(enrollments::id.eq_any(ids))
            .select(Enrollment::as_select())
            .load(conn)?)
    }

    /// The people with a live enrollment in one of the courses, each once.
    pub fn people_of_courses(conn: &mut DbConn, courses: &[String]) -> Result<Vec<String>> {
        Ok(enrollments::table
            .filter(enrollments::course_id.eq_any(courses))
            .filter(enrollments::deleted_at.is_null())
            .select(enrollments::person_id)
            .distinct()
            .load(conn)?)
    }

    /// The people the enrollments `ids` enroll, removed enrollments included (one entry per
    /// enrollment found).
    pub fn people_of(conn: &mut DbConn, ids: &[String]) -> Result<Vec<String>> {
        Ok(enrollments::table
            .filter(enrollments::id.eq_any(ids))
            .select(enrollments::person_id)
            .load(conn)?)
    }

    /// The enrollments of the courses, removed ones included, with their people.
    pub fn of_courses(conn: &mut DbConn, courses: &[String]) -> Result<Vec<EnrolledPerson>> {
        Ok(enrollments::table
            .filter(enrollments::course_id.eq_any(courses))
            .select((enrollments::id, enrollments::person_id))
            .load(conn)?)
    }

    /// A person's enrollments in the courses, removed ones included.
    pub fn of_person_in_courses(
        conn: &mut DbConn,
        person_id: &str,
        courses: &[String],
    ) -> Result<Vec<EnrolledPerson>> {
        Ok(enrollments::table
            .filter(enrollments::course_id.eq_any(courses))
            .filter(enrollments::person_id.eq(person_id))
            .select((enrollments::id, enrollments::person_id))
            .load(conn)?)
    }

    /// Of `candidates`, the people with a live enrollment (in one of `courses`; None: in any
    /// course) written at revision `rev` or before, or created at `created_upto` or before (one
    /// entry per such enrollment).
    pub fn people_enrolled_by(
        conn: &mut DbConn,
        candidates: &[String],
        courses: Option<&[String]>,
        rev: i64,
        created_upto: i64,
    ) -> Result<Vec<String>> {
        let mut query = enrollments::table
            .filter(enrollments::person_id.eq_any(candidates))
            .filter(enrollments::deleted_at.is_null())
            .filter(
                enrollments::rev
                    .le(rev)
                    .or(enrollments::created_at.le(created_upto)),
            )
            .into_boxed::<Backend>();
        if let Some(courses) = courses {
            query = query.filter(enrollments::course_id.eq_any(courses.to_vec()));
        }
        Ok(query.select(enrollments::person_id).load(conn)?)
    }
}

// Reads for who sees what

impl Enrollments {
    /// The live courses a person follows (a live enrollment, not withdrawn): what a trainee
    /// sees (`access::visible_courses`); joins `courses` for whether the course is live.
    pub fn live_courses_followed_by(conn: &mut DbConn, person_id: &str) -> Result<Vec<String>> {
        Ok(enrollments::table
            .inner_join(courses::table)
            .filter(enrollments::person_id.eq(person_id))
            .filter(enrollments::deleted_at.is_null())
            .filter(enrollments::status.ne(WITHDRAWN))
            .filter(courses::deleted_at.is_null())
            .select(enrollments::course_id)
            .load(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(assigned: bool, enrolls: bool, on_roster: bool) -> EnrollmentChange {
        EnrollmentChange {
            assigned,
            enrolls,
            on_roster,
        }
    }

    #[test]
    fn administrators_change_any_enrollment() {
        for (assigned, enrolls, on_roster) in [(false, true, false), (true, true, true)] {
            assert_eq!(
                may_change_enrollment(Role::Admin, change(assigned, enrolls, on_roster)),
                Ok(())
            );
        }
    }

    #[test]
    fn a_trainer_enrolls_only_the_roster_of_their_own_courses() {
        let trainer = |c| may_change_enrollment(Role::Trainer, c);
        assert_eq!(trainer(change(true, true, true)), Ok(()));
        assert_eq!(
            trainer(change(true, true, false)),
            Err(EnrollmentRefusal::NotOnRoster)
        );
        // Withdrawing or removing someone enrolls nobody: the roster does not matter.
        assert_eq!(trainer(change(true, false, false)), Ok(()));
        assert_eq!(
            trainer(change(false, true, true)),
            Err(EnrollmentRefusal::NotAssigned)
        );
        assert_eq!(
            trainer(change(false, false, true)),
            Err(EnrollmentRefusal::NotAssigned)
        );
    }

    #[test]
    fn trainees_change_no_enrollment() {
        assert_eq!(
            may_change_enrollment(Role::Trainee, change(true, false, true)),
            Err(EnrollmentRefusal::Trainee)
        );
    }
}
