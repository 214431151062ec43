//! Forgetting old deletions. Tombstones tell devices what to drop; once they are older than the
//! retention, every cursor that could still need them is refused (410 `resync_required`), so the
//! rows can go. Rows still referenced by live rows stay.

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use crate::db::schema::{
    attendance, course_trainers, courses, enrollments, materials, people, sessions, units, users,
};
use crate::db::{DbConn, now_ms, write_tx};
use crate::error::Result;

/// How many tombstones were removed, per collection.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub attendance: usize,
    pub enrollments: usize,
    pub course_trainers: usize,
    pub materials: usize,
    pub sessions: usize,
    pub courses: usize,
    pub people: usize,
    pub units: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.attendance
            + self.enrollments
            + self.course_trainers
            + self.materials
            + self.sessions
            + self.courses
            + self.people
            + self.units
    }
}

/// Removes tombstones older than `retention_ms`, children before parents, in one transaction.
pub fn purge_tombstones(conn: &mut DbConn, retention_ms: i64) -> Result<Purged> {
    let cutoff = now_ms().saturating_sub(retention_ms);
    write_tx(conn, |conn| {
        let attendance =
            diesel::delete(attendance::table.filter(attendance::deleted_at.lt(cutoff)))
                .execute(conn)?;
        let enrollments =
            diesel::delete(enrollments::table.filter(enrollments::deleted_at.lt(cutoff)))
                .execute(conn)?;
        let course_trainers =
            diesel::delete(course_trainers::table.filter(course_trainers::deleted_at.lt(cutoff)))
                .execute(conn)?;
        let materials = diesel::delete(materials::table.filter(materials::deleted_at.lt(cutoff)))
            .execute(conn)?;
        let sessions = diesel::delete(
            sessions::table
                .filter(sessions::deleted_at.lt(cutoff))
                .filter(not(exists(
                    attendance::table.filter(attendance::session_id.eq(sessions::id)),
                ))),
        )
        .execute(conn)?;
        let courses = diesel::delete(
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
        .execute(conn)?;
        let people = diesel::delete(
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
        .execute(conn)?;
        // Units reference each other (parent, merged into): one that another unit still names
        // stays until that one goes.
        let other = diesel::alias!(units as other);
        let units = diesel::delete(
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
        .execute(conn)?;
        Ok(Purged {
            attendance,
            enrollments,
            course_trainers,
            materials,
            sessions,
            courses,
            people,
            units,
        })
    })
}
