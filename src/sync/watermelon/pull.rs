//! WatermelonDB's pull: one answer, the pages of a first sync and of an incremental pull, each
//! change sorted into created, updated and deleted against what the device holds.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::state::{
    MergedPush, Pulled, Pushed, merged_pushes, pulled_state, pushed_records, record_pull,
};
use super::tables::RawRecord;
use super::{Settings, timestamp_of};
use crate::db::identity::Epoch;
use crate::db::{DbConn, now_ms};
use crate::domain::Caller;
use crate::domain::enrollments::Enrollments;
use crate::domain::sessions::Sessions;
use crate::error::{Error, Result};
use crate::sync::pull::{self, Change, Record, Since};
use crate::sync::records::{Collection, ROWS_PER_STATEMENT};

#[derive(Debug, Default, Serialize)]
pub struct TableChanges {
    pub created: Vec<RawRecord>,
    pub updated: Vec<RawRecord>,
    pub deleted: Vec<String>,
}

/// A pull's changes, by table.
type Changes = BTreeMap<&'static str, TableChanges>;

#[derive(Debug, Serialize)]
pub struct PullResponse {
    pub changes: Changes,
    /// Null on a page of a first sync that more pages follow.
    pub timestamp: Option<i64>,
    /// Where the next page of a first sync starts (pages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Whether more pages of a first sync follow (pages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

impl PullResponse {
    /// How many records and deletions the response carries.
    pub fn records(&self) -> usize {
        self.changes
            .values()
            .map(|t| t.created.len() + t.updated.len() + t.deleted.len())
            .sum()
    }
}

/// What WatermelonDB sends with a pull after a schema migration: tables and columns the app
/// added, whose records it needs in full (its `from` version does not matter: the server's
/// tables have a single version).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Migration {
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub columns: Vec<MigratedColumns>,
}

#[derive(Debug, serde::Deserialize)]
pub struct MigratedColumns {
    pub table: String,
    pub columns: Vec<String>,
}

impl Migration {
    /// The synced tables the app needs in full. A table or column the server does not sync is
    /// the app's own business.
    fn tables(&self) -> BTreeSet<Collection> {
        let named = self
            .tables
            .iter()
            .chain(self.columns.iter().map(|c| &c.table));
        named.filter_map(|name| Collection::parse(name)).collect()
    }
}

/// How one change reaches the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Created,
    Updated,
    Deleted,
}

/// Collects changes for the response; the first word on a record is kept.
#[derive(Default)]
struct Collector {
    seen: BTreeSet<(Collection, String)>,
    changes: Changes,
}

impl Collector {
    fn new() -> Self {
        let mut collector = Collector::default();
        for collection in Collection::ALL {
            collector
                .changes
                .insert(collection.name(), TableChanges::default());
        }
        collector
    }

    fn has(&self, collection: Collection, id: &str) -> bool {
        self.seen.contains(&(collection, id.to_owned()))
    }

    fn add(&mut self, change: &Change, kind: Kind) {
        if !self.seen.insert((change.collection, change.id.clone())) {
            return;
        }
        let collection = change.collection;
        let table = self.changes.entry(collection.name()).or_default();
        match (kind, &change.data) {
            (Kind::Deleted, _) | (_, None) => table.deleted.push(change.id.clone()),
            (kind, Some(record)) => {
                let raw = RawRecord {
                    collection,
                    id: change.id.clone(),
                    record: record.clone(),
                };
                match kind {
                    Kind::Created => table.created.push(raw),
                    _ => table.updated.push(raw),
                }
            }
        }
    }
}

/// A pull under way: who pulls, with which settings, in which epoch, and when it was asked for.
struct Pulling<'a> {
    caller: &'a Caller,
    settings: &'a Settings<'a>,
    epoch: Epoch,
    now: i64,
}

impl<'a> Pulling<'a> {
    fn start(conn: &mut DbConn, caller: &'a Caller, settings: &'a Settings<'a>) -> Result<Self> {
        Ok(Pulling {
            caller,
            settings,
            epoch: Epoch::current(conn)?,
            now: now_ms(),
        })
    }

