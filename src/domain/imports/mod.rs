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

use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use calamine::{Data, DataRef, Reader, Xlsx, XlsxError};
use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use serde::Serialize;

use super::access::{Manages, OUTSIDE_YOUR_UNIT};
use super::audit::{Audit, AuditAction, AuditObject, Entry};
use super::courses::Courses;
use super::enrollments::EnrollmentInput;
use super::people::{GENDERS, POSITIONS, UnitChangeReason, normalize_phone, record_unit_change};
use super::values::{MAX_NAME_CHARS, new_id};
use super::{Caller, text};
use crate::db::schema::{enrollments, people, units};
use crate::db::{Backend, DbConn, now_ms};
use crate::error::{Error, FieldError, Result};

/// The media type of an XLSX workbook.
pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// How many rows above the header a sheet may carry (titles such as "DANH SÁCH CÁN BỘ ĐOÀN").
const HEADER_SEARCH_ROWS: usize = 10;
const INSERT_CHUNK: usize = 500;
/// The most cells a sheet may span from its first column and row to its last: far more than any
/// roster (50,000 people in 20 columns), few enough to hold in memory.
const MAX_SHEET_CELLS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Xlsx,
}

impl FileFormat {
    /// Decides by the bytes: an XLSX workbook is a ZIP archive; an old binary .xls is refused
    /// with advice; anything else is read as CSV text.
    pub fn detect(bytes: &[u8]) -> Result<FileFormat> {
        if bytes.starts_with(b"PK\x03\x04") {
            Ok(FileFormat::Xlsx)
        } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
            Err(Error::UnsupportedMediaType {
                message: "old Excel .xls files cannot be read; save the sheet as .xlsx or .csv"
                    .into(),
            })
        } else {
            Ok(FileFormat::Csv)
        }
    }
}

/// One cell as read from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// A cell formatted as a date: the calendar date it shows.
    Date(NaiveDate),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.trim().to_owned(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
            Cell::Date(d) => d.format("%d/%m/%Y").to_string(),
        }
    }

    fn is_empty(&self) -> bool {
        self.text().is_empty()
    }
}

/// A sheet's rows with their row numbers as the office sees them (1 = the first line).
pub type Table = Vec<(usize, Vec<Cell>)>;

/// Reads the first sheet of a workbook, or a CSV file (UTF-8, with or without BOM; comma or
/// semicolon separated).
pub fn read_table(bytes: &[u8]) -> Result<(FileFormat, Table)> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty_file());
    }
    let format = FileFormat::detect(bytes)?;
    let table = match format {
        FileFormat::Csv => read_csv(bytes)?,
        FileFormat::Xlsx => read_xlsx(bytes)?,
    };
    if table
        .iter()
        .all(|(_, cells)| cells.iter().all(Cell::is_empty))
    {
        return Err(empty_file());
    }
    Ok((format, table))
}

fn empty_file() -> Error {
    Error::invalid_field("file", "empty_file", "the file has no rows")
}

fn unreadable(message: impl Into<String>) -> Error {
    Error::invalid_field("file", "unreadable_file", message)
}

fn read_csv(bytes: &[u8]) -> Result<Table> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|_| unreadable("the CSV file is not UTF-8 text; save it as \"CSV UTF-8\""))?;
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut table = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(format!("the CSV file is malformed: {e}")))?;
        let line = record
            .position()
            .map_or(table.len() + 1, |p| p.line() as usize);
        let cells = record
            .iter()
            .map(|s| {
                if s.trim().is_empty() {
                    Cell::Empty
                } else {
                    // A file the server wrote guards what a spreadsheet could run as a formula.
                    Cell::Text(crate::reports::render::unguard_formula(s).to_owned())
                }
            })
            .collect();
        table.push((line, cells));
    }
    Ok(table)
}

