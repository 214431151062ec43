//! The trainer report: what a trainer did in their courses and what is waiting on them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::render::{self, Sheet, Value};
use crate::db::DbConn;
use crate::domain::access::trainer_courses_seen_by;
use crate::domain::attendance::AttendanceRecords;
use crate::domain::courses::Courses;
use crate::domain::sessions::Sessions;
use crate::domain::users::Users;
use crate::domain::values::path_id;
use crate::domain::{Caller, Role};
use crate::error::{Error, Result};
use crate::sync::review;

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
/// trainer sees only themselves (`access::trainer_courses_seen_by`); anything else is not found.
pub fn report(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<TrainerReport> {
    let id = path_id(id, "trainer")?;
    let not_found = || Error::NotFound { what: "trainer" };
    let user = Users::find(conn, &id)
        .ok()
        .filter(|u| u.role() == Role::Trainer)
        .ok_or_else(not_found)?;
    let course_ids = trainer_courses_seen_by(conn, caller, &user.id)?.ok_or_else(not_found)?;
    let now = crate::db::now_ms();
    let course_rows = Courses::outlines(conn, &course_ids)?;
    let session_rows = Sessions::leads_of_courses(conn, &course_ids)?;
    let recorded = AttendanceRecords::count_recorded_by(conn, &user.id, &course_ids)?;
    let conflicts = review::unresolved_conflicts_of_courses(conn, &course_ids)?;
    let quarantined = review::open_quarantine_of_user(conn, &user.id)?;
    let mut courses: Vec<TrainerCourse> = course_rows
        .into_iter()
        .map(|course| TrainerCourse {
            course_id: course.id,
            title: course.title,
            start_date: course.start_date,
            end_date: course.end_date,
            ..TrainerCourse::default()
        })
        .collect();
    let index: HashMap<String, usize> = courses
        .iter()
        .enumerate()
        .map(|(i, c)| (c.course_id.clone(), i))
        .collect();
    for session in session_rows {
        if let Some(&i) = index.get(&session.course_id) {
            let c = &mut courses[i];
            c.sessions += 1;
            if session.starts_at <= now {
                c.sessions_held += 1;
                c.sessions_taught +=
                    i64::from(session.trainer_id.as_deref() == Some(user.id.as_str()));
            }
        }
    }
    for recorded in recorded {
        if let Some(&i) = index.get(&recorded.course_id) {
            courses[i].attendance_recorded = recorded.count;
        }
    }
    for conflicts in conflicts {
        if let Some(&i) = conflicts.course_id.and_then(|c| index.get(&c)) {
            courses[i].open_conflicts = conflicts.count;
        }
    }
    let mut totals = TrainerCourse {
        title: "Tổng cộng".into(),
        ..TrainerCourse::default()
    };
    for quarantined in quarantined {
        // A refused mutation may name a course the trainer has since left, or none at all: it
        // still waits on them, so it counts in the totals either way.
        if let Some(&i) = quarantined.course_id.and_then(|c| index.get(&c)) {
            courses[i].open_quarantined = quarantined.count;
        }
        totals.open_quarantined += quarantined.count;
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

impl super::Report for TrainerReport {
    fn file_stem(&self) -> String {
        format!("giang-vien-{}", self.trainer.username)
    }

    fn sheets(&self) -> Vec<Sheet> {
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
