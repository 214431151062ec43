//! Pages of changes for one device: every record in the caller's scope whose revision is after
//! the cursor, in revision order. Revisions are taken from a counter whose row lock is held to
//! commit, so they become visible in commit order on both backends and "after the cursor" never
//! skips a row. When the caller's scope changed since the cursor (a trainer assigned to a new
//! course, or removed from one), the next page carries deletions for what left the scope, and
//! the newly visible course's existing records (backfill) come first, in pages of their own,
//! before the feed goes on: however large the course, a page holds at most `limit` of them.
//!
//! Here: a page (`page`), its changes and records, cursor checks and `delta`, which puts a page
//! together; `scope` (whose records a window of revisions holds, per collection), `feed` (where a
//! page ends and the rows up to there) and `scope_change` (backfill, scope deletions, and the
//! people a trainer gains and loses with enrollments).

mod feed;
mod scope;
mod scope_change;

pub(crate) use feed::changes_by_id;
use feed::feed;
use scope::{Part, Scope};
use scope_change::{
    backfill, follow_scope_change, people_no_longer_enrolled, people_of_new_enrollments,
    scope_deletions,
};

use serde::Serialize;
use serde_json::Value;

use super::cursor::{Cursor, PendingBackfill, PendingRemoval};
use super::records::Collection;
/// The last revision handed out, where a feed's horizon is read (the counter is the database's).
pub use crate::db::current_revision;
use crate::db::identity::Epoch;
use crate::db::{DbConn, now_ms};
use crate::domain::Caller;
use crate::domain::access::{Reach, visible_courses};
use crate::domain::collections::synced_collections;
use crate::error::{Error, Result};

pub const DEFAULT_PAGE: i64 = 500;
pub const MAX_PAGE: i64 = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub collection: Collection,
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

/// What the feed needs of every synced row.
pub(crate) trait SyncRow {
    /// The collection the row is a record of.
    const COLLECTION: Collection;
    fn id(&self) -> &str;
    fn rev(&self) -> i64;
    fn deleted(&self) -> bool;
    fn created_at(&self) -> i64;
    fn into_record(self) -> Record;
}

/// `Record`, one variant per synced collection, and `SyncRow` for every collection's row.
macro_rules! sync_rows {
    ($($variant:ident: $table:ident => $row:path { $($columns:tt)* }),+ $(,)?) => {
        /// A synced record, kept typed until the response is written: a page is serialised
        /// straight from the rows, without an intermediate `serde_json::Value` per record.
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub enum Record {
            $($variant($row)),+
        }

        $(impl SyncRow for $row {
            const COLLECTION: Collection = Collection::$variant;
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
                Record::$variant(self)
            }
        })+
    };
}
synced_collections!(sync_rows);

impl Record {
    /// The record as a JSON value, for callers that look fields up by name.
    pub fn to_value(&self) -> Result<Value> {
        serde_json::to_value(self).map_err(|e| Error::Internal(e.to_string()))
    }
}

fn change<T: SyncRow>(row: T) -> Change {
    let (id, rev, created_ms) = (row.id().to_owned(), row.rev(), row.created_at());
    let deleted = row.deleted();
    Change {
        collection: T::COLLECTION,
        id,
        rev,
        deleted,
        data: (!deleted).then(|| row.into_record()),
        created_ms,
    }
}

fn changes<T: SyncRow>(rows: Vec<T>) -> Vec<Change> {
    rows.into_iter().map(change).collect()
}

