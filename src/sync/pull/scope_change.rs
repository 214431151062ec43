//! What a change of scope brings: the backfill of courses that came into scope, deletions for
//! those that left, and the people a trainer gains and loses with enrollments.

use std::collections::BTreeSet;

use super::feed::feed;
use super::scope::{Part, Scope};
use super::{Change, Collection, Record, Since, changes, gone};
use crate::db::DbConn;
use crate::domain::access::Reach;
use crate::domain::attendance::AttendanceRecords;
use crate::domain::enrollments::{EnrolledPerson, Enrollments};
use crate::domain::materials::Materials;
use crate::domain::people::People;
use crate::domain::sessions::Sessions;
use crate::domain::trainers::CourseTrainers;
use crate::error::Result;
use crate::sync::cursor::{PendingBackfill, PendingRemoval, RemovalPosition};

/// Follows a change of the caller's courses since `since` (`now_visible` now): a pending removal
/// for the courses that left, a pending backfill for those that came. A course that left while
/// being backfilled is dropped from its backfill, and one that came back while its deletions
/// were being sent from its removal (its backfill sends it whole again).
pub(super) fn follow_scope_change(
    since: &Since,
    now_visible: &[String],
    pending: &mut Vec<PendingBackfill>,
    removals: &mut Vec<PendingRemoval>,
) {
    let before: BTreeSet<&String> = since.courses.iter().flatten().collect();
    let current: BTreeSet<&String> = now_visible.iter().collect();
    let removed: Vec<String> = before.difference(&current).map(|s| (*s).clone()).collect();
    let added: Vec<String> = current.difference(&before).map(|s| (*s).clone()).collect();
    // A course that left while being backfilled is not sent further: its removal covers what
    // was.
    for backfill in pending.iter_mut() {
        backfill.courses.retain(|course| current.contains(course));
    }
    pending.retain(|backfill| !backfill.courses.is_empty());
    for removal in removals.iter_mut() {
        removal.courses.retain(|course| !current.contains(course));
    }
    removals.retain(|removal| !removal.courses.is_empty());
    if !removed.is_empty() {
        removals.push(PendingRemoval {
            courses: removed,
            after: None,
        });
    }
    if !added.is_empty() {
        pending.push(PendingBackfill {
            courses: added,
            after: 0,
        });
    }
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
    reach: &Reach,
    pending: &PendingBackfill,
    upto: i64,
    budget: Option<i64>,
) -> Result<BackfillPart> {
    let scope = Scope::new(
        conn,
        reach,
        Some(&pending.courses),
        pending.after,
        upto,
        Part::Backfill,
    )?;
    let page = feed(conn, &scope, budget)?;
    let records = page.changes;
    let counted = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let mut changes = match reach {
        Reach::CourseStaff(_) => {
            people_of_new_enrollments(conn, &records, page.after, &pending.courses)?
        }
        Reach::Everything | Reach::OwnRecords(_) => Vec::with_capacity(records.len()),
    };
    changes.extend(records);
    Ok(BackfillPart {
        changes,
        counted,
        more_from: page.more_from,
    })
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
    Ok(changes(People::not_received_with_courses(
        conn, &persons, visible, after,
    )?))
}

/// A trainer sees a person through an enrollment in one of their courses: when the page removes
/// the last such enrollment, it also tells the device to drop the person.
pub(super) fn people_no_longer_enrolled(
    conn: &mut DbConn,
    page: &[Change],
    visible: &[String],
) -> Result<Vec<Change>> {
    let removed: Vec<String> = page
        .iter()
        .filter(|c| c.collection == Collection::Enrollments && c.deleted)
        .map(|c| c.id.clone())
        .collect();
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    let persons = Enrollments::people_of(conn, &removed)?;
    let kept: BTreeSet<String> = Enrollments::people_of_courses(conn, visible)?
        .into_iter()
        .collect();
    let gone_people: BTreeSet<String> = persons.into_iter().filter(|p| !kept.contains(p)).collect();
    Ok(gone_people
        .into_iter()
        .map(|id| gone(Collection::People, id))
        .collect())
}

