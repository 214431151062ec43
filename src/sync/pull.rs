//! Pages of changes for one device: every record in the caller's scope whose revision is after
//! the cursor, in revision order. Revisions are taken from a counter whose row lock is held to
//! commit, so they become visible in commit order on both backends and "after the cursor" never
//! skips a row. When the caller's scope changed since the cursor (a trainer assigned to a new
//! course, or removed from one), the next page carries deletions for what left the scope, and
//! the newly visible course's existing records (backfill) come first, in pages of their own,
//! before the feed goes on: however large the course, a page holds at most `limit` of them.

use std::collections::BTreeSet;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::cursor::{Cursor, PendingBackfill};
use super::records::Collection;
use crate::db::identity::Epoch;
use crate::db::schema::{
    attendance, course_trainers, courses, enrollments, materials, people, revision_counter,
    sessions, units,
};
use crate::db::{Backend, DbConn, now_ms};
use crate::domain::access::visible_courses;
use crate::domain::attendance::Attendance;
use crate::domain::courses::Course;
use crate::domain::enrollments::Enrollment;
use crate::domain::materials::Material;
use crate::domain::people::Person;
use crate::domain::sessions::Session;
use crate::domain::trainers::CourseTrainer;
use crate::domain::units::Unit;
use crate::domain::{Caller, Role};
use crate::error::{Error, Result};

pub const DEFAULT_PAGE: i64 = 500;
pub const MAX_PAGE: i64 = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub collection: &'static str,
    pub id: String,
    /// The revision of this change; 0 for scope deletions, which have none of their own.
    pub rev: i64,
    pub deleted: bool,
    /// The record as the admin API shows it; null for a deletion.
    pub data: Option<Record>,
    /// When the record was created (server time, Unix ms; 0 for scope deletions): the
    /// WatermelonDB feed tells records new to a device from changed ones by it.
    #[serde(skip)]
    pub created_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub changes: Vec<Change>,
    pub cursor: String,
    pub has_more: bool,
}

/// Settings of the feed.
pub struct PullSettings<'a> {
    pub cursor_key: &'a [u8],
    /// Tombstones are kept this long; an older cursor must start over.
    pub tombstone_retention_ms: i64,
}

/// A synced record, kept typed until the response is written: a page is serialised straight
/// from the rows, without an intermediate `serde_json::Value` per record.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Record {
    Unit(Unit),
    Person(Person),
    Course(Course),
    CourseTrainer(CourseTrainer),
    Session(Session),
    Enrollment(Enrollment),
    Attendance(Attendance),
    Material(Material),
}

impl Record {
    /// The record as a JSON value, for callers that look fields up by name.
    pub fn to_value(&self) -> Result<Value> {
        serde_json::to_value(self).map_err(|e| Error::Internal(e.to_string()))
    }
}

pub(crate) fn change<T: SyncRow>(collection: Collection, row: T) -> Change {
    let (id, rev, created_ms) = (row.id().to_owned(), row.rev(), row.created_at());
    let deleted = row.deleted();
    Change {
        collection: collection.name(),
        id,
        rev,
        deleted,
        data: (!deleted).then(|| row.into_record()),
        created_ms,
    }
}

/// What the feed needs of every synced row.
pub(crate) trait SyncRow {
    fn id(&self) -> &str;
    fn rev(&self) -> i64;
    fn deleted(&self) -> bool;
    fn created_at(&self) -> i64;
    fn into_record(self) -> Record;
}

macro_rules! sync_rows {
    ($($row:ident),+) => {$(
        impl SyncRow for $row {
            fn id(&self) -> &str {
                &self.id
            }
            fn rev(&self) -> i64 {
                self.rev
            }
            fn deleted(&self) -> bool {
                self.deleted_at.is_some()
            }
            fn created_at(&self) -> i64 {
                self.created_at
            }
            fn into_record(self) -> Record {
                Record::$row(self)
            }
        }
    )+};
}
sync_rows!(
    Unit,
    Person,
    Course,
    CourseTrainer,
    Session,
    Enrollment,
    Attendance,
    Material
);

fn changes<T: SyncRow>(collection: Collection, rows: Vec<T>) -> Vec<Change> {
    rows.into_iter()
        .map(|row| change(collection, row))
        .collect()
}

