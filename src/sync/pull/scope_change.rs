//! What a change of scope brings: the backfill of courses that came into scope, deletions for
//! those that left, and the people a trainer gains and loses with enrollments.

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::feed::feed;
use super::scope::{Part, Scope};
use super::{Change, Collection, Record, Since, changes, gone};
use crate::db::schema::{attendance, course_trainers, enrollments, materials, people, sessions};
use crate::db::{Backend, DbConn};
use crate::domain::people::Person;
use crate::domain::{Caller, Role};
use crate::error::Result;
use crate::sync::cursor::PendingBackfill;

/// Follows a change of the caller's courses since `since` (`now_visible` now): deletions for the
/// courses that left, a pending backfill for those that came; a course that left while being
/// backfilled is dropped from its backfill.
pub(super) fn follow_scope_change(
    conn: &mut DbConn,
    caller: &Caller,
    since: &Since,
    now_visible: &[String],
    pending: &mut Vec<PendingBackfill>,
) -> Result<Vec<Change>> {
    let before: BTreeSet<&String> = since.courses.iter().flatten().collect();
    let current: BTreeSet<&String> = now_visible.iter().collect();
    let removed: Vec<String> = before.difference(&current).map(|s| (*s).clone()).collect();
    let added: Vec<String> = current.difference(&before).map(|s| (*s).clone()).collect();
    let removed_changes = if removed.is_empty() {
        Vec::new()
    } else {
        scope_deletions(conn, caller, &removed, now_visible)?
    };
    // A course that left while being backfilled is not sent further: the deletions above
    // cover what was.
    for backfill in pending.iter_mut() {
        backfill.courses.retain(|course| current.contains(course));
    }
    pending.retain(|backfill| !backfill.courses.is_empty());
    if !added.is_empty() {
        pending.push(PendingBackfill {
            courses: added,
            after: 0,
        });
    }
    Ok(removed_changes)
}

/// A part of a backfill: its changes, how many of them count against the page's limit (the
/// people they bring do not, as in the feed) and where the backfill goes on when more follow.
pub(super) struct BackfillPart {
    pub(super) changes: Vec<Change>,
    pub(super) counted: i64,
    pub(super) more_from: Option<i64>,
}

/// The next records (at most `budget`; all without) of a backfill: the live records of its
/// courses after its position up to `upto`, in revision order, as a first pull of those courses
/// alone would send them (a trainer's people with their first enrollment, once).
pub(super) fn backfill(
    conn: &mut DbConn,
    caller: &Caller,
    pending: &PendingBackfill,
    upto: i64,
    budget: Option<i64>,
) -> Result<BackfillPart> {
    let scope = Scope::new(
        conn,
        caller,
        Some(&pending.courses),
        pending.after,
        upto,
        Part::Backfill,
    )?;
    let (records, more_from) = feed(conn, &scope, budget)?;
    let counted = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let mut changes = Vec::with_capacity(records.len());
    if caller.role.pulls_as_course_staff() {
        changes = people_of_new_enrollments(conn, &records, pending.after, &pending.courses)?;
    }
    changes.extend(records);
    Ok(BackfillPart {
        changes,
        counted,
        more_from,
    })
}

/// People a trainer sees: those enrolled in the given courses.
fn enrolled_people(conn: &mut DbConn, courses: &[String]) -> Result<Vec<String>> {
    Ok(enrollments::table
        .filter(enrollments::course_id.eq_any(courses))
        .filter(enrollments::deleted_at.is_null())
        .select(enrollments::person_id)
        .distinct()
        .load(conn)?)
}

/// A person enrolled after the cursor may have an older record the device never received: it
/// comes with the page that carries the enrollment, ahead of it. Not when the person has another
/// enrollment in the trainer's courses up to the cursor: the device received the person with
/// that one (`Scope::people`), or with the backfill of its course.
pub(super) fn people_of_new_enrollments(
    conn: &mut DbConn,
    page: &[Change],
    after: i64,
    visible: &[String],
) -> Result<Vec<Change>> {
    let persons: Vec<String> = page
        .iter()
        .filter(|c| c.collection == Collection::Enrollments && !c.deleted)
        .filter_map(|c| match &c.data {
            Some(Record::Enrollments(enrollment)) => Some(enrollment.person_id.clone()),
            _ => None,
        })
        .collect();
    if persons.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Person> = people::table
        .filter(people::id.eq_any(persons))
        .filter(people::rev.le(after))
        .filter(people::deleted_at.is_null())
        .filter(
            people::id.ne_all(
                enrollments::table
                    .filter(enrollments::course_id.eq_any(visible))
                    .filter(enrollments::deleted_at.is_null())
                    .filter(enrollments::rev.le(after))
                    .select(enrollments::person_id),
            ),
        )
        .select(Person::as_select())
        .load(conn)?;
    Ok(changes(rows))
}

