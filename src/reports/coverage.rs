//! The coverage report: cadres holding the positions, trained or not, per unit in force today
//! and rolled up the tree.

use std::collections::{HashMap, HashSet};

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use super::render::{self, Sheet, Value};
use super::unit_tree::{Tally, UnitPlace, UnitTree};
use super::{DEFAULT_POSITIONS, Rule, list, position_label};
use crate::db::DbConn;
use crate::domain::Caller;
use crate::domain::access::{Manages, visible_courses};
use crate::domain::attendance::AttendanceRecords;
use crate::domain::people::{Cadre, POSITIONS, People};
use crate::domain::sessions::Sessions;
use crate::domain::values::Checker;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    pub format: Option<render::Format>,
    /// First day of the period (default: 1 January of this year).
    pub from: Option<String>,
    /// Last day of the period (default: 31 December of this year).
    pub to: Option<String>,
    /// Comma-separated positions (default `secretary,deputy_secretary`).
    pub positions: Option<String>,
    /// Only this unit and the units under it (default: every unit).
    pub unit_id: Option<String>,
    pub min_rate: Option<f64>,
    pub statuses: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub person_id: String,
    pub full_name: String,
    pub position: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageUnit {
    #[serde(flatten)]
    pub unit: UnitPlace,
    pub parent_id: Option<String>,
    /// Cadres holding the positions in this unit and the units under it.
    pub cadres: i64,
    /// Of them, those who completed at least one course that ended in the period.
    pub trained: i64,
    pub percent: Option<f64>,
    /// This unit's own cadres (not its sub-units') still without a completed course.
    pub missing: Vec<Missing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageTotal {
    pub cadres: i64,
    pub trained: i64,
    pub percent: Option<f64>,
    /// Courses with sessions that ended in the period.
    pub courses: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageReport {
    pub from: String,
    pub to: String,
    pub positions: Vec<String>,
    pub unit_id: Option<String>,
    pub rule: Rule,
    pub total: CoverageTotal,
    /// Units in force today, depth first (a parent before its sub-units, siblings by name).
    pub units: Vec<CoverageUnit>,
}

/// A unit's own cadres (not those of the units below): the tally and who is missing.
#[derive(Default)]
struct UnitCount {
    tally: Tally,
    missing: Vec<Missing>,
}

/// For every unit in force today: how many cadres holding the positions completed at least one
/// course that ended in the period, out of how many, and who is missing; rolled up the tree.
/// Cadres are counted in the unit they belong to today (people moved with merged units, and a
/// unit merged without moving its people counts under the unit it became). Administrators read
/// any unit; an organiser reads their subtree (their unit by default; a unit outside it is
/// answered as one that does not exist), counting the courses of the subtree. No trainer's or
/// trainee's scope spans units.
pub fn report(conn: &mut DbConn, caller: &Caller, query: &CoverageQuery) -> Result<CoverageReport> {
    let manages = &caller.manages;
    manages.require_some()?;
    let year = chrono::Utc::now().year();
    let mut check = Checker::new();
    let from = check.date(
        "from",
        query.from.as_deref().unwrap_or(&format!("{year}-01-01")),
    );
    let to = check.date(
        "to",
        query.to.as_deref().unwrap_or(&format!("{year}-12-31")),
    );
    check.ordered("to", &from, &to, "must not be before from");
    let positions = list(
        &mut check,
        "positions",
        query.positions.as_deref(),
        &DEFAULT_POSITIONS,
        &POSITIONS,
    );
    let root = check.opt_id("unit_id", query.unit_id.as_deref());
    let rule = Rule::parse(&mut check, query.min_rate, query.statuses.as_deref());
    check.finish()?;
    let tree = UnitTree::load(conn)?;
    let root = match (&manages, root) {
        (Manages::Subtree(_), None) => caller.unit_id.clone(),
        (_, root) => root,
    };
    if let Some(root) = &root
        && !(tree.units.contains_key(root) && manages.covers(Some(root)))
    {
        return Err(Error::invalid_field(
            "unit_id",
            "unknown_unit",
            "no such unit",
        ));
    }
    let root = root.map(|r| tree.current(&r));
    let visible = visible_courses(conn, caller)?;

    // Sessions per course that ended in the period.
    let course_sessions = Sessions::count_of_courses_ended_between(conn, &from, &to)?;
    let course_ids: Vec<&String> = course_sessions.iter().map(|c| &c.course_id).collect();
    let sessions_of: HashMap<&str, i64> = course_sessions
        .iter()
        .map(|c| (c.course_id.as_str(), c.count))
        .collect();
    let attended =
        AttendanceRecords::attended_by_positions(conn, &course_ids, &rule.statuses, &positions)?;
    let trained: HashSet<String> = rule.completers(attended, &sessions_of);
    let cadres = People::cadres_holding(conn, &positions, None)?;

    // Counts per unit in force today, then rolled up to every ancestor.
    let mut own: HashMap<String, UnitCount> = HashMap::new();
    for Cadre {
        id,
        full_name,
        position,
        phone,
        unit_id,
        ..
    } in cadres
    {
        let Some(unit) = unit_id else { continue };
        let unit = tree.current(&unit);
        let entry = own.entry(unit).or_default();
        let is_trained = trained.contains(&id);
        entry.tally.add(Tally::one(is_trained));
        if !is_trained {
            entry.missing.push(Missing {
                person_id: id,
                full_name,
                position,
                phone,
            });
        }
    }
    let mut rolled: HashMap<String, Tally> = HashMap::new();
    for (unit, count) in &own {
        tree.roll_up(&mut rolled, unit, count.tally, |_| true);
    }
    // The units shown: in force today, under the root when there is one.
    let in_force = tree.units.keys().filter(|id| tree.is_current(id));
    let shown: Vec<CoverageUnit> = tree
        .depth_first(in_force, root.as_deref())
        .into_iter()
        .map(|unit| {
            let tally = rolled.get(&unit.unit_id).copied().unwrap_or_default();
            let missing = own
                .remove(&unit.unit_id)
                .map(|o| o.missing)
                .unwrap_or_default();
            CoverageUnit {
                parent_id: tree.units[&unit.unit_id].parent_id.clone(),
                unit,
                cadres: tally.cadres,
                trained: tally.trained,
                percent: tally.percent(),
                missing,
            }
        })
        .collect();
    let total = match &root {
        Some(root) => rolled.get(root).copied().unwrap_or_default(),
        None => {
            let mut total = Tally::default();
            for unit in shown.iter().filter(|u| u.unit.depth == 0) {
                total.add(Tally {
                    cadres: unit.cadres,
                    trained: unit.trained,
                });
            }
            total
        }
    };
    Ok(CoverageReport {
        from,
        to,
        positions,
        unit_id: root,
        rule,
        total: CoverageTotal {
            cadres: total.cadres,
            trained: total.trained,
            percent: total.percent(),
            courses: course_sessions
                .iter()
                .filter(|c| {
                    visible
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&c.course_id))
                })
                .count() as i64,
        },
        units: shown,
    })
}