fn gone(collection: Collection, id: String) -> Change {
    Change {
        collection: collection.name(),
        id,
        rev: 0,
        deleted: true,
        data: None,
        created_ms: 0,
    }
}

/// Refuses a page size outside 1..=[`MAX_PAGE`] (422 `out_of_range` on `limit`).
pub fn check_page_limit(limit: i64) -> Result<()> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(Error::invalid_field(
            "limit",
            "out_of_range",
            format!("must be between 1 and {MAX_PAGE}"),
        ))
    }
}

/// The records of one page. `after` is the cursor's revision; `limit` bounds the feed part.
pub fn page(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &PullSettings,
    raw_cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    check_page_limit(limit)?;
    let cursor = raw_cursor
        .map(|raw| Cursor::decode(raw, settings.cursor_key, &caller.user_id))
        .transpose()?;
    let now = now_ms();
    let epoch = Epoch::current(conn)?;
    if let Some(cursor) = &cursor {
        check_cursor(cursor, epoch, now, settings.tombstone_retention_ms)?;
    }
    let since = cursor.map(Since::from);
    let delta = delta(conn, caller, since.as_ref(), Some(limit))?;
    let next = delta.next_cursor(caller, now, epoch);
    Ok(Page {
        changes: delta
            .removed
            .into_iter()
            .chain(delta.added)
            .chain(delta.new_people)
            .chain(delta.feed)
            .collect(),
        cursor: next.encode(settings.cursor_key),
        has_more: delta.has_more,
    })
}

/// A cursor continues the feed only in the epoch it was issued in, and while the deletions
/// since it are still known.
pub(crate) fn check_cursor(
    cursor: &Cursor,
    epoch: Epoch,
    now: i64,
    retention_ms: i64,
) -> Result<()> {
    if cursor.epoch != epoch.id() {
        return Err(restored_since_issued());
    }
    check_age(now, cursor.issued_ms, retention_ms)
}

/// A position (a cursor, a WatermelonDB timestamp) of another epoch: the database was restored
/// from a backup since it was issued, and its revisions are not the ones the device followed.
pub(crate) fn restored_since_issued() -> Error {
    Error::Gone {
        code: "resync_required",
        message: "the server's database was restored from a backup since this device last \
                  pulled; push what is waiting, then start over from nothing"
            .into(),
    }
}

/// A feed position older than the deletion history kept must start over.
pub fn check_age(now: i64, issued_ms: i64, retention_ms: i64) -> Result<()> {
    // Saturating: an issue time before any real one (i64::MIN) is simply too old.
    if now.saturating_sub(issued_ms) > retention_ms {
        return Err(Error::Gone {
            code: "resync_required",
            message:
                "the cursor is older than the deletion history kept; start over without a cursor"
                    .into(),
        });
    }
    Ok(())
}

/// Where a device stands: every change up to `rev` delivered, while it held `courses` (`None`
/// for every course), except the older records of the courses still being backfilled.
pub(crate) struct Since {
    pub rev: i64,
    pub courses: Option<Vec<String>>,
    pub backfill: Vec<PendingBackfill>,
}

impl From<Cursor> for Since {
    fn from(cursor: Cursor) -> Self {
        Since {
            rev: cursor.rev,
            courses: cursor.courses,
            backfill: cursor.backfill,
        }
    }
}

/// The changes a device needs after `since`, and where it stands afterwards.
pub(crate) struct Delta {
    /// Deletions for what left the scope.
    pub removed: Vec<Change>,
    /// Backfill of courses that came into scope: their records up to the device's revision,
    /// with the people they bring.
    pub added: Vec<Change>,
    /// People newly enrolled in a trainer's courses whose record is older than the cursor.
    pub new_people: Vec<Change>,
    /// The feed in revision order, then deletions of people no longer enrolled.
    pub feed: Vec<Change>,
    pub next_rev: i64,
    pub has_more: bool,
    pub visible: Option<Vec<String>>,
    /// Backfills the next page goes on with (the feed waits at `next_rev` until they are sent).
    pub backfill: Vec<PendingBackfill>,
}

