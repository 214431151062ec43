//! The one writer of synced records. Every write of an attendance record or an enrollment goes
//! through it, whatever its origin: a device's push (native or WatermelonDB), an administrator's
//! re-application of a quarantined mutation or resolution of a conflict, the admin API, a roster
//! import or the CLI (the last three as server-stamped changes).
//!
//! A unit of work runs in three phases:
//!
//! 1. **Read** ([`Writer::read`]): everything the changes need, set-wise, in a number of
//!    statements that does not grow with the batch: the records by id and by natural key, the
//!    aliases, the sessions, courses and people they point at, the caller's assignments and the
//!    enrollments that say who may be marked.
//! 2. **Decide** ([`Writer::apply`], pure): each change is merged into the working copy of its
//!    record (field by field, `merge::merge_change`), checked against the rules (immutable natural
//!    keys, `domain::attendance`, `domain::enrollments`), or refused. A refusal leaves the working
//!    copy as it was, so every refusal is known before anything is written.
//! 3. **Write** ([`Writer::write`]): the revision counter is taken, the records that changed get
//!    their revisions, and every table is written in multi-row statements.
//!
//! The revision counter's row lock (on SQLite, the write lock) is needed only for the write
//! phase, so pushes read and decide beside other writers: side by side on PostgreSQL, in a read
//! transaction before their turn to write on SQLite. A writer that finds, under the lock, that a
//! record it read was written since, or that a record it creates exists by now (or that a
//! natural key, alias or mutation id it took for new is taken) gives up with
//! [`WriteError::Stale`] and its caller runs the unit of work again, holding the lock from the
//! start.
//! Revisions are still taken and committed in order, so a pull's horizon (the counter) never
//! passes a commit in flight.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde_json::Value;

use super::clock::{Hlc, ServerClock};
use super::merge::{DELETED_FIELD, FieldStamps, Fields, LostValue, is_deleted, merge_change};
use super::records::{self, Collection, Row, Stamped, Stored, Version, Writable, insert_in_chunks};
use crate::db::schema::sync_aliases;
use crate::db::{DbConn, lock_revision_counter, next_revisions, now_ms, on_backend};
use crate::domain::access::{Reach, Staff, visible_courses};
use crate::domain::courses::Courses;
use crate::domain::enrollments::{EnrollmentChange, EnrollmentInput, EnrollmentRefusal};
use crate::domain::people::{People, Roster, rosters};
use crate::domain::sessions::Sessions;
use crate::domain::trainers::CourseTrainers;
use crate::domain::values::new_id;
use crate::domain::{Caller, attendance as attendance_rules, enrollments as enrollment_rules};
use crate::error::{Error, FieldError, Result};

/// A change to one record, checked as far as it can be without the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub collection: Collection,
    /// The record id in canonical form.
    pub record_id: String,
    /// The stamp of every field the change sets.
    pub stamp: Hlc,
    /// The fields to merge in their stored form, with the deletion flag.
    pub fields: Fields,
    /// What the writer expects of the stored record.
    pub expect: Expect,
}

/// What a server-side writer expects of the stored record before its change.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A device's change merges into whatever is there.
    Anything,
    /// This revision (an If-Match).
    Revision(i64),
    /// No live record (an admin's creation): else refused with this reason.
    NoLiveRecord(&'static str),
}

impl Change {
    /// A delete sets only the deletion flag, to true.
    fn is_delete(&self) -> bool {
        is_deleted(&self.fields) && self.fields.len() == 1
    }
}

/// A refusal of one change: a stable reason code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
    /// Each field's problem, for a value that breaks a rule (`validation_failed`).
    pub details: Vec<FieldError>,
}

pub fn refuse(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        message: message.into(),
        details: Vec::new(),
    }
}

impl From<Error> for Refusal {
    fn from(err: Error) -> Self {
        match err {
            Error::Conflict { code, message }
            | Error::Forbidden { code, message }
            | Error::BadRequest { code, message } => refuse(code, message),
            Error::Validation { message, details } => Refusal {
                details,
                ..refuse("validation_failed", message)
            },
            Error::NotFound { what } => refuse("not_found", format!("{what} not found")),
            other => refuse("rejected", other.to_string()),
        }
    }
}

impl Refusal {
    /// The refusal as an API error (409 with the reason as its code).
    pub fn into_error(self) -> Error {
        Error::conflict(self.reason, self.message)
    }

