//! Who is asking and what they may see. Admins see everything; an organiser sees and plans what
//! belongs to their unit's subtree (its courses, the people of its units, the accounts of those
//! people); a trainer sees the courses they are assigned to (and what belongs to those); a trainee
//! sees the courses they are enrolled in and not withdrawn from (with their sessions and
//! materials), and their own enrollments and attendance records, of every course, as their
//! history. Objects outside that scope are reported as not found.
//!
//! What a caller may plan and administer is one value, [`Manages`], derived once per request
//! when the caller is authenticated (`Caller::manages`): everything (a provincial admin), a
//! subtree of units (an organiser), or nothing (trainers and trainees). Whose records the sync
//! feed sends is one value too, [`Reach`] (`Reach::of` the caller), on which every synced
//! collection's filter matches.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::courses::Courses;
use super::enrollments::Enrollments;
use super::trainers::CourseTrainers;
use crate::db::DbConn;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    /// Plans the training of one unit and the units below it (`users.unit_id`).
    Organiser,
    Trainer,
    Trainee,
}

impl Role {
    pub const ALL: [&'static str; 4] = ["admin", "organiser", "trainer", "trainee"];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Organiser => "organiser",
            Role::Trainer => "trainer",
            Role::Trainee => "trainee",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "organiser" => Some(Role::Organiser),
            "trainer" => Some(Role::Trainer),
            "trainee" => Some(Role::Trainee),
            _ => None,
        }
    }

    /// Whether an organiser may give this role and manage accounts holding it: the accounts of
    /// their subtree's people, never staff (admins, organisers).
    pub fn managed_by_organisers(self) -> bool {
        match self {
            Role::Trainer | Role::Trainee => true,
            Role::Admin | Role::Organiser => false,
        }
    }
}

/// What a caller may plan and administer, derived once per request by [`Manages::derive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manages {
    /// A provincial admin: every unit, every course (also those naming no organising unit).
    Everything,
    /// An organiser: the units of their subtree (their unit, every unit below it and every unit
    /// merged into one of those). A course without an organising unit is not in any subtree.
    Subtree(BTreeSet<String>),
    /// Trainers and trainees manage nothing.
    Nothing,
}

impl Manages {
    /// What an account of `role` (an organiser's of `unit_id`) manages, read from the unit tree
    /// as it is now.
    pub fn derive(conn: &mut DbConn, role: Role, unit_id: Option<&str>) -> Result<Manages> {
        Ok(match role {
            Role::Admin => Manages::Everything,
            Role::Organiser => match unit_id {
                Some(unit) => Manages::Subtree(super::units::Units::subtree(conn, unit)?),
                // An organiser's account always names a unit (checked where accounts are
                // written); without one it manages nothing rather than everything.
                None => Manages::Nothing,
            },
            Role::Trainer | Role::Trainee => Manages::Nothing,
        })
    }

    /// Whether something of `unit_id` (None: of no unit) is within what the caller manages.
    pub fn covers(&self, unit_id: Option<&str>) -> bool {
        match (self, unit_id) {
            (Manages::Everything, _) => true,
            (Manages::Subtree(units), Some(unit)) => units.contains(unit),
            (Manages::Subtree(_), None) | (Manages::Nothing, _) => false,
        }
    }

    /// The units managed, or `None` for every unit.
    pub fn units(&self) -> Option<Vec<String>> {
        match self {
            Manages::Everything => None,
            Manages::Subtree(units) => Some(units.iter().cloned().collect()),
            Manages::Nothing => Some(Vec::new()),
        }
    }

    /// Fails with 403 `forbidden` unless the caller manages something (an admin or an
    /// organiser); what they may then touch is checked object by object.
    pub fn require_some(&self) -> Result<()> {
        match self {
            Manages::Everything | Manages::Subtree(_) => Ok(()),
            Manages::Nothing => Err(Error::forbidden(
                "only administrators and organisers may do this",
            )),
        }
    }

    /// Fails with 403 `forbidden` unless the caller is a provincial admin: the unit tree, its
    /// reorganisation and the audit trail are the province's.
    pub fn require_everything(&self) -> Result<()> {
        match self {
            Manages::Everything => Ok(()),
            Manages::Subtree(_) | Manages::Nothing => {
                Err(Error::forbidden("only administrators may do this"))
            }
        }
    }