impl Delta {
    /// Where the next page starts.
    pub(crate) fn next_cursor(&self, caller: &Caller, issued_ms: i64, epoch: Epoch) -> Cursor {
        Cursor {
            rev: self.next_rev,
            user: caller.user_id.clone(),
            issued_ms,
            courses: self.visible.clone(),
            epoch: epoch.id(),
            backfill: self.backfill.clone(),
        }
    }

    /// Every change, in the order a device applies them (the order `page` sends them in).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Change> {
        self.removed
            .iter()
            .chain(&self.added)
            .chain(&self.new_people)
            .chain(&self.feed)
    }
}

/// Everything in the caller's scope after `since` (all of it when `None`); with a `limit`, at
/// most that many changes of the backfill and the feed (the rest is for the next call). A course
/// that came into scope is backfilled first, page by page, in revision order up to `since.rev`:
/// records only ever leave that window (a write moves a record past it, into the feed), so a
/// backfill resumed from its position sends each record once and skips none. The feed waits at
/// `since.rev` until every backfill is sent.
pub(crate) fn delta(
    conn: &mut DbConn,
    caller: &Caller,
    since: Option<&Since>,
    limit: Option<i64>,
) -> Result<Delta> {
    let after = since.map_or(0, |s| s.rev);
    let visible = visible_courses(conn, caller)?;
    let mut removed_changes = Vec::new();

    // A switch between "every course" and a list (a role change) cannot be expressed as a
    // difference of course lists: the device starts over.
    if let Some(since) = since
        && since.courses.is_none() != visible.is_none()
    {
        return Err(Error::Gone {
            code: "resync_required",
            message: "the account's role changed; start over without a cursor".into(),
        });
    }
    // Read before the feed: every revision up to here is committed and will be seen by it.
    let horizon = current_revision(conn)?;
    // A position no pull could have given: the database was put back to an earlier state
    // without a new epoch (a restore by hand). Continuing would skip the changes written from
    // here up to the position.
    if let Some(since) = since
        && since.rev > horizon
    {
        return Err(Error::Gone {
            code: "resync_required",
            message: "the server's database is behind this device's position (restored from a \
                      backup); push what is waiting, then start over from nothing"
                .into(),
        });
    }
    let mut pending: Vec<PendingBackfill> = since.map(|s| s.backfill.clone()).unwrap_or_default();
    // Scope changes since the cursor: deletions for courses that left, backfill for new ones.
    if let (Some(since), Some(now_visible)) = (since, &visible) {
        let before: BTreeSet<&String> = since.courses.iter().flatten().collect();
        let current: BTreeSet<&String> = now_visible.iter().collect();
        let removed: Vec<String> = before.difference(&current).map(|s| (*s).clone()).collect();
        let added: Vec<String> = current.difference(&before).map(|s| (*s).clone()).collect();
        if !removed.is_empty() {
            removed_changes = scope_deletions(conn, caller, &removed, now_visible)?;
        }
        // A course that left while being backfilled is not sent further: the deletions above
        // cover what was.
        for backfill in &mut pending {
            backfill.courses.retain(|course| current.contains(course));
        }
        pending.retain(|backfill| !backfill.courses.is_empty());
        if !added.is_empty() {
            pending.push(PendingBackfill {
                courses: added,
                after: 0,
            });
        }
    }

    let mut budget = limit;
    let mut added_changes = Vec::new();
    while let Some(next) = pending.first_mut() {
        if budget == Some(0) {
            break;
        }
        let part = backfill(conn, caller, next, after, budget)?;
        budget = budget.map(|left| (left - part.counted).max(0));
        added_changes.extend(part.changes);
        match part.more_from {
            // The page is full (it may hold fewer records than the limit: people counted in
            // the window are sent with their enrollment, in a later page).
            Some(rev) => {
                next.after = rev;
                break;
            }
            None => {
                pending.remove(0);
            }
        }
    }
    if !pending.is_empty() || budget == Some(0) {
        return Ok(Delta {
            removed: removed_changes,
            added: added_changes,
            new_people: Vec::new(),
            feed: Vec::new(),
            next_rev: after,
            has_more: true,
            visible,
            backfill: pending,
        });
    }

    let scope = Scope::new(conn, caller, visible.as_deref(), after, horizon, Part::Feed)?;
    let (mut feed, more_from) = feed(conn, &scope, budget)?;
    let has_more = more_from.is_some();
    // Else everything up to the horizon is delivered.
    let next_rev = more_from.unwrap_or(after.max(horizon));
    let mut new_people = Vec::new();
    if caller.role.pulls_as_course_staff() {
        let still_visible = visible.as_deref().unwrap_or_default();
        new_people = people_of_new_enrollments(conn, &feed, after, still_visible)?;
        let dropped = people_no_longer_enrolled(conn, &feed, still_visible)?;
        feed.extend(dropped);
    }
    Ok(Delta {
        removed: removed_changes,
        added: added_changes,
        new_people,
        feed,
        next_rev,
        has_more,
        visible,
        backfill: Vec::new(),
    })
}

