//! Reports for provincial staff: a course's attendance matrix with completion, the coverage of
//! cadres by training across the unit tree, and a trainer's activity. Each report is a plain
//! value (serialised as JSON) that also lays itself out as sheets for CSV and XLSX (`render`).
//! No HTTP here; visibility follows `domain::access`.
//!
//! Completion: a trainee completed a course when the sessions they attended with a counting
//! status (default present or late) are at least `min_rate` percent (default 80) of the course's
//! sessions.

pub mod plans;
pub mod render;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, TimeZone};
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConn;
use crate::db::schema::{
    attendance, courses, enrollments, people, person_unit_history, sessions, sync_conflicts,
    sync_quarantine, unit_events, units,
};
use crate::domain::access::{Manages, ensure_course_visible, visible_courses};
use crate::domain::attendance::STATUSES;
use crate::domain::audit::AuditEntry;
use crate::domain::courses::Courses;
use crate::domain::people::POSITIONS;
use crate::domain::reorganisation::{UnitEvent, names_on};
use crate::domain::users::Users;
use crate::domain::values::{Checker, format_ms, path_id};
use crate::domain::{Caller, Role};
use crate::error::{Error, Result};
use render::{Sheet, Value};

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

/// Units as the reports need them.
struct UnitTree {
    units: HashMap<String, UnitRow>,
    events: Vec<UnitEvent>,
}

#[derive(Debug, Clone, Queryable)]
struct UnitRow {
    id: String,
    code: String,
    name: String,
    kind: String,
    parent_id: Option<String>,
    merged_into_id: Option<String>,
    valid_to: Option<String>,
}

impl UnitTree {
    fn load(conn: &mut DbConn) -> Result<UnitTree> {
        let rows: Vec<UnitRow> = units::table
            .filter(units::deleted_at.is_null())
            .select((
                units::id,
                units::code,
                units::name,
                units::kind,
                units::parent_id,
                units::merged_into_id,
                units::valid_to,
            ))
            .load(conn)?;
        let events = unit_events::table
            .select(UnitEvent::as_select())
            .load(conn)?;
        Ok(UnitTree {
            units: rows.into_iter().map(|u| (u.id.clone(), u)).collect(),
            events,
        })
    }

    /// The unit in force today that `id` became (itself when it was not merged).
    fn current(&self, id: &str) -> String {
        let mut id = id.to_owned();
        for _ in 0..64 {
            match self.units.get(&id).and_then(|u| u.merged_into_id.clone()) {
                Some(next) => id = next,
                None => break,
            }
        }
        id
    }

    fn name(&self, id: &str) -> String {
        self.units
            .get(id)
            .map(|u| u.name.clone())
            .unwrap_or_default()
    }

    /// The unit's name as it was on `day`.
    fn name_on(&self, id: &str, day: &str) -> String {
        names_on(&self.events, id, &self.name(id), day)
    }

    fn is_current(&self, id: &str) -> bool {
        self.units
            .get(id)
            .is_some_and(|u| u.merged_into_id.is_none() && u.valid_to.is_none())
    }

    /// `id` and its ancestors, nearest first.
    fn ancestors(&self, id: &str) -> Vec<String> {
        let mut chain = vec![id.to_owned()];
        let mut current = self.units.get(id).and_then(|u| u.parent_id.clone());
        while let Some(parent) = current {
            if chain.contains(&parent) || chain.len() > 64 {
                break;
            }
            current = self.units.get(&parent).and_then(|u| u.parent_id.clone());
            chain.push(parent);
        }
        chain
    }
}

// ---------------------------------------------------------------------------------------------
// Course report