    /// Where the device stood at the pull it acknowledges by naming `last_pulled_at`, while the
    /// deletions since are still known.
    fn acknowledged(&self, conn: &mut DbConn, last_pulled_at: i64) -> Result<Pulled> {
        let previous = pulled_state(conn, self.caller, self.epoch, last_pulled_at)?;
        pull::check_age(
            self.now,
            previous.issued_at,
            self.settings.tombstone_retention_ms,
        )?;
        Ok(previous)
    }

    /// A page that more pages follow: its changes and the cursor where the next starts; no
    /// timestamp until the last page. Nothing is recorded before the last page, so that a pull
    /// cut between pages starts over from the same state and sorts its records the same way.
    fn continued(&self, changes: Changes, delta: &pull::Delta) -> PullResponse {
        let next = delta.next_cursor(self.caller, self.now, self.epoch);
        PullResponse {
            changes,
            timestamp: None,
            cursor: Some(next.encode(self.settings.cursor_key)),
            has_more: Some(true),
        }
    }

    /// The answer that ends the pull (its one answer, or its last page): its changes and its
    /// timestamp, once what the device then holds is recorded (`record_pull`, which forgets
    /// what the pull the device `acknowledged` made useless).
    fn finish(
        &self,
        conn: &mut DbConn,
        acknowledged: Option<&Pulled>,
        delta: &pull::Delta,
        changes: Changes,
    ) -> Result<PullResponse> {
        let timestamp = timestamp_of(self.epoch, delta.next_rev)?;
        record_pull(
            conn,
            self.caller,
            self.settings,
            acknowledged,
            timestamp,
            delta,
            self.now,
        )?;
        Ok(PullResponse {
            changes,
            timestamp: Some(timestamp),
            cursor: None,
            has_more: None,
        })
    }
}

/// Answers a WatermelonDB pull and records what the device then holds.
pub fn pull(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &Settings,
    last_pulled_at: Option<i64>,
    migration: Option<&Migration>,
) -> Result<PullResponse> {
    let pulling = Pulling::start(conn, caller, settings)?;
    let previous = last_pulled_at
        .map(|at| pulling.acknowledged(conn, at))
        .transpose()?;
    let since = previous.as_ref().map(|previous| &previous.since);
    let delta = pull::delta(conn, caller, since, None)?;
    let mut out = Collector::new();
    match &previous {
        // A first sync: the device holds nothing, so every live record is new to it.
        None => {
            for change in delta.all().filter(|c| !c.deleted) {
                out.add(change, Kind::Created);
            }
        }
        Some(previous) => classify(conn, caller, &delta, previous, true, &mut out)?,
    }
    if let Some(migration) = migration {
        // Tables or columns the app added: their records in full (those it already has are
        // updated in place, which fills the new columns).
        let wanted = migration.tables();
        if !wanted.is_empty() {
            let everything = pull::delta(conn, caller, None, None)?;
            for change in everything.all().filter(|c| !c.deleted) {
                if wanted.contains(&change.collection) {
                    let kind = if migration
                        .tables
                        .iter()
                        .any(|t| t == change.collection.name())
                    {
                        Kind::Created
                    } else {
                        Kind::Updated
                    };
                    out.add(change, kind);
                }
            }
        }
    }
    pulling.finish(conn, previous.as_ref(), &delta, out.changes)
}

/// The changes a page of a first sync carries by default, and at most (as the native pull's).
pub const DEFAULT_PAGE: i64 = pull::DEFAULT_PAGE;

pub const MAX_PAGE: i64 = pull::MAX_PAGE;

/// One page of a first sync, for a scope too large to answer at once: the feed of
/// `pull::page` (records in revision order after the previous page's cursor, with the scope
/// changes since), every live record `created`. The device gathers the pages and hands them to
/// WatermelonDB as one pull; only the last carries the timestamp, and only then is the pull
/// recorded. The server holds one page at a time.
pub fn first_pull_page(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &Settings,
    cursor: Option<&str>,
    limit: i64,
) -> Result<PullResponse> {
    pull::check_page_limit(limit)?;
    let pulling = Pulling::start(conn, caller, settings)?;
    let since = cursor
        .map(|raw| pull::resume(raw, caller, settings, pulling.epoch, pulling.now))
        .transpose()?;
    let delta = pull::delta(conn, caller, since.as_ref(), Some(limit))?;
    let mut out = Collector::new();
    for change in delta.all() {
        out.add(
            change,
            if change.deleted {
                Kind::Deleted
            } else {
                Kind::Created
            },
        );
    }
    if delta.has_more {
        return Ok(pulling.continued(out.changes, &delta));
    }
    Ok(PullResponse {
        has_more: Some(false),
        ..pulling.finish(conn, None, &delta, out.changes)?
    })
}