/// A trainer sees a person through an enrollment in one of their courses: when the page removes
/// the last such enrollment, it also tells the device to drop the person.
pub(super) fn people_no_longer_enrolled(
    conn: &mut DbConn,
    page: &[Change],
    visible: &[String],
) -> Result<Vec<Change>> {
    let removed: BTreeSet<String> = page
        .iter()
        .filter(|c| c.collection == Collection::Enrollments && c.deleted)
        .map(|c| c.id.clone())
        .collect();
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    let persons: Vec<String> = enrollments::table
        .filter(enrollments::id.eq_any(removed))
        .select(enrollments::person_id)
        .load(conn)?;
    let kept: BTreeSet<String> = enrolled_people(conn, visible)?.into_iter().collect();
    let gone_people: BTreeSet<String> = persons.into_iter().filter(|p| !kept.contains(p)).collect();
    Ok(gone_people
        .into_iter()
        .map(|id| gone(Collection::People, id))
        .collect())
}

/// Deletions for everything a device held only because of courses that left its scope.
fn scope_deletions(
    conn: &mut DbConn,
    caller: &Caller,
    removed: &[String],
    still_visible: &[String],
) -> Result<Vec<Change>> {
    let ids = removed.to_vec();
    let mut out: Vec<Change> = ids
        .iter()
        .map(|id| gone(Collection::Courses, id.clone()))
        .collect();
    let trainers: Vec<String> = if caller.role.sees_course_trainers() {
        course_trainers::table
            .filter(course_trainers::course_id.eq_any(ids.clone()))
            .select(course_trainers::id)
            .load(conn)?
    } else {
        Vec::new()
    };
    out.extend(
        trainers
            .into_iter()
            .map(|id| gone(Collection::CourseTrainers, id)),
    );
    let session_ids: Vec<String> = sessions::table
        .filter(sessions::course_id.eq_any(ids.clone()))
        .select(sessions::id)
        .load(conn)?;
    let attendance_query =
        attendance::table.filter(attendance::session_id.eq_any(session_ids.clone()));
    let attendance_ids: Vec<String> = match caller.role {
        Role::Trainee => attendance_query
            .filter(
                attendance::person_id
                    .nullable()
                    .eq(caller.person_id.clone()),
            )
            .select(attendance::id)
            .load(conn)?,
        _ => attendance_query.select(attendance::id).load(conn)?,
    };
    out.extend(
        session_ids
            .into_iter()
            .map(|id| gone(Collection::Sessions, id)),
    );
    out.extend(
        attendance_ids
            .into_iter()
            .map(|id| gone(Collection::Attendance, id)),
    );
    let materials: Vec<String> = materials::table
        .filter(materials::course_id.eq_any(ids.clone()))
        .select(materials::id)
        .load(conn)?;
    out.extend(
        materials
            .into_iter()
            .map(|id| gone(Collection::Materials, id)),
    );
    let mut enrollment_query = enrollments::table
        .filter(enrollments::course_id.eq_any(ids.clone()))
        .into_boxed::<Backend>();
    if caller.role == Role::Trainee {
        enrollment_query = enrollment_query.filter(
            enrollments::person_id
                .nullable()
                .eq(caller.person_id.clone()),
        );
    }
    let enrollments: Vec<(String, String)> = enrollment_query
        .select((enrollments::id, enrollments::person_id))
        .load(conn)?;
    if caller.role.pulls_as_course_staff() {
        let kept: BTreeSet<String> = enrolled_people(conn, still_visible)?.into_iter().collect();
        let dropped: BTreeSet<String> = enrollments
            .iter()
            .map(|(_, person)| person.clone())
            .filter(|p| !kept.contains(p))
            .collect();
        out.extend(dropped.into_iter().map(|id| gone(Collection::People, id)));
    }
    out.extend(
        enrollments
            .into_iter()
            .map(|(id, _)| gone(Collection::Enrollments, id)),
    );
    Ok(out)
}