    /// The refusal of a write through the admin API, in that API's terms: 403 for what the
    /// caller may not do, 422 naming the field for what does not exist or breaks a rule.
    pub fn into_api_error(self) -> Error {
        match self.reason {
            "not_assigned" => {
                Error::forbidden("only the course's trainers and administrators may do this")
            }
            "forbidden" => Error::forbidden(self.message),
            "unknown_session" | "session_deleted" => {
                Error::invalid_field("session_id", "unknown_session", "no such session")
            }
            "course_deleted" => {
                Error::invalid_field("course_id", "unknown_course", "no such course")
            }
            "unknown_person" => {
                Error::invalid_field("person_id", "unknown_person", "no such person")
            }
            "not_on_roster" => Error::invalid_field(
                "person_id",
                "not_on_roster",
                "only people of the course's organising unit and the units below it are \
                 enrolled by its staff",
            ),
            "not_enrolled" => Error::invalid_field(
                "person_id",
                "not_enrolled",
                "the person is not enrolled in this course",
            ),
            "validation_failed" => Error::Validation {
                message: self.message,
                details: self.details,
            },
            reason => Error::conflict(reason, self.message),
        }
    }
}

/// What became of an applied change.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The record the change landed in (the canonical one when its id was an alias or its
    /// natural key was already held by another record).
    pub record_id: String,
    /// Set when the change's record id was merged into another record.
    pub merged_into: Option<String>,
    /// The record's course (for the conflict log and quarantine).
    pub course_id: Option<String>,
    /// Values that lost to another writer's (a device overwriting its own value is no conflict).
    pub conflicts: usize,
    /// Whether the record gets a revision for this change: something changed, or the change lost
    /// every field it set and its writer must hear of the winning state.
    pub revised: bool,
    /// Nothing to do: a delete of a record the server never had.
    pub nothing: bool,
}

/// Why a unit of work stopped.
#[derive(Debug)]
pub enum WriteError {
    /// Someone wrote what this unit of work read: run it again in a new transaction.
    Stale,
    Failed(Error),
}

impl From<Error> for WriteError {
    fn from(err: Error) -> Self {
        WriteError::Failed(err)
    }
}

impl From<diesel::result::Error> for WriteError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match err {
            // A natural key, alias or mutation id taken by a writer that committed after this
            // one read: writers read before they hold the lock.
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => WriteError::Stale,
            other => WriteError::Failed(other.into()),
        }
    }
}

/// How a record's working copy differs from what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Nothing,
    /// Newer stamps on the same values.
    Stamps,
    /// The same values with a new revision, so that the feed carries them again.
    Revision,
    /// New values (and a new revision).
    Values,
}

/// The working copy of one record.
#[derive(Debug, Clone)]
struct Slot {
    row: Row,
    fields: Fields,
    stamps: FieldStamps,
    /// The version read; None for a record this unit of work creates.
    read: Option<Version>,
    pending: Pending,
}

pub type Key = (Collection, String);

/// Facts about a session: its course and whether it was removed.
#[derive(Debug, Clone)]
struct SessionFact {
    course_id: String,
    deleted: bool,
}

/// A conflict to log.
#[derive(Debug, Clone)]
pub struct ConflictEntry {
    pub collection: Collection,
    pub record_id: String,
    pub course_id: Option<String>,
    pub lost: LostValue,
}

/// One unit of work's reads, working copies and pending writes.
pub struct Writer {
    caller: Caller,
    now: i64,
    slots: HashMap<Key, Slot>,
    /// Records in the order they were first changed (the order of their revisions).
    changed: Vec<Key>,
    by_natural_key: HashMap<(Collection, (String, String)), String>,
    aliases: HashMap<Key, String>,
    new_aliases: Vec<(Collection, String, String)>,
    sessions: HashMap<String, SessionFact>,
    /// Live courses with their organising units.
    live_courses: HashMap<String, Option<String>>,
    assigned_courses: HashSet<String>,
    /// The rosters of the courses a trainer's enrollments name.
    rosters: HashMap<String, Roster>,
    /// Live people with their units.
    live_people: HashMap<String, Option<String>>,
    conflicts: Vec<ConflictEntry>,
}

fn sorted(set: HashSet<String>) -> Vec<String> {
    let mut list: Vec<String> = set.into_iter().collect();
    list.sort_unstable();
    list
}

