//! What the server remembers of each device: the pulls it was answered (`watermelon_pulls`,
//! with the courses it then held) and the records it pushed (`watermelon_pushed`), until a later
//! pull makes them useless.
//!
//! Whether a pull saw a push is told by the revision counter, not by clocks: a push takes a
//! revision of its own after its writes, committed with them and with what it remembers; a pull
//! reads up to the revision its timestamp carries, everything up to which had committed when it
//! read (`pull::delta`). So a pull saw a push exactly when its revision is at least the push's,
//! on either backend and whichever instance answered each: a pull that started after the push
//! but read before it committed did not, and leaves the push to the next pull.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;

use super::pull::Kind;
use super::push::{Incoming, id_chunks, tables_of};
use super::{Mark, Settings, invalid_last_pulled_at};
use crate::db::identity::Epoch;
use crate::db::schema::{watermelon_pulls, watermelon_pushed};
use crate::db::{DbConn, next_revision, write_tx};
use crate::domain::Caller;
use crate::error::{Error, Result};
use crate::sync::pull::{self, Change, Since};
use crate::sync::records::{Collection, ROWS_PER_STATEMENT, insert_in_chunks};

fn resync_required(message: &str) -> Error {
    Error::Gone {
        code: "resync_required",
        message: message.to_owned(),
    }
}

/// Where a device stood at a `last_pulled_at` the server gave it.
pub(super) struct Pulled {
    /// The timestamp (`last_pulled_at`).
    pub(super) timestamp: i64,
    /// The position the pull answered up to, with the courses the device then held: its
    /// revision is the one the pull read up to, so the pull saw the pushes of revisions up to it.
    pub(super) since: Since,
    /// When that pull was answered (server time, ms).
    pub(super) issued_at: i64,
}

/// A pull answered to a device, as remembered.
#[derive(Queryable, Selectable)]
#[diesel(table_name = watermelon_pulls)]
struct PullRow {
    device_id: String,
    courses: Option<String>,
    issued_at: i64,
}

/// Where a device stood at `last_pulled_at`: the pull that issued it, for this user (another
/// device of the same user is accepted, so that signing in again on a phone keeps its data).
pub(super) fn pulled_state(
    conn: &mut DbConn,
    caller: &Caller,
    epoch: Epoch,
    last_pulled_at: i64,
) -> Result<Pulled> {
    let position = Mark::of(last_pulled_at);
    if last_pulled_at < 1 || position.mark < 1 {
        return Err(invalid_last_pulled_at(
            "last_pulled_at must be a timestamp this server gave, or null",
        ));
    }
    if position.tag != epoch.timestamp_tag() {
        return Err(pull::restored_since_issued());
    }
    let rows: Vec<PullRow> = watermelon_pulls::table
        .filter(watermelon_pulls::user_id.eq(&caller.user_id))
        .filter(watermelon_pulls::pulled_at.eq(last_pulled_at))
        .select(PullRow::as_select())
        .load(conn)?;
    let row = rows
        .iter()
        .find(|row| row.device_id == caller.device_id)
        .or(rows.first())
        .ok_or_else(|| {
            resync_required(
                "this server did not give that last_pulled_at to this account (or forgot it); \
                 reset the local database and sync again",
            )
        })?;
    let courses = row
        .courses
        .as_deref()
        .map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(|e| Error::Internal(format!("stored pull state unreadable: {e}")))?;
    Ok(Pulled {
        timestamp: last_pulled_at,
        since: Since::at(position.mark - 1, courses),
        issued_at: row.issued_at,
    })
}

/// A record the device pushed, remembered until it acknowledges a pull that saw the push.
#[derive(Queryable, Selectable)]
#[diesel(table_name = watermelon_pushed)]
pub(super) struct Pushed {
    pub(super) canonical_id: String,
    pub(super) in_sync_rev: Option<i64>,
    /// The push deleted it: the device holds no copy.
    pub(super) deleted_on_device: bool,
}

impl Pushed {
    /// How a live record the device pushed reaches it: it holds it, unless it deleted it.
    pub(super) fn kind(&self) -> Kind {
        if self.deleted_on_device {
            Kind::Created
        } else {
            Kind::Updated
        }
    }
}

/// A pushed record under the device's id for it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = watermelon_pushed)]
struct PushedRecord {
    record_id: String,
    #[diesel(embed)]
    pushed: Pushed,
}

/// Of the records a pull carries (`changes`), those the device pushed in pushes that the pull
/// it acknowledged did not see (past `seen_upto`, the revision that pull read up to: it
/// answered the others), and those it deleted, whenever (it holds no copy of them). Read for
/// the pull's records only: a device back from a long trip has pushed thousands.
pub(super) fn pushed_records<'a>(
    conn: &mut DbConn,
    caller: &Caller,
    seen_upto: i64,
    changes: impl Iterator<Item = &'a Change>,
) -> Result<BTreeMap<(Collection, String), Pushed>> {
    let mut wanted: BTreeMap<Collection, BTreeSet<&str>> = BTreeMap::new();
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
            let rows: Vec<PushedRecord> = watermelon_pushed::table
                .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                .filter(watermelon_pushed::collection.eq(collection.name()))
                .filter(watermelon_pushed::record_id.eq_any(chunk))
                .filter(
                    watermelon_pushed::pushed_rev
                        .gt(seen_upto)
                        .or(watermelon_pushed::deleted_on_device.eq(true)),
                )
                .select(PushedRecord::as_select())
                .load(conn)?;
            for row in rows {
                pushed.insert((collection, row.record_id), row.pushed);
            }
        }
    }
    Ok(pushed)
}

