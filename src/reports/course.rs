//! The course report: a course's sessions × trainees, with completion by the rule.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::render::{self, Sheet, Value};
use super::unit_tree::UnitTree;
use super::{Rule, local_time, percent, position_label, status_label};
use crate::db::DbConn;
use crate::domain::Caller;
use crate::domain::access::records_of_course;
use crate::domain::attendance::AttendanceRecords;
use crate::domain::courses::Courses;
use crate::domain::people::{Cadre, People};
use crate::domain::sessions::Sessions;
use crate::domain::values::{Checker, format_ms, path_id};
use crate::error::Result;

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
/// their own row; a course outside the caller's scope is not found (`access::records_of_course`).
pub fn report(
    conn: &mut DbConn,
    caller: &Caller,
    id: &str,
    query: &CourseQuery,
) -> Result<CourseReport> {
    let id = path_id(id, "course")?;
    let scope = records_of_course(conn, caller, &id, "course")?;
    let mut check = Checker::new();
    let rule = Rule::parse(&mut check, query.min_rate, query.statuses.as_deref());
    check.finish()?;
    let course = Courses::find(conn, &id)?;
    let session_rows = Sessions::outlines_of_course(conn, &id)?;
    let trainees = People::enrolled_in(conn, &id, &scope)?;
    let person_ids: Vec<&String> = trainees.iter().map(|t| &t.id).collect();
    let session_ids: Vec<&String> = session_rows.iter().map(|s| &s.id).collect();
    let marks = AttendanceRecords::marks(conn, &session_ids, &person_ids)?;
    let history = People::units_left_after(conn, &person_ids, &course.start_date)?;
    let tree = UnitTree::load(conn)?;
    let mut unit_then: HashMap<&str, &str> = HashMap::new();
    for left in &history {
        // Ordered by left_on: the first row after the start is the unit at the start.
        unit_then.entry(&left.person_id).or_insert(&left.unit_id);
    }
    let column: HashMap<&str, usize> = session_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut statuses: HashMap<&str, Vec<Option<String>>> = HashMap::new();
    for mark in &marks {
        let row = statuses
            .entry(&mark.person_id)
            .or_insert_with(|| vec![None; session_ids.len()]);
        if let Some(&i) = column.get(mark.session_id.as_str()) {
            row[i] = Some(mark.status.clone());
        }
    }
    let total = session_ids.len() as i64;
    let mut rows = Vec::with_capacity(trainees.len());
    for Cadre {
        id: person_id,
        full_name,
        position,
        unit_id,
        ..
    } in &trainees
    {
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
            .map(|session| SessionColumn {
                id: session.id,
                topic: session.topic,
                starts_at: format_ms(session.starts_at),
            })
            .collect(),
        trainees: rows,
        completed,
    })
}

impl super::Report for CourseReport {
    fn file_stem(&self) -> String {
        format!(
            "diem-danh-{}",
            self.course.code.as_deref().unwrap_or(&self.course.id)
        )
    }

    fn sheets(&self) -> Vec<Sheet> {
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