/// The canonical ids of the aliases among `alias_ids` in `collections`: a record created on two
/// devices under two ids became one, kept under one id, and the writer remembered the other as
/// its alias (`sync_aliases`, written by `Writer::write`).
pub fn canonical_ids(
    conn: &mut DbConn,
    collections: &[Collection],
    alias_ids: &[String],
) -> Result<HashMap<Key, String>> {
    if alias_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<&str> = collections.iter().map(|c| c.name()).collect();
    let found: Vec<(String, String, String)> = on_backend!(conn, |backend| {
        sync_aliases::table
            .filter(sync_aliases::collection.eq_any(&names))
            .filter(sync_aliases::alias_id.eq_any(alias_ids))
            .select((
                sync_aliases::collection,
                sync_aliases::alias_id,
                sync_aliases::canonical_id,
            ))
            .load(backend)
    })?;
    Ok(found
        .into_iter()
        .filter_map(|(collection, alias, canonical)| {
            Collection::parse(&collection).map(|collection| ((collection, alias), canonical))
        })
        .collect())
}

impl Writer {
    /// Reads what `changes` need, set-wise (about ten statements whatever their number).
    /// `extra_sessions` are sessions named by refused mutations, read for filing them.
    pub fn read(
        conn: &mut DbConn,
        caller: &Caller,
        changes: &[&Change],
        extra_sessions: &[String],
    ) -> Result<Self> {
        let mut writer = Writer {
            caller: caller.clone(),
            now: now_ms(),
            slots: HashMap::new(),
            changed: Vec::new(),
            by_natural_key: HashMap::new(),
            aliases: HashMap::new(),
            new_aliases: Vec::new(),
            sessions: HashMap::new(),
            live_courses: HashMap::new(),
            assigned_courses: HashSet::new(),
            rosters: HashMap::new(),
            live_people: HashMap::new(),
            conflicts: Vec::new(),
        };
        let of = |collection: Collection| {
            changes
                .iter()
                .filter(move |change| change.collection == collection)
        };
        let collections = Writable::ALL.map(Writable::collection);

        // Aliases of the records named.
        let named: HashSet<String> = changes.iter().map(|c| c.record_id.clone()).collect();
        writer.aliases = canonical_ids(conn, &collections, &sorted(named))?;

        // The records, by id (their own or their alias's canonical id) and by natural key.
        let mut people_named = HashSet::new();
        for writable in Writable::ALL {
            let collection = writable.collection();
            let ids: HashSet<String> = of(collection)
                .map(|c| {
                    writer
                        .aliases
                        .get(&(collection, c.record_id.clone()))
                        .unwrap_or(&c.record_id)
                        .clone()
                })
                .collect();
            for row in records::rows_by_id(conn, writable, &sorted(ids))? {
                writer.hold(row)?;
            }
            people_named.extend(
                of(collection)
                    .filter_map(|c| records::text(&c.fields, "person_id").map(str::to_owned)),
            );
        }
        let sessions_named: HashSet<String> = of(Collection::Attendance)
            .filter_map(|c| records::text(&c.fields, "session_id").map(str::to_owned))
            .collect();
        for row in records::rows_by_key(
            conn,
            Writable::Attendance,
            &sorted(sessions_named.clone()),
            &sorted(people_named.clone()),
        )? {
            writer.hold(row)?;
        }

        // The sessions of attendance named or held, with their courses.
        let mut session_ids = sessions_named;
        session_ids.extend(extra_sessions.iter().cloned());
        for slot in writer.slots.values() {
            if let Row::Attendance(row) = &slot.row {
                session_ids.insert(row.session_id.clone());
            }
        }
        let session_ids = sorted(session_ids);
        if !session_ids.is_empty() {
            for session in Sessions::courses_of(conn, &session_ids)? {
                writer.sessions.insert(
                    session.id,
                    SessionFact {
                        course_id: session.course_id,
                        deleted: session.deleted_at.is_some(),
                    },
                );
            }
        }

        // The enrollments that decide who may be marked, and the enrollments written.
        let mut course_ids: HashSet<String> = writer
            .sessions
            .values()
            .map(|s| s.course_id.clone())
            .collect();
        course_ids.extend(
            of(Collection::Enrollments)
                .filter_map(|c| records::text(&c.fields, "course_id").map(str::to_owned)),
        );
        for slot in writer.slots.values() {
            match &slot.row {
                Row::Enrollment(row) => {
                    course_ids.insert(row.course_id.clone());
                    people_named.insert(row.person_id.clone());
                }
                Row::Attendance(row) => {
                    people_named.insert(row.person_id.clone());
                }
            }
        }
        let course_ids = sorted(course_ids);
        let people_ids = sorted(people_named);
        for row in records::rows_by_key(conn, Writable::Enrollments, &course_ids, &people_ids)? {
            writer.hold(row)?;
        }

        // What the rules need to know about those courses and people.
        if !course_ids.is_empty() {
            writer.live_courses = Courses::live_units_of(conn, &course_ids)?
                .into_iter()
                .map(|course| (course.id, course.organizing_unit_id))
                .collect();
            match Reach::of(caller) {
                // Course staff change the records of the courses they staff, and a trainer
                // enrolls the people of their rosters.
                Reach::CourseStaff(staff) => {
                    // A trainer's courses are those assigned to them; an organiser's, those of
                    // their subtree (`access::visible_courses`), which they plan and staff.
                    writer.assigned_courses = match staff {
                        Staff::Organiser => {
                            let visible = visible_courses(conn, caller)?.unwrap_or_default();
                            course_ids
                                .iter()
                                .filter(|course| visible.contains(course))
                                .cloned()
                                .collect()
                        }
                        Staff::Trainer => {
                            CourseTrainers::assigned_among(conn, &caller.user_id, &course_ids)?
                                .into_iter()
                                .collect()
                        }
                    };
                    // Whom a trainer may enroll: the rosters of their courses that enrollments name.
                    let enrolling: HashSet<String> = of(Collection::Enrollments)
                        .filter_map(|c| records::text(&c.fields, "course_id").map(str::to_owned))
                        .chain(writer.slots.values().filter_map(|slot| match &slot.row {
                            Row::Enrollment(row) => Some(row.course_id.clone()),
                            Row::Attendance(_) => None,
                        }))
                        .filter(|course| writer.assigned_courses.contains(course))
                        .collect();
                    let organised: Vec<(String, Option<String>)> = sorted(enrolling)
                        .into_iter()
                        .filter_map(|course| {
                            let unit = writer.live_courses.get(&course)?.clone();
                            Some((course, unit))
                        })
                        .collect();
                    writer.rosters = rosters(conn, &organised)?;
                }
                // An administrator's rules need no courses of their own, a trainee's none.
                Reach::Everything | Reach::OwnRecords(_) => {}
            }
        }
        if !people_ids.is_empty() {
            writer.live_people = People::live_units_of(conn, &people_ids)?
                .into_iter()
                .map(|person| (person.id, person.unit_id))
                .collect();
        }
        Ok(writer)
    }