/// A record the device pushed under an id the server merged into an existing record.
pub(super) struct MergedPush {
    pub(super) collection: Collection,
    /// The device's id for it.
    pub(super) record_id: String,
    /// The server's.
    pub(super) canonical_id: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = watermelon_pushed)]
struct MergedPushRow {
    collection: String,
    record_id: String,
    canonical_id: String,
}

/// The records the device pushed (as `pushed_records` counts them) under an id the server
/// merged into an existing record.
pub(super) fn merged_pushes(
    conn: &mut DbConn,
    caller: &Caller,
    seen_upto: i64,
) -> Result<Vec<MergedPush>> {
    let rows: Vec<MergedPushRow> = watermelon_pushed::table
        .filter(watermelon_pushed::device_id.eq(&caller.device_id))
        .filter(
            watermelon_pushed::pushed_rev
                .gt(seen_upto)
                .or(watermelon_pushed::deleted_on_device.eq(true)),
        )
        .filter(watermelon_pushed::canonical_id.ne(watermelon_pushed::record_id))
        .order((watermelon_pushed::collection, watermelon_pushed::record_id))
        .select(MergedPushRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            // The server wrote the name (`Collection::name`) when it remembered the push.
            let collection = Collection::parse(&row.collection).ok_or_else(|| {
                Error::Internal(format!(
                    "a pushed record of no collection: {}",
                    row.collection
                ))
            })?;
            Ok(MergedPush {
                collection,
                record_id: row.record_id,
                canonical_id: row.canonical_id,
            })
        })
        .collect()
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
    for collection in Collection::ALL {
        let ids: Vec<&str> = deleted
            .iter()
            .filter(|(table, _)| table == collection.name())
            .map(|(_, id)| id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let back: Vec<String> = pull::changes_by_id(conn, collection, &ids)?
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
/// (the courses it held then), and forgets what the pull it acknowledged (none for a first
/// sync) made useless, and the deletions of records the pull brought back to it (it holds them
/// again).
pub(super) fn record_pull(
    conn: &mut DbConn,
    caller: &Caller,
    settings: &Settings,
    acknowledged: Option<&Pulled>,
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
        // pulls, and pushes that the pull it names saw, and so answered.
        if let Some(acknowledged) = acknowledged {
            diesel::delete(
                watermelon_pulls::table
                    .filter(watermelon_pulls::device_id.eq(&caller.device_id))
                    .filter(watermelon_pulls::pulled_at.lt(acknowledged.timestamp)),
            )
            .execute(conn)?;
            // A deletion is kept: should the record live on, the device holds no copy of it.
            diesel::delete(
                watermelon_pushed::table
                    .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                    .filter(watermelon_pushed::pushed_rev.le(acknowledged.since.rev))
                    .filter(watermelon_pushed::deleted_on_device.eq(false)),
            )
            .execute(conn)?;
        } else {
            // A first sync starts the device over from what it saw; a push it did not see (the
            // same device pushing meanwhile) is left to the next pull.
            diesel::delete(
                watermelon_pushed::table
                    .filter(watermelon_pushed::device_id.eq(&caller.device_id))
                    .filter(watermelon_pushed::pushed_rev.le(delta.next_rev)),
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

/// What the device's earlier push of each record (this push names) was sent as: its retry key
/// and the mutation it became.
pub(super) struct EarlierPush {
    pub(super) retry_key: Option<String>,
    pub(super) mutation_id: Option<String>,
}

pub(super) fn earlier_pushes(
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

/// What `watermelon_pushed` keeps of one pushed record.
pub(super) struct PushedRow {
    pub(super) canonical_id: String,
    pub(super) in_sync_rev: Option<i64>,
    pub(super) retry_key: String,
    pub(super) mutation_id: String,
    pub(super) deleted_on_device: bool,
}

/// Replaces what was remembered of the records a push names with what it made of them: a
/// record deleted on both sides is forgotten. Called last in the push's transaction: the push's
/// place in the commit order is a revision taken here, after those of its writes.
pub(super) fn remember_pushed(
    conn: &mut DbConn,
    caller: &Caller,
    incoming: &[Incoming],
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
    if remembered.is_empty() {
        return Ok(());
    }
    // The push's place in the commit order, committed with the rows or not at all: a pull that
    // read up to it or past read after the push committed, with each of its writes (they have
    // earlier revisions); one that read up to less may have read before.
    let pushed_rev = next_revision(conn)?;
    let rows: Vec<_> = remembered
        .into_iter()
        .map(|((collection, record_id), row)| {
            (
                watermelon_pushed::device_id.eq(caller.device_id.clone()),
                watermelon_pushed::collection.eq(collection.name()),
                watermelon_pushed::record_id.eq(record_id),
                watermelon_pushed::canonical_id.eq(row.canonical_id),
                watermelon_pushed::in_sync_rev.eq(row.in_sync_rev),
                watermelon_pushed::pushed_rev.eq(pushed_rev),
                watermelon_pushed::retry_key.eq(Some(row.retry_key)),
                watermelon_pushed::mutation_id.eq(Some(row.mutation_id)),
                watermelon_pushed::deleted_on_device.eq(row.deleted_on_device),
            )
        })
        .collect();
    insert_in_chunks!(conn, watermelon_pushed::table, rows)?;
    Ok(())
}
