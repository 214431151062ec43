//! Reports as files: CSV (UTF-8 with a byte-order mark, so that Excel shows Vietnamese) written
//! row by row in chunks, and XLSX workbooks with one worksheet per sheet.

use rust_xlsxwriter::{Format as CellFormat, Workbook};
use serde::Deserialize;

use crate::error::{Error, Result};

pub const CSV_MEDIA_TYPE: &str = "text/csv; charset=utf-8";
pub const XLSX_MEDIA_TYPE: &str = crate::domain::imports::XLSX_MEDIA_TYPE;
/// CSV is handed out in pieces of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Xlsx,
}

impl Format {
    /// The explicit `format` query parameter wins; otherwise the Accept header decides
    /// (CSV or XLSX when named, JSON for anything else).
    pub fn choose(query: Option<Format>, accept: Option<&str>) -> Format {
        if let Some(format) = query {
            return format;
        }
        let accept = accept.unwrap_or("").to_ascii_lowercase();
        if accept.contains(XLSX_MEDIA_TYPE) {
            Format::Xlsx
        } else if accept.contains("text/csv") {
            Format::Csv
        } else {
            Format::Json
        }
    }
}

/// One cell of a report sheet.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Empty,
    Text(String),
    Int(i64),
    /// A percentage, 0–100.
    Percent(f64),
}

impl Value {
    pub fn opt_text(text: Option<&str>) -> Value {
        text.map_or(Value::Empty, |t| Value::Text(t.to_owned()))
    }

    pub fn opt_percent(value: Option<f64>) -> Value {
        value.map_or(Value::Empty, Value::Percent)
    }
}

/// A table with a header row.
#[derive(Debug, Clone)]
pub struct Sheet {
    pub name: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// What a spreadsheet may read as the start of a formula (OWASP's CSV injection list), and the
/// apostrophe that guards one, so that the guard can be told from a value that begins with it.
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// Whether a spreadsheet could take the text for a formula. Leading spaces are looked past:
/// the coverage report indents unit names, and a spreadsheet may trim them.
fn needs_formula_guard(text: &str) -> bool {
    text.trim_start_matches(' ').starts_with(FORMULA_STARTS)
}

/// A CSV cell as written: text a spreadsheet could run as a formula (a person named
/// `+cmd|' /C calc'!A0`, a course titled `=HYPERLINK(...)`) gets a leading apostrophe, so it is
/// shown as text. [`unguard_formula`] undoes it exactly.
pub fn guard_formula(text: &str) -> std::borrow::Cow<'_, str> {
    if needs_formula_guard(text) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// A CSV cell as read: the value [`guard_formula`] was given, so that a report or roster the
/// server wrote imports as what was stored. A cell that starts with an apostrophe followed by
/// what a formula starts with loses the apostrophe (the way a spreadsheet reads it too).
pub fn unguard_formula(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if needs_formula_guard(rest) => rest,
        _ => text,
    }
}

fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_line(out: &mut String, cells: impl Iterator<Item = String>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, &cell);
    }
    out.push_str("\r\n");
}

/// A cell as CSV text: text guarded against formulas, numbers as they are (a negative number
/// is a number to a spreadsheet, not a formula).
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Text(t) => guard_formula(t).into_owned(),
        other => plain(other),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::Empty => String::new(),
        Value::Text(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        Value::Percent(p) => format!("{p:.1}"),
    }
}

/// A sheet as CSV, produced a chunk at a time: the BOM and header first, then rows until a
/// chunk is full. Memory stays at one chunk however long the sheet is.
pub struct CsvChunks {
    sheet: Sheet,
    next_row: usize,
    started: bool,
}

impl CsvChunks {
    pub fn new(sheet: Sheet) -> Self {
        CsvChunks {
            sheet,
            next_row: 0,
            started: false,
        }
    }
}

impl Iterator for CsvChunks {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut chunk = String::new();
        if !self.started {
            self.started = true;
            chunk.push('\u{feff}');
            csv_line(
                &mut chunk,
                self.sheet
                    .headers
                    .iter()
                    .map(|h| guard_formula(h).into_owned()),
            );
        }
        while chunk.len() < CHUNK_BYTES && self.next_row < self.sheet.rows.len() {
            let row = std::mem::take(&mut self.sheet.rows[self.next_row]);
            csv_line(&mut chunk, row.iter().map(csv_cell));
            self.next_row += 1;
        }
        (!chunk.is_empty()).then_some(chunk)
    }
}