    /// Forgets the values the changes applied so far overwrote: they were replaced by an
    /// administrator's decision, not lost to another writer.
    pub fn settle_conflicts(&mut self) {
        self.conflicts.clear();
    }

    /// Takes a row read into the working set (once: the first copy read is the one kept).
    fn hold(&mut self, stored: Stored) -> Result<()> {
        let Stored {
            row,
            stamps,
            version,
        } = stored;
        let key = (row.collection(), row.id().to_owned());
        if self.slots.contains_key(&key) {
            return Ok(());
        }
        let fields = row.fields();
        if let Some(natural) = records::natural_key(key.0, &fields) {
            self.by_natural_key.insert((key.0, natural), key.1.clone());
        }
        let read = Some(version);
        self.slots.insert(
            key,
            Slot {
                row,
                fields,
                stamps,
                read,
                pending: Pending::Nothing,
            },
        );
        Ok(())
    }

    /// The session a refused mutation's fields name, for filing it under its course.
    pub fn course_of_session(&self, session_id: &str) -> Option<String> {
        self.sessions.get(session_id).map(|s| s.course_id.clone())
    }

    /// The current state of a record (after the changes applied so far), if it exists.
    pub fn record(&self, collection: Collection, id: &str) -> Option<&Row> {
        self.slots
            .get(&(collection, id.to_owned()))
            .map(|slot| &slot.row)
    }