/// A part of a backfill: its changes, how many of them count against the page's limit (the
/// people they bring do not, as in the feed) and where the backfill goes on when more follow.
struct BackfillPart {
    changes: Vec<Change>,
    counted: i64,
    more_from: Option<i64>,
}

/// The next records (at most `budget`; all without) of a backfill: the live records of its
/// courses after its position up to `upto`, in revision order, as a first pull of those courses
/// alone would send them (a trainer's people with their first enrollment, once).
fn backfill(
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

/// The last revision handed out: every synced write moves it.
pub fn current_revision(conn: &mut DbConn) -> Result<i64> {
    Ok(revision_counter::table
        .filter(revision_counter::id.eq(1))
        .select(revision_counter::value)
        .get_result(conn)?)
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
fn people_of_new_enrollments(
    conn: &mut DbConn,
    page: &[Change],
    after: i64,
    visible: &[String],
) -> Result<Vec<Change>> {
    let persons: Vec<String> = page
        .iter()
        .filter(|c| c.collection == Collection::Enrollments.name() && !c.deleted)
        .filter_map(|c| match &c.data {
            Some(Record::Enrollment(enrollment)) => Some(enrollment.person_id.clone()),
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
    Ok(changes(Collection::People, rows))
}

/// A trainer sees a person through an enrollment in one of their courses: when the page removes
/// the last such enrollment, it also tells the device to drop the person.
fn people_no_longer_enrolled(
    conn: &mut DbConn,
    page: &[Change],
    visible: &[String],
) -> Result<Vec<Change>> {
    let removed: BTreeSet<String> = page
        .iter()
        .filter(|c| c.collection == Collection::Enrollments.name() && c.deleted)
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

/// Which records a scope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Every change in the window: records and deletions.
    Feed,
    /// The live records of courses that came into scope, the courses' own (not the unit tree,
    /// nor a trainee's own person record, which do not come with a course).
    Backfill,
}

/// Who is pulling and from where: the filters every collection's feed applies.
struct Scope<'a> {
    caller: &'a Caller,
    /// None: every course (administrators).
    courses: Option<&'a [String]>,
    part: Part,
    after: i64,
    /// The revision read before the feed: the collections are read one after another, and a
    /// revision committed meanwhile could pass a lower one that an earlier query missed. Up to
    /// here, every revision was committed before any query ran.
    upto: i64,
    /// How a trainer's attendance is found; see `AttendancePath`.
    attendance_path: AttendancePath,
}

/// Two ways to read a trainer's attendance feed in revision order. By session: one range of the
/// (session, revision) index per session of the trainer's courses, then a sort; cheap when the
/// courses hold a small share of all attendance, but a page then sorts every remaining row of
/// the scope. By revision: the revision index walked in order, each row kept when its session is
/// the trainer's; no sort, and when most rows are in scope it reads little more than the page.
/// SQLite's planner cannot tell the two cases apart (it sees a list of sessions, not how much of
/// the table they hold), so on SQLite the feed decides from the share of sessions and tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AttendancePath {
    BySession,
    ByRevision,
}

impl AttendancePath {
    /// By revision when the trainer's courses hold at least a quarter of all sessions: the walk
    /// then reads at most about four rows per row it sends.
    fn choose(conn: &mut DbConn, caller: &Caller, courses: Option<&[String]>) -> Result<Self> {
        let Some(courses) = courses.filter(|_| caller.role.pulls_as_course_staff()) else {
            return Ok(AttendancePath::BySession);
        };
        // PostgreSQL's planner weighs both ways from its statistics.
        if let DbConn::Postgres(_) = conn {
            return Ok(AttendancePath::BySession);
        }
        let all: i64 = sessions::table.count().get_result(conn)?;
        let in_scope: i64 = sessions::table
            .filter(sessions::course_id.eq_any(courses))
            .count()
            .get_result(conn)?;
        Ok(if in_scope * 4 >= all {
            AttendancePath::ByRevision
        } else {
            AttendancePath::BySession
        })
    }
}

/// A table's rows with a revision in the scope's window; for a backfill, the live ones only (a
/// device that never held a record has nothing to delete).
macro_rules! window {
    ($scope:expr, $table:ident) => {{
        let query = $table::table
            .filter($table::rev.gt($scope.after))
            .filter($table::rev.le($scope.upto))
            .into_boxed();
        match $scope.part {
            Part::Feed => query,
            Part::Backfill => query.filter($table::deleted_at.is_null()),
        }
    }};
}

impl<'a> Scope<'a> {
    fn new(
        conn: &mut DbConn,
        caller: &'a Caller,
        courses: Option<&'a [String]>,
        after: i64,
        upto: i64,
        part: Part,
    ) -> Result<Self> {
        Ok(Scope {
            caller,
            courses,
            part,
            after,
            upto,
            attendance_path: AttendancePath::choose(conn, caller, courses)?,
        })
    }

    /// Whether the scope reads a collection at all.
    fn reads(&self, collection: Collection) -> bool {
        match collection {
            Collection::Units => self.part == Part::Feed,
            Collection::People => {
                self.part == Part::Feed || self.caller.role.pulls_as_course_staff()
            }
            Collection::CourseTrainers => self.caller.role != Role::Trainee,
            Collection::Courses
            | Collection::Sessions
            | Collection::Enrollments
            | Collection::Attendance
            | Collection::Materials => true,
        }
    }

    fn courses(&self) -> Vec<String> {
        self.courses.map(<[String]>::to_vec).unwrap_or_default()
    }

    fn units(&self) -> units::BoxedQuery<'static, Backend> {
        window!(self, units)
    }

    /// People in the window. A trainer's come with an enrollment in their courses up to `last`
    /// (the page's end): a person enrolled only by a later revision arrives with that enrollment
    /// (`people_of_new_enrollments`), so that a fresh device pulling page after page receives
    /// each person once, not once for the person's revision and again for the enrollment's.
    fn people(&self, last: i64) -> people::BoxedQuery<'static, Backend> {
        let query = window!(self, people);
        match self.caller.role {
            Role::Admin => query,
            Role::Trainee => query.filter(people::id.nullable().eq(self.caller.person_id.clone())),
            // A subquery, not a list of ids: a course-sized list would be bound on every page.
            Role::Organiser | Role::Trainer => query.filter(
                people::id.eq_any(
                    enrollments::table
                        .filter(enrollments::course_id.eq_any(self.courses()))
                        .filter(enrollments::deleted_at.is_null())
                        .filter(enrollments::rev.le(last))
                        .select(enrollments::person_id),
                ),
            ),
        }
    }

    fn courses_feed(&self) -> courses::BoxedQuery<'static, Backend> {
        let query = window!(self, courses);
        match self.courses {
            None => query,
            Some(_) => query.filter(courses::id.eq_any(self.courses())),
        }
    }

    /// None for trainees, who do not receive course-trainer assignments.
    fn course_trainers(&self) -> Option<course_trainers::BoxedQuery<'static, Backend>> {
        if self.caller.role == Role::Trainee {
            return None;
        }
        let query = window!(self, course_trainers);
        Some(match self.courses {
            None => query,
            Some(_) => query.filter(course_trainers::course_id.eq_any(self.courses())),
        })
    }

    fn sessions(&self) -> sessions::BoxedQuery<'static, Backend> {
        let query = window!(self, sessions);
        match self.courses {
            None => query,
            Some(_) => query.filter(sessions::course_id.eq_any(self.courses())),
        }
    }

    fn enrollments(&self) -> enrollments::BoxedQuery<'static, Backend> {
        let query = window!(self, enrollments);
        match self.caller.role {
            Role::Admin => query,
            // Their own enrollments in the courses they see: a withdrawal takes the course, and
            // the enrollment with it, off the device, as a first pull would have it.
            Role::Trainee => query
                .filter(
                    enrollments::person_id
                        .nullable()
                        .eq(self.caller.person_id.clone()),
                )
                .filter(enrollments::course_id.eq_any(self.courses())),
            Role::Organiser | Role::Trainer => {
                query.filter(enrollments::course_id.eq_any(self.courses()))
            }
        }
    }

    fn attendance(&self) -> attendance::BoxedQuery<'static, Backend> {
        let query = window!(self, attendance);
        match self.caller.role {
            Role::Admin => query,
            Role::Trainee => query
                .filter(
                    attendance::person_id
                        .nullable()
                        .eq(self.caller.person_id.clone()),
                )
                .filter(
                    attendance::session_id.eq_any(
                        sessions::table
                            .filter(sessions::course_id.eq_any(self.courses()))
                            .select(sessions::id),
                    ),
                ),
            Role::Organiser | Role::Trainer => {
                let trainer_sessions = sessions::table
                    .filter(sessions::course_id.eq_any(self.courses()))
                    .select(sessions::id);
                match self.attendance_path {
                    AttendancePath::BySession => {
                        query.filter(attendance::session_id.eq_any(trainer_sessions))
                    }
                    // `session_id || ''` is the same value, but no index on session_id can
                    // serve it, so the planner walks the revision index instead.
                    AttendancePath::ByRevision => {
                        query.filter(attendance::session_id.concat("").eq_any(trainer_sessions))
                    }
                }
            }
        }
    }

    fn materials(&self) -> materials::BoxedQuery<'static, Backend> {
        let query = window!(self, materials);
        match self.courses {
            None => query,
            Some(_) => query.filter(materials::course_id.eq_any(self.courses())),
        }
    }
}

