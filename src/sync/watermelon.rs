//! WatermelonDB's sync protocol as a translation onto the native one, so that an app built on
//! WatermelonDB's `synchronize()` gets the same scopes, merge rules, conflict log and quarantine.
//!
//! - Pull: the feed of `pull::delta` in one answer, or in the native pull's pages (the kit
//!   gathers them), so that a large scope or a long absence's changes are never held at once.
//!   WatermelonDB's `timestamp` is the revision everything up to which was delivered, plus one
//!   (WatermelonDB wants a number above 0, and a fresh database is at revision 0), with the
//!   database's epoch tag in the bits above the revision's 40 (`db::identity`): a timestamp
//!   from before a restore is answered 410. Revisions are commit-ordered, so "after the timestamp"
//!   never skips a row, where a wall-clock millisecond would. The courses the device held at each
//!   timestamp are kept server-side (`watermelon_pulls`), as the native cursor carries them, so a
//!   course leaving or entering the scope deletes or backfills its records.
//! - Push: each record becomes a native mutation (an upsert of the columns it sets, or a delete)
//!   applied by `push::apply_batch`. The client has no clock, so the server stamps the fields when
//!   the push arrives: per field, the later push to the server wins, and what it overwrote from
//!   another device is in the conflict log. A push may be any part of the device's changes (the
//!   kit sends pages before `synchronize()` pulls); a record sent again before the device pulls
//!   (a page whose answer was lost) is answered as the mutation it became, not applied again.
//! - No echo: records a device pushed are remembered (`watermelon_pushed`) until a pull issued
//!   after the push is acknowledged. They come back as `updated` (never `created`), and not at all
//!   while the device's copy is exactly the server's state; records it deleted are remembered
//!   while they stay deleted, so that one revived by another device's later edit comes back
//!   `created`.
//!
//! Knows no HTTP.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::clock::ServerClock;
use super::cursor::Cursor;
use super::merge::Fields;
use super::mutation_log;
use super::pull::{self, Change, Record, Since};
use super::push::{self, MutationResult, Op, Status};
use super::records::{Collection, ROWS_PER_STATEMENT};
use crate::db::identity::{Epoch, TIMESTAMP_REVISION_BITS};
use crate::db::schema::{
    attendance, enrollments, revision_counter, sessions, watermelon_pulls, watermelon_pushed,
};
use crate::db::{DbConn, now_ms, on_backend, write_tx};
use crate::domain::Caller;
use crate::error::{Error, Result};

/// The type of a WatermelonDB column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Number,
}

/// One synced column: its name, type and whether it may be null.
pub type Column = (&'static str, ColumnType, bool);

use ColumnType::{Number, String as Text};

/// The WatermelonDB view of every synced collection: the record's data columns as the admin API
/// names and formats them (ids, RFC 3339 times, ISO dates). Server bookkeeping (`rev`,
/// `created_at`, `updated_at`, who recorded attendance) is left out: WatermelonDB keeps its own
/// sync state and its own `created_at`/`updated_at` conventions, and a column the server
/// rewrites on every write would make every pushed record differ from the device's copy.
/// `api-spec/watermelondb/schema.js` declares the same tables and columns (a test compares them).
pub const TABLES: [(Collection, &[Column]); 8] = [
    (
        Collection::Units,
        &[
            ("code", Text, false),
            ("name", Text, false),
            ("kind", Text, false),
            ("parent_id", Text, true),
            ("valid_from", Text, true),
            ("valid_to", Text, true),
            ("merged_into_id", Text, true),
        ],
    ),
    (
        Collection::People,
        &[
            ("full_name", Text, false),
            ("birth_date", Text, true),
            ("gender", Text, true),
            ("phone", Text, true),
            ("position", Text, false),
            ("unit_id", Text, true),
            ("term", Text, true),
        ],
    ),
    (
        Collection::Courses,
        &[
            ("code", Text, true),
            ("title", Text, false),
            ("description", Text, true),
            ("organizing_unit_id", Text, true),
            ("management_level", Text, false),
            ("start_date", Text, false),
            ("end_date", Text, false),
            ("place", Text, true),
        ],
    ),
    (
        Collection::CourseTrainers,
        &[
            ("course_id", Text, false),
            ("user_id", Text, false),
            ("role", Text, false),
        ],
    ),
    (
        Collection::Sessions,
        &[
            ("course_id", Text, false),
            ("topic", Text, false),
            ("starts_at", Text, false),
            ("ends_at", Text, false),
            ("place", Text, true),
            ("trainer_id", Text, true),
        ],
    ),
    (
        Collection::Enrollments,
        &[
            ("course_id", Text, false),
            ("person_id", Text, false),
            ("status", Text, false),
        ],
    ),
    (
        Collection::Attendance,
        &[
            ("session_id", Text, false),
            ("person_id", Text, false),
            ("status", Text, false),
            ("checked_in_at", Text, true),
            ("note", Text, true),
        ],
    ),
    (
        Collection::Materials,
        &[
            ("course_id", Text, false),
            ("title", Text, false),
            ("kind", Text, false),
            ("language", Text, false),
            ("file_name", Text, true),
            ("content_type", Text, true),
            ("size_bytes", Number, true),
            ("sha256", Text, true),
            ("version", Number, false),
        ],
    ),
];

fn columns(collection: Collection) -> &'static [Column] {
    TABLES
        .iter()
        .find(|(c, _)| *c == collection)
        .map_or(&[], |(_, columns)| columns)
}

/// A record as WatermelonDB stores it: `id` and the view's columns. It stays typed until the
/// response is written, one record at a time: a first sync holds a whole scope of these.
#[derive(Debug)]
pub struct RawRecord {
    collection: Collection,
    id: String,
    record: Record,
}