    /// Fails with 422 (`field`: `outside_your_unit`) when a written value names a unit outside
    /// what the caller manages (or no unit, for an organiser); 403 for a caller managing
    /// nothing.
    pub fn require_unit(&self, field: &str, unit_id: Option<&str>) -> Result<()> {
        self.require_some()?;
        if self.covers(unit_id) {
            Ok(())
        } else {
            Err(Error::invalid_field(
                field,
                OUTSIDE_YOUR_UNIT,
                "must be your unit or a unit below it",
            ))
        }
    }
}

/// The code of a write that names a unit, person or account outside an organiser's subtree.
pub const OUTSIDE_YOUR_UNIT: &str = "outside_your_unit";

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
    /// An organiser's unit (`users.unit_id`); `None` for the other roles.
    pub unit_id: Option<String>,
    /// What the caller may plan and administer, derived with the caller ([`Manages::derive`]).
    pub manages: Manages,
}

impl Caller {
    /// A cheap first refusal, from the role alone, before costly work (hashing a password):
    /// 403 `forbidden` unless the caller is an admin or an organiser. What they may then touch
    /// is decided by `manages`.
    pub fn require_manager(&self) -> Result<()> {
        match self.role {
            Role::Admin | Role::Organiser => Ok(()),
            Role::Trainer | Role::Trainee => Err(Error::forbidden(
                "only administrators and organisers may do this",
            )),
        }
    }
}

/// The courses a caller may see, or `None` when they may see every course.
pub fn visible_courses(conn: &mut DbConn, caller: &Caller) -> Result<Option<Vec<String>>> {
    let ids = match caller.role {
        Role::Admin => return Ok(None),
        // The courses organised by a unit of the subtree; a course naming no unit is the
        // province's (admins only).
        Role::Organiser => match caller.manages.units() {
            None => return Ok(None),
            Some(units) => Courses::live_ids_organised_by(conn, units)?,
        },
        Role::Trainer => CourseTrainers::live_courses_of_trainer(conn, &caller.user_id)?,
        // A withdrawn trainee no longer sees the course: its sessions, materials and the
        // records kept of them leave the trainee's devices with the next pull.
        Role::Trainee => match &caller.person_id {
            Some(person) => Enrollments::live_courses_followed_by(conn, person)?,
            None => Vec::new(),
        },
    };
    Ok(Some(ids))
}

/// Whose records a caller's devices receive through the sync feed, within the courses the feed
/// covers (those the caller sees, `visible_courses`, or those being backfilled): derived from the
/// caller by [`Reach::of`]. The feed's filter of every collection, its backfill and the
/// deletions it sends when courses leave a device's scope match on it, and so does the one
/// writer, which reads the courses and rosters of course staff for its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// An administrator: every record, the unit tree and everyone's person record with it.
    Everything,
    /// Course staff: every record of the courses, who trains them, and the people enrolled in
    /// them.
    CourseStaff(Staff),
    /// A trainee: the courses they follow with their sessions and materials, and the unit tree;
    /// of the records about people (a person, enrollments, attendance) their own alone, of
    /// `person` (none without a person record); no trainer assignments.
    OwnRecords(Option<String>),
}

/// Which course staff: the one writer's rules tell them apart (an organiser changes the records
/// of the courses of their subtree, a trainer those of the courses assigned to them); the feed
/// does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staff {
    Organiser,
    Trainer,
}

impl Reach {
    /// What the sync feed sends `caller`.
    pub fn of(caller: &Caller) -> Reach {
        match caller.role {
            Role::Admin => Reach::Everything,
            Role::Organiser => Reach::CourseStaff(Staff::Organiser),
            Role::Trainer => Reach::CourseStaff(Staff::Trainer),
            Role::Trainee => Reach::OwnRecords(caller.person_id.clone()),
        }
    }
}