/// Whether any row of the table, in anyone's scope, has a revision in the scope's window: one
/// read of the revision index, by a statement prepared once per connection. The scoped queries
/// are prepared anew on every page (their list of courses varies) and some filter through a
/// subquery over enrollments or sessions; most pages of a feed hold one or two collections, and
/// the others then cost only this probe.
macro_rules! window_has_rows {
    ($table:ident, $scope:expr, $conn:expr) => {
        diesel::select(diesel::dsl::exists(
            $table::table
                .filter($table::rev.gt($scope.after))
                .filter($table::rev.le($scope.upto)),
        ))
        .get_result::<bool>($conn)?
    };
}

/// The first `take` revisions of one collection's feed.
macro_rules! feed_revisions {
    ($query:expr, $table:ident, $take:expr, $conn:expr) => {
        $query
            .select($table::rev)
            .order($table::rev.asc())
            .limit($take)
            .load::<i64>($conn)?
    };
}

/// One collection's feed as changes: its rows up to revision `last`, at most `take` of them
/// when given; nothing is read for a collection the page does not hold or the scope does not
/// read.
macro_rules! feed_changes {
    ($query:expr, $table:ident, $row:ty, $collection:expr, $scope:expr, $end:expr, $conn:expr) => {
        match $end
            .rows_of($collection)
            .filter(|_| $scope.reads($collection))
        {
            Some((last, take)) => {
                let query = $query.filter($table::rev.le(last)).order($table::rev.asc());
                let query = match take {
                    Some(take) => query.limit(take),
                    None => query,
                };
                changes(
                    $collection,
                    query.select(<$row>::as_select()).load::<$row>($conn)?,
                )
            }
            None => Vec::new(),
        }
    };
}

