//! Reading back the spreadsheets the server writes (reports, exports), as a person's
//! spreadsheet program would show them.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

/// An XLSX file, opened for reading.
#[track_caller]
pub fn workbook(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
    Xlsx::new(Cursor::new(bytes)).expect("a readable workbook")
}

/// The rows of a CSV file the server wrote (UTF-8 after a byte-order mark, which spreadsheet
/// programs need), its header first.
#[track_caller]
pub fn csv_rows(body: Vec<u8>) -> Vec<Vec<String>> {
    let text = String::from_utf8(body).expect("UTF-8");
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect()
}

/// What a cell shows: text as it is, numbers as written, an empty or missing cell as "".
pub fn cell_text(cell: Option<&Data>) -> String {
    match cell {
        Some(Data::String(s)) => s.clone(),
        Some(Data::Float(f)) => f.to_string(),
        Some(Data::Int(i)) => i.to_string(),
        Some(Data::Empty) | None => String::new(),
        Some(other) => format!("{other:?}"),
    }
}
