//! Reading one row's cells into a person's values: names, dates, genders, positions, units and
//! phone numbers as offices write them.

use chrono::{Datelike, NaiveDate};

use super::Problem;
use super::header::Column;
use super::matching::UnitIndex;
use super::read::Cell;
use crate::domain::people::{
    GENDERS, POSITION_NEEDS_BRANCH, POSITIONS, normalize_phone, position_fits_unit,
};
use crate::domain::text;
use crate::domain::values::MAX_NAME_CHARS;

/// A row's values once read and checked.
#[derive(Debug, Clone, Default)]
pub(super) struct Values {
    pub(super) full_name: String,
    pub(super) birth_date: Option<String>,
    pub(super) gender: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) position: Option<String>,
    pub(super) unit_id: Option<String>,
    pub(super) position_since: Option<String>,
}

/// Reads one row's cells into values, with every problem found.
pub(super) fn read_row(
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
            Column::BirthDate | Column::PositionSince if raw.is_empty() => {}
            Column::BirthDate | Column::PositionSince => match parse_date(cell) {
                Some(date) if *column == Column::BirthDate => values.birth_date = Some(date),
                Some(date) => values.position_since = Some(date),
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
    if let (Some(position), Some(unit)) = (&values.position, &values.unit_id)
        && !position_fits_unit(position, units.kind(unit))
    {
        let (code, message) = POSITION_NEEDS_BRANCH;
        fail("position", code, message.into());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