fn read_xlsx(bytes: &[u8]) -> Result<Table> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec()))
        .map_err(|e| unreadable(format!("the XLSX file cannot be read: {e}")))?;
    let sheet_unreadable =
        |e: XlsxError| unreadable(format!("the first sheet cannot be read: {e}"));
    let name = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(empty_file)?;
    // The cells one by one, rather than calamine's whole-sheet range: that range spans every
    // position from the first cell to the last, so two cells far apart (A1 and XFD1048576, in a
    // file of a few hundred bytes) would take more memory than the machine has.
    let mut cells = Vec::new();
    let mut reader = match workbook.worksheet_cells_reader(&name) {
        Ok(reader) => reader,
        Err(XlsxError::NotAWorksheet(_)) => return Ok(Vec::new()),
        Err(e) => return Err(sheet_unreadable(e)),
    };
    while let Some(cell) = reader.next_cell().map_err(sheet_unreadable)? {
        if !matches!(cell.get_value(), DataRef::Empty) {
            cells.push(calamine::Cell::new(
                cell.get_position(),
                Data::from(cell.get_value().clone()),
            ));
        }
    }
    drop(reader);
    let Some(area) = Area::spanned(&cells) else {
        return Ok(Vec::new());
    };
    let (rows, columns) = (
        u64::from(area.bottom - area.top) + 1,
        u64::from(area.right) + 1,
    );
    if rows * columns > MAX_SHEET_CELLS {
        return Err(unreadable(format!(
            "the first sheet spans {rows} rows and {columns} columns, more than a roster can; \
             delete what is outside the list"
        )));
    }
    let range = calamine::Range::from_sparse(cells);
    // A merged cell keeps its value in its top-left corner only; offices merge "Đơn vị" over
    // the rows of one unit, so every cell of a merged region takes the corner's value (the
    // first region listed, where they overlap).
    let merged = workbook.merge_cells_by_sheet_id(0).unwrap_or_default();
    let mut merged_from = HashMap::new();
    let mut merged_cells = 0u64;
    for region in &merged {
        let (rows, cols) = (
            region.start.0.max(area.top)..=region.end.0.min(area.bottom),
            region.start.1.max(area.left)..=region.end.1.min(area.right),
        );
        merged_cells += rows.clone().count() as u64 * cols.clone().count() as u64;
        if merged_cells > MAX_SHEET_CELLS {
            return Err(unreadable("the first sheet has too many merged cells"));
        }
        for row in rows {
            for col in cols.clone() {
                merged_from.entry((row, col)).or_insert(region.start);
            }
        }
    }
    let mut table = Vec::with_capacity(rows as usize);
    for row in area.top..=area.bottom {
        let mut cells = vec![Cell::Empty; area.left as usize];
        for col in area.left..=area.right {
            let source = merged_from.get(&(row, col)).copied().unwrap_or((row, col));
            cells.push(convert(range.get_value(source)));
        }
        table.push((row as usize + 1, cells));
    }
    Ok(table)
}

/// The rows and columns from a sheet's first cells to its last (inclusive).
struct Area {
    top: u32,
    bottom: u32,
    left: u32,
    right: u32,
}

impl Area {
    fn spanned(cells: &[calamine::Cell<Data>]) -> Option<Area> {
        let mut positions = cells.iter().map(calamine::Cell::get_position);
        let (row, col) = positions.next()?;
        Some(positions.fold(
            Area {
                top: row,
                bottom: row,
                left: col,
                right: col,
            },
            |area, (row, col)| Area {
                top: area.top.min(row),
                bottom: area.bottom.max(row),
                left: area.left.min(col),
                right: area.right.max(col),
            },
        ))
    }
}

fn convert(value: Option<&Data>) -> Cell {
    match value {
        None | Some(Data::Empty | Data::Error(_)) => Cell::Empty,
        Some(Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s)) => {
            if s.trim().is_empty() {
                Cell::Empty
            } else {
                Cell::Text(s.clone())
            }
        }
        Some(Data::Int(i)) => Cell::Number(*i as f64),
        Some(Data::Float(f)) => Cell::Number(*f),
        Some(Data::Bool(b)) => Cell::Text(b.to_string()),
        Some(Data::DateTime(dt)) => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
                .map_or(Cell::Empty, Cell::Date)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Number,
    Name,
    BirthDate,
    Gender,
    Position,
    Unit,
    Phone,
    /// The day the person took their position (their election).
    PositionSince,
}

impl Column {
    fn field(self) -> &'static str {
        match self {
            Column::Number => "stt",
            Column::Name => "full_name",
            Column::BirthDate => "birth_date",
            Column::Gender => "gender",
            Column::Position => "position",
            Column::Unit => "unit",
            Column::Phone => "phone",
            Column::PositionSince => "position_since",
        }
    }

    /// Recognises a header by its folded text.
    fn from_header(header: &str) -> Option<Column> {
        let folded = text::fold(header).replace(['.', ':', '_'], " ");
        let folded = folded.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(match folded.as_str() {
            "stt" | "tt" | "so tt" | "no" => Column::Number,
            "ho va ten" | "ho ten" | "ho va ten dem" | "full name" | "name" => Column::Name,
            "ngay sinh" | "ngay thang nam sinh" | "ngay sinh dd/mm/yyyy" | "birth date" => {
                Column::BirthDate
            }
            "gioi tinh" | "gender" => Column::Gender,
            "chuc vu" | "chuc vu doan" | "position" => Column::Position,
            "don vi" | "don vi cong tac" | "unit" => Column::Unit,
            "so dien thoai" | "dien thoai" | "sdt" | "so dt" | "phone" => Column::Phone,
            "ngay nhan chuc vu"
            | "giu chuc vu tu ngay"
            | "ngay bau"
            | "ngay duoc bau"
            | "position since" => Column::PositionSince,
            _ => return None,
        })
    }
}

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

