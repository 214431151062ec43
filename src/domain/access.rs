//! Who is asking and what they may see. Admins see everything; a trainer sees the courses they
//! are assigned to (and what belongs to those); a trainee sees the courses they are enrolled in
//! and not withdrawn from (with their sessions and materials), and their own enrollments and
//! attendance records, of every course, as their history. Objects outside that scope are
//! reported as not found.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConn;
use crate::db::schema::{course_trainers, courses, enrollments};
use crate::error::{Error, Result};

/// The enrollment status of a trainee who left a course.
const WITHDRAWN: &str = "withdrawn";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Trainer,
    Trainee,
}

impl Role {
    pub const ALL: [&'static str; 3] = ["admin", "trainer", "trainee"];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Trainer => "trainer",
            Role::Trainee => "trainee",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "trainer" => Some(Role::Trainer),
            "trainee" => Some(Role::Trainee),
            _ => None,
        }
    }
}

/// The authenticated identity behind a request, taken from the access token and checked against
/// the database on every request (never from the request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub device_id: String,
    pub role: Role,
    pub person_id: Option<String>,
    /// The client address the request came from (see `api::extractors::client_address`), for
    /// the audit trail; `None` outside a request (the command line, the demo loader).
    pub address: Option<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::forbidden("only administrators may do this"))
        }
    }
}

/// The courses a caller may see, or `None` when they may see every course.
pub fn visible_courses(conn: &mut DbConn, caller: &Caller) -> Result<Option<Vec<String>>> {
    let ids = match caller.role {
        Role::Admin => return Ok(None),
        Role::Trainer => course_trainers::table
            .inner_join(courses::table)
            .filter(course_trainers::user_id.eq(&caller.user_id))
            .filter(course_trainers::deleted_at.is_null())
            .filter(courses::deleted_at.is_null())
            .select(course_trainers::course_id)
            .load::<String>(conn)?,
        // A withdrawn trainee no longer sees the course: its sessions, materials and the
        // records kept of them leave the trainee's devices with the next pull.
        Role::Trainee => match &caller.person_id {
            Some(person) => enrollments::table
                .inner_join(courses::table)
                .filter(enrollments::person_id.eq(person))
                .filter(enrollments::deleted_at.is_null())
                .filter(enrollments::status.ne(WITHDRAWN))
                .filter(courses::deleted_at.is_null())
                .select(enrollments::course_id)
                .load::<String>(conn)?,
            None => Vec::new(),
        },
    };
    Ok(Some(ids))
}

/// Whose enrollments and attendance records a caller reads through the API (lists and single
/// reads alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonalRecords {
    /// An administrator: everyone's.
    Everyone,
    /// A trainer: those of the courses they are assigned to.
    OfCourses(Vec<String>),
    /// A trainee: their own (none without a person record), in every course they were enrolled
    /// in. A withdrawal takes the course, its sessions and its materials out of sight, not what
    /// was recorded of the trainee: that stays their history. (Their devices hold only the
    /// courses they still follow: a pull carries the records of visible courses.)
    Own(Option<String>),
}

impl PersonalRecords {
    /// Whether a record of `person_id` in `course_id` is in scope.
    pub fn covers(&self, course_id: &str, person_id: &str) -> bool {
        match self {
            PersonalRecords::Everyone => true,
            PersonalRecords::OfCourses(courses) => courses.iter().any(|c| c == course_id),
            PersonalRecords::Own(person) => person.as_deref() == Some(person_id),
        }
    }
}

/// The enrollments and attendance records a caller may read.
pub fn personal_records(conn: &mut DbConn, caller: &Caller) -> Result<PersonalRecords> {
    Ok(match caller.role {
        Role::Admin => PersonalRecords::Everyone,
        Role::Trainer => {
            PersonalRecords::OfCourses(visible_courses(conn, caller)?.unwrap_or_default())
        }
        Role::Trainee => PersonalRecords::Own(caller.person_id.clone()),
    })
}

/// Fails with not-found unless the caller may see the course.
pub fn ensure_course_visible(
    conn: &mut DbConn,
    caller: &Caller,
    course_id: &str,
    what: &'static str,
) -> Result<()> {
    match visible_courses(conn, caller)? {
        Some(ids) if !ids.iter().any(|id| id == course_id) => Err(Error::NotFound { what }),
        _ => Ok(()),
    }
}

/// Whether a trainer is (still) assigned to a course.
pub fn is_assigned_trainer(conn: &mut DbConn, user_id: &str, course_id: &str) -> Result<bool> {
    let count = course_trainers::table
        .filter(course_trainers::user_id.eq(user_id))
        .filter(course_trainers::course_id.eq(course_id))
        .filter(course_trainers::deleted_at.is_null())
        .count()
        .get_result::<i64>(conn)?;
    Ok(count > 0)
}

/// Fails unless the caller may take the roll of a course and add people to it: an admin, or a
/// trainer assigned to it (the only courses a trainer sees). A trainee is refused (403); a
/// course the caller cannot see at all is not found.
pub fn ensure_may_take_roll(conn: &mut DbConn, caller: &Caller, course_id: &str) -> Result<()> {
    ensure_course_visible(conn, caller, course_id, "course")?;
    match caller.role {
        Role::Admin | Role::Trainer => Ok(()),
        Role::Trainee => Err(Error::forbidden(
            "only the course's trainers and administrators may do this",
        )),
    }
}

/// Whether the caller manages a unit: may read and write its training plans and read their
/// progress. Administrators manage every unit.
pub fn manages_unit(_conn: &mut DbConn, caller: &Caller, _unit_id: &str) -> Result<bool> {
    Ok(caller.is_admin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for name in Role::ALL {
            assert_eq!(Role::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn personal_records_cover_everyone_the_courses_or_the_own_person() {
        assert!(PersonalRecords::Everyone.covers("c1", "p1"));
        let trainer = PersonalRecords::OfCourses(vec!["c1".into()]);
        assert!(trainer.covers("c1", "p9"));
        assert!(!trainer.covers("c2", "p1"));
        let trainee = PersonalRecords::Own(Some("p1".into()));
        assert!(
            trainee.covers("c2", "p1"),
            "whatever the course: their history"
        );
        assert!(!trainee.covers("c1", "p2"));
        assert!(!PersonalRecords::Own(None).covers("c1", ""));
    }

    #[test]
    fn only_admins_pass_require_admin() {
        let mut caller = Caller {
            user_id: "u".into(),
            device_id: "d".into(),
            role: Role::Trainer,
            person_id: None,
            address: None,
        };
        assert_eq!(caller.require_admin().unwrap_err().code(), "forbidden");
        caller.role = Role::Admin;
        assert!(caller.require_admin().is_ok());
    }
}
