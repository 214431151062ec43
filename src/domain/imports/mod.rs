//! Roster import: people (and optionally their enrollment in a course) from the CSV and XLSX
//! sheets provincial offices keep (STT, Họ và tên, Ngày sinh, Giới tính, Chức vụ, Đơn vị, Số điện
//! thoại; headers matched without regard to diacritics, case or order).
//!
//! `check` reads a file and judges every row against the database without writing: the per-row
//! report is the dry run. `apply` writes what `check` found, in the caller's transaction, and
//! refuses when any row has an error, so that a half-imported roster never exists.
//!
//! Matching an existing person: by phone, else by folded name + birth date + unit. Re-importing
//! the same file changes nothing; an empty cell never erases a stored value. A row that matches
//! nobody but whose folded name equals an existing person's (and whose birth dates do not
//! contradict) is reported as a possible duplicate and not created: it is the same name typed
//! with or without diacritics, or in another Unicode form.
//!
//! One file a step: `read` (CSV and XLSX into cells), `header` (which column holds what), `row`
//! (a row's cells into values), `matching` (units and people on record), `apply` (the writes).

mod apply;
mod header;
mod matching;
mod read;
mod row;

use serde::Serialize;

pub use apply::{apply, record_applied};
use header::find_header;
pub use matching::OnRecord;
use matching::{Matcher, Plan};
pub use read::{Cell, FileFormat, Table, XLSX_MEDIA_TYPE, read_table};
use row::read_row;

use super::access::OUTSIDE_YOUR_UNIT;
use super::courses::Courses;
use super::{Caller, Resource};
use crate::db::DbConn;
use crate::error::{Error, Result};

/// One problem with one row (row 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub row: usize,
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// What the import does (or did) with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// The same person as an earlier row of the file: skipped.
    DuplicateRow,
    /// Looks like someone already on record: not created.
    PossibleDuplicate,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowResult {
    pub row: usize,
    pub action: Action,
    pub full_name: String,
    /// The person created, updated or matched (the existing one for a possible duplicate).
    pub person_id: Option<String>,
    /// The fields an update changes.
    pub changes: Vec<&'static str>,
    /// Whether the person gets a new enrollment in the course.
    pub enroll: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub duplicate_rows: usize,
    pub possible_duplicates: usize,
    pub errors: usize,
    pub enrolled: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub format: FileFormat,
    pub course_id: Option<String>,
    /// The header row's number and the fields its columns were recognised as.
    pub header_row: usize,
    pub columns: Vec<&'static str>,
    pub summary: Summary,
    pub problems: Vec<Problem>,
    pub rows: Vec<RowResult>,
}

/// A checked file: the report plus what `apply` would write.
pub struct Checked {
    pub report: ImportReport,
    plans: Vec<Plan>,
}

/// Called with (rows done, rows in all) while checking, for a progress display.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Reads and checks a file against the database; writes nothing.
pub fn check(
    conn: &mut DbConn,
    caller: &Caller,
    bytes: &[u8],
    course_id: Option<&str>,
    progress: Progress,
) -> Result<Checked> {
    let manages = &caller.manages;
    manages.require_some()?;
    let course_id = course_id
        .map(|raw| {
            let id = super::values::parse_id(raw)
                .ok_or_else(|| Error::invalid_field("course_id", "invalid_id", "must be a UUID"))?;
            Courses::find_visible(conn, caller, &id).map_err(|_| {
                Error::invalid_field("course_id", "unknown_course", "no such course")
            })?;
            Ok::<_, Error>(id)
        })
        .transpose()?;
    let on_record = OnRecord::load(conn, manages, course_id.as_deref())?;
    let checked = judge_file(&on_record, bytes, course_id, progress)?;
    // An organiser's people belong to units of their subtree: a row that would write a person
    // of no unit refuses the file.
    let unitless = checked.plans.iter().any(|plan| match plan {
        Plan::Create(values) | Plan::Update { values, .. } => {
            !manages.covers(values.unit_id.as_deref())
        }
        Plan::Nothing => false,
    });
    if unitless {
        return Err(Error::invalid_field(
            "unit",
            OUTSIDE_YOUR_UNIT,
            "every row must name a unit of your subtree",
        ));
    }
    Ok(checked)
}

/// Reads a file and judges every row against what is on record (`course_id`: a course known to
/// exist); the dry run's report. Needs no database.
pub fn judge_file(
    on_record: &OnRecord,
    bytes: &[u8],
    course_id: Option<String>,
    progress: Progress,
) -> Result<Checked> {
    let (format, table) = read_table(bytes)?;
    let (header_index, columns) = find_header(&table)?;
    let header_row = table[header_index].0;
    let mut matcher = Matcher::new(&on_record.people);
    let data_rows: Vec<&(usize, Vec<Cell>)> = table[header_index + 1..]
        .iter()
        .filter(|(_, cells)| {
            cells
                .iter()
                .enumerate()
                .any(|(i, c)| !c.is_empty() && columns.get(i).copied().flatten().is_some())
        })
        .collect();
    let total = data_rows.len();
    let mut report = ImportReport {
        dry_run: true,
        format,
        course_id: course_id.clone(),
        header_row,
        columns: columns.iter().flatten().map(|c| c.field()).collect(),
        summary: Summary {
            rows: total,
            ..Summary::default()
        },
        problems: Vec::new(),
        rows: Vec::with_capacity(total),
    };
    let mut plans = Vec::with_capacity(total);
    for (done, (row, cells)) in data_rows.into_iter().enumerate() {
        if done % 500 == 0 {
            progress(done, total);
        }
        let (values, problems) = read_row(*row, cells, &columns, &on_record.units);
        let (action, person_id, changes, plan) = if problems.is_empty() {
            matcher.judge(*row, values.clone(), &mut report.problems)
        } else {
            report.problems.extend(problems);
            (Action::Error, None, Vec::new(), Plan::Nothing)
        };
        let enroll = course_id.is_some()
            && matches!(action, Action::Create | Action::Update | Action::Unchanged)
            && person_id
                .as_ref()
                .is_none_or(|id| !on_record.enrolled.contains(id));
        match action {
            Action::Create => report.summary.created += 1,
            Action::Update => report.summary.updated += 1,
            Action::Unchanged => report.summary.unchanged += 1,
            Action::DuplicateRow => report.summary.duplicate_rows += 1,
            Action::PossibleDuplicate => report.summary.possible_duplicates += 1,
            Action::Error => report.summary.errors += 1,
        }
        report.summary.enrolled += usize::from(enroll);
        report.rows.push(RowResult {
            row: *row,
            action,
            full_name: values.full_name,
            person_id,
            changes,
            enroll,
        });
        plans.push(plan);
    }
    progress(total, total);
    Ok(Checked { report, plans })
}
