//! The database's identity: its epoch. Restoring a backup rolls the revision counter back while
//! devices hold positions (pull cursors, WatermelonDB timestamps) ahead of it; continuing from
//! such a position would skip every change written after the restore up to it. A restore
//! therefore starts a new epoch, positions carry the epoch they were issued in, and one of
//! another epoch is answered 410 `resync_required`.
//!
//! Every database starts in epoch 0 (the migration that brought epochs made it so), so the
//! positions issued before epochs existed, which carry none, belong to it. A new epoch is
//! random: the database cannot know which epochs a lost timeline went through (a backup
//! restored twice), so a counter could repeat one.

use diesel::prelude::*;
use rand::Rng;

use super::schema::database_identity;
use super::{DbConn, now_ms, write_tx};
use crate::error::Result;

/// WatermelonDB timestamps are JavaScript numbers, exact up to 2^53: they carry the revision in
/// their low bits and the epoch's low [`TIMESTAMP_TAG_BITS`] bits above it.
pub const TIMESTAMP_REVISION_BITS: u32 = 40;
pub const TIMESTAMP_TAG_BITS: u32 = 53 - TIMESTAMP_REVISION_BITS;

/// New epochs are drawn below this, so that any client can hold one as a number.
const EPOCH_LIMIT: i64 = 1 << 53;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(i64);

/// The identity row as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = database_identity)]
pub struct Identity {
    pub epoch: i64,
    /// When the epoch began (server time, Unix ms; 0 for a database's first).
    pub began_at: i64,
}

impl Epoch {
    /// The epoch every database starts in, and that positions without one belong to.
    pub const FIRST: Epoch = Epoch(0);

    pub fn from_id(id: i64) -> Epoch {
        Epoch(id)
    }

    pub fn id(self) -> i64 {
        self.0
    }

    /// The part of the epoch a WatermelonDB timestamp carries.
    pub fn timestamp_tag(self) -> i64 {
        self.0 & ((1 << TIMESTAMP_TAG_BITS) - 1)
    }

    /// The database's current epoch.
    pub fn current(conn: &mut DbConn) -> Result<Epoch> {
        Ok(Epoch(identity(conn)?.epoch))
    }

    /// A random epoch whose timestamp tag differs from the previous epoch's and from the first
    /// epoch's, so that no WatermelonDB timestamp of either is taken for one of the new epoch.
    fn after(previous: Epoch, rng: &mut impl Rng) -> Epoch {
        loop {
            let candidate = Epoch(rng.random_range(1..EPOCH_LIMIT));
            let tag = candidate.timestamp_tag();
            if tag != Epoch::FIRST.timestamp_tag() && tag != previous.timestamp_tag() {
                return candidate;
            }
        }
    }
}

/// The identity row.
pub fn identity(conn: &mut DbConn) -> Result<Identity> {
    Ok(database_identity::table
        .filter(database_identity::id.eq(1))
        .select(Identity::as_select())
        .get_result(conn)?)
}

/// Starts a new epoch: every pull cursor and WatermelonDB timestamp issued before is answered
/// 410 `resync_required` from now on. Run after a restore (`diemdanh restore` does it).
pub fn start_new_epoch(conn: &mut DbConn) -> Result<Epoch> {
    write_tx(conn, |conn| {
        let previous = Epoch::current(conn)?;
        let next = Epoch::after(previous, &mut rand::rng());
        diesel::update(database_identity::table.filter(database_identity::id.eq(1)))
            .set((
                database_identity::epoch.eq(next.id()),
                database_identity::began_at.eq(now_ms()),
            ))
            .execute(conn)?;
        Ok(next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_new_epoch_never_shares_a_timestamp_tag_with_the_last_or_the_first() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut previous = Epoch::FIRST;
        for _ in 0..20_000 {
            let next = Epoch::after(previous, &mut rng);
            assert_ne!(next.timestamp_tag(), previous.timestamp_tag());
            assert_ne!(next.timestamp_tag(), 0);
            assert!((1..EPOCH_LIMIT).contains(&next.id()));
            previous = next;
        }
    }
}