fn gone(collection: Collection, id: String) -> Change {
    Change {
        collection,
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
    let now = now_ms();
    let epoch = Epoch::current(conn)?;
    let since = raw_cursor
        .map(|raw| resume(raw, caller, settings, epoch, now))
        .transpose()?;
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
fn check_cursor(cursor: &Cursor, epoch: Epoch, now: i64, retention_ms: i64) -> Result<()> {
    if cursor.epoch != epoch.id() {
        return Err(restored_since_issued());
    }
    check_age(now, cursor.issued_ms, retention_ms)
}

/// Where a cursor of the caller's continues the feed, once it is checked (`check_cursor`): for
/// a native page and a page of a WatermelonDB pull alike.
pub(crate) fn resume(
    raw: &str,
    caller: &Caller,
    settings: &PullSettings,
    epoch: Epoch,
    now: i64,
) -> Result<Since> {
    let cursor = Cursor::decode(raw, settings.cursor_key, &caller.user_id)?;
    check_cursor(&cursor, epoch, now, settings.tombstone_retention_ms)?;
    Ok(Since::from(cursor))
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
/// for every course), except the older records of the courses still being backfilled and the
/// deletions for courses that left, still being sent.
pub(crate) struct Since {
    pub rev: i64,
    pub courses: Option<Vec<String>>,
    pub backfill: Vec<PendingBackfill>,
    pub removals: Vec<PendingRemoval>,
}

impl Since {
    /// Every change up to `rev` delivered, while the device held `courses`.
    pub(crate) fn at(rev: i64, courses: Option<Vec<String>>) -> Since {
        Since {
            rev,
            courses,
            backfill: Vec::new(),
            removals: Vec::new(),
        }
    }
}

impl From<Cursor> for Since {
    fn from(cursor: Cursor) -> Self {
        Since {
            rev: cursor.rev,
            courses: cursor.courses,
            backfill: cursor.backfill,
            removals: cursor.removals,
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
    /// Deletions the next page goes on with, before the backfills.
    pub removals: Vec<PendingRemoval>,
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
            removals: self.removals.clone(),
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
    let reach = Reach::of(caller);

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
    let mut removals: Vec<PendingRemoval> = since.map(|s| s.removals.clone()).unwrap_or_default();
    // Scope changes since the cursor: deletions for courses that left, backfill for new ones.
    if let (Some(since), Some(now_visible)) = (since, &visible) {
        follow_scope_change(since, now_visible, &mut pending, &mut removals);
    }

    // The deletions come first, then the backfills, then the feed: each waits for the one
    // before it, page by page.
    let mut budget = limit;
    let mut removed_changes = Vec::new();
    let still_visible = visible.as_deref().unwrap_or_default();
    while let Some(next) = removals.first_mut() {
        if budget == Some(0) {
            break;
        }
        let part = scope_deletions(conn, &reach, next, still_visible, budget)?;
        let sent = i64::try_from(part.changes.len()).unwrap_or(i64::MAX);
        budget = budget.map(|left| (left - sent).max(0));
        removed_changes.extend(part.changes);
        match part.more_after {
            // The page is full.
            Some(position) => {
                next.after = Some(position);
                break;
            }
            None => {
                removals.remove(0);
            }
        }
    }
    let mut added_changes = Vec::new();
    while let Some(next) = pending.first_mut() {
        if budget == Some(0) {
            break;
        }
        let part = backfill(conn, &reach, next, after, budget)?;
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
    if !removals.is_empty() || !pending.is_empty() || budget == Some(0) {
        return Ok(Delta {
            removed: removed_changes,
            added: added_changes,
            new_people: Vec::new(),
            feed: Vec::new(),
            next_rev: after,
            has_more: true,
            visible,
            backfill: pending,
            removals,
        });
    }

    let scope = Scope::new(conn, &reach, visible.as_deref(), after, horizon, Part::Feed)?;
    let page = feed(conn, &scope, budget)?;
    let (mut feed, more_from) = (page.changes, page.more_from);
    let has_more = more_from.is_some();
    // Else everything up to the horizon is delivered.
    let next_rev = more_from.unwrap_or(after.max(horizon));
    // Course staff see people through enrollments: those a page's enrollments bring and take.
    let new_people = match reach {
        Reach::CourseStaff(_) => {
            let new_people = people_of_new_enrollments(conn, &feed, page.after, still_visible)?;
            let dropped = people_no_longer_enrolled(conn, &feed, still_visible)?;
            feed.extend(dropped);
            new_people
        }
        Reach::Everything | Reach::OwnRecords(_) => Vec::new(),
    };
    Ok(Delta {
        removed: removed_changes,
        added: added_changes,
        new_people,
        feed,
        next_rev,
        has_more,
        visible,
        backfill: Vec::new(),
        removals: Vec::new(),
    })
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