/// What a page reads of each collection.
enum PageEnd {
    /// Every collection's rows up to `last`: a whole feed, no page limit.
    Everything { last: i64 },
    /// The collections with changes in the page, their rows up to the page's last revision.
    /// Found from revisions alone (index-only reads), so that only the rows the page sends are
    /// read and serialised.
    Revisions {
        last: i64,
        has_more: bool,
        present: Vec<Collection>,
    },
    /// Only one collection has revisions in the window, so the page is simply its next rows:
    /// read at once, `take` of them, one more than the page so that the last tells whether more
    /// follow (the common page of a catch-up after a training day: attendance alone).
    Alone {
        collection: Collection,
        last: i64,
        take: i64,
    },
}

impl PageEnd {
    /// The highest revision the page may hold.
    fn last(&self) -> i64 {
        match self {
            PageEnd::Everything { last }
            | PageEnd::Revisions { last, .. }
            | PageEnd::Alone { last, .. } => *last,
        }
    }

    /// Where the next page starts when more follow: the page holds every change in scope up to
    /// here. Not always its last change's revision: a person counted in the window may be left
    /// for the page of their enrollment (`Scope::people`).
    fn reached(&self, page: &[Change]) -> i64 {
        match self {
            PageEnd::Everything { last } | PageEnd::Revisions { last, .. } => *last,
            PageEnd::Alone { last, .. } => page.last().map_or(*last, |change| change.rev),
        }
    }