/// A person as stored, for matching.
#[derive(Debug, Clone, Queryable)]
pub struct Existing {
    pub id: String,
    pub full_name: String,
    /// The folded name (`text::fold`).
    pub name_key: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub phone: Option<String>,
    pub position: String,
    pub unit_id: Option<String>,
    pub position_since: Option<String>,
}

/// A unit as stored, for resolving the units a file names.
#[derive(Debug, Clone, Queryable)]
pub struct StoredUnit {
    pub id: String,
    pub code: String,
    /// The folded name (`text::fold`).
    pub name_key: String,
    pub merged_into_id: Option<String>,
}

/// What a file is checked against: the units, the people on record and, for a course, the
/// people already enrolled in it.
pub struct OnRecord {
    units: UnitIndex,
    people: Vec<Existing>,
    enrolled: HashSet<String>,
}

impl OnRecord {
    pub fn new(units: Vec<StoredUnit>, people: Vec<Existing>, enrolled: HashSet<String>) -> Self {
        OnRecord {
            units: UnitIndex::new(units),
            people,
            enrolled,
        }
    }

    /// What an import of `manages` is checked against: an organiser's file meets only the
    /// units and people of their subtree (a row naming another unit names an unknown one).
    fn load(conn: &mut DbConn, manages: &Manages, course_id: Option<&str>) -> Result<OnRecord> {
        let in_reach = manages.units();
        let mut units_query = units::table
            .filter(units::deleted_at.is_null())
            .into_boxed::<Backend>();
        let mut people_query = people::table
            .filter(people::deleted_at.is_null())
            .into_boxed::<Backend>();
        if let Some(ids) = &in_reach {
            units_query = units_query.filter(units::id.eq_any(ids.clone()));
            people_query = people_query.filter(people::unit_id.eq_any(ids.clone()));
        }
        let units = units_query
            .select((
                units::id,
                units::code,
                units::name_key,
                units::merged_into_id,
            ))
            .load(conn)?;
        let people = people_query
            .select((
                people::id,
                people::full_name,
                people::name_key,
                people::birth_date,
                people::gender,
                people::phone,
                people::position,
                people::unit_id,
                people::position_since,
            ))
            .load(conn)?;
        let enrolled = match course_id {
            Some(course) => enrollments::table
                .filter(enrollments::course_id.eq(course))
                .filter(enrollments::deleted_at.is_null())
                .select(enrollments::person_id)
                .load::<String>(conn)?
                .into_iter()
                .collect(),
            None => HashSet::new(),
        };
        Ok(OnRecord::new(units, people, enrolled))
    }
}

/// A row's values once read and checked.
#[derive(Debug, Clone, Default)]
struct Values {
    full_name: String,
    birth_date: Option<String>,
    gender: Option<String>,
    phone: Option<String>,
    position: Option<String>,
    unit_id: Option<String>,
    position_since: Option<String>,
}