    /// Decides one change against the working copies: merged and kept, or refused (and the
    /// working copies left as they were). Reads nothing and writes nothing.
    pub fn apply(&mut self, change: &Change) -> std::result::Result<Applied, Refusal> {
        let collection = change.collection;
        let aliased = self
            .aliases
            .get(&(collection, change.record_id.clone()))
            .cloned();
        let mut target = aliased.clone().unwrap_or_else(|| change.record_id.clone());
        let mut merged_into = aliased;
        let mut new_alias = None;
        if !self.slots.contains_key(&(collection, target.clone())) {
            if change.is_delete() {
                // Deleting what the server never had: nothing to do, and nothing lost.
                return Ok(Applied {
                    record_id: change.record_id.clone(),
                    merged_into: None,
                    course_id: None,
                    conflicts: 0,
                    revised: false,
                    nothing: true,
                });
            }
            if let Some(natural) = records::natural_key(collection, &change.fields)
                && let Some(existing) = self.by_natural_key.get(&(collection, natural))
            {
                new_alias = Some(existing.clone());
                target = existing.clone();
                merged_into = Some(existing.clone());
            }
        }
        let key = (collection, target.clone());
        let slot = self.slots.get(&key).cloned();
        let (stored_fields, stored_stamps) = match &slot {
            Some(slot) => {
                // A creation naming the id of another pair's record is refused as the database
                // would refuse a taken id, whoever's record it is.
                if matches!(change.expect, Expect::NoLiveRecord(_))
                    && records::natural_key(collection, &slot.fields)
                        != records::natural_key(collection, &change.fields)
                {
                    return Err(Error::id_taken().into());
                }
                records::check_immutable(collection, &slot.fields, &change.fields)?;
                (slot.fields.clone(), slot.stamps.clone())
            }
            None => (Fields::new(), FieldStamps::new()),
        };
        let merged = merge_change(
            &stored_fields,
            &stored_stamps,
            &change.fields,
            &change.stamp,
        );
        let course_id = self.permit(
            collection,
            slot.as_ref().map(|slot| &slot.fields),
            &merged.fields,
        )?;
        let stored = slot.as_ref().filter(|s| !is_deleted(&s.fields));
        match &change.expect {
            Expect::Anything => {}
            Expect::Revision(expected) => {
                let current = slot.as_ref().map_or(0, |s| s.row.rev());
                if *expected != current {
                    return Err(refuse(
                        "precondition_failed",
                        format!("changed by someone else (current revision {current})"),
                    ));
                }
            }
            Expect::NoLiveRecord(reason) => {
                if let Some(stored) = stored {
                    return Err(refuse(
                        reason,
                        format!("the record already exists (record {})", stored.row.id()),
                    ));
                }
            }
        }
        self.check_references(collection, &merged.fields, &course_id)?;
        let course_id = Some(course_id);
        let is_new = slot.is_none();
        let changed = is_new || !merged.changed.is_empty();
        let writer = records::Writer {
            user_id: &self.caller.user_id,
            device_id: &self.caller.device_id,
            now: self.now,
        };
        let row = match (changed, &slot, collection.writable()) {
            (true, _, Some(writable)) => Row::of_state(
                writable,
                &target,
                &merged.fields,
                slot.as_ref().map(|s| &s.row),
                &writer,
            )?,
            (false, Some(slot), Some(_)) => slot.row.clone(),
            (false, None, Some(_)) => {
                return Err(refuse(
                    "rejected",
                    "an unchanged record that does not exist",
                ));
            }
            (_, _, None) => {
                return Err(refuse(
                    "read_only_collection",
                    "the collection is written by administrators only",
                ));
            }
        };
        // When the change lost every field it set, nothing changed, yet its writer holds its
        // own losing values: a new revision sends it the winning state on its next pull.
        let stale = change
            .fields
            .iter()
            .any(|(field, value)| merged.fields.get(field) != Some(value));
        let pending = if changed {
            Pending::Values
        } else if stale {
            Pending::Revision
        } else if merged.stamps != stored_stamps {
            Pending::Stamps
        } else {
            Pending::Nothing
        };

        // Decided: keep it.
        let lost: Vec<LostValue> = merged
            .lost
            .into_iter()
            .filter(|v| v.winning_stamp.node != v.losing_stamp.node)
            .collect();
        let conflicts = lost.len();
        self.conflicts
            .extend(lost.into_iter().map(|lost| ConflictEntry {
                collection,
                record_id: target.clone(),
                course_id: course_id.clone(),
                lost,
            }));
        if let Some(canonical) = new_alias {
            self.aliases
                .insert((collection, change.record_id.clone()), canonical.clone());
            self.new_aliases
                .push((collection, change.record_id.clone(), canonical));
        }
        if is_new && let Some(natural) = records::natural_key(collection, &merged.fields) {
            self.by_natural_key
                .insert((collection, natural), target.clone());
        }
        let (read, before) = slot.map_or((None, Pending::Nothing), |s| (s.read, s.pending));
        if before == Pending::Nothing && pending != Pending::Nothing {
            self.changed.push(key.clone());
        }
        self.slots.insert(
            key,
            Slot {
                row,
                fields: merged.fields,
                stamps: merged.stamps,
                read,
                pending: before.max(pending),
            },
        );
        Ok(Applied {
            record_id: target,
            merged_into,
            course_id,
            conflicts,
            revised: pending >= Pending::Revision,
            nothing: false,
        })
    }

