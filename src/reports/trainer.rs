//! The trainer report: what a trainer did in their courses and what is waiting on them.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::render::{self, Sheet, Value};
use crate::db::DbConn;
use crate::db::schema::{attendance, courses, sessions, sync_conflicts, sync_quarantine};
use crate::domain::access::{Manages, visible_courses};
use crate::domain::users::Users;
use crate::domain::values::path_id;
use crate::domain::{Caller, Role};
use crate::error::{Error, Result};

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
pub fn report(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<TrainerReport> {
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