/// The write a checked row asks for.
#[derive(Debug, Clone)]
enum Plan {
    Create(Values),
    Update {
        id: String,
        values: Values,
    },
    /// Unchanged, or not to be written (duplicates, errors).
    Nothing,
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
                    people::full_name.eq(&v.full_name),
                    people::name_key.eq(text::fold(&v.full_name)),
                    people::sort_key.eq(text::person_sort_key(&v.full_name)),
                    people::birth_date.eq(&v.birth_date),
                    people::gender.eq(&v.gender),
                    people::phone.eq(&v.phone),
                    people::position.eq(v.position.as_deref().unwrap_or("member")),
                    people::unit_id.eq(&v.unit_id),
                    people::position_since.eq(&v.position_since),
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
            people::full_name.eq(&v.full_name),
            people::name_key.eq(text::fold(&v.full_name)),
            people::sort_key.eq(text::person_sort_key(&v.full_name)),
            people::birth_date.eq(&v.birth_date),
            people::gender.eq(&v.gender),
            people::phone.eq(&v.phone),
            people::position.eq(v.position.as_deref().unwrap_or("member")),
            people::unit_id.eq(&v.unit_id),
            people::position_since.eq(&v.position_since),
            people::rev.eq(crate::db::next_revision(conn)?),
            people::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Finds the header row (among the first rows) and what each of its columns holds.
fn find_header(table: &Table) -> Result<(usize, Vec<Option<Column>>)> {
    for (index, (_, cells)) in table.iter().enumerate().take(HEADER_SEARCH_ROWS) {
        let columns: Vec<Option<Column>> = cells
            .iter()
            .map(|c| Column::from_header(&c.text()))
            .collect();
        if !columns.contains(&Some(Column::Name)) {
            continue;
        }
        for wanted in [Column::Position] {
            if !columns.contains(&Some(wanted)) {
                return Err(wrong_headers(cells));
            }
        }
        let mut seen = Vec::new();
        for column in columns.iter().flatten() {
            if seen.contains(column) {
                return Err(Error::invalid_field(
                    "file",
                    "duplicate_column",
                    format!("the column for {} appears twice", column.field()),
                ));
            }
            seen.push(*column);
        }
        return Ok((index, columns));
    }
    let first = table
        .iter()
        .find(|(_, cells)| cells.iter().any(|c| !c.is_empty()))
        .map(|(_, cells)| cells.as_slice())
        .unwrap_or_default();
    Err(wrong_headers(first))
}

fn wrong_headers(cells: &[Cell]) -> Error {
    let found: Vec<String> = cells
        .iter()
        .map(Cell::text)
        .filter(|t| !t.is_empty())
        .collect();
    Error::invalid_field(
        "file",
        "wrong_headers",
        format!(
            "expected the columns STT, Họ và tên, Ngày sinh, Giới tính, Chức vụ, Đơn vị, Số điện \
             thoại (Họ và tên and Chức vụ at least); found: {}",
            if found.is_empty() {
                "nothing".to_owned()
            } else {
                found.join(", ")
            }
        ),
    )
}

/// Reads one row's cells into values, with every problem found.
fn read_row(
    row: usize,
    cells: &[Cell],
    columns: &[Option<Column>],
    units: &UnitIndex,
) -> (Values, Vec<Problem>) {
    let mut values = Values::default();
    let mut problems = Vec::new();
    let mut fail = |field: &'static str, code: &'static str, message: String| {
        problems.push(Problem {
            row,
            field,
            code,
            message,
        });
    };
    let mut saw_name = false;
    for (cell, column) in cells.iter().zip(columns) {
        let Some(column) = column else { continue };
        let field = column.field();
        let raw = cell.text();
        match column {
            Column::Number => {}
            Column::Name => {
                saw_name = true;
                let name = text::clean(&raw);
                if name.is_empty() {
                    fail(field, "required", "the name is empty".into());
                } else if name.chars().count() > MAX_NAME_CHARS {
                    fail(
                        field,
                        "too_long",
                        format!("at most {MAX_NAME_CHARS} characters"),
                    );
                } else if name.chars().any(char::is_control) {
                    // As the API refuses them; PostgreSQL could not store a NUL anyway.
                    fail(
                        field,
                        "invalid_characters",
                        "must not contain control characters".into(),
                    );
                }
                values.full_name = name;
            }
            Column::BirthDate if raw.is_empty() => {}
            Column::BirthDate => match parse_date(cell) {
                Some(date) => values.birth_date = Some(date),
                None => fail(
                    field,
                    "invalid_date",
                    format!("{raw:?} is not a date (dd/mm/yyyy, yyyy-mm-dd or an Excel date)"),
                ),
            },
            Column::Gender if raw.is_empty() => {}
            Column::Gender => match parse_gender(&raw) {
                Some(gender) => values.gender = Some(gender.to_owned()),
                None => fail(
                    field,
                    "unknown_gender",
                    format!("{raw:?} is not Nam, Nữ or Khác"),
                ),
            },
            Column::Position if raw.is_empty() => {
                fail(field, "required", "the position is empty".into())
            }
            Column::Position => match parse_position(&raw) {
                Some(position) => values.position = Some(position.to_owned()),
                None => fail(
                    field,
                    "unknown_position",
                    format!(
                        "{raw:?} is not Bí thư, Phó Bí thư, Bí thư chi đoàn, Phó Bí thư chi đoàn, \
                         Ủy viên BCH or Đoàn viên"
                    ),
                ),
            },
            Column::Unit if raw.is_empty() => {}
            Column::Unit => match units.resolve(&raw) {
                Ok(unit) => values.unit_id = Some(unit),
                Err((code, message)) => fail(field, code, message),
            },
            Column::PositionSince if raw.is_empty() => {}
            Column::PositionSince => match parse_date(cell) {
                Some(date) => values.position_since = Some(date),
                None => fail(
                    field,
                    "invalid_date",
                    format!("{raw:?} is not a date (dd/mm/yyyy, yyyy-mm-dd or an Excel date)"),
                ),
            },
            Column::Phone if raw.is_empty() => {}
            Column::Phone => match parse_phone(cell) {
                Some(phone) => values.phone = Some(phone),
                None => fail(
                    field,
                    "invalid_phone",
                    format!("{raw:?} is not a Vietnamese phone number (10 digits from 0)"),
                ),
            },
        }
    }
    if !saw_name {
        fail("full_name", "required", "the name is empty".into());
    }
    if values.position.is_none() && !problems.iter().any(|p| p.field == "position") {
        problems.push(Problem {
            row,
            field: "position",
            code: "required",
            message: "the position is empty".into(),
        });
    }
    (values, problems)
}

/// Excel counts days from 1899-12-30 (which absorbs its 1900 leap-year bug for later dates).
fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(serial as u64))
}

