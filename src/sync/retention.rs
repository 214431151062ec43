//! Forgetting old deletions. Tombstones tell devices what to drop; once they are older than the
//! retention, every cursor that could still need them is refused (410 `resync_required`), so the
//! rows can go. Rows still referenced by live rows stay.

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use crate::db::schema::{
    attendance, course_trainers, courses, enrollments, materials, people, sessions, units, users,
};
use crate::db::{DbConn, now_ms, write_tx};
use crate::domain::collections::synced_collections;
use crate::error::Result;
use crate::sync::records::Collection;

/// `Purged`, a count per synced collection, from the list of synced collections.
macro_rules! purged {
    ($($variant:ident: $table:ident => $row:path { $($columns:tt)* }),+ $(,)?) => {
        /// How many tombstones were removed, per collection.
        #[derive(Debug, Default, PartialEq, Eq)]
        pub struct Purged {
            $(pub $table: usize),+
        }

        impl Purged {
            pub fn total(&self) -> usize {
                0 $(+ self.$table)+
            }

            fn of(&mut self, collection: Collection) -> &mut usize {
                match collection {
                    $(Collection::$variant => &mut self.$table),+
                }
            }
        }
    };
}
synced_collections!(purged);

/// Removes tombstones older than `retention_ms`, children before parents, in one transaction.
pub fn purge_tombstones(conn: &mut DbConn, retention_ms: i64) -> Result<Purged> {
    let cutoff = now_ms().saturating_sub(retention_ms);
    write_tx(conn, |conn| {
        let mut purged = Purged::default();
        // Children before parents: the list names a record's parents before it.
        for collection in Collection::ALL.into_iter().rev() {
            *purged.of(collection) = purge(conn, collection, cutoff)?;
        }
        Ok(purged)
    })
}

/// Removes one collection's tombstones older than `cutoff`, except those live rows still
/// reference.
fn purge(conn: &mut DbConn, collection: Collection, cutoff: i64) -> Result<usize> {
    Ok(match collection {
        Collection::Attendance => {
            diesel::delete(attendance::table.filter(attendance::deleted_at.lt(cutoff)))
                .execute(conn)?
        }
        Collection::Enrollments => {
            diesel::delete(enrollments::table.filter(enrollments::deleted_at.lt(cutoff)))
                .execute(conn)?
        }
        Collection::CourseTrainers => {
            diesel::delete(course_trainers::table.filter(course_trainers::deleted_at.lt(cutoff)))
                .execute(conn)?
        }
        Collection::Materials => {
            diesel::delete(materials::table.filter(materials::deleted_at.lt(cutoff)))
                .execute(conn)?
        }
        Collection::Sessions => diesel::delete(
            sessions::table
                .filter(sessions::deleted_at.lt(cutoff))
                .filter(not(exists(
                    attendance::table.filter(attendance::session_id.eq(sessions::id)),
                ))),
        )
        .execute(conn)?,
        Collection::Courses => diesel::delete(
            courses::table
                .filter(courses::deleted_at.lt(cutoff))
                .filter(not(exists(
                    sessions::table.filter(sessions::course_id.eq(courses::id)),
                )))
                .filter(not(exists(
                    enrollments::table.filter(enrollments::course_id.eq(courses::id)),
                )))
                .filter(not(exists(
                    materials::table.filter(materials::course_id.eq(courses::id)),
                )))
                .filter(not(exists(
                    course_trainers::table.filter(course_trainers::course_id.eq(courses::id)),
                ))),
        )
        .execute(conn)?,
        Collection::People => diesel::delete(
            people::table
                .filter(people::deleted_at.lt(cutoff))
                .filter(not(exists(
                    enrollments::table.filter(enrollments::person_id.eq(people::id)),
                )))
                .filter(not(exists(
                    attendance::table.filter(attendance::person_id.eq(people::id)),
                )))
                .filter(not(exists(
                    users::table.filter(users::person_id.eq(people::id.nullable())),
                ))),
        )
        .execute(conn)?,
        Collection::Units => {
            // Units reference each other (parent, merged into): one that another unit still
            // names stays until that one goes.
            let other = diesel::alias!(units as other);
            diesel::delete(
                units::table
                    .filter(units::deleted_at.lt(cutoff))
                    .filter(not(exists(
                        people::table.filter(people::unit_id.eq(units::id.nullable())),
                    )))
                    .filter(not(exists(
                        courses::table.filter(courses::organizing_unit_id.eq(units::id.nullable())),
                    )))
                    .filter(not(exists(
                        other.filter(
                            other
                                .field(units::parent_id)
                                .eq(units::id.nullable())
                                .or(other.field(units::merged_into_id).eq(units::id.nullable())),
                        ),
                    ))),
            )
            .execute(conn)?
        }
    })
}