/// One page of an incremental pull, for a device away while more changed than one answer
/// should hold: the changes after the previous page's cursor (after `last_pulled_at` for the
/// first page), at most `limit` of the feed, each sorted created/updated/deleted against what
/// the device held at `last_pulled_at`, as one answer sorts them. The device gathers the pages
/// and hands them to WatermelonDB as one pull; only the last carries the timestamp, and only
/// then is the pull recorded (a cut pull starts over from `last_pulled_at`). The server holds
/// one page at a time.
pub fn pull_page(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &Settings,
    last_pulled_at: i64,
    cursor: Option<&str>,
    limit: i64,
) -> Result<PullResponse> {
    pull::check_page_limit(limit)?;
    let pulling = Pulling::start(conn, caller, settings)?;
    let previous = pulling.acknowledged(conn, last_pulled_at)?;
    let position = match cursor {
        None => Since::at(previous.since.rev, previous.since.courses.clone()),
        Some(raw) => {
            let position = pull::resume(raw, caller, settings, pulling.epoch, pulling.now)?;
            // A page follows its pull's earlier pages: never from before `last_pulled_at`.
            if position.rev < previous.since.rev {
                return Err(Error::bad_request(
                    "invalid_cursor",
                    "the cursor is not one of this pull's pages; start over without one",
                ));
            }
            position
        }
    };
    // A course that came into scope is backfilled in pages too, before the feed goes on;
    // `classify` knows its records for new ones by the courses the device held.
    let delta = pull::delta(conn, caller, Some(&position), Some(limit))?;
    let mut out = Collector::new();
    classify(conn, caller, &delta, &previous, !delta.has_more, &mut out)?;
    if delta.has_more {
        return Ok(pulling.continued(out.changes, &delta));
    }
    Ok(PullResponse {
        has_more: Some(false),
        ..pulling.finish(conn, Some(&previous), &delta, out.changes)?
    })
}

/// Sorts an incremental pull into created, updated and deleted, leaving out the device's own
/// writes where its copy is the server's state.
///
/// `previous` is the pull the device acknowledged, where it stood (the delta may start later: a
/// page of an incremental pull in pages); `with_merged` adds the records it pushed that were
/// merged into others (once per pull: on its last page).
fn classify(
    conn: &mut DbConn,
    caller: &Caller,
    delta: &pull::Delta,
    previous: &Pulled,
    with_merged: bool,
    out: &mut Collector,
) -> Result<()> {
    let (since, issued_at) = (&previous.since, previous.issued_at);
    let pushed = pushed_records(
        conn,
        caller,
        since.rev,
        delta
            .added
            .iter()
            .chain(&delta.new_people)
            .chain(&delta.feed),
    )?;
    for change in &delta.removed {
        out.add(change, Kind::Deleted);
    }
    // People a trainer sees through enrollments: held already if enrolled in a course the
    // device held, unchanged since its last pull.
    let people: Vec<String> = delta
        .all()
        .filter(|c| c.collection == Collection::People && !c.deleted)
        .map(|c| c.id.clone())
        .collect();
    let held_people = held_people(conn, &people, since, issued_at)?;
    // A record of a course that came into scope is new to the device, unless it is a person
    // the device has through another course (sent only if changed, below).
    for change in &delta.added {
        if change.collection == Collection::People && held_people.contains(&change.id) {
            continue;
        }
        let own = pushed.get(&(change.collection, change.id.clone()));
        out.add(change, own.map_or(Kind::Created, Pushed::kind));
    }
    // The feed also carries records of such a course: those written after the device's
    // position, which its backfill leaves to the feed.
    let new_courses = NewCourses::read(conn, since, delta)?;
    for change in delta.new_people.iter().chain(&delta.feed) {
        if out.has(change.collection, &change.id) {
            continue;
        }
        let key = (change.collection, change.id.clone());
        let kind = match pushed.get(&key) {
            // The device deleted it or holds exactly this state: nothing to send.
            Some(own) if own.canonical_id == change.id && own.in_sync_rev == Some(change.rev) => {
                continue;
            }
            _ if change.deleted => Kind::Deleted,
            Some(own) if own.canonical_id == change.id => own.kind(),
            _ if change.created_ms > issued_at => Kind::Created,
            _ if new_courses.holds(change) => Kind::Created,
            _ if change.collection == Collection::People => {
                if held_people.contains(&change.id) {
                    Kind::Updated
                } else {
                    Kind::Created
                }
            }
            _ => Kind::Updated,
        };
        out.add(change, kind);
    }
    // Records the device created under an id that the server merged into an existing record
    // (the same trainee's attendance recorded on two devices): the device drops its id and
    // takes the server's record.
    if !with_merged {
        return Ok(());
    }
    for MergedPush {
        collection,
        record_id,
        canonical_id,
    } in merged_pushes(conn, caller, since.rev)?
    {
        out.add(
            &Change {
                collection,
                id: record_id,
                rev: 0,
                deleted: true,
                data: None,
                created_ms: 0,
            },
            Kind::Deleted,
        );
        if out.has(collection, &canonical_id) {
            continue;
        }
        if let Some(change) = load_change(conn, collection, &canonical_id)? {
            let kind = if change.deleted {
                Kind::Deleted
            } else if change.created_ms > issued_at {
                Kind::Created
            } else {
                Kind::Updated
            };
            out.add(&change, kind);
        }
    }
    Ok(())
}