/// Whose enrollments and attendance records a caller reads through the API (lists and single
/// reads alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonalRecords {
    /// An administrator: everyone's.
    Everyone,
    /// A trainer: those of the courses they are assigned to; an organiser: those of the courses
    /// of their subtree.
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
        Role::Organiser | Role::Trainer => {
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

/// For a write that names a course (a session's, a material's): 422 `unknown_course` when the
/// caller cannot see it, the answer given when no course has that id. A malformed id is left to
/// the record's own checks.
pub fn ensure_named_course_visible(
    conn: &mut DbConn,
    caller: &Caller,
    raw_course_id: &str,
) -> Result<()> {
    let Some(course_id) = super::values::parse_id(raw_course_id) else {
        return Ok(());
    };
    match visible_courses(conn, caller)? {
        Some(ids) if !ids.contains(&course_id) => Err(Error::invalid_field(
            "course_id",
            "unknown_course",
            "no such course",
        )),
        _ => Ok(()),
    }
}

/// Fails unless the caller may take the roll of a course and add people to it: an admin, an
/// organiser of its unit, or a trainer assigned to it (the only courses they see). A trainee is
/// refused (403); a course the caller cannot see at all is not found.
pub fn ensure_may_take_roll(conn: &mut DbConn, caller: &Caller, course_id: &str) -> Result<()> {
    ensure_course_visible(conn, caller, course_id, "course")?;
    match caller.role {
        Role::Admin | Role::Organiser | Role::Trainer => Ok(()),
        Role::Trainee => Err(Error::forbidden(
            "only the course's trainers and administrators may do this",
        )),
    }
}

// Who reads what in the reports

/// Whose records of one course a caller reads in the course's report: not found unless the
/// caller sees the course; then everyone's in it for its staff (administrators, the organisers
/// of its unit, its trainers), a trainee's own.
pub fn records_of_course(
    conn: &mut DbConn,
    caller: &Caller,
    course_id: &str,
    what: &'static str,
) -> Result<PersonalRecords> {
    ensure_course_visible(conn, caller, course_id, what)?;
    Ok(match caller.role {
        Role::Admin => PersonalRecords::Everyone,
        Role::Organiser | Role::Trainer => PersonalRecords::OfCourses(vec![course_id.to_owned()]),
        Role::Trainee => PersonalRecords::Own(caller.person_id.clone()),
    })
}

/// The courses of a trainer's activity a caller reads (the trainer report): those the trainer
/// is assigned to that the caller sees too; `None` when the caller may not read the trainer's
/// activity at all. Administrators read any trainer's, an organiser those whose accounts they
/// manage (the people of their subtree), a trainer their own, a trainee none.
pub fn trainer_courses_seen_by(
    conn: &mut DbConn,
    caller: &Caller,
    trainer_id: &str,
) -> Result<Option<Vec<String>>> {
    let allowed = match caller.role {
        Role::Admin => true,
        Role::Organiser => {
            super::users::Users::find_managed(conn, &caller.manages, trainer_id).is_ok()
        }
        Role::Trainer => caller.user_id == trainer_id,
        Role::Trainee => false,
    };
    if !allowed {
        return Ok(None);
    }
    let seen = visible_courses(conn, caller)?;
    Ok(Some(
        CourseTrainers::live_courses_of_trainer(conn, trainer_id)?
            .into_iter()
            .filter(|course| seen.as_ref().is_none_or(|ids| ids.contains(course)))
            .collect(),
    ))
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
    fn the_feed_reaches_everything_course_staffs_records_or_a_trainees_own() {
        let caller = |role, person_id: Option<&str>| Caller {
            user_id: "u1".into(),
            device_id: "d1".into(),
            role,
            person_id: person_id.map(str::to_owned),
            address: None,
            unit_id: None,
            manages: Manages::Nothing,
        };
        assert_eq!(Reach::of(&caller(Role::Admin, None)), Reach::Everything);
        assert_eq!(
            Reach::of(&caller(Role::Organiser, None)),
            Reach::CourseStaff(Staff::Organiser)
        );
        assert_eq!(
            Reach::of(&caller(Role::Trainer, Some("p1"))),
            Reach::CourseStaff(Staff::Trainer),
            "a trainer's own person record does not narrow what they see"
        );
        assert_eq!(
            Reach::of(&caller(Role::Trainee, Some("p1"))),
            Reach::OwnRecords(Some("p1".into()))
        );
        assert_eq!(
            Reach::of(&caller(Role::Trainee, None)),
            Reach::OwnRecords(None)
        );
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
    fn managing_covers_everything_a_subtree_or_nothing() {
        let subtree = Manages::Subtree(BTreeSet::from(["ward".to_owned()]));
        assert!(Manages::Everything.covers(None));
        assert!(subtree.covers(Some("ward")));
        assert!(!subtree.covers(Some("other")));
        assert!(
            !subtree.covers(None),
            "a course of no unit is the province's"
        );
        assert!(!Manages::Nothing.covers(Some("ward")));
        assert_eq!(
            subtree
                .require_unit("unit_id", Some("other"))
                .unwrap_err()
                .code(),
            "validation_failed"
        );
        assert_eq!(
            Manages::Nothing.require_some().unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(
            subtree.require_everything().unwrap_err().code(),
            "forbidden"
        );
        assert!(subtree.require_some().is_ok());
        assert_eq!(Manages::Nothing.units(), Some(Vec::new()));
        assert_eq!(Manages::Everything.units(), None);
    }
}