    /// Checks that the caller may change a record from its `stored` state (None for a new
    /// record) to this one (the course's rule, `domain::attendance::may_record` or
    /// `domain::enrollments::may_change_enrollment`) in a course that exists; returns the course.
    fn permit(
        &self,
        collection: Collection,
        stored: Option<&Fields>,
        fields: &Fields,
    ) -> std::result::Result<String, Refusal> {
        let person = records::text(fields, "person_id")
            .ok_or_else(|| refuse("missing_field", "person_id is required"))?;
        let course_id = match collection {
            Collection::Attendance => {
                let session = records::text(fields, "session_id")
                    .ok_or_else(|| refuse("missing_field", "session_id is required"))?;
                match self.sessions.get(session) {
                    None => return Err(refuse("unknown_session", "the session does not exist")),
                    Some(fact) if fact.deleted => {
                        return Err(refuse("session_deleted", "the session was deleted"));
                    }
                    Some(fact) => fact.course_id.clone(),
                }
            }
            Collection::Enrollments => records::text(fields, "course_id")
                .ok_or_else(|| refuse("missing_field", "course_id is required"))?
                .to_owned(),
            Collection::Units
            | Collection::People
            | Collection::Courses
            | Collection::CourseTrainers
            | Collection::Sessions
            | Collection::Materials => {
                return Err(refuse(
                    "read_only_collection",
                    "the collection is written by administrators only",
                ));
            }
        };
        if !self.live_courses.contains_key(&course_id) {
            return Err(refuse(
                "course_deleted",
                "the course does not exist or was deleted",
            ));
        }
        let assigned = self.assigned_courses.contains(&course_id);
        match collection {
            Collection::Attendance => {
                if !attendance_rules::may_record(self.caller.role, assigned) {
                    return Err(refuse(
                        "not_assigned",
                        "the user is not (or no longer) a trainer of this course",
                    ));
                }
            }
            Collection::Enrollments => {
                let enrolled = |fields: &Fields| {
                    enrollment_rules::counts_as_enrolled(
                        records::text(fields, "status").unwrap_or_default(),
                        is_deleted(fields),
                    )
                };
                let change = EnrollmentChange {
                    assigned,
                    enrolls: enrolled(fields) && !stored.is_some_and(enrolled),
                    on_roster: self.rosters.get(&course_id).is_some_and(|roster| {
                        self.live_people
                            .get(person)
                            .is_some_and(|unit| roster.holds(unit.as_deref()))
                    }),
                };
                enrollment_rules::may_change_enrollment(self.caller.role, change).map_err(
                    |refusal| match refusal {
                        EnrollmentRefusal::Trainee => {
                            refuse("forbidden", "trainees do not enroll people")
                        }
                        EnrollmentRefusal::NotAssigned => refuse(
                            "not_assigned",
                            "the user is not (or no longer) a trainer of this course",
                        ),
                        EnrollmentRefusal::NotOnRoster => refuse(
                            "not_on_roster",
                            "a trainer enrolls only people of the course's organising unit \
                             and the units below it",
                        ),
                    },
                )?;
            }
            Collection::Units
            | Collection::People
            | Collection::Courses
            | Collection::CourseTrainers
            | Collection::Sessions
            | Collection::Materials => {}
        }
        Ok(course_id)
    }