impl super::Report for CoverageReport {
    fn file_stem(&self) -> String {
        format!("bao-phu-{}-{}", self.from, self.to)
    }

    fn sheets(&self) -> Vec<Sheet> {
        let rows = self
            .units
            .iter()
            .map(|u| {
                let mut row = u.unit.cells().to_vec();
                row.extend([
                    Value::Int(u.cadres),
                    Value::Int(u.trained),
                    Value::opt_percent(u.percent),
                    Value::Text(
                        u.missing
                            .iter()
                            .map(|m| m.full_name.as_str())
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                ]);
                row
            })
            .chain(std::iter::once(vec![
                Value::Empty,
                Value::Text("Tổng cộng".into()),
                Value::Int(self.total.cadres),
                Value::Int(self.total.trained),
                Value::opt_percent(self.total.percent),
                Value::Empty,
            ]))
            .collect();
        let missing = self
            .units
            .iter()
            .flat_map(|u| {
                u.missing.iter().map(move |m| {
                    vec![
                        Value::Text(u.unit.name.clone()),
                        Value::Text(m.full_name.clone()),
                        Value::Text(position_label(&m.position).into()),
                        Value::opt_text(m.phone.as_deref()),
                    ]
                })
            })
            .collect();
        vec![
            Sheet {
                name: "Bao phủ".into(),
                headers: [
                    "Mã đơn vị",
                    "Đơn vị",
                    "Số cán bộ",
                    "Đã bồi dưỡng",
                    "Tỷ lệ (%)",
                    "Chưa bồi dưỡng",
                ]
                .map(String::from)
                .to_vec(),
                rows,
            },
            Sheet {
                name: "Chưa bồi dưỡng".into(),
                headers: ["Đơn vị", "Họ và tên", "Chức vụ", "Số điện thoại"]
                    .map(String::from)
                    .to_vec(),
                rows: missing,
            },
        ]
    }
}
