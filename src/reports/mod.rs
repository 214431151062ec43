//! Reports for provincial staff, one module each: a course's attendance matrix with completion
//! (`course`), the coverage of cadres by training across the unit tree (`coverage`), a trainer's
//! activity (`trainer`), progress against a yearly plan (`plans`) and the audit trail as a file
//! (`audit`). Each report is a plain value (serialised as JSON) that also lays itself out as
//! sheets for CSV and XLSX (`render`); `unit_tree` reads units as the reports need them. This
//! module holds what they share: the completion rule and the labels of the sheets. No HTTP here;
//! visibility follows `domain::access`.
//!
//! Completion: a trainee completed a course when the sessions they attended with a counting
//! status (default present or late) are at least `min_rate` percent (default 80) of the course's
//! sessions.

pub mod audit;
pub mod course;
pub mod coverage;
pub mod plans;
pub mod render;
pub mod trainer;
mod unit_tree;

pub use unit_tree::UnitPlace;

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, TimeZone};
use serde::Serialize;

use crate::domain::attendance::{AttendedInCourse, STATUSES};
use crate::domain::values::Checker;

/// A report as a file: the stem of its name and its sheets (CSV takes the first).
pub trait Report: Serialize {
    fn file_stem(&self) -> String;
    fn sheets(&self) -> Vec<render::Sheet>;
}

pub const DEFAULT_MIN_RATE: f64 = 80.0;
pub const DEFAULT_STATUSES: [&str; 2] = ["present", "late"];
pub const DEFAULT_POSITIONS: [&str; 2] = ["secretary", "deputy_secretary"];

/// The completion rule, from the query (`min_rate`, `statuses`).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Percent of the course's sessions a trainee must attend.
    pub min_rate: f64,
    /// The attendance statuses that count as attending.
    pub statuses: Vec<String>,
}

impl Rule {
    pub fn parse(check: &mut Checker, min_rate: Option<f64>, statuses: Option<&str>) -> Rule {
        let min_rate = min_rate.unwrap_or(DEFAULT_MIN_RATE);
        if !(0.0..=100.0).contains(&min_rate) {
            check.fail("min_rate", "out_of_range", "must be between 0 and 100");
        }
        let statuses = list(check, "statuses", statuses, &DEFAULT_STATUSES, &STATUSES);
        Rule { min_rate, statuses }
    }

    /// Whether `attended` of `sessions` completes the course (a course without sessions cannot
    /// be completed).
    pub fn completes(&self, attended: i64, sessions: i64) -> bool {
        sessions > 0 && (attended as f64) * 100.0 >= self.min_rate * sessions as f64
    }

    /// The people who completed a course: whose attended sessions complete it, out of the
    /// course's live sessions (`sessions_of`, by course).
    fn completers(
        &self,
        attended: Vec<AttendedInCourse>,
        sessions_of: &HashMap<&str, i64>,
    ) -> HashSet<String> {
        attended
            .into_iter()
            .filter(|a| {
                let sessions = sessions_of.get(a.course_id.as_str()).copied();
                self.completes(a.sessions, sessions.unwrap_or(0))
            })
            .map(|a| a.person_id)
            .collect()
    }
}

/// A comma-separated list of allowed values, or the default.
fn list(
    check: &mut Checker,
    field: &str,
    raw: Option<&str>,
    default: &[&str],
    allowed: &[&str],
) -> Vec<String> {
    let Some(raw) = raw else {
        return default.iter().map(|s| (*s).to_owned()).collect();
    };
    let mut values = Vec::new();
    let items: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        check.fail(field, "required", "name at least one value");
    }
    for item in items {
        if allowed.contains(&item) {
            if !values.iter().any(|v| v == item) {
                values.push(item.to_owned());
            }
        } else {
            check.fail(
                field,
                "unknown_value",
                format!("{item:?} is not one of {}", allowed.join(", ")),
            );
        }
    }
    values
}

fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}
/// Vietnamese labels for sheets read by provincial staff.
fn position_label(position: &str) -> &'static str {
    match position {
        "secretary" => "Bí thư",
        "deputy_secretary" => "Phó Bí thư",
        "committee_member" => "Ủy viên BCH",
        "branch_secretary" => "Bí thư chi đoàn",
        "branch_deputy_secretary" => "Phó Bí thư chi đoàn",
        _ => "Đoàn viên",
    }
}

fn status_label(status: &str) -> &'static str {
    match status {
        "present" => "Có mặt",
        "late" => "Đi muộn",
        "excused" => "Vắng có phép",
        _ => "Vắng",
    }
}

/// Session start as a Vietnamese office writes it (local time, UTC+7).
fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|t| {
            let offset = chrono::FixedOffset::east_opt(7 * 3600)?;
            Some(offset.from_utc_datetime(&t.naive_utc()))
        })
        .map_or_else(
            || rfc3339.to_owned(),
            |t| format!("{:02}/{:02} {}", t.day(), t.month(), t.format("%H:%M")),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::people::POSITIONS;

    #[test]
    fn completion_needs_the_share_of_sessions() {
        let rule = Rule {
            min_rate: 80.0,
            statuses: vec!["present".into()],
        };
        assert!(rule.completes(8, 10));
        assert!(!rule.completes(7, 10));
        assert!(rule.completes(4, 5));
        assert!(
            !rule.completes(0, 0),
            "a course without sessions is not completed"
        );
    }

    #[test]
    fn lists_take_known_values_or_the_default() {
        let mut check = Checker::new();
        assert_eq!(
            list(
                &mut check,
                "positions",
                None,
                &DEFAULT_POSITIONS,
                &POSITIONS
            ),
            ["secretary", "deputy_secretary"]
        );
        assert_eq!(
            list(
                &mut check,
                "positions",
                Some("member, member"),
                &DEFAULT_POSITIONS,
                &POSITIONS
            ),
            ["member"]
        );
        assert!(check.finish().is_ok());
        let mut check = Checker::new();
        list(
            &mut check,
            "positions",
            Some("king"),
            &DEFAULT_POSITIONS,
            &POSITIONS,
        );
        assert!(check.finish().is_err());
    }

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(percent(1, 3), Some(33.3));
        assert_eq!(percent(2, 3), Some(66.7));
        assert_eq!(percent(0, 0), None);
    }

    #[test]
    fn session_times_are_shown_in_vietnam_time() {
        assert_eq!(local_time("2026-03-02T01:30:00.000Z"), "02/03 08:30");
    }
}