    /// Checks that the person a state names exists and, for a live attendance record, is
    /// enrolled in the course (`course_id`, from `permit`).
    fn check_references(
        &self,
        collection: Collection,
        fields: &Fields,
        course_id: &str,
    ) -> std::result::Result<(), Refusal> {
        let person = records::text(fields, "person_id").unwrap_or_default();
        if !self.live_people.contains_key(person) {
            return Err(refuse("unknown_person", "the person does not exist"));
        }
        if collection == Collection::Attendance && !is_deleted(fields) {
            let enrolled = self
                .by_natural_key
                .get(&(
                    Collection::Enrollments,
                    (course_id.to_owned(), person.to_owned()),
                ))
                .and_then(|id| self.slots.get(&(Collection::Enrollments, id.clone())))
                .is_some_and(|slot| match &slot.row {
                    Row::Enrollment(row) => {
                        enrollment_rules::counts_as_enrolled(&row.status, is_deleted(&slot.fields))
                    }
                    Row::Attendance(_) => false,
                });
            if !enrolled {
                return Err(refuse(
                    "not_enrolled",
                    "the person is not enrolled in the course",
                ));
            }
        }
        Ok(())
    }

    /// The write phase: for records that changed, takes the revision counter (held until the
    /// transaction ends), checks that nothing read was written since, gives each revised record
    /// its revision and writes them; then the new aliases and the conflicts. Each table in
    /// multi-row statements.
    pub fn write(&mut self, conn: &mut DbConn) -> std::result::Result<(), WriteError> {
        if !self.changed.is_empty() {
            self.write_records(conn)?;
        }
        // An alias or a conflict may come without any change to a record (an id merged into a
        // record that already held the same values).
        self.write_aliases(conn)?;
        self.write_conflicts(conn)?;
        Ok(())
    }

    fn write_records(&mut self, conn: &mut DbConn) -> std::result::Result<(), WriteError> {
        let revised: Vec<&Key> = self
            .changed
            .iter()
            .filter(|key| self.slots[*key].pending >= Pending::Revision)
            .collect();
        let revisions = next_revisions(conn, revised.len())?;
        self.check_unchanged_since_read(conn)?;
        let revised: Vec<Key> = revised.into_iter().cloned().collect();
        for (key, rev) in revised.iter().zip(revisions) {
            if let Some(slot) = self.slots.get_mut(key) {
                slot.row.set_rev(rev);
            }
        }
        let rows: Vec<Stamped> = self
            .changed
            .iter()
            .map(|key| Stamped {
                row: self.slots[key].row.clone(),
                stamps: self.slots[key].stamps.clone(),
            })
            .collect();
        records::upsert(conn, rows)?;
        crate::fault::point(crate::fault::PUSH_MID_BATCH);
        Ok(())
    }

    /// Writers read and decide without the write lock (PostgreSQL: side by side; SQLite: in a
    /// read transaction before their turn to write), so under the counter's lock every record
    /// about to be written must still be as it was read, and every record about to be created
    /// must still be absent. Records only consulted (an enrollment that lets a person be marked)
    /// are not checked: a change to them orders this unit of work before it, as if it had
    /// committed first.
    fn check_unchanged_since_read(&self, conn: &mut DbConn) -> std::result::Result<(), WriteError> {
        for writable in Writable::ALL {
            let read: Vec<(&String, Option<&Version>)> = self
                .changed
                .iter()
                .filter(|(c, _)| *c == writable.collection())
                .map(|key| (&key.1, self.slots[key].read.as_ref()))
                .collect();
            let ids: Vec<String> = read.iter().map(|(id, _)| (*id).clone()).collect();
            let now = records::versions(conn, writable, &ids)?;
            if read.iter().any(|(id, was)| now.get(*id) != *was) {
                return Err(WriteError::Stale);
            }
        }
        Ok(())
    }

    fn write_aliases(&self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        let now = self.now;
        let rows: Vec<_> = self
            .new_aliases
            .iter()
            .map(|(collection, alias, canonical)| {
                (
                    sync_aliases::collection.eq(collection.name()),
                    sync_aliases::alias_id.eq(alias),
                    sync_aliases::canonical_id.eq(canonical),
                    sync_aliases::created_at.eq(now),
                )
            })
            .collect();
        insert_in_chunks!(conn, sync_aliases::table, rows)
    }

    fn write_conflicts(&self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        use crate::db::schema::sync_conflicts as c;
        let now = self.now;
        let rows: Vec<_> = self
            .conflicts
            .iter()
            .map(|entry| {
                (
                    c::id.eq(new_id()),
                    c::collection.eq(entry.collection.name()),
                    c::record_id.eq(&entry.record_id),
                    c::course_id.eq(&entry.course_id),
                    c::field.eq(&entry.lost.field),
                    c::winning_value.eq(entry.lost.winning_value.to_string()),
                    c::winning_stamp.eq(entry.lost.winning_stamp.to_string()),
                    c::losing_value.eq(entry.lost.losing_value.to_string()),
                    c::losing_stamp.eq(entry.lost.losing_stamp.to_string()),
                    c::created_at.eq(now),
                )
            })
            .collect();
        insert_in_chunks!(conn, c::table, rows)
    }