/// Birth dates: a date cell, an Excel serial number, or text as dd/mm/yyyy (also with - or .),
/// d/m/yyyy or yyyy-mm-dd.
fn parse_date(cell: &Cell) -> Option<String> {
    let date = match cell {
        Cell::Date(date) => Some(*date),
        Cell::Number(serial) => excel_serial_date(*serial),
        Cell::Text(raw) => {
            let raw = raw.trim();
            if raw.len() == 5 && raw.chars().all(|c| c.is_ascii_digit()) {
                raw.parse().ok().and_then(excel_serial_date)
            } else {
                let unified = raw.replace(['-', '.'], "/");
                NaiveDate::parse_from_str(&unified, "%d/%m/%Y")
                    .or_else(|_| NaiveDate::parse_from_str(raw, "%Y-%m-%d"))
                    .or_else(|_| NaiveDate::parse_from_str(&unified, "%Y/%m/%d"))
                    .ok()
            }
        }
        Cell::Empty => None,
    }?;
    let this_year = chrono::Utc::now().year();
    (1900..=this_year)
        .contains(&date.year())
        .then(|| date.format("%Y-%m-%d").to_string())
}

fn parse_gender(raw: &str) -> Option<&'static str> {
    match text::fold(raw).as_str() {
        "nam" | "male" | "m" => Some(GENDERS[0]),
        "nu" | "female" | "f" => Some(GENDERS[1]),
        "khac" | "other" => Some(GENDERS[2]),
        _ => None,
    }
}

/// Positions as offices write them ("Bí thư Đoàn xã", "Phó Bí thư", "PBT", "Ủy viên BCH").
fn parse_position(raw: &str) -> Option<&'static str> {
    let folded = text::fold(raw).replace(['.', '_'], " ");
    let folded = folded.trim();
    if let Some(code) = POSITIONS.iter().find(|p| p.replace('_', " ") == folded) {
        return Some(code);
    }
    let in_branch = folded.ends_with("chi doan") || folded.contains("chi doan ");
    if in_branch && (folded.starts_with("pho bi thu") || folded.starts_with("pbt")) {
        Some("branch_deputy_secretary")
    } else if in_branch && (folded.starts_with("bi thu") || folded.starts_with("bt")) {
        Some("branch_secretary")
    } else if folded.starts_with("pho bi thu") || folded == "pbt" {
        Some("deputy_secretary")
    } else if folded.starts_with("bi thu") || folded == "bt" {
        Some("secretary")
    } else if folded.starts_with("uy vien") || folded.starts_with("uv") {
        Some("committee_member")
    } else if folded.starts_with("doan vien") {
        Some("member")
    } else {
        None
    }
}

/// Phone numbers; a number cell (or CSV text) that lost its leading zero gets it back.
fn parse_phone(cell: &Cell) -> Option<String> {
    let raw = cell.text();
    normalize_phone(&raw).or_else(|| {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        (digits.len() == 9 && !digits.starts_with('0') && digits.len() == raw.trim().len())
            .then(|| normalize_phone(&format!("0{digits}")))
            .flatten()
    })
}

/// Units by folded name (also without the "Xã"/"Phường"… prefix) and by code. A unit merged
/// away resolves to the unit it became.
struct UnitIndex {
    by_key: HashMap<String, Vec<String>>,
    merged_into: HashMap<String, String>,
    names: HashMap<String, String>,
}

const UNIT_PREFIXES: [&str; 6] = ["xa ", "phuong ", "thi tran ", "dac khu ", "huyen ", "tinh "];

impl UnitIndex {
    fn new(units: Vec<StoredUnit>) -> UnitIndex {
        let mut index = UnitIndex {
            by_key: HashMap::new(),
            merged_into: HashMap::new(),
            names: HashMap::new(),
        };
        for StoredUnit {
            id,
            code,
            name_key: key,
            merged_into_id: merged,
        } in units
        {
            let mut keys = vec![key.clone(), code.to_lowercase()];
            if let Some(bare) = UNIT_PREFIXES.iter().find_map(|p| key.strip_prefix(p)) {
                keys.push(bare.to_owned());
            }
            for k in keys {
                let ids = index.by_key.entry(k).or_default();
                if !ids.contains(&id) {
                    ids.push(id.clone());
                }
            }
            if let Some(target) = merged {
                index.merged_into.insert(id.clone(), target);
            }
            index.names.insert(id, key);
        }
        index
    }