impl Serialize for RawRecord {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let data = serde_json::to_value(&self.record).map_err(S::Error::custom)?;
        let columns = columns(self.collection);
        let mut raw = serializer.serialize_map(Some(columns.len() + 1))?;
        raw.serialize_entry("id", &self.id)?;
        for (name, _, _) in columns {
            raw.serialize_entry(name, data.get(*name).unwrap_or(&Value::Null))?;
        }
        raw.end()
    }
}

/// Whether the device's copy of a record (its raw record as pushed) equals the server's.
fn same_columns(collection: Collection, device: &Value, server: &Value) -> bool {
    columns(collection)
        .iter()
        .all(|(name, _, _)| device.get(*name).unwrap_or(&Value::Null) == &server[*name])
}

#[derive(Debug, Default, Serialize)]
pub struct TableChanges {
    pub created: Vec<RawRecord>,
    pub updated: Vec<RawRecord>,
    pub deleted: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PullResponse {
    pub changes: BTreeMap<&'static str, TableChanges>,
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
    /// A page that more pages follow: its changes and the cursor where the next starts; no
    /// timestamp until the last page.
    fn continued(
        changes: BTreeMap<&'static str, TableChanges>,
        settings: &Settings,
        next: Cursor,
    ) -> Self {
        PullResponse {
            changes,
            timestamp: None,
            cursor: Some(next.encode(settings.cursor_key)),
            has_more: Some(true),
        }
    }

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

pub struct Settings<'a> {
    pub tombstone_retention_ms: i64,
    /// Signs the cursors of a first sync's pages, as the native pull's.
    pub cursor_key: &'a [u8],
}

/// The mark a pull gives a device: the revision delivered, plus one, in the low bits; the
/// epoch's tag above them. In the first epoch it is the revision plus one, as before epochs.
fn timestamp_of(epoch: Epoch, rev: i64) -> Result<i64> {
    let mark = rev + 1;
    if mark >= 1 << TIMESTAMP_REVISION_BITS {
        return Err(Error::Internal(format!(
            "revision {rev} is beyond what a WatermelonDB timestamp carries"
        )));
    }
    Ok(epoch.timestamp_tag() << TIMESTAMP_REVISION_BITS | mark)
}

/// What a timestamp says: the epoch tag it was given in and the revision delivered, plus one.
#[derive(Debug, PartialEq, Eq)]
struct Mark {
    tag: i64,
    mark: i64,
}

impl Mark {
    fn of(timestamp: i64) -> Mark {
        Mark {
            tag: timestamp >> TIMESTAMP_REVISION_BITS,
            mark: timestamp & ((1 << TIMESTAMP_REVISION_BITS) - 1),
        }
    }
}

fn invalid_last_pulled_at(message: &str) -> Error {
    Error::bad_request("invalid_last_pulled_at", message)
}

fn resync_required(message: &str) -> Error {
    Error::Gone {
        code: "resync_required",
        message: message.to_owned(),
    }
}

/// Where a device stood at `last_pulled_at`: the pull that issued it, for this user (another
/// device of the same user is accepted, so that signing in again on a phone keeps its data).
fn pulled_state(
    conn: &mut DbConn,
    caller: &Caller,
    epoch: Epoch,
    last_pulled_at: i64,
) -> Result<(Since, i64)> {
    let position = Mark::of(last_pulled_at);
    if last_pulled_at < 1 || position.mark < 1 {
        return Err(invalid_last_pulled_at(
            "last_pulled_at must be a timestamp this server gave, or null",
        ));
    }
    if position.tag != epoch.timestamp_tag() {
        return Err(pull::restored_since_issued());
    }
    let rows: Vec<(String, Option<String>, i64)> = watermelon_pulls::table
        .filter(watermelon_pulls::user_id.eq(&caller.user_id))
        .filter(watermelon_pulls::pulled_at.eq(last_pulled_at))
        .select((
            watermelon_pulls::device_id,
            watermelon_pulls::courses,
            watermelon_pulls::issued_at,
        ))
        .load(conn)?;
    let row = rows
        .iter()
        .find(|(device, _, _)| *device == caller.device_id)
        .or(rows.first())
        .ok_or_else(|| {
            resync_required(
                "this server did not give that last_pulled_at to this account (or forgot it); \
                 reset the local database and sync again",
            )
        })?;
    let courses = row
        .1
        .as_deref()
        .map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(|e| Error::Internal(format!("stored pull state unreadable: {e}")))?;
    Ok((
        Since {
            rev: position.mark - 1,
            courses,
            backfill: Vec::new(),
        },
        row.2,
    ))
}

/// A record the device pushed, remembered until it acknowledges a pull issued after the push.
struct Pushed {
    canonical_id: String,
    in_sync_rev: Option<i64>,
    /// The push deleted it: the device holds no copy.
    deleted_on_device: bool,
}

impl Pushed {
    /// How a live record the device pushed reaches it: it holds it, unless it deleted it.
    fn kind(&self) -> Kind {
        if self.deleted_on_device {
            Kind::Created
        } else {
            Kind::Updated
        }
    }
}

/// Of the records a pull carries (`changes`), those the device pushed after the pull issued
/// at `issued_at` (that pull answered the earlier ones), and those it deleted, whenever (it
/// holds no copy of them). Read for the pull's records only: a device back from a long trip
/// has pushed thousands.
fn pushed_records<'a>(
    conn: &mut DbConn,
    caller: &Caller,
    issued_at: i64,
    changes: impl Iterator<Item = &'a Change>,
) -> Result<BTreeMap<(String, String), Pushed>> {
    let mut wanted: BTreeMap<&'static str, BTreeSet<&str>> = BTreeMap::new();
    for change in changes {
        wanted
            .entry(change.collection)
            .or_default()
            .insert(change.id.as_str());
    }
    let mut pushed = BTreeMap::new();
    for (collection, ids) in wanted {
        let ids: Vec<&str> = ids.into_iter().collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<(String, String, Option<i64>, bool)> = watermelon_pushed::table
                .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                .filter(watermelon_pushed::collection.eq(collection))
                .filter(watermelon_pushed::record_id.eq_any(chunk))
                .filter(
                    watermelon_pushed::pushed_at
                        .ge(issued_at)
                        .or(watermelon_pushed::deleted_on_device.eq(true)),
                )
                .select((
                    watermelon_pushed::record_id,
                    watermelon_pushed::canonical_id,
                    watermelon_pushed::in_sync_rev,
                    watermelon_pushed::deleted_on_device,
                ))
                .load(conn)?;
            for (record_id, canonical_id, in_sync_rev, deleted_on_device) in rows {
                pushed.insert(
                    (collection.to_owned(), record_id),
                    Pushed {
                        canonical_id,
                        in_sync_rev,
                        deleted_on_device,
                    },
                );
            }
        }
    }
    Ok(pushed)
}

