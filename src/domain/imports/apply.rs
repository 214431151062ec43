//! Writing a checked file: its people created and updated (with their unit history), its
//! enrollments handed back for the one writer, and the import in the audit trail.

use diesel::prelude::*;

use super::matching::Plan;
use super::row::Values;
use super::{Checked, ImportReport};
use crate::db::schema::people;
use crate::db::{DbConn, now_ms};
use crate::domain::audit::{Audit, AuditAction, AuditObject, Entry};
use crate::domain::enrollments::EnrollmentInput;
use crate::domain::people::{UnitChangeReason, record_unit_change};
use crate::domain::values::new_id;
use crate::domain::{Caller, text};
use crate::error::{Error, FieldError, Result};

const INSERT_CHUNK: usize = 500;

/// Puts an applied import in the audit trail: the file's format, the summary, and the course
/// its people were enrolled in.
pub fn record_applied(conn: &mut DbConn, caller: &Caller, report: &ImportReport) -> Result<()> {
    let mut entry = Entry::new(AuditAction::ImportApplied)
        .detail(
            "format",
            serde_json::to_value(report.format).unwrap_or_default(),
        )
        .detail(
            "summary",
            serde_json::to_value(&report.summary).unwrap_or_default(),
        );
    if let Some(course) = &report.course_id {
        entry = entry.about(AuditObject::Course, course);
    }
    Audit::record_by(conn, caller, entry)
}

/// Writes a checked file's people. Refuses (writing nothing) when any row has an error. Returns
/// the report and the enrollments to make, which the caller hands to the one writer of synced
/// records (`sync::writer::enroll`).
pub fn apply(conn: &mut DbConn, checked: Checked) -> Result<(ImportReport, Vec<EnrollmentInput>)> {
    let Checked { mut report, plans } = checked;
    if report.summary.errors > 0 {
        let details = report
            .problems
            .iter()
            .map(|p| FieldError::new(&format!("rows[{}].{}", p.row, p.field), p.code, &p.message))
            .collect();
        return Err(Error::Validation {
            message: format!(
                "{} rows have errors; nothing was written (correct the file and import again)",
                report.summary.errors
            ),
            details,
        });
    }
    report.dry_run = false;
    let now = now_ms();
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let mut creates = Vec::new();
    let mut to_enroll = Vec::new();
    for (result, plan) in report.rows.iter_mut().zip(plans) {
        match plan {
            Plan::Create(values) => {
                let id = new_id();
                result.person_id = Some(id.clone());
                creates.push((id, values));
            }
            Plan::Update { id, values } => update_person(conn, &id, &values, &today, now)?,
            Plan::Nothing => {}
        }
    }
    for chunk in creates.chunks(INSERT_CHUNK) {
        let revs = crate::db::next_revisions(conn, chunk.len())?;
        let rows: Vec<_> = chunk
            .iter()
            .zip(revs)
            .map(|((id, v), rev)| {
                (
                    people::id.eq(id),
                    PersonColumns::of(v),
                    people::rev.eq(rev),
                    people::created_at.eq(now),
                    people::updated_at.eq(now),
                )
            })
            .collect();
        // Multi-row inserts are not available through the MultiConnection: each backend's own
        // connection takes them.
        let insert = diesel::insert_into(people::table).values(rows);
        match conn {
            DbConn::Sqlite(c) => insert.execute(c)?,
            DbConn::Postgres(c) => insert.execute(c)?,
        };
    }
    if let Some(course) = &report.course_id {
        for result in report.rows.iter().filter(|r| r.enroll) {
            let Some(person) = &result.person_id else {
                continue;
            };
            to_enroll.push(EnrollmentInput {
                id: None,
                course_id: course.clone(),
                person_id: person.clone(),
                status: None,
            });
        }
    }
    Ok((report, to_enroll))
}

fn update_person(conn: &mut DbConn, id: &str, v: &Values, today: &str, now: i64) -> Result<()> {
    let previous_unit: Option<String> =
        people::table.find(id).select(people::unit_id).first(conn)?;
    if let Some(old) = previous_unit.filter(|old| v.unit_id.as_ref() != Some(old)) {
        record_unit_change(conn, id, &old, today, UnitChangeReason::Import, now)?;
    }
    diesel::update(people::table.find(id))
        .set((
            PersonColumns::of(v),
            people::rev.eq(crate::db::next_revision(conn)?),
            people::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The columns a roster row sets, for a person it creates and one it updates alike (an empty
/// value is written as null: `Values` already holds the stored value where the cell was empty).
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = people, treat_none_as_null = true)]
struct PersonColumns<'a> {
    full_name: &'a str,
    name_key: String,
    sort_key: String,
    birth_date: Option<&'a str>,
    gender: Option<&'a str>,
    phone: Option<&'a str>,
    position: &'a str,
    unit_id: Option<&'a str>,
    position_since: Option<&'a str>,
}

impl<'a> PersonColumns<'a> {
    fn of(v: &'a Values) -> Self {
        PersonColumns {
            full_name: &v.full_name,
            name_key: text::fold(&v.full_name),
            sort_key: text::person_sort_key(&v.full_name),
            birth_date: v.birth_date.as_deref(),
            gender: v.gender.as_deref(),
            phone: v.phone.as_deref(),
            position: v.position.as_deref().unwrap_or("member"),
            unit_id: v.unit_id.as_deref(),
            position_since: v.position_since.as_deref(),
        }
    }
}