    fn resolve(&self, raw: &str) -> std::result::Result<String, (&'static str, String)> {
        let key = text::fold(raw);
        let bare = UNIT_PREFIXES
            .iter()
            .find_map(|p| key.strip_prefix(p))
            .unwrap_or(&key);
        let found = self
            .by_key
            .get(&key)
            .or_else(|| self.by_key.get(bare))
            .cloned()
            .unwrap_or_default();
        let mut current: Vec<String> = found
            .iter()
            .map(|id| {
                let mut id = id.clone();
                for _ in 0..16 {
                    match self.merged_into.get(&id) {
                        Some(next) => id = next.clone(),
                        None => break,
                    }
                }
                id
            })
            .collect();
        current.sort();
        current.dedup();
        match current.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(("unknown_unit", format!("no unit is called {raw:?}"))),
            many => Err((
                "ambiguous_unit",
                format!(
                    "{raw:?} could be any of {}; write the unit's full name or code",
                    many.iter()
                        .filter_map(|id| self.names.get(id))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

type Key = (String, Option<String>, Option<String>);

/// Matches rows with stored people and with earlier rows of the file.
struct Matcher<'a> {
    existing: &'a [Existing],
    by_phone: HashMap<&'a str, usize>,
    by_key: HashMap<Key, usize>,
    by_name: HashMap<&'a str, Vec<usize>>,
    seen_phone: HashMap<String, usize>,
    seen_key: HashMap<Key, usize>,
    /// Stored people already matched, with the row that matched them.
    matched: HashMap<usize, usize>,
}

impl<'a> Matcher<'a> {
    fn new(existing: &'a [Existing]) -> Self {
        let mut matcher = Matcher {
            existing,
            by_phone: HashMap::new(),
            by_key: HashMap::new(),
            by_name: HashMap::new(),
            seen_phone: HashMap::new(),
            seen_key: HashMap::new(),
            matched: HashMap::new(),
        };
        for (i, person) in existing.iter().enumerate() {
            if let Some(phone) = &person.phone {
                matcher.by_phone.insert(phone, i);
            }
            matcher.by_key.insert(
                (
                    person.name_key.clone(),
                    person.birth_date.clone(),
                    person.unit_id.clone(),
                ),
                i,
            );
            matcher.by_name.entry(&person.name_key).or_default().push(i);
        }
        matcher
    }

    fn judge(
        &mut self,
        row: usize,
        values: Values,
        problems: &mut Vec<Problem>,
    ) -> (Action, Option<String>, Vec<&'static str>, Plan) {
        let name_key = text::fold(&values.full_name);
        let key = (
            name_key.clone(),
            values.birth_date.clone(),
            values.unit_id.clone(),
        );
        let earlier = values
            .phone
            .as_ref()
            .and_then(|p| self.seen_phone.get(p))
            .or_else(|| self.seen_key.get(&key))
            .copied();
        if let Some(earlier) = earlier {
            problems.push(Problem {
                row,
                field: "full_name",
                code: "duplicate_row",
                message: format!("the same person as row {earlier}; this row is skipped"),
            });
            return (Action::DuplicateRow, None, Vec::new(), Plan::Nothing);
        }
        if let Some(phone) = &values.phone {
            self.seen_phone.insert(phone.clone(), row);
        }
        self.seen_key.insert(key.clone(), row);

        let by_phone = values
            .phone
            .as_deref()
            .and_then(|p| self.by_phone.get(p))
            .copied();
        if let Some(i) = by_phone {
            let person = &self.existing[i];
            if person.name_key != name_key {
                problems.push(Problem {
                    row,
                    field: "phone",
                    code: "phone_in_use",
                    message: format!(
                        "{} already has this phone number ({}); correct one of them",
                        person.full_name, person.id
                    ),
                });
                return (
                    Action::Error,
                    Some(person.id.clone()),
                    Vec::new(),
                    Plan::Nothing,
                );
            }
        }
        if let Some(i) = by_phone.or_else(|| self.by_key.get(&key).copied()) {
            let person = &self.existing[i];
            // Two rows of the file naming one stored person (one by phone, one by name):
            // only the first is applied.
            if let Some(earlier) = self.matched.insert(i, row) {
                self.matched.insert(i, earlier);
                problems.push(Problem {
                    row,
                    field: "full_name",
                    code: "duplicate_row",
                    message: format!(
                        "{} was already matched by row {earlier}; this row is skipped",
                        person.full_name
                    ),
                });
                return (
                    Action::DuplicateRow,
                    Some(person.id.clone()),
                    Vec::new(),
                    Plan::Nothing,
                );
            }
            let merged = merge_values(person, values);
            let changes = changed_fields(person, &merged);
            let id = person.id.clone();
            return if changes.is_empty() {
                (Action::Unchanged, Some(id), changes, Plan::Nothing)
            } else {
                (
                    Action::Update,
                    Some(id.clone()),
                    changes,
                    Plan::Update { id, values: merged },
                )
            };
        }
        let similar = self.by_name.get(name_key.as_str()).and_then(|candidates| {
            candidates.iter().map(|&i| &self.existing[i]).find(|p| {
                match (&p.birth_date, &values.birth_date) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
            })
        });
        if let Some(person) = similar {
            problems.push(Problem {
                row,
                field: "full_name",
                code: "possible_duplicate",
                message: format!(
                    "looks like {} ({}, born {}) already on record; not created — add the phone \
                     number or the birth date to tell them apart",
                    person.full_name,
                    person.id,
                    person.birth_date.as_deref().unwrap_or("?")
                ),
            });
            return (
                Action::PossibleDuplicate,
                Some(person.id.clone()),
                Vec::new(),
                Plan::Nothing,
            );
        }
        (Action::Create, None, Vec::new(), Plan::Create(values))
    }
}

/// A matched person's new values: what the row says, with empty cells keeping the stored value,
/// and a stored name with diacritics kept when the row spells it without.
fn merge_values(person: &Existing, row: Values) -> Values {
    let keep_name = text::fold(&row.full_name) == person.name_key
        && row.full_name.is_ascii()
        && !person.full_name.is_ascii();
    Values {
        full_name: if keep_name {
            person.full_name.clone()
        } else {
            row.full_name
        },
        birth_date: row.birth_date.or_else(|| person.birth_date.clone()),
        gender: row.gender.or_else(|| person.gender.clone()),
        phone: row.phone.or_else(|| person.phone.clone()),
        position: row.position.or_else(|| Some(person.position.clone())),
        unit_id: row.unit_id.or_else(|| person.unit_id.clone()),
        position_since: row.position_since.or_else(|| person.position_since.clone()),
    }
}

fn changed_fields(person: &Existing, v: &Values) -> Vec<&'static str> {
    let mut changes = Vec::new();
    if person.full_name != v.full_name {
        changes.push("full_name");
    }
    if person.birth_date != v.birth_date {
        changes.push("birth_date");
    }
    if person.gender != v.gender {
        changes.push("gender");
    }
    if person.phone != v.phone {
        changes.push("phone");
    }
    if Some(&person.position) != v.position.as_ref() {
        changes.push("position");
    }
    if person.unit_id != v.unit_id {
        changes.push("unit_id");
    }
    if person.position_since != v.position_since {
        changes.push("position_since");
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_recognised_without_diacritics_in_any_case() {
        assert_eq!(Column::from_header("Họ và tên"), Some(Column::Name));
        assert_eq!(Column::from_header("HO VA TEN"), Some(Column::Name));
        assert_eq!(Column::from_header("Ngày sinh"), Some(Column::BirthDate));
        assert_eq!(Column::from_header("Số điện thoại"), Some(Column::Phone));
        assert_eq!(Column::from_header("SĐT"), Some(Column::Phone));
        assert_eq!(Column::from_header("Đơn vị"), Some(Column::Unit));
        assert_eq!(Column::from_header("Ghi chú"), None);
    }

    #[test]
    fn dates_come_as_text_iso_or_excel_serials() {
        let text = |s: &str| parse_date(&Cell::Text(s.into()));
        assert_eq!(text("02/03/1995").as_deref(), Some("1995-03-02"));
        assert_eq!(text("2/3/1995").as_deref(), Some("1995-03-02"));
        assert_eq!(text("02-03-1995").as_deref(), Some("1995-03-02"));
        assert_eq!(text("1995-03-02").as_deref(), Some("1995-03-02"));
        // 34760 is 1995-03-02 in Excel's 1900 date system.
        assert_eq!(
            parse_date(&Cell::Number(34760.0)).as_deref(),
            Some("1995-03-02")
        );
        assert_eq!(text("34760").as_deref(), Some("1995-03-02"));
        assert_eq!(text("31/02/1995"), None);
        assert_eq!(text("1995"), None);
        assert_eq!(parse_date(&Cell::Number(-3.0)), None);
    }

    #[test]
    fn positions_and_genders_as_offices_write_them() {
        assert_eq!(parse_position("Bí thư Đoàn xã"), Some("secretary"));
        assert_eq!(parse_position("Phó Bí thư"), Some("deputy_secretary"));
        assert_eq!(parse_position("PBT"), Some("deputy_secretary"));
        assert_eq!(parse_position("Uỷ viên BCH"), Some("committee_member"));
        assert_eq!(parse_position("Đoàn viên"), Some("member"));
        assert_eq!(parse_position("Bí thư Chi đoàn"), Some("branch_secretary"));
        assert_eq!(
            parse_position("Phó Bí thư chi đoàn Tổ dân phố 3"),
            Some("branch_deputy_secretary")
        );
        assert_eq!(parse_position("branch_secretary"), Some("branch_secretary"));
        assert_eq!(parse_position("deputy_secretary"), Some("deputy_secretary"));
        assert_eq!(parse_position("Chủ tịch"), None);
        assert_eq!(parse_gender("Nữ"), Some("female"));
        assert_eq!(parse_gender("NAM"), Some("male"));
        assert_eq!(parse_gender("x"), None);
    }

    #[test]
    fn phones_that_lost_their_leading_zero_get_it_back() {
        assert_eq!(
            parse_phone(&Cell::Number(912_345_678.0)).as_deref(),
            Some("0912345678")
        );
        assert_eq!(
            parse_phone(&Cell::Text("912345678".into())).as_deref(),
            Some("0912345678")
        );
        assert_eq!(
            parse_phone(&Cell::Text("0912 345 678".into())).as_deref(),
            Some("0912345678")
        );
        assert_eq!(parse_phone(&Cell::Text("12345".into())), None);
    }

    #[test]
    fn csv_with_bom_and_semicolons_is_read() {
        let (format, table) =
            read_table("\u{feff}STT;Họ và tên\n1;Nguyễn Văn A\n".as_bytes()).unwrap();
        assert_eq!(format, FileFormat::Csv);
        assert_eq!(table.len(), 2);
        assert_eq!(table[1].1[1], Cell::Text("Nguyễn Văn A".into()));
        assert_eq!(read_table(b"").unwrap_err().code(), "validation_failed");
        assert_eq!(
            read_table(&[0xD0, 0xCF, 0x11, 0xE0, 1]).unwrap_err().code(),
            "unsupported_media_type"
        );
    }

    /// Found by the `roster_import` fuzz target: the sheet declares its dimension as "H1:A3"
    /// (end before start), which calamine 0.38 subtracts unchecked; with overflow checks on, as
    /// in debug builds, the import panicked (see Cargo.toml's profile for calamine).
    #[test]
    fn a_sheet_declaring_an_inverted_dimension_is_read() {
        let (format, table) = read_table(include_bytes!(
            "../../../tests/fixtures/inverted_dimension.xlsx"
        ))
        .unwrap();
        assert_eq!(format, FileFormat::Xlsx);
        assert_eq!(table[1].1[0], Cell::Text("Nguyễn Văn An".into()));
    }

    /// Two cells far apart in a file of a few kilobytes: calamine's whole-sheet range would
    /// have allocated 17 billion cells (hundreds of GB) and aborted the server.
    #[test]
    fn a_sheet_spanning_millions_of_cells_is_refused_without_allocating_them() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "Họ và tên").unwrap();
        sheet.write_string(1_048_575, 16_383, "far away").unwrap();
        let err = read_table(&book.save_to_buffer().unwrap()).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert!(
            err.to_string().contains("1048576 rows and 16384 columns"),
            "{err}"
        );
    }

    #[test]
    fn every_cell_of_a_merged_region_takes_its_corners_value() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(1, 1, "Họ và tên").unwrap();
        sheet
            .merge_range(2, 2, 4, 2, "Xã Biển Hồ", &rust_xlsxwriter::Format::new())
            .unwrap();
        for (row, name) in [(2, "An"), (3, "Bình"), (4, "Cường")] {
            sheet.write_string(row, 1, name).unwrap();
        }
        let (_, table) = read_table(&book.save_to_buffer().unwrap()).unwrap();
        let unit = Cell::Text("Xã Biển Hồ".into());
        let rows: Vec<(usize, Cell, Cell)> = table
            .into_iter()
            .map(|(row, cells)| (row, cells[1].clone(), cells[2].clone()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (2, Cell::Text("Họ và tên".into()), Cell::Empty),
                (3, Cell::Text("An".into()), unit.clone()),
                (4, Cell::Text("Bình".into()), unit.clone()),
                (5, Cell::Text("Cường".into()), unit),
            ]
        );
    }
}
