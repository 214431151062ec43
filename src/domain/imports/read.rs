//! Reading a roster file: the first sheet of an XLSX workbook, or a CSV text, as rows of cells.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, DataRef, Reader, Xlsx, XlsxError};
use chrono::NaiveDate;
use serde::Serialize;

use crate::error::{Error, Result};

/// The media type of an XLSX workbook.
pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

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
    pub(super) fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.trim().to_owned(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
            Cell::Date(d) => d.format("%d/%m/%Y").to_string(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