    /// The highest revision and how many rows the page reads of `collection`; None: none.
    fn rows_of(&self, collection: Collection) -> Option<(i64, Option<i64>)> {
        match self {
            PageEnd::Everything { last } => Some((*last, None)),
            PageEnd::Revisions { last, present, .. } => {
                present.contains(&collection).then_some((*last, None))
            }
            PageEnd::Alone {
                collection: alone,
                last,
                take,
            } => (*alone == collection).then_some((*last, Some(*take))),
        }
    }

    /// Cuts the rows read to the page; whether more follow.
    fn cut(&self, rows: &mut Vec<Change>) -> bool {
        match self {
            PageEnd::Everything { .. } => false,
            PageEnd::Revisions { has_more, .. } => *has_more,
            PageEnd::Alone { take, .. } => {
                let page = usize::try_from(take - 1).unwrap_or(usize::MAX);
                let more = rows.len() > page;
                rows.truncate(page);
                more
            }
        }
    }
}

/// The collections the scope reads with a revision in its window, in anyone's scope.
fn collections_in_window(conn: &mut DbConn, scope: &Scope) -> Result<Vec<Collection>> {
    let mut present = Vec::new();
    for collection in Collection::ALL {
        if !scope.reads(collection) {
            continue;
        }
        let in_window = match collection {
            Collection::Units => window_has_rows!(units, scope, conn),
            Collection::People => window_has_rows!(people, scope, conn),
            Collection::Courses => window_has_rows!(courses, scope, conn),
            Collection::CourseTrainers => window_has_rows!(course_trainers, scope, conn),
            Collection::Sessions => window_has_rows!(sessions, scope, conn),
            Collection::Enrollments => window_has_rows!(enrollments, scope, conn),
            Collection::Attendance => window_has_rows!(attendance, scope, conn),
            Collection::Materials => window_has_rows!(materials, scope, conn),
        };
        if in_window {
            present.push(collection);
        }
    }
    Ok(present)
}

/// The first `take` revisions of a collection's feed in scope.
fn scoped_revisions(
    conn: &mut DbConn,
    scope: &Scope,
    collection: Collection,
    take: i64,
) -> Result<Vec<i64>> {
    Ok(match collection {
        Collection::Units => feed_revisions!(scope.units(), units, take, conn),
        Collection::People => feed_revisions!(scope.people(scope.upto), people, take, conn),
        Collection::Courses => feed_revisions!(scope.courses_feed(), courses, take, conn),
        Collection::CourseTrainers => match scope.course_trainers() {
            Some(query) => feed_revisions!(query, course_trainers, take, conn),
            None => Vec::new(),
        },
        Collection::Sessions => feed_revisions!(scope.sessions(), sessions, take, conn),
        Collection::Enrollments => feed_revisions!(scope.enrollments(), enrollments, take, conn),
        Collection::Attendance => feed_revisions!(scope.attendance(), attendance, take, conn),
        Collection::Materials => feed_revisions!(scope.materials(), materials, take, conn),
    })
}