/// The courses that came into the device's scope since its last pull, and the sessions of them
/// that a pull's attendance names: their records are new to the device.
struct NewCourses {
    courses: BTreeSet<String>,
    sessions: BTreeSet<String>,
}

impl NewCourses {
    fn read(conn: &mut DbConn, since: &Since, delta: &pull::Delta) -> Result<Self> {
        let courses: BTreeSet<String> = match (&since.courses, &delta.visible) {
            (Some(held), Some(visible)) => visible
                .iter()
                .filter(|course| !held.contains(course))
                .cloned()
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut sessions = BTreeSet::new();
        if !courses.is_empty() {
            let named: BTreeSet<&str> = delta
                .feed
                .iter()
                .filter_map(|change| match &change.data {
                    Some(Record::Attendance(record)) => Some(record.session_id.as_str()),
                    _ => None,
                })
                .collect();
            let named: Vec<&str> = named.into_iter().collect();
            let new_courses: Vec<String> = courses.iter().cloned().collect();
            for chunk in named.chunks(ROWS_PER_STATEMENT) {
                sessions.extend(Sessions::ids_among_of_courses(conn, chunk, &new_courses)?);
            }
        }
        Ok(NewCourses { courses, sessions })
    }

    /// Whether a live record belongs to one of the courses.
    fn holds(&self, change: &Change) -> bool {
        let course = match &change.data {
            Some(Record::Courses(course)) => &course.id,
            Some(Record::CourseTrainers(assignment)) => &assignment.course_id,
            Some(Record::Sessions(session)) => &session.course_id,
            Some(Record::Enrollments(enrollment)) => &enrollment.course_id,
            Some(Record::Materials(material)) => &material.course_id,
            Some(Record::Attendance(record)) => return self.sessions.contains(&record.session_id),
            Some(Record::Units(_) | Record::People(_)) | None => return false,
        };
        self.courses.contains(course)
    }
}

/// Of `candidates`, the people enrolled in a course the device held at `since` through an
/// enrollment it had then (unchanged since, or created before that pull was issued, then
/// changed, e.g. marked completed): the device has them.
fn held_people(
    conn: &mut DbConn,
    candidates: &[String],
    since: &Since,
    issued_at: i64,
) -> Result<BTreeSet<String>> {
    if candidates.is_empty() {
        return Ok(BTreeSet::new());
    }
    Ok(Enrollments::people_enrolled_by(
        conn,
        candidates,
        since.courses.as_deref(),
        since.rev,
        issued_at,
    )?
    .into_iter()
    .collect())
}

/// A device-writable record as a feed change.
fn load_change(conn: &mut DbConn, collection: Collection, id: &str) -> Result<Option<Change>> {
    Ok(pull::changes_by_id(conn, collection, &[id])?.remove(id))
}