/// The sheets as an XLSX workbook: bold frozen header, percentages as numbers, widths that fit.
pub fn xlsx(sheets: &[Sheet]) -> Result<Vec<u8>> {
    let failed = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
    let mut book = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let one_decimal = CellFormat::new().set_num_format("0.0");
    for sheet in sheets {
        let ws = book.add_worksheet();
        // Excel limits sheet names to 31 characters.
        let name: String = sheet.name.chars().take(31).collect();
        ws.set_name(&name).map_err(failed)?;
        let mut widths: Vec<usize> = sheet.headers.iter().map(|h| h.chars().count()).collect();
        for (col, header) in sheet.headers.iter().enumerate() {
            ws.write_string_with_format(0, col as u16, header, &bold)
                .map_err(failed)?;
        }
        for (r, row) in sheet.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (col, value) in row.iter().enumerate() {
                let c = col as u16;
                match value {
                    Value::Empty => {}
                    Value::Text(t) => {
                        ws.write_string(r, c, t).map_err(failed)?;
                    }
                    Value::Int(i) => {
                        ws.write_number(r, c, *i as f64).map_err(failed)?;
                    }
                    Value::Percent(p) => {
                        ws.write_number_with_format(r, c, *p, &one_decimal)
                            .map_err(failed)?;
                    }
                }
                if let Some(width) = widths.get_mut(col) {
                    *width = (*width).max(plain(value).chars().count().min(60));
                }
            }
        }
        for (col, width) in widths.iter().enumerate() {
            ws.set_column_width(col as u16, (*width + 2) as f64)
                .map_err(failed)?;
        }
        ws.set_freeze_panes(1, 0).map_err(failed)?;
    }
    book.save_to_buffer().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_starts_with_a_bom_and_quotes_what_needs_it() {
        let sheet = Sheet {
            name: "s".into(),
            headers: vec!["Họ và tên".into(), "Ghi chú".into()],
            rows: vec![vec![
                Value::Text("Nguyễn Văn \"An\"".into()),
                Value::Text("a, b".into()),
            ]],
        };
        let text: String = CsvChunks::new(sheet).collect();
        assert_eq!(
            text,
            "\u{feff}Họ và tên,Ghi chú\r\n\"Nguyễn Văn \"\"An\"\"\",\"a, b\"\r\n"
        );
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_guarded() {
        let hostile = [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A2)",
            "\tcmd",
            "\rcmd",
            "  =1+1",
            "'quoted",
            "'",
        ];
        for text in hostile {
            let guarded = guard_formula(text);
            assert!(guarded.starts_with('\''), "{text:?}");
            assert_eq!(
                unguard_formula(&guarded),
                text,
                "the guard comes off exactly"
            );
        }
        for text in ["Nguyễn Văn An", "0912 345 678", "a=b", "", "  Xã An Phú"] {
            assert_eq!(guard_formula(text), text);
            assert_eq!(unguard_formula(text), text);
        }
        let sheet = Sheet {
            name: "s".into(),
            headers: vec!["=x".into()],
            rows: vec![vec![
                Value::Text("+cmd|' /C calc'!A0".into()),
                Value::Int(-3),
            ]],
        };
        let text: String = CsvChunks::new(sheet).collect();
        assert_eq!(text, "\u{feff}'=x\r\n'+cmd|' /C calc'!A0,-3\r\n");
    }

    #[test]
    fn long_sheets_come_in_several_chunks() {
        let sheet = Sheet {
            name: "s".into(),
            headers: vec!["n".into()],
            rows: (0..50_000).map(|i| vec![Value::Int(i)]).collect(),
        };
        let chunks: Vec<String> = CsvChunks::new(sheet).collect();
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES + 64));
        assert_eq!(chunks.concat().lines().count(), 50_001);
    }

    #[test]
    fn the_format_comes_from_the_query_or_the_accept_header() {
        assert_eq!(Format::choose(Some(Format::Csv), None), Format::Csv);
        assert_eq!(Format::choose(None, Some("text/csv")), Format::Csv);
        assert_eq!(Format::choose(None, Some(XLSX_MEDIA_TYPE)), Format::Xlsx);
        assert_eq!(Format::choose(None, Some("*/*")), Format::Json);
        assert_eq!(
            Format::choose(Some(Format::Json), Some("text/csv")),
            Format::Json
        );
    }
}