/// The records the device pushed (as `pushed_records` counts them) under an id the server
/// merged into an existing record: (collection, the device's id, the server's).
fn merged_pushes(
    conn: &mut DbConn,
    caller: &Caller,
    issued_at: i64,
) -> Result<Vec<(String, String, String)>> {
    Ok(watermelon_pushed::table
        .filter(watermelon_pushed::device_id.eq(&caller.device_id))
        .filter(
            watermelon_pushed::pushed_at
                .ge(issued_at)
                .or(watermelon_pushed::deleted_on_device.eq(true)),
        )
        .filter(watermelon_pushed::canonical_id.ne(watermelon_pushed::record_id))
        .order((watermelon_pushed::collection, watermelon_pushed::record_id))
        .select((
            watermelon_pushed::collection,
            watermelon_pushed::record_id,
            watermelon_pushed::canonical_id,
        ))
        .load(conn)?)
}

/// How one change reaches the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Created,
    Updated,
    Deleted,
}

/// Collects changes for the response; the first word on a record is kept.
#[derive(Default)]
struct Collector {
    seen: BTreeSet<(&'static str, String)>,
    changes: BTreeMap<&'static str, TableChanges>,
}

impl Collector {
    fn new() -> Self {
        let mut collector = Collector::default();
        for (collection, _) in TABLES {
            collector
                .changes
                .insert(collection.name(), TableChanges::default());
        }
        collector
    }

    fn has(&self, collection: &'static str, id: &str) -> bool {
        self.seen.contains(&(collection, id.to_owned()))
    }

