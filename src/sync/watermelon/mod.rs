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
//! - No echo: records a device pushed are remembered (`watermelon_pushed`) until a pull that saw
//!   the push is acknowledged (told by revisions, not by clocks: see `state`). They come back as
//!   `updated` (never `created`), and not at all while the device's copy is exactly the server's
//!   state; records it deleted are remembered while they stay deleted, so that one revived by
//!   another device's later edit comes back `created`.
//!
//! Knows no HTTP. Here: the settings and the timestamp (epoch tag and revision); `tables` (the
//! WatermelonDB view of the synced collections), `pull`, `push`, and `state` (what the server
//! remembers of each device's pulls and pushes, `watermelon_pulls` and `watermelon_pushed`).

mod pull;
mod push;
mod state;
mod tables;

pub use pull::{
    DEFAULT_PAGE, MAX_PAGE, MigratedColumns, Migration, PullResponse, TableChanges,
    first_pull_page, pull, pull_page,
};
pub use push::{PushResponse, Rejection, push};
pub use tables::{Column, ColumnType, RawRecord, TABLES, Table};

use crate::db::identity::{Epoch, TIMESTAMP_REVISION_BITS};
use crate::error::{Error, Result};

/// The feed's settings: the tombstones' retention, and the key that signs the cursors of a
/// pull's pages, as the native pull's.
pub type Settings<'a> = crate::sync::pull::PullSettings<'a>;

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