/// A part of a removal: its deletions, and the last one sent when more follow.
pub(super) struct RemovalPart {
    pub(super) changes: Vec<Change>,
    pub(super) more_after: Option<RemovalPosition>,
}

/// The next deletions (at most `budget`; all without) of a removal: for everything a device
/// held only because of the removal's courses, collection by collection in the list's order,
/// by id, after the removal's position. Each collection says what of it came with a course; the
/// ids are read anew for each page (a course's records keep their course, so the order holds).
pub(super) fn scope_deletions(
    conn: &mut DbConn,
    reach: &Reach,
    removal: &PendingRemoval,
    still_visible: &[String],
    budget: Option<i64>,
) -> Result<RemovalPart> {
    let removed = &removal.courses;
    let sessions = Sessions::ids_of_courses(conn, removed)?;
    let enrollments: Vec<EnrolledPerson> = match reach {
        Reach::Everything | Reach::CourseStaff(_) => Enrollments::of_courses(conn, removed)?,
        Reach::OwnRecords(Some(person)) => {
            Enrollments::of_person_in_courses(conn, person, removed)?
        }
        Reach::OwnRecords(None) => Vec::new(),
    };
    let budget = budget.map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX));
    let mut changes = Vec::new();
    for collection in Collection::ALL {
        if removal
            .after
            .as_ref()
            .is_some_and(|after| collection.index() < after.collection.index())
        {
            continue;
        }
        let mut ids: Vec<String> = match collection {
            // The unit tree does not come with a course.
            Collection::Units => Vec::new(),
            // Course staff see a person through an enrollment in one of their courses; a
            // trainee's own record does not come with a course.
            Collection::People => match reach {
                Reach::CourseStaff(_) => {
                    let kept: BTreeSet<String> =
                        Enrollments::people_of_courses(conn, still_visible)?
                            .into_iter()
                            .collect();
                    let dropped: BTreeSet<&String> = enrollments
                        .iter()
                        .map(|enrollment| &enrollment.person_id)
                        .filter(|person| !kept.contains(*person))
                        .collect();
                    dropped.into_iter().cloned().collect()
                }
                Reach::Everything | Reach::OwnRecords(_) => Vec::new(),
            },
            Collection::Courses => removed.to_vec(),
            Collection::CourseTrainers => match reach {
                Reach::Everything | Reach::CourseStaff(_) => {
                    CourseTrainers::ids_of_courses(conn, removed)?
                }
                Reach::OwnRecords(_) => Vec::new(),
            },
            Collection::Sessions => sessions.clone(),
            Collection::Enrollments => enrollments
                .iter()
                .map(|enrollment| enrollment.id.clone())
                .collect(),
            Collection::Attendance => match reach {
                Reach::Everything | Reach::CourseStaff(_) => {
                    AttendanceRecords::ids_in_sessions(conn, &sessions)?
                }
                Reach::OwnRecords(Some(person)) => {
                    AttendanceRecords::ids_of_person_in_sessions(conn, person, &sessions)?
                }
                Reach::OwnRecords(None) => Vec::new(),
            },
            Collection::Materials => Materials::ids_of_courses(conn, removed)?,
        };
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            if removal
                .after
                .as_ref()
                .is_some_and(|after| (collection.index(), id.as_str()) <= after.key())
            {
                continue;
            }
            if changes.len() == budget {
                let last = changes.last().map(|last: &Change| RemovalPosition {
                    collection: last.collection,
                    id: last.id.clone(),
                });
                return Ok(RemovalPart {
                    changes,
                    more_after: last,
                });
            }
            changes.push(gone(collection, id));
        }
    }
    Ok(RemovalPart {
        changes,
        more_after: None,
    })
}