/// Where a page of `limit` changes ends and which collections it reads; None when nothing in
/// the window can be in it.
fn page_end(conn: &mut DbConn, scope: &Scope, limit: i64) -> Result<Option<PageEnd>> {
    let take = limit + 1;
    let in_window = collections_in_window(conn, scope)?;
    if let [collection] = in_window[..] {
        return Ok(Some(PageEnd::Alone {
            collection,
            last: scope.upto,
            take,
        }));
    }
    let mut firsts: Vec<(Collection, Vec<i64>)> = Vec::with_capacity(in_window.len());
    for collection in in_window {
        firsts.push((collection, scoped_revisions(conn, scope, collection, take)?));
    }
    let mut revisions: Vec<i64> = firsts.iter().flat_map(|(_, revs)| revs).copied().collect();
    revisions.sort_unstable();
    let has_more = revisions.len() as i64 > limit;
    let end = revisions
        .len()
        .min(usize::try_from(limit).unwrap_or(usize::MAX));
    let Some(&last) = revisions[..end].last() else {
        return Ok(None);
    };
    let present = firsts
        .into_iter()
        .filter(|(_, revs)| revs.first().is_some_and(|&first| first <= last))
        .map(|(collection, _)| collection)
        .collect();
    Ok(Some(PageEnd::Revisions {
        last,
        has_more,
        present,
    }))
}

/// The next `limit` changes in the scope's window, in revision order, and where the next page
/// starts when more follow; everything in the window when `limit` is None. First the revisions
/// alone (index-only reads) find where the page ends and which collections it holds; then only
/// those collections' rows up to there are read and serialised, instead of a page's worth from
/// every collection. When a single collection has revisions in the window, its rows are read
/// at once (see `PageEnd::Alone`).
fn feed(
    conn: &mut DbConn,
    scope: &Scope,
    limit: Option<i64>,
) -> Result<(Vec<Change>, Option<i64>)> {
    let end = match limit {
        None => PageEnd::Everything { last: scope.upto },
        Some(limit) => match page_end(conn, scope, limit)? {
            Some(end) => end,
            None => return Ok((Vec::new(), None)),
        },
    };

    let mut out = Vec::new();
    out.extend(feed_changes!(
        scope.units(),
        units,
        Unit,
        Collection::Units,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.people(end.last()),
        people,
        Person,
        Collection::People,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.courses_feed(),
        courses,
        Course,
        Collection::Courses,
        scope,
        end,
        conn
    ));
    if let Some(query) = scope.course_trainers() {
        out.extend(feed_changes!(
            query,
            course_trainers,
            CourseTrainer,
            Collection::CourseTrainers,
            scope,
            end,
            conn
        ));
    }
    out.extend(feed_changes!(
        scope.sessions(),
        sessions,
        Session,
        Collection::Sessions,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.enrollments(),
        enrollments,
        Enrollment,
        Collection::Enrollments,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.attendance(),
        attendance,
        Attendance,
        Collection::Attendance,
        scope,
        end,
        conn
    ));
    out.extend(feed_changes!(
        scope.materials(),
        materials,
        Material,
        Collection::Materials,
        scope,
        end,
        conn
    ));
    out.sort_by_key(|c| c.rev);
    let has_more = end.cut(&mut out);
    let reached = has_more.then(|| end.reached(&out));
    Ok((out, reached))
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
    let trainers: Vec<String> = if caller.role == Role::Trainee {
        Vec::new()
    } else {
        course_trainers::table
            .filter(course_trainers::course_id.eq_any(ids.clone()))
            .select(course_trainers::id)
            .load(conn)?
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_300_000_000;
    const RETENTION: i64 = 180 * 86_400_000;

    #[test]
    fn a_cursor_is_too_old_past_the_retention_and_only_then() {
        assert!(check_age(NOW, NOW - RETENTION, RETENTION).is_ok());
        assert!(check_age(NOW, NOW + 1_000, RETENTION).is_ok());
        let gone = check_age(NOW, NOW - RETENTION - 1, RETENTION).unwrap_err();
        assert_eq!(gone.code(), "resync_required");
    }

    /// Found by the `cursor` fuzz target: `now - issued_ms` overflowed (a panic with overflow
    /// checks; without them it wrapped and took the cursor for a fresh one).
    #[test]
    fn the_earliest_issue_time_is_too_old_rather_than_an_overflow() {
        let gone = check_age(NOW, i64::MIN, RETENTION).unwrap_err();
        assert_eq!(gone.code(), "resync_required");
        assert!(check_age(i64::MIN, i64::MAX, RETENTION).is_ok());
    }
}
