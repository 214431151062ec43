//! Finding the header row of a sheet and what each of its columns holds.

use super::read::{Cell, Table};
use crate::domain::text;
use crate::error::{Error, Result};

/// How many rows above the header a sheet may carry (titles such as "DANH SÁCH CÁN BỘ ĐOÀN").
const HEADER_SEARCH_ROWS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Column {
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
    pub(super) fn field(self) -> &'static str {
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

/// Finds the header row (among the first rows) and what each of its columns holds.
pub(super) fn find_header(table: &Table) -> Result<(usize, Vec<Option<Column>>)> {
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
}