    /// The revision a record got in this unit of work's write phase (after `write`).
    pub fn revision_of(&self, collection: Collection, id: &str) -> Option<i64> {
        self.slots
            .get(&(collection, id.to_owned()))
            .filter(|slot| slot.pending >= Pending::Revision)
            .map(|slot| slot.row.rev())
    }
}

/// A change the server makes to a record: the fields it sets, and what it expects of the stored
/// record.
#[derive(Debug, Clone)]
pub struct ServerChange {
    /// What the record is called in messages ("attendance record").
    pub what: &'static str,
    pub collection: Collection,
    pub record_id: String,
    pub fields: Fields,
    pub expect: Expect,
}

/// Writes server-stamped changes (the admin API, a roster import, the CLI, the demo loader):
/// every field given is stamped with the server's clock, so that it wins over everything
/// recorded so far and syncs out like any edit, under the same rules as a device's change. A
/// record named by id is that record; a new record whose natural key is already held is that
/// record (revived when it was removed). Holds the revision counter from the start: admin
/// writes are few, and so they never need running again. Any refusal refuses them all, in
/// the admin API's terms, before anything is written.
pub fn write_server_changes(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    changes: Vec<ServerChange>,
) -> Result<Vec<Applied>> {
    lock_revision_counter(conn)?;
    let wall = u64::try_from(now_ms()).unwrap_or_default();
    let mut stamped = Vec::with_capacity(changes.len());
    let mut names = Vec::with_capacity(changes.len());
    for change in changes {
        names.push(change.what);
        stamped.push(Change {
            collection: change.collection,
            record_id: change.record_id,
            stamp: clock.now(wall),
            fields: records::normalize_fields(change.collection, change.fields)?,
            expect: change.expect,
        });
    }
    let refs: Vec<&Change> = stamped.iter().collect();
    let mut writer = Writer::read(conn, caller, &refs, &[])?;
    let mut applied = Vec::with_capacity(stamped.len());
    for (mut change, what) in stamped.into_iter().zip(names) {
        // A new record for a natural key already held is that record, under its own id.
        if writer
            .record(change.collection, &change.record_id)
            .is_none()
            && let Some(natural) = records::natural_key(change.collection, &change.fields)
            && let Some(existing) = writer.by_natural_key.get(&(change.collection, natural))
        {
            change.record_id = existing.clone();
        }
        let done = writer
            .apply(&change)
            .map_err(|refusal| match refusal.reason {
                "precondition_failed" => Error::PreconditionFailed {
                    what,
                    current: writer
                        .record(change.collection, &change.record_id)
                        .map_or(0, Row::rev),
                },
                _ => refusal.into_api_error(),
            })?;
        applied.push(done);
    }
    writer.write(conn).map_err(|err| match err {
        WriteError::Stale => Error::Internal("a serialized writer found its reads stale".into()),
        WriteError::Failed(err) => err,
    })?;
    Ok(applied)
}

/// Enrolls people (a roster import, the CLI, the demo loader): new enrollments through the one
/// writer, as server-stamped changes; a person already enrolled, or enrolled before and
/// removed, keeps (or gets back) that enrollment.
pub fn enroll(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    inputs: Vec<EnrollmentInput>,
) -> Result<()> {
    let changes = inputs
        .into_iter()
        .map(|input| {
            let mut fields = Fields::new();
            fields.insert("course_id".into(), Value::String(input.course_id));
            fields.insert("person_id".into(), Value::String(input.person_id));
            fields.insert(
                "status".into(),
                Value::String(input.status.unwrap_or_else(|| "enrolled".into())),
            );
            fields.insert(DELETED_FIELD.into(), Value::Bool(false));
            ServerChange {
                what: "enrollment",
                collection: Collection::Enrollments,
                record_id: input.id.unwrap_or_else(new_id),
                fields,
                expect: Expect::Anything,
            }
        })
        .collect();
    write_server_changes(conn, caller, clock, changes)?;
    Ok(())
}
