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
            csv_line(&mut chunk, self.sheet.headers.iter().cloned());
        }
        while chunk.len() < CHUNK_BYTES && self.next_row < self.sheet.rows.len() {
            let row = std::mem::take(&mut self.sheet.rows[self.next_row]);
            csv_line(&mut chunk, row.iter().map(plain));
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