#[derive(Debug, Clone, Serialize)]
pub struct CourseInfo {
    pub id: String,
    pub code: Option<String>,
    pub title: String,
    pub start_date: String,
    pub end_date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionColumn {
    pub id: String,
    pub topic: String,
    pub starts_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraineeRow {
    pub person_id: String,
    pub full_name: String,
    pub position: String,
    /// The unit the trainee belonged to when the course started (as it was called then).
    pub unit_id: Option<String>,
    pub unit_name: Option<String>,
    /// The unit in force today that the trainee belongs to.
    pub current_unit_id: Option<String>,
    pub current_unit_name: Option<String>,
    /// One status per session, in session order; null where nothing was recorded.
    pub statuses: Vec<Option<String>>,
    pub attended: i64,
    /// Percent of the course's sessions attended; null for a course without sessions.
    pub rate: Option<f64>,
    pub completed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Completer {
    pub person_id: String,
    pub full_name: String,
    pub unit_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CourseReport {
    pub course: CourseInfo,
    pub rule: Rule,
    pub sessions: Vec<SessionColumn>,
    pub trainees: Vec<TraineeRow>,
    pub completed: Vec<Completer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseQuery {
    pub format: Option<render::Format>,
    pub min_rate: Option<f64>,
    pub statuses: Option<String>,
}

/// Sessions × trainees. Admins and the course's trainers see every trainee; a trainee sees only
/// their own row; a course outside the caller's scope is not found.
pub fn course(
    conn: &mut DbConn,
    caller: &Caller,
    id: &str,
    query: &CourseQuery,
) -> Result<CourseReport> {
    let id = path_id(id, "course")?;
    ensure_course_visible(conn, caller, &id, "course")?;
    let mut check = Checker::new();
    let rule = Rule::parse(&mut check, query.min_rate, query.statuses.as_deref());
    check.finish()?;
    let course = Courses::find(conn, &id)?;
    let session_rows: Vec<(String, String, i64)> = sessions::table
        .filter(sessions::course_id.eq(&id))
        .filter(sessions::deleted_at.is_null())
        .order((sessions::starts_at.asc(), sessions::id.asc()))
        .select((sessions::id, sessions::topic, sessions::starts_at))
        .load(conn)?;
    let mut trainees_query = enrollments::table
        .inner_join(people::table)
        .filter(enrollments::course_id.eq(&id))
        .filter(enrollments::deleted_at.is_null())
        .filter(people::deleted_at.is_null())
        .into_boxed();
    if caller.role == Role::Trainee {
        trainees_query = trainees_query.filter(people::id.nullable().eq(caller.person_id.clone()));
    }
    let trainees: Vec<(String, String, String, Option<String>)> = trainees_query
        .order((
            people::sort_key.asc(),
            people::full_name.asc(),
            people::id.asc(),
        ))
        .select((
            people::id,
            people::full_name,
            people::position,
            people::unit_id,
        ))
        .load(conn)?;
    let person_ids: Vec<&String> = trainees.iter().map(|t| &t.0).collect();
    let session_ids: Vec<&String> = session_rows.iter().map(|s| &s.0).collect();
    let marks: Vec<(String, String, String)> = attendance::table
        .filter(attendance::session_id.eq_any(&session_ids))
        .filter(attendance::person_id.eq_any(&person_ids))
        .filter(attendance::deleted_at.is_null())
        .select((
            attendance::session_id,
            attendance::person_id,
            attendance::status,
        ))
        .load(conn)?;
    let history: Vec<(String, String, String)> = person_unit_history::table
        .filter(person_unit_history::person_id.eq_any(&person_ids))
        .filter(person_unit_history::left_on.gt(&course.start_date))
        .order(person_unit_history::left_on.asc())
        .select((
            person_unit_history::person_id,
            person_unit_history::unit_id,
            person_unit_history::left_on,
        ))
        .load(conn)?;
    let tree = UnitTree::load(conn)?;
    let mut unit_then: HashMap<&str, &str> = HashMap::new();
    for (person, unit, _) in &history {
        // Ordered by left_on: the first row after the start is the unit at the start.
        unit_then.entry(person).or_insert(unit);
    }
    let column: HashMap<&str, usize> = session_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut statuses: HashMap<&str, Vec<Option<String>>> = HashMap::new();
    for (session, person, status) in &marks {
        let row = statuses
            .entry(person)
            .or_insert_with(|| vec![None; session_ids.len()]);
        if let Some(&i) = column.get(session.as_str()) {
            row[i] = Some(status.clone());
        }
    }
    let total = session_ids.len() as i64;
    let mut rows = Vec::with_capacity(trainees.len());
    for (person_id, full_name, position, unit_id) in &trainees {
        let marks = statuses
            .remove(person_id.as_str())
            .unwrap_or_else(|| vec![None; session_ids.len()]);
        let attended = marks
            .iter()
            .flatten()
            .filter(|s| rule.statuses.contains(s))
            .count() as i64;
        let then = unit_then
            .get(person_id.as_str())
            .map(|u| (*u).to_owned())
            .or_else(|| unit_id.clone());
        let current = unit_id.as_deref().map(|u| tree.current(u));
        rows.push(TraineeRow {
            person_id: person_id.clone(),
            full_name: full_name.clone(),
            position: position.clone(),
            unit_name: then.as_deref().map(|u| tree.name_on(u, &course.start_date)),
            unit_id: then,
            current_unit_name: current.as_deref().map(|u| tree.name(u)),
            current_unit_id: current,
            statuses: marks,
            attended,
            rate: percent(attended, total),
            completed: rule.completes(attended, total),
        });
    }
    let completed = rows
        .iter()
        .filter(|r| r.completed)
        .map(|r| Completer {
            person_id: r.person_id.clone(),
            full_name: r.full_name.clone(),
            unit_name: r.unit_name.clone(),
        })
        .collect();
    Ok(CourseReport {
        course: CourseInfo {
            id: course.id,
            code: course.code,
            title: course.title,
            start_date: course.start_date,
            end_date: course.end_date,
        },
        rule,
        sessions: session_rows
            .into_iter()
            .map(|(id, topic, starts_at)| SessionColumn {
                id,
                topic,
                starts_at: format_ms(starts_at),
            })
            .collect(),
        trainees: rows,
        completed,
    })
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

impl CourseReport {
    pub fn file_stem(&self) -> String {
        format!(
            "diem-danh-{}",
            self.course.code.as_deref().unwrap_or(&self.course.id)
        )
    }

    pub fn sheets(&self) -> Vec<Sheet> {
        let mut headers: Vec<String> = [
            "STT",
            "Họ và tên",
            "Chức vụ",
            "Đơn vị (khi học)",
            "Đơn vị hiện nay",
        ]
        .map(String::from)
        .to_vec();
        headers.extend(
            self.sessions
                .iter()
                .map(|s| format!("{} {}", local_time(&s.starts_at), s.topic)),
        );
        headers.extend(["Số buổi dự", "Tỷ lệ (%)", "Hoàn thành"].map(String::from));
        let rows = self
            .trainees
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut row = vec![
                    Value::Int(i as i64 + 1),
                    Value::Text(t.full_name.clone()),
                    Value::Text(position_label(&t.position).into()),
                    Value::opt_text(t.unit_name.as_deref()),
                    Value::opt_text(t.current_unit_name.as_deref()),
                ];
                row.extend(
                    t.statuses
                        .iter()
                        .map(|s| Value::opt_text(s.as_deref().map(status_label))),
                );
                row.push(Value::Int(t.attended));
                row.push(Value::opt_percent(t.rate));
                row.push(Value::Text(if t.completed { "Có" } else { "Không" }.into()));
                row
            })
            .collect();
        let completers = self
            .completed
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    Value::Int(i as i64 + 1),
                    Value::Text(c.full_name.clone()),
                    Value::opt_text(c.unit_name.as_deref()),
                ]
            })
            .collect();
        vec![
            Sheet {
                name: "Điểm danh".into(),
                headers,
                rows,
            },
            Sheet {
                name: "Hoàn thành".into(),
                headers: ["STT", "Họ và tên", "Đơn vị"].map(String::from).to_vec(),
                rows: completers,
            },
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Coverage report

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
    pub unit_id: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_id: Option<String>,
    /// Depth under the report's root (0 = the root).
    pub depth: usize,
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

/// A cadre as the coverage report reads them: id, name, position, phone, unit.
type CadreRow = (String, String, String, Option<String>, Option<String>);

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

/// For every unit in force today: how many cadres holding the positions completed at least one
/// course that ended in the period, out of how many, and who is missing; rolled up the tree.
/// Cadres are counted in the unit they belong to today (people moved with merged units, and a
/// unit merged without moving its people counts under the unit it became). Administrators read
/// any unit; an organiser reads their subtree (their unit by default; a unit outside it is
/// answered as one that does not exist), counting the courses of the subtree. No trainer's or
/// trainee's scope spans units.
pub fn coverage(
    conn: &mut DbConn,
    caller: &Caller,
    query: &CoverageQuery,
) -> Result<CoverageReport> {
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
    let course_sessions: Vec<(String, i64)> = sessions::table
        .inner_join(courses::table)
        .filter(courses::deleted_at.is_null())
        .filter(courses::end_date.ge(&from))
        .filter(courses::end_date.le(&to))
        .filter(sessions::deleted_at.is_null())
        .group_by(sessions::course_id)
        .select((sessions::course_id, count_star()))
        .load(conn)?;
    let course_ids: Vec<&String> = course_sessions.iter().map(|(c, _)| c).collect();
    let sessions_of: HashMap<&str, i64> = course_sessions
        .iter()
        .map(|(c, n)| (c.as_str(), *n))
        .collect();
    // One aggregated pass over attendance: sessions attended per (course, cadre).
    let attended: Vec<(String, String, i64)> = attendance::table
        .inner_join(sessions::table)
        .inner_join(people::table)
        .filter(attendance::deleted_at.is_null())
        .filter(attendance::status.eq_any(&rule.statuses))
        .filter(sessions::course_id.eq_any(&course_ids))
        .filter(sessions::deleted_at.is_null())
        .filter(people::position.eq_any(&positions))
        .filter(people::deleted_at.is_null())
        .group_by((sessions::course_id, attendance::person_id))
        .select((sessions::course_id, attendance::person_id, count_star()))
        .load(conn)?;
    let trained: HashSet<String> = attended
        .into_iter()
        .filter(|(course, _, n)| {
            rule.completes(*n, sessions_of.get(course.as_str()).copied().unwrap_or(0))
        })
        .map(|(_, person, _)| person)
        .collect();
    let cadres: Vec<CadreRow> = people::table
        .filter(people::deleted_at.is_null())
        .filter(people::position.eq_any(&positions))
        .filter(people::unit_id.is_not_null())
        .order((people::sort_key.asc(), people::full_name.asc()))
        .select((
            people::id,
            people::full_name,
            people::position,
            people::phone,
            people::unit_id,
        ))
        .load(conn)?;

    // Counts per unit in force today, then rolled up to every ancestor.
    let mut own: HashMap<String, (i64, i64, Vec<Missing>)> = HashMap::new();
    for (id, full_name, position, phone, unit) in cadres {
        let Some(unit) = unit else { continue };
        let unit = tree.current(&unit);
        let entry = own.entry(unit).or_default();
        entry.0 += 1;
        if trained.contains(&id) {
            entry.1 += 1;
        } else {
            entry.2.push(Missing {
                person_id: id,
                full_name,
                position,
                phone,
            });
        }
    }
    let mut rolled: HashMap<String, (i64, i64)> = HashMap::new();
    for (unit, (cadres, done, _)) in &own {
        for ancestor in tree.ancestors(unit) {
            let entry = rolled.entry(ancestor).or_default();
            entry.0 += cadres;
            entry.1 += done;
        }
    }
    // The units shown: in force today, under the root when there is one.
    let mut children: BTreeMap<Option<String>, Vec<&UnitRow>> = BTreeMap::new();
    for unit in tree.units.values().filter(|u| tree.is_current(&u.id)) {
        let parent = unit.parent_id.clone().filter(|p| tree.is_current(p));
        children.entry(parent).or_default().push(unit);
    }
    for list in children.values_mut() {
        list.sort_by_key(|u| (crate::domain::text::fold(&u.name), u.id.clone()));
    }
    let starts: Vec<&UnitRow> = match &root {
        Some(root) => tree.units.get(root).into_iter().collect(),
        None => children.get(&None).cloned().unwrap_or_default(),
    };
    let mut shown = Vec::new();
    let mut stack: Vec<(&UnitRow, usize)> = starts.into_iter().rev().map(|u| (u, 0)).collect();
    while let Some((unit, depth)) = stack.pop() {
        let (cadres, done) = rolled.get(&unit.id).copied().unwrap_or_default();
        let missing = own.remove(&unit.id).map(|o| o.2).unwrap_or_default();
        shown.push(CoverageUnit {
            unit_id: unit.id.clone(),
            code: unit.code.clone(),
            name: unit.name.clone(),
            kind: unit.kind.clone(),
            parent_id: unit.parent_id.clone(),
            depth,
            cadres,
            trained: done,
            percent: percent(done, cadres),
            missing,
        });
        if let Some(list) = children.get(&Some(unit.id.clone())) {
            stack.extend(list.iter().rev().map(|u| (*u, depth + 1)));
        }
    }
    let (cadres, done) = match &root {
        Some(root) => rolled.get(root).copied().unwrap_or_default(),
        None => shown
            .iter()
            .filter(|u| u.depth == 0)
            .fold((0, 0), |(c, d), u| (c + u.cadres, d + u.trained)),
    };
    Ok(CoverageReport {
        from,
        to,
        positions,
        unit_id: root,
        rule,
        total: CoverageTotal {
            cadres,
            trained: done,
            percent: percent(done, cadres),
            courses: course_sessions
                .iter()
                .filter(|(course, _)| visible.as_ref().is_none_or(|ids| ids.contains(course)))
                .count() as i64,
        },
        units: shown,
    })
}

impl CoverageReport {
    pub fn file_stem(&self) -> String {
        format!("bao-phu-{}-{}", self.from, self.to)
    }

    pub fn sheets(&self) -> Vec<Sheet> {
        let rows = self
            .units
            .iter()
            .map(|u| {
                vec![
                    Value::Text(u.code.clone()),
                    Value::Text(format!("{}{}", "  ".repeat(u.depth), u.name)),
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
                ]
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
                        Value::Text(u.name.clone()),
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

// ---------------------------------------------------------------------------------------------
// Trainer report

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerQuery {
    pub format: Option<render::Format>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainerCourse {
    pub course_id: String,
    pub title: String,
    pub start_date: String,
    pub end_date: String,
    pub sessions: i64,
    /// Sessions that have started.
    pub sessions_held: i64,
    /// Of those, the ones this trainer is named on.
    pub sessions_taught: i64,
    /// Attendance records this trainer recorded in the course.
    pub attendance_recorded: i64,
    pub open_conflicts: i64,
    /// Mutations from this trainer's devices refused and not yet resolved.
    pub open_quarantined: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainerInfo {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainerReport {
    pub trainer: TrainerInfo,
    pub totals: TrainerCourse,
    pub courses: Vec<TrainerCourse>,
}

/// What a trainer did in their courses and what is waiting on them. Administrators see any
/// trainer; an organiser the trainers of their subtree's people, in the subtree's courses; a
/// trainer sees only themselves; anything else is not found.
pub fn trainer(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<TrainerReport> {
    let id = path_id(id, "trainer")?;
    let allowed = match caller.role {
        Role::Admin => true,
        Role::Organiser => Users::find_managed(conn, &caller.manages, &id).is_ok(),
        Role::Trainer => caller.user_id == id,
        Role::Trainee => false,
    };
    let caller_courses = visible_courses(conn, caller)?;
    let user = Users::find(conn, &id).ok().filter(|u| u.role == "trainer");
    let Some(user) = user.filter(|_| allowed) else {
        return Err(Error::NotFound { what: "trainer" });
    };
    let as_trainer = Caller {
        user_id: user.id.clone(),
        device_id: String::new(),
        role: Role::Trainer,
        person_id: None,
        address: None,
        unit_id: None,
        manages: Manages::Nothing,
    };
    let course_ids: Vec<String> = visible_courses(conn, &as_trainer)?
        .unwrap_or_default()
        .into_iter()
        .filter(|course| {
            caller_courses
                .as_ref()
                .is_none_or(|ids| ids.contains(course))
        })
        .collect();
    let now = crate::db::now_ms();
    let course_rows: Vec<(String, String, String, String)> = courses::table
        .filter(courses::id.eq_any(&course_ids))
        .order((courses::start_date.asc(), courses::id.asc()))
        .select((
            courses::id,
            courses::title,
            courses::start_date,
            courses::end_date,
        ))
        .load(conn)?;
    let session_rows: Vec<(String, i64, Option<String>)> = sessions::table
        .filter(sessions::course_id.eq_any(&course_ids))
        .filter(sessions::deleted_at.is_null())
        .select((
            sessions::course_id,
            sessions::starts_at,
            sessions::trainer_id,
        ))
        .load(conn)?;
    let recorded: Vec<(String, i64)> = attendance::table
        .inner_join(sessions::table)
        .filter(attendance::recorded_by.eq(&user.id))
        .filter(attendance::deleted_at.is_null())
        .filter(sessions::course_id.eq_any(&course_ids))
        .group_by(sessions::course_id)
        .select((sessions::course_id, count_star()))
        .load(conn)?;
    let conflicts: Vec<(Option<String>, i64)> = sync_conflicts::table
        .filter(sync_conflicts::course_id.eq_any(&course_ids))
        .filter(sync_conflicts::resolved_at.is_null())
        .group_by(sync_conflicts::course_id)
        .select((sync_conflicts::course_id, count_star()))
        .load(conn)?;
    let quarantined: Vec<(Option<String>, i64)> = sync_quarantine::table
        .filter(sync_quarantine::user_id.eq(&user.id))
        .filter(sync_quarantine::status.eq("open"))
        .group_by(sync_quarantine::course_id)
        .select((sync_quarantine::course_id, count_star()))
        .load(conn)?;
    let mut courses: Vec<TrainerCourse> = course_rows
        .into_iter()
        .map(|(course_id, title, start_date, end_date)| TrainerCourse {
            course_id,
            title,
            start_date,
            end_date,
            ..TrainerCourse::default()
        })
        .collect();
    let index: HashMap<String, usize> = courses
        .iter()
        .enumerate()
        .map(|(i, c)| (c.course_id.clone(), i))
        .collect();
    for (course, starts_at, taught_by) in session_rows {
        if let Some(&i) = index.get(&course) {
            let c = &mut courses[i];
            c.sessions += 1;
            if starts_at <= now {
                c.sessions_held += 1;
                c.sessions_taught += i64::from(taught_by.as_deref() == Some(user.id.as_str()));
            }
        }
    }
    for (course, n) in recorded {
        if let Some(&i) = index.get(&course) {
            courses[i].attendance_recorded = n;
        }
    }
    for (course, n) in conflicts {
        if let Some(&i) = course.and_then(|c| index.get(&c)) {
            courses[i].open_conflicts = n;
        }
    }
    let mut totals = TrainerCourse {
        title: "Tổng cộng".into(),
        ..TrainerCourse::default()
    };
    for (course, n) in quarantined {
        // A refused mutation may name a course the trainer has since left, or none at all: it
        // still waits on them, so it counts in the totals either way.
        if let Some(&i) = course.and_then(|c| index.get(&c)) {
            courses[i].open_quarantined = n;
        }
        totals.open_quarantined += n;
    }
    for c in &courses {
        totals.sessions += c.sessions;
        totals.sessions_held += c.sessions_held;
        totals.sessions_taught += c.sessions_taught;
        totals.attendance_recorded += c.attendance_recorded;
        totals.open_conflicts += c.open_conflicts;
    }
    Ok(TrainerReport {
        trainer: TrainerInfo {
            id: user.id,
            username: user.username,
            display_name: user.display_name,
        },
        totals,
        courses,
    })
}

impl TrainerReport {
    pub fn file_stem(&self) -> String {
        format!("giang-vien-{}", self.trainer.username)
    }

    pub fn sheets(&self) -> Vec<Sheet> {
        let row = |c: &TrainerCourse| {
            vec![
                Value::Text(c.title.clone()),
                Value::Text(c.start_date.clone()),
                Value::Text(c.end_date.clone()),
                Value::Int(c.sessions),
                Value::Int(c.sessions_held),
                Value::Int(c.sessions_taught),
                Value::Int(c.attendance_recorded),
                Value::Int(c.open_conflicts),
                Value::Int(c.open_quarantined),
            ]
        };
        vec![Sheet {
            name: "Giảng viên".into(),
            headers: [
                "Lớp",
                "Từ ngày",
                "Đến ngày",
                "Số buổi",
                "Đã diễn ra",
                "Đã dạy",
                "Điểm danh đã ghi",
                "Xung đột chưa xử lý",
                "Bản ghi bị giữ lại",
            ]
            .map(String::from)
            .to_vec(),
            rows: self
                .courses
                .iter()
                .map(row)
                .chain(std::iter::once(row(&self.totals)))
                .collect(),
        }]
    }
}

// ---------------------------------------------------------------------------------------------
// The audit trail as a file

/// Audit entries as one sheet, newest first as given. Details stay JSON text.
pub fn audit_sheets(entries: &[AuditEntry]) -> Vec<Sheet> {
    let rows = entries
        .iter()
        .map(|entry| {
            vec![
                Value::Text(format_ms(entry.at)),
                Value::opt_text(entry.user_id.as_deref()),
                Value::opt_text(entry.username.as_deref()),
                Value::opt_text(entry.device_id.as_deref()),
                Value::opt_text(entry.address.as_deref()),
                Value::Text(entry.action.clone()),
                Value::opt_text(entry.object_type.as_deref()),
                Value::opt_text(entry.object_id.as_deref()),
                Value::Text(entry.details.clone()),
            ]
        })
        .collect();
    vec![Sheet {
        name: "Nhật ký thao tác".into(),
        headers: [
            "Thời điểm (UTC)",
            "Mã tài khoản",
            "Tên đăng nhập",
            "Thiết bị",
            "Địa chỉ",
            "Thao tác",
            "Loại đối tượng",
            "Mã đối tượng",
            "Chi tiết",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

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