    fn add(&mut self, change: &Change, kind: Kind) {
        if !self.seen.insert((change.collection, change.id.clone())) {
            return;
        }
        let Some(collection) = Collection::parse(change.collection) else {
            return;
        };
        let table = self.changes.entry(change.collection).or_default();
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

/// Answers a WatermelonDB pull and records what the device then holds.
pub fn pull(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &Settings,
    last_pulled_at: Option<i64>,
    migration: Option<&Migration>,
) -> Result<PullResponse> {
    let now = now_ms();
    let epoch = Epoch::current(conn)?;
    let previous = last_pulled_at
        .map(|at| pulled_state(conn, caller, epoch, at))
        .transpose()?;
    if let Some((_, issued_at)) = &previous {
        pull::check_age(now, *issued_at, settings.tombstone_retention_ms)?;
    }
    let since = previous.as_ref().map(|(since, _)| since);
    let delta = pull::delta(conn, caller, since, None)?;
    let mut out = Collector::new();
    match &previous {
        // A first sync: the device holds nothing, so every live record is new to it.
        None => {
            for change in delta.all().filter(|c| !c.deleted) {
                out.add(change, Kind::Created);
            }
        }
        Some((since, issued_at)) => {
            classify(conn, caller, &delta, since, *issued_at, true, &mut out)?;
        }
    }
    if let Some(migration) = migration {
        // Tables or columns the app added: their records in full (those it already has are
        // updated in place, which fills the new columns).
        let wanted = migration.tables();
        if !wanted.is_empty() {
            let everything = pull::delta(conn, caller, None, None)?;
            for change in everything.all().filter(|c| !c.deleted) {
                if wanted.iter().any(|c| c.name() == change.collection) {
                    let kind = if migration.tables.iter().any(|t| t == change.collection) {
                        Kind::Created
                    } else {
                        Kind::Updated
                    };
                    out.add(change, kind);
                }
            }
        }
    }
    let timestamp = timestamp_of(epoch, delta.next_rev)?;
    let acknowledged = last_pulled_at.zip(previous.as_ref().map(|(_, issued_at)| *issued_at));
    record_pull(conn, caller, settings, acknowledged, timestamp, &delta, now)?;
    Ok(PullResponse {
        changes: out.changes,
        timestamp: Some(timestamp),
        cursor: None,
        has_more: None,
    })
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
    let now = now_ms();
    let epoch = Epoch::current(conn)?;
    let cursor = cursor
        .map(|raw| Cursor::decode(raw, settings.cursor_key, &caller.user_id))
        .transpose()?;
    if let Some(cursor) = &cursor {
        pull::check_cursor(cursor, epoch, now, settings.tombstone_retention_ms)?;
    }
    let since = cursor.map(Since::from);
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
        let next = delta.next_cursor(caller, now, epoch);
        return Ok(PullResponse::continued(out.changes, settings, next));
    }
    let timestamp = timestamp_of(epoch, delta.next_rev)?;
    record_pull(conn, caller, settings, None, timestamp, &delta, now)?;
    Ok(PullResponse {
        changes: out.changes,
        timestamp: Some(timestamp),
        cursor: None,
        has_more: Some(false),
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
    let now = now_ms();
    let epoch = Epoch::current(conn)?;
    let (since, issued_at) = pulled_state(conn, caller, epoch, last_pulled_at)?;
    pull::check_age(now, issued_at, settings.tombstone_retention_ms)?;
    let position = match cursor {
        None => Since {
            rev: since.rev,
            courses: since.courses.clone(),
            backfill: Vec::new(),
        },
        Some(raw) => {
            let cursor = Cursor::decode(raw, settings.cursor_key, &caller.user_id)?;
            pull::check_cursor(&cursor, epoch, now, settings.tombstone_retention_ms)?;
            // A page follows its pull's earlier pages: never from before `last_pulled_at`.
            if cursor.rev < since.rev {
                return Err(Error::bad_request(
                    "invalid_cursor",
                    "the cursor is not one of this pull's pages; start over without one",
                ));
            }
            Since::from(cursor)
        }
    };
    // A course that came into scope is backfilled in pages too, before the feed goes on;
    // `classify` knows its records for new ones by the courses the device held.
    let delta = pull::delta(conn, caller, Some(&position), Some(limit))?;
    let mut out = Collector::new();
    classify(
        conn,
        caller,
        &delta,
        &since,
        issued_at,
        !delta.has_more,
        &mut out,
    )?;
    if delta.has_more {
        // Nothing is recorded before the last page: a pull cut between pages starts over from
        // the same state, and sorts its records the same way.
        let next = delta.next_cursor(caller, now, epoch);
        return Ok(PullResponse::continued(out.changes, settings, next));
    }
    let timestamp = timestamp_of(epoch, delta.next_rev)?;
    record_pull(
        conn,
        caller,
        settings,
        Some((last_pulled_at, issued_at)),
        timestamp,
        &delta,
        now,
    )?;
    Ok(PullResponse {
        changes: out.changes,
        timestamp: Some(timestamp),
        cursor: None,
        has_more: Some(false),
    })
}

/// Forgets that the device deleted the records a pull brought back to it alive: those live now
/// up to the revision it delivered (`upto`). In the device's scope the pull carried them (as
/// `created`); outside it nothing is lost, since a course coming into scope brings its records
/// as new anyway. Done once, when the pull's last page is answered: a pull cut between pages
/// starts over and sends those records as `created` again. (A record revived before the pull
/// read its revisions and changed again before this runs stays remembered: its next change
/// comes as `created` to a device that holds it, which WatermelonDB applies as an update.)
fn forget_revived(conn: &mut DbConn, caller: &Caller, upto: i64) -> Result<()> {
    let deleted: Vec<(String, String)> = watermelon_pushed::table
        .filter(watermelon_pushed::device_id.eq(&caller.device_id))
        .filter(watermelon_pushed::deleted_on_device.eq(true))
        .filter(watermelon_pushed::canonical_id.eq(watermelon_pushed::record_id))
        .select((watermelon_pushed::collection, watermelon_pushed::record_id))
        .load(conn)?;
    for (collection, _) in TABLES {
        let ids: Vec<&str> = deleted
            .iter()
            .filter(|(table, _)| table == collection.name())
            .map(|(_, id)| id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let back: Vec<String> = load_changes(conn, collection, &ids)?
            .into_values()
            .filter(|change| !change.deleted && change.rev <= upto)
            .map(|change| change.id)
            .collect();
        for chunk in back.chunks(ROWS_PER_STATEMENT) {
            diesel::delete(
                watermelon_pushed::table
                    .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                    .filter(watermelon_pushed::collection.eq(collection.name()))
                    .filter(watermelon_pushed::record_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
    }
    Ok(())
}

/// Records what a device holds after a pull (its last page, `delta`) answered at `timestamp`
/// (the courses it held then), and forgets what the pull it acknowledged (`last_pulled_at` and
/// that pull's issue time; none for a first sync) made useless, and the deletions of records the
/// pull brought back to it (it holds them again).
fn record_pull(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &Settings,
    acknowledged: Option<(i64, i64)>,
    timestamp: i64,
    delta: &pull::Delta,
    now: i64,
) -> Result<()> {
    let courses = delta
        .visible
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let retention = settings.tombstone_retention_ms;
    write_tx(conn, |conn| {
        // What the device acknowledged by naming `last_pulled_at` is no longer needed: older
        // pulls, and pushes that the pull it names (issued after them) already answered.
        if let Some((at, acknowledged_at)) = acknowledged {
            diesel::delete(
                watermelon_pulls::table
                    .filter(watermelon_pulls::device_id.eq(&caller.device_id))
                    .filter(watermelon_pulls::pulled_at.lt(at)),
            )
            .execute(conn)?;
            // A deletion is kept: should the record live on, the device holds no copy of it.
            diesel::delete(
                watermelon_pushed::table
                    .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                    .filter(watermelon_pushed::pushed_at.lt(acknowledged_at))
                    .filter(watermelon_pushed::deleted_on_device.eq(false)),
            )
            .execute(conn)?;
        } else {
            // A first sync starts the device over.
            diesel::delete(
                watermelon_pushed::table.filter(watermelon_pushed::device_id.eq(&caller.device_id)),
            )
            .execute(conn)?;
        }
        forget_revived(conn, caller, delta.next_rev)?;
        diesel::delete(
            watermelon_pulls::table.filter(watermelon_pulls::issued_at.lt(now - retention)),
        )
        .execute(conn)?;
        diesel::delete(
            watermelon_pulls::table
                .filter(watermelon_pulls::device_id.eq(&caller.device_id))
                .filter(watermelon_pulls::pulled_at.eq(timestamp)),
        )
        .execute(conn)?;
        diesel::insert_into(watermelon_pulls::table)
            .values((
                watermelon_pulls::device_id.eq(&caller.device_id),
                watermelon_pulls::pulled_at.eq(timestamp),
                watermelon_pulls::user_id.eq(&caller.user_id),
                watermelon_pulls::courses.eq(&courses),
                watermelon_pulls::issued_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Sorts an incremental pull into created, updated and deleted, leaving out the device's own
/// writes where its copy is the server's state.
///
/// `since` is where the device stood at its last pull (the delta may start later: a page of an
/// incremental pull in pages); `with_merged` adds the records it pushed that were merged into
/// others (once per pull: on its last page).
fn classify(
    conn: &mut DbConn,
    caller: &Caller,
    delta: &pull::Delta,
    since: &Since,
    issued_at: i64,
    with_merged: bool,
    out: &mut Collector,
) -> Result<()> {
    let pushed = pushed_records(
        conn,
        caller,
        issued_at,
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
        .filter(|c| c.collection == Collection::People.name() && !c.deleted)
        .map(|c| c.id.clone())
        .collect();
    let held_people = held_people(conn, &people, since, issued_at)?;
    // A record of a course that came into scope is new to the device, unless it is a person
    // the device has through another course (sent only if changed, below).
    for change in &delta.added {
        if change.collection == Collection::People.name() && held_people.contains(&change.id) {
            continue;
        }
        let own = pushed.get(&(change.collection.to_owned(), change.id.clone()));
        out.add(change, own.map_or(Kind::Created, Pushed::kind));
    }
    // The feed also carries records of such a course: those written after the device's
    // position, which its backfill leaves to the feed.
    let new_courses = NewCourses::read(conn, since, delta)?;
    for change in delta.new_people.iter().chain(&delta.feed) {
        if out.has(change.collection, &change.id) {
            continue;
        }
        let key = (change.collection.to_owned(), change.id.clone());
        let kind = match pushed.get(&key) {
            // The device deleted it or holds exactly this state: nothing to send.
            Some(own) if own.canonical_id == change.id && own.in_sync_rev == Some(change.rev) => {
                continue;
            }
            _ if change.deleted => Kind::Deleted,
            Some(own) if own.canonical_id == change.id => own.kind(),
            _ if change.created_ms > issued_at => Kind::Created,
            _ if new_courses.holds(change) => Kind::Created,
            _ if change.collection == Collection::People.name() => {
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
    for (collection, record_id, canonical_id) in merged_pushes(conn, caller, issued_at)? {
        let Some(collection) = Collection::parse(&collection) else {
            continue;
        };
        out.add(
            &Change {
                collection: collection.name(),
                id: record_id,
                rev: 0,
                deleted: true,
                data: None,
                created_ms: 0,
            },
            Kind::Deleted,
        );
        if out.has(collection.name(), &canonical_id) {
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
            for chunk in named.chunks(ROWS_PER_STATEMENT) {
                sessions.extend(
                    sessions::table
                        .filter(sessions::id.eq_any(chunk))
                        .filter(sessions::course_id.eq_any(&courses))
                        .select(sessions::id)
                        .load::<String>(conn)?,
                );
            }
        }
        Ok(NewCourses { courses, sessions })
    }

    /// Whether a live record belongs to one of the courses.
    fn holds(&self, change: &Change) -> bool {
        let course = match &change.data {
            Some(Record::Course(course)) => &course.id,
            Some(Record::CourseTrainer(assignment)) => &assignment.course_id,
            Some(Record::Session(session)) => &session.course_id,
            Some(Record::Enrollment(enrollment)) => &enrollment.course_id,
            Some(Record::Material(material)) => &material.course_id,
            Some(Record::Attendance(record)) => return self.sessions.contains(&record.session_id),
            Some(Record::Unit(_) | Record::Person(_)) | None => return false,
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
    let mut query = enrollments::table
        .filter(enrollments::person_id.eq_any(candidates))
        .filter(enrollments::deleted_at.is_null())
        .filter(
            enrollments::rev
                .le(since.rev)
                .or(enrollments::created_at.le(issued_at)),
        )
        .into_boxed::<crate::db::Backend>();
    if let Some(courses) = &since.courses {
        query = query.filter(enrollments::course_id.eq_any(courses.clone()));
    }
    Ok(query
        .select(enrollments::person_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// A device-writable record as a feed change.
fn load_change(conn: &mut DbConn, collection: Collection, id: &str) -> Result<Option<Change>> {
    Ok(load_changes(conn, collection, &[id])?.remove(id))
}

/// Why a record was refused, per table and id.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct PushResponse {
    /// The records refused, per table: WatermelonDB keeps them unsynced on the device.
    #[serde(rename = "experimentalRejectedIds")]
    pub rejected_ids: BTreeMap<String, Vec<String>>,
    /// The reason for each refusal (the same as in the quarantine).
    pub rejected_reasons: BTreeMap<String, BTreeMap<String, Rejection>>,
}

/// One record of a WatermelonDB push.
struct Incoming {
    table: String,
    id: String,
    op: Op,
    fields: Fields,
    /// The device's raw record (null for a delete), to tell whether its copy is the server's.
    raw: Value,
}

fn bad_changes(field: &str, message: impl Into<String>) -> Error {
    Error::invalid_field(field, "invalid_changes", message)
}

/// Reads WatermelonDB's changes object. A malformed shape refuses the whole push (nothing can
/// be said about its records); a record's content is checked when it is applied.
fn parse_changes(body: &Value, max_records: usize) -> Result<Vec<Incoming>> {
    let tables = body
        .as_object()
        .ok_or_else(|| bad_changes("changes", "the body must be WatermelonDB's changes object"))?;
    // Tables in the order of `TABLES` (enrollments before the attendance they allow), then the
    // ones the server does not sync: a push that enrolls a trainee and marks them applies.
    let mut ordered: Vec<(&String, &Value)> = tables.iter().collect();
    ordered.sort_by_key(|(name, _)| {
        TABLES
            .iter()
            .position(|(collection, _)| collection.name() == name.as_str())
            .unwrap_or(TABLES.len())
    });
    let mut incoming = Vec::new();
    for (table, changes) in ordered {
        let changes = changes.as_object().ok_or_else(|| {
            bad_changes(
                table,
                "each table must be {created: [], updated: [], deleted: []}",
            )
        })?;
        for key in changes.keys() {
            if !["created", "updated", "deleted"].contains(&key.as_str()) {
                return Err(bad_changes(
                    &format!("{table}.{key}"),
                    "a table's changes are created, updated and deleted",
                ));
            }
        }
        let list = |name: &str| -> Result<&[Value]> {
            match changes.get(name) {
                None => Ok(&[]),
                Some(Value::Array(items)) => Ok(items),
                Some(_) => Err(bad_changes(&format!("{table}.{name}"), "must be an array")),
            }
        };
        let collection = Collection::parse(table);
        for (op_name, records) in [("created", list("created")?), ("updated", list("updated")?)] {
            for (index, raw) in records.iter().enumerate() {
                let field = format!("{table}.{op_name}[{index}]");
                let record = raw
                    .as_object()
                    .ok_or_else(|| bad_changes(&field, "a record must be an object"))?;
                let id = record
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_changes(&field, "a record needs a string id"))?;
                // A read-only or unknown table is refused when applied; its columns are kept
                // as sent, so that the quarantine shows what the device tried.
                let writable: Vec<&str> = match collection {
                    Some(c) if c.device_writable() => c.writable_fields().to_vec(),
                    _ => record
                        .keys()
                        .map(String::as_str)
                        .filter(|k| !["id", "_status", "_changed"].contains(k))
                        .collect(),
                };
                let set: Vec<&str> = if op_name == "created" {
                    writable.clone()
                } else {
                    let changed = match record.get("_changed") {
                        None | Some(Value::Null) => "",
                        Some(Value::String(changed)) => changed.as_str(),
                        Some(_) => {
                            return Err(bad_changes(
                                &format!("{field}._changed"),
                                "must be a comma-separated list of columns",
                            ));
                        }
                    };
                    // Columns the server does not sync are the app's own.
                    changed
                        .split(',')
                        .map(str::trim)
                        .filter(|c| writable.contains(c))
                        .collect()
                };
                let fields: Fields = set
                    .into_iter()
                    .filter_map(|name| record.get(name).map(|v| (name.to_owned(), v.clone())))
                    .collect();
                incoming.push(Incoming {
                    table: table.clone(),
                    id: id.to_owned(),
                    op: Op::Upsert,
                    fields,
                    raw: raw.clone(),
                });
            }
        }
        for (index, id) in list("deleted")?.iter().enumerate() {
            let id = id.as_str().ok_or_else(|| {
                bad_changes(&format!("{table}.deleted[{index}]"), "ids must be strings")
            })?;
            incoming.push(Incoming {
                table: table.clone(),
                id: id.to_owned(),
                op: Op::Delete,
                fields: Fields::new(),
                raw: Value::Null,
            });
        }
    }
    if incoming.len() > max_records {
        return Err(Error::invalid_field(
            "changes",
            "too_many_mutations",
            format!("at most {max_records} records per push; sync more often"),
        ));
    }
    Ok(incoming)
}

/// The ids of one table's records in a push, in statements of bounded size.
fn id_chunks<'a>(records: &'a [Incoming], table: &'a str) -> Vec<Vec<&'a str>> {
    let ids: Vec<&str> = records
        .iter()
        .filter(|r| r.table == table)
        .map(|r| r.id.as_str())
        .collect();
    ids.chunks(ROWS_PER_STATEMENT)
        .map(<[&str]>::to_vec)
        .collect()
}

/// The tables a push names, each once.
fn tables_of(records: &[Incoming]) -> BTreeSet<&str> {
    records.iter().map(|r| r.table.as_str()).collect()
}

/// The revision of each stored device-writable record a push names, following merged ids
/// (absent: none stored). Read a table at a time, not a record at a time: a page of a backlog
/// is hundreds of records.
fn base_revs(conn: &mut DbConn, records: &[Incoming]) -> Result<BTreeMap<(String, String), i64>> {
    use crate::db::schema::sync_aliases;
    let mut revs = BTreeMap::new();
    for table in tables_of(records) {
        for ids in id_chunks(records, table) {
            let aliases: BTreeMap<String, String> = sync_aliases::table
                .filter(sync_aliases::collection.eq(table))
                .filter(sync_aliases::alias_id.eq_any(&ids))
                .select((sync_aliases::alias_id, sync_aliases::canonical_id))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
            let target = |id: &str| aliases.get(id).cloned().unwrap_or_else(|| id.to_owned());
            let targets: Vec<String> = ids.iter().map(|id| target(id)).collect();
            let stored: BTreeMap<String, i64> = match Collection::parse(table) {
                Some(Collection::Attendance) => attendance::table
                    .filter(attendance::id.eq_any(&targets))
                    .select((attendance::id, attendance::rev))
                    .load::<(String, i64)>(conn)?,
                Some(Collection::Enrollments) => enrollments::table
                    .filter(enrollments::id.eq_any(&targets))
                    .select((enrollments::id, enrollments::rev))
                    .load::<(String, i64)>(conn)?,
                _ => Vec::new(),
            }
            .into_iter()
            .collect();
            for id in ids {
                if let Some(rev) = stored.get(&target(id)) {
                    revs.insert((table.to_owned(), id.to_owned()), *rev);
                }
            }
        }
    }
    Ok(revs)
}

/// The mutation id of a pushed record: the same change sent again over the same server state
/// (a refused record still waiting on the device) is the same mutation and gets its first
/// answer; any other is new.
fn mutation_id(caller: &Caller, record: &Incoming, base_rev: i64) -> String {
    uuid_of(&json!([
        caller.device_id,
        record.table,
        record.id,
        record.op,
        record.fields,
        base_rev
    ]))
}

/// The key of a pushed record as the device sent it: the same change sent again before the
/// device pulls (a push whose answer was lost, or a sync cut half-way and retried) has the same
/// key, although the server state moved on when the first one was applied.
fn retry_key(caller: &Caller, record: &Incoming, last_pulled_at: i64) -> String {
    uuid_of(&json!([
        caller.device_id,
        record.table,
        record.id,
        record.op,
        record.fields,
        "before the pull after",
        last_pulled_at
    ]))
}

fn uuid_of(key: &Value) -> String {
    let digest = Sha256::digest(key.to_string().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// What the device's earlier push of each record (this push names) was sent as: its retry key
/// and the mutation it became.
struct EarlierPush {
    retry_key: Option<String>,
    mutation_id: Option<String>,
}

fn earlier_pushes(
    conn: &mut DbConn,
    caller: &Caller,
    records: &[Incoming],
) -> Result<BTreeMap<(String, String), EarlierPush>> {
    let mut earlier = BTreeMap::new();
    for table in tables_of(records) {
        for ids in id_chunks(records, table) {
            let rows: Vec<(String, Option<String>, Option<String>)> = watermelon_pushed::table
                .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                .filter(watermelon_pushed::collection.eq(table))
                .filter(watermelon_pushed::record_id.eq_any(&ids))
                .select((
                    watermelon_pushed::record_id,
                    watermelon_pushed::retry_key,
                    watermelon_pushed::mutation_id,
                ))
                .load(conn)?;
            for (record_id, retry_key, mutation_id) in rows {
                earlier.insert(
                    (table.to_owned(), record_id),
                    EarlierPush {
                        retry_key,
                        mutation_id,
                    },
                );
            }
        }
    }
    Ok(earlier)
}

/// The stored device-writable records among `ids` of one collection, as feed changes.
fn load_changes(
    conn: &mut DbConn,
    collection: Collection,
    ids: &[&str],
) -> Result<BTreeMap<String, Change>> {
    use crate::domain::attendance::Attendance;
    use crate::domain::enrollments::Enrollment;
    let mut changes = BTreeMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let loaded: Vec<Change> = match collection {
            Collection::Attendance => attendance::table
                .filter(attendance::id.eq_any(chunk))
                .select(Attendance::as_select())
                .load::<Attendance>(conn)?
                .into_iter()
                .map(|row| pull::change(collection, row))
                .collect(),
            Collection::Enrollments => enrollments::table
                .filter(enrollments::id.eq_any(chunk))
                .select(Enrollment::as_select())
                .load::<Enrollment>(conn)?
                .into_iter()
                .map(|row| pull::change(collection, row))
                .collect(),
            _ => Vec::new(),
        };
        changes.extend(loaded.into_iter().map(|change| (change.id.clone(), change)));
    }
    Ok(changes)
}

/// Applies a WatermelonDB push inside the caller's write transaction.
pub fn push(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    last_pulled_at: i64,
    body: &Value,
    max_records: usize,
    room: push::Room,
) -> Result<PushResponse> {
    let incoming = parse_changes(body, max_records)?;
    push::serialize_pushes(conn)?;
    let current: i64 = revision_counter::table
        .filter(revision_counter::id.eq(1))
        .select(revision_counter::value)
        .first(conn)?;
    // A timestamp of another epoch comes from a device that last pulled before a restore: what
    // it pushes does not depend on its position (the timestamp only keys a retry), and its next
    // pull starts it over.
    let position = Mark::of(last_pulled_at);
    let in_this_epoch = position.tag == Epoch::current(conn)?.timestamp_tag();
    if last_pulled_at < 1 || (in_this_epoch && position.mark > current + 1) {
        return Err(invalid_last_pulled_at(
            "last_pulled_at must be the timestamp of this device's last pull",
        ));
    }

    // Records with nothing the server syncs changed are accepted as they are.
    let sends = |record: &Incoming| {
        !(record.op == Op::Upsert
            && record.fields.is_empty()
            && Collection::parse(&record.table).is_some_and(Collection::device_writable))
    };
    let base = base_revs(conn, &incoming)?;
    let earlier = earlier_pushes(conn, caller, &incoming)?;
    // Per record, the mutation it is (or was, for a retry) and the key it was sent under.
    let sent: Vec<Option<(String, String)>> = incoming
        .iter()
        .map(|record| {
            if !sends(record) {
                return None;
            }
            let key = (record.table.clone(), record.id.clone());
            let retry = retry_key(caller, record, last_pulled_at);
            let id = match earlier.get(&key) {
                Some(EarlierPush {
                    retry_key: Some(earlier_key),
                    mutation_id: Some(earlier_id),
                }) if *earlier_key == retry => earlier_id.clone(),
                _ => mutation_id(caller, record, base.get(&key).copied().unwrap_or(0)),
            };
            Some((id, retry))
        })
        .collect();
    let ids: Vec<&str> = sent.iter().flatten().map(|(id, _)| id.as_str()).collect();
    let mut seen = mutation_log::results(conn, &ids)?;
    let mut results: Vec<Option<MutationResult>> = Vec::with_capacity(incoming.len());
    let mut fresh = Vec::new();
    let mut fresh_at = Vec::new();
    for (index, (record, sent)) in incoming.iter().zip(&sent).enumerate() {
        let Some((id, _)) = sent else {
            results.push(None);
            continue;
        };
        match seen.remove(id) {
            Some(seen) => results.push(Some(seen)),
            None => {
                let mut stamp = clock.now(push::wall_ms());
                stamp.node.clone_from(&caller.device_id);
                fresh.push(json!({
                    "mutation_id": id,
                    "collection": record.table,
                    "record_id": record.id,
                    "op": record.op,
                    "fields": record.fields,
                    "hlc": stamp.to_string(),
                }));
                fresh_at.push(index);
                results.push(None);
            }
        }
    }
    let applied = push::apply_batch(conn, caller, clock, room, &fresh)?;
    for (index, result) in fresh_at.into_iter().zip(applied.results) {
        results[index] = Some(result);
    }

    // What the device holds of each record now, read a collection at a time.
    let canonical: Vec<Option<(Collection, String, bool)>> = incoming
        .iter()
        .zip(&results)
        .map(|(record, result)| {
            let result = result.as_ref()?;
            let collection = Collection::parse(&record.table)?;
            let rejected = result.status == Status::Rejected;
            let canonical_id = match (rejected, &result.record_id) {
                (false, Some(target)) => target.clone(),
                _ => record.id.clone(),
            };
            Some((collection, canonical_id, rejected))
        })
        .collect();
    let mut stored: BTreeMap<Collection, BTreeMap<String, Change>> = BTreeMap::new();
    for (collection, _) in TABLES {
        let ids: Vec<&str> = canonical
            .iter()
            .flatten()
            .filter(|(c, _, _)| *c == collection)
            .map(|(_, id, _)| id.as_str())
            .collect();
        if !ids.is_empty() {
            stored.insert(collection, load_changes(conn, collection, &ids)?);
        }
    }

    let pushed_at = now_ms();
    let mut response = PushResponse::default();
    // The rows `watermelon_pushed` gets, one per record (the last word on a record sent twice).
    let mut remembered: BTreeMap<(Collection, String), PushedRow> = BTreeMap::new();
    for (((record, result), sent), canonical) in
        incoming.iter().zip(results).zip(sent).zip(canonical)
    {
        let (Some(result), Some((mutation_id, retry_key))) = (result, sent) else {
            continue;
        };
        let rejected = result.status == Status::Rejected;
        if rejected {
            response
                .rejected_ids
                .entry(record.table.clone())
                .or_default()
                .push(record.id.clone());
            response
                .rejected_reasons
                .entry(record.table.clone())
                .or_default()
                .insert(
                    record.id.clone(),
                    Rejection {
                        reason: result.reason.unwrap_or_default(),
                        message: result.message.unwrap_or_default(),
                    },
                );
        }
        let Some((collection, canonical_id, _)) = canonical else {
            continue;
        };
        // The device keeps a refused record: should the server come to have it (an
        // administrator re-applies it), it is one the device holds.
        let now_stored = stored
            .get(&collection)
            .and_then(|changes| changes.get(&canonical_id));
        let in_sync_rev = match now_stored {
            None if record.op == Op::Delete => {
                remembered.remove(&(collection, record.id.clone()));
                continue;
            }
            None => None,
            Some(_) if rejected => None,
            Some(stored) if canonical_id == record.id => {
                let same = match (&stored.data, record.op) {
                    (None, Op::Delete) => true,
                    (Some(data), Op::Upsert) => {
                        same_columns(collection, &record.raw, &data.to_value()?)
                    }
                    _ => false,
                };
                same.then_some(stored.rev)
            }
            Some(_) => None,
        };
        remembered.insert(
            (collection, record.id.clone()),
            PushedRow {
                canonical_id,
                in_sync_rev,
                retry_key,
                mutation_id,
                deleted_on_device: record.op == Op::Delete && !rejected,
            },
        );
    }
    remember_pushed(conn, caller, &incoming, pushed_at, remembered)?;
    Ok(response)
}

/// What `watermelon_pushed` keeps of one pushed record.
struct PushedRow {
    canonical_id: String,
    in_sync_rev: Option<i64>,
    retry_key: String,
    mutation_id: String,
    deleted_on_device: bool,
}

/// Replaces what was remembered of the records a push names with what it made of them: a
/// record deleted on both sides is forgotten.
fn remember_pushed(
    conn: &mut DbConn,
    caller: &Caller,
    incoming: &[Incoming],
    pushed_at: i64,
    remembered: BTreeMap<(Collection, String), PushedRow>,
) -> Result<()> {
    for table in tables_of(incoming) {
        let Some(collection) = Collection::parse(table) else {
            continue;
        };
        for ids in id_chunks(incoming, table) {
            diesel::delete(
                watermelon_pushed::table
                    .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                    .filter(watermelon_pushed::collection.eq(collection.name()))
                    .filter(watermelon_pushed::record_id.eq_any(&ids)),
            )
            .execute(conn)?;
        }
    }
    let rows: Vec<_> = remembered
        .into_iter()
        .map(|((collection, record_id), row)| {
            (
                watermelon_pushed::device_id.eq(caller.device_id.clone()),
                watermelon_pushed::collection.eq(collection.name()),
                watermelon_pushed::record_id.eq(record_id),
                watermelon_pushed::canonical_id.eq(row.canonical_id),
                watermelon_pushed::in_sync_rev.eq(row.in_sync_rev),
                watermelon_pushed::pushed_at.eq(pushed_at),
                watermelon_pushed::retry_key.eq(Some(row.retry_key)),
                watermelon_pushed::mutation_id.eq(Some(row.mutation_id)),
                watermelon_pushed::deleted_on_device.eq(row.deleted_on_device),
            )
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        on_backend!(conn, |backend| diesel::insert_into(
            watermelon_pushed::table
        )
        .values(chunk)
        .execute(backend))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_of_the_first_epoch_is_the_revision_plus_one_as_before_epochs() {
        assert_eq!(timestamp_of(Epoch::FIRST, 41).unwrap(), 42);
        assert_eq!(Mark::of(42), Mark { tag: 0, mark: 42 });
    }

    #[test]
    fn a_timestamp_carries_the_epoch_tag_and_stays_exact_in_javascript() {
        let epoch = Epoch::from_id((1 << 53) - 1);
        let largest = (1i64 << TIMESTAMP_REVISION_BITS) - 2;
        let timestamp = timestamp_of(epoch, largest).unwrap();
        assert_eq!(timestamp, (1i64 << 53) - 1, "Number.MAX_SAFE_INTEGER");
        let mark = Mark::of(timestamp);
        assert_eq!(mark.tag, epoch.timestamp_tag());
        assert_eq!(mark.mark - 1, largest);
        let other = Mark::of(timestamp_of(Epoch::from_id(0x2000 + 5), 9).unwrap());
        assert_eq!(other, Mark { tag: 5, mark: 10 });
        assert!(timestamp_of(epoch, largest + 1).is_err());
    }
}
