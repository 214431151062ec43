//! Progress against a yearly training plan ("Kế hoạch và kết quả bồi dưỡng"): the plan's target
//! group as the unit tree stands today, who of it is trained by the plan's rule and who is not
//! (name, unit, position, phone), per unit and in total against the share to train; the planned
//! courses and which are not held yet; the plans of the units below for the same year, each
//! with its progress, and their sum; and the reorganisations of the year that moved people in
//! or out of the plan's units.
//!
//! Targets are recomputed from the current tree on every read: people count in the unit they
//! belong to today (after a merge, in the unit they moved to). A plan whose unit was merged
//! away has no one left to train; its people count under the plan of the unit they joined, and
//! the changes say when that happened.
//!
//! Only sessions that have started (by the server's clock) count: attendance recorded ahead for
//! a session still to come trains nobody, just as the course is "not held" until a session
//! starts. The completion rule still divides by all the course's live sessions, so a course is
//! completed only once enough of it has been held.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::render::{self, Sheet, Value};
use super::unit_tree::{Tally, UnitPlace, UnitTree};
use super::{DEFAULT_STATUSES, Rule, percent, position_label};
use crate::db::DbConn;
use crate::domain::Caller;
use crate::domain::Resource;
use crate::domain::attendance::AttendanceRecords;
use crate::domain::courses::{CourseOutline, Courses};
use crate::domain::people::{Cadre, People, UnitChangeReason, UnitMove};
use crate::domain::plans::{PlanRule, TrainingPlan, TrainingPlans, topic_matches};
use crate::domain::sessions::{SessionOutline, Sessions};
use crate::error::Result;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReportQuery {
    pub format: Option<render::Format>,
}

/// A plan's figures: its target group, the number the share asks for, the trained.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanProgress {
    /// People holding a target position in the plan's unit and the units under it, today.
    pub target: i64,
    /// How many of them the plan means to train: `target_percent` of `target`, rounded up.
    pub required: i64,
    pub trained: i64,
    pub not_trained: i64,
    /// Percent of the target group trained; null when it is empty.
    pub percent: Option<f64>,
    /// Whether `trained` reaches `required` (for a sum: every plan in it does).
    pub met: bool,
}

impl PlanProgress {
    fn new(target: i64, trained: i64, target_percent: i32) -> Self {
        let required = (target * i64::from(target_percent) + 99) / 100;
        PlanProgress {
            target,
            required,
            trained,
            not_trained: target - trained,
            percent: percent(trained, target),
            met: trained >= required,
        }
    }

    fn sum<'a>(all: impl Iterator<Item = &'a PlanProgress>) -> Self {
        let mut total = PlanProgress {
            met: true,
            ..PlanProgress::default()
        };
        for p in all {
            total.target += p.target;
            total.required += p.required;
            total.trained += p.trained;
            total.not_trained += p.not_trained;
            total.met &= p.met;
        }
        total.percent = percent(total.trained, total.target);
        total
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanUnit {
    pub id: String,
    pub code: String,
    pub name: String,
    /// False once the unit was merged into another or ended.
    pub in_force: bool,
    /// The unit in force today that it became, when it was merged.
    pub merged_into_id: Option<String>,
    pub merged_into_name: Option<String>,
}

/// One unit in force today under the plan's unit, with the target group counted in it and the
/// units under it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanUnitProgress {
    #[serde(flatten)]
    pub unit: UnitPlace,
    pub target: i64,
    pub trained: i64,
    pub not_trained: i64,
    pub percent: Option<f64>,
}

/// A person of the target group.
#[derive(Debug, Clone, Serialize)]
pub struct TargetPerson {
    pub person_id: String,
    pub full_name: String,
    pub position: String,
    /// The day they took their position, when recorded.
    pub position_since: Option<String>,
    pub phone: Option<String>,
    /// The unit in force today the person belongs to.
    pub unit_id: String,
    pub unit_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedCourseProgress {
    pub course_id: String,
    pub code: Option<String>,
    pub title: String,
    pub planned_start: String,
    pub planned_end: String,
    /// The course's own dates, as it is scheduled now.
    pub start_date: String,
    pub end_date: String,
    pub sessions: i64,
    /// Sessions that have started.
    pub sessions_held: i64,
    /// Whether any session of the course has started.
    pub held: bool,
}

/// The plan of a unit below, with its progress.
#[derive(Debug, Clone, Serialize)]
pub struct UnitPlanProgress {
    pub plan_id: String,
    pub title: String,
    pub unit_id: String,
    pub unit_code: String,
    pub unit_name: String,
    pub unit_in_force: bool,
    pub target_percent: i32,
    pub progress: PlanProgress,
}

/// What a reorganisation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A unit was merged into another; its people moved with it.
    Merge,
    Rename,
    /// A person of the target positions moved from one unit to another by an edit or a roster
    /// import.
    PersonMoved,
}

/// A reorganisation of the plan's year that touched its units.
#[derive(Debug, Clone, Serialize)]
pub struct PlanChange {
    /// The first day of the new arrangement.
    pub date: String,
    pub kind: ChangeKind,
    pub unit_id: String,
    /// The unit's name before the change.
    pub unit_name: String,
    /// A merge's target or where a moved person went (and its name), or a rename's new name.
    pub new_unit_id: Option<String>,
    pub new_name: Option<String>,
    /// People of the plan's target positions whom a merge moved, or the person who moved.
    pub people_moved: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub plan: TrainingPlan,
    pub unit: PlanUnit,
    pub progress: PlanProgress,
    /// The plan's unit and the units in force under it, depth first (siblings by name).
    pub units: Vec<PlanUnitProgress>,
    pub trained: Vec<TargetPerson>,
    pub not_trained: Vec<TargetPerson>,
    pub courses: Vec<PlannedCourseProgress>,
    pub courses_not_held: i64,
    /// The same year's plans of the units under the plan's unit (including units merged into
    /// one of them), by unit name.
    pub unit_plans: Vec<UnitPlanProgress>,
    /// The sum of `unit_plans`.
    pub unit_plans_total: PlanProgress,
    /// Merges and renames of the plan's year that touched its units, and the people of the
    /// target positions moved into or out of them otherwise, oldest first.
    pub changes: Vec<PlanChange>,
}

/// Who of a plan's target group is trained, from the current tree.
struct Evaluation {
    /// Per unit in force in the plan's subtree: the target group and the trained, rolled up.
    rolled: HashMap<String, Tally>,
    scope: HashSet<String>,
    trained: Vec<TargetPerson>,
    not_trained: Vec<TargetPerson>,
    progress: PlanProgress,
}

/// The units in force today at or under `root` (none when `root` itself is no longer in force).
fn scope_of(tree: &UnitTree, root: &str) -> HashSet<String> {
    if !tree.is_current(root) {
        return HashSet::new();
    }
    tree.units
        .keys()
        .filter(|id| tree.is_current(id) && tree.ancestors(id).iter().any(|a| a == root))
        .cloned()
        .collect()
}

/// The planned courses' ids.
fn course_ids(plan: &TrainingPlan) -> Vec<String> {
    plan.courses.iter().map(|c| c.course_id.clone()).collect()
}

/// A planned course's live sessions, and how many of them have started.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    sessions: i64,
    started: i64,
}

/// The people the plan's rule counts as trained, among `candidates`.
fn trained_people(
    conn: &mut DbConn,
    plan: &TrainingPlan,
    candidates: &[&String],
) -> Result<HashSet<String>> {
    let live_sessions = Sessions::outlines_of_live_courses(conn, &course_ids(plan))?;
    let now = crate::db::now_ms();
    let started = |s: &&SessionOutline| s.starts_at <= now;
    let counting: Vec<String> = DEFAULT_STATUSES.map(str::to_owned).to_vec();
    match &plan.rule {
        PlanRule::CourseCompletion { min_rate } => {
            let rule = Rule {
                min_rate: f64::from(*min_rate),
                statuses: counting,
            };
            let mut sessions_of: HashMap<&str, i64> = HashMap::new();
            for session in &live_sessions {
                *sessions_of.entry(session.course_id.as_str()).or_default() += 1;
            }
            let session_ids: Vec<&String> = live_sessions
                .iter()
                .filter(started)
                .map(|s| &s.id)
                .collect();
            let attended = AttendanceRecords::attended_in_courses(
                conn,
                &session_ids,
                candidates,
                &rule.statuses,
            )?;
            Ok(rule.completers(attended, &sessions_of))
        }
        PlanRule::SessionsOnTopics { min_sessions, .. } => {
            let keys = plan.rule.topic_keys();
            let session_ids: Vec<&String> = live_sessions
                .iter()
                .filter(started)
                .filter(|s| topic_matches(&s.topic, &keys))
                .map(|s| &s.id)
                .collect();
            // Sessions on the topics count whatever course holds them.
            let mut attended_by: HashMap<String, i64> = HashMap::new();
            for attended in
                AttendanceRecords::attended_in_courses(conn, &session_ids, candidates, &counting)?
            {
                *attended_by.entry(attended.person_id).or_default() += attended.sessions;
            }
            Ok(attended_by
                .into_iter()
                .filter(|(_, sessions)| *sessions >= i64::from(*min_sessions))
                .map(|(person, _)| person)
                .collect())
        }
    }
}

fn evaluate(conn: &mut DbConn, tree: &UnitTree, plan: &TrainingPlan) -> Result<Evaluation> {
    let scope = scope_of(tree, &plan.unit_id);
    let cadres =
        People::cadres_holding(conn, &plan.target_positions, plan.elected_since.as_deref())?;
    let in_scope: Vec<(Cadre, String)> = cadres
        .into_iter()
        .filter_map(|c| {
            let unit = tree.current(c.unit_id.as_deref()?);
            scope.contains(&unit).then_some((c, unit))
        })
        .collect();
    let candidates: Vec<&String> = in_scope.iter().map(|(c, _)| &c.id).collect();
    let done = trained_people(conn, plan, &candidates)?;
    let mut rolled: HashMap<String, Tally> = HashMap::new();
    let mut trained = Vec::new();
    let mut not_trained = Vec::new();
    for (cadre, unit) in in_scope {
        let is_trained = done.contains(&cadre.id);
        tree.roll_up(&mut rolled, &unit, Tally::one(is_trained), |ancestor| {
            scope.contains(ancestor)
        });
        let person = TargetPerson {
            person_id: cadre.id,
            full_name: cadre.full_name,
            position: cadre.position,
            position_since: cadre.position_since,
            phone: cadre.phone,
            unit_name: tree.name(&unit),
            unit_id: unit,
        };
        if is_trained {
            trained.push(person);
        } else {
            not_trained.push(person);
        }
    }
    let progress = PlanProgress::new(
        (trained.len() + not_trained.len()) as i64,
        trained.len() as i64,
        plan.target_percent,
    );
    Ok(Evaluation {
        rolled,
        scope,
        trained,
        not_trained,
        progress,
    })
}

/// The plan's unit and the units in force under it, depth first, siblings by name.
fn unit_rows(tree: &UnitTree, root: &str, evaluation: &Evaluation) -> Vec<PlanUnitProgress> {
    tree.depth_first(&evaluation.scope, Some(root))
        .into_iter()
        .map(|unit| {
            let tally = evaluation
                .rolled
                .get(&unit.unit_id)
                .copied()
                .unwrap_or_default();
            PlanUnitProgress {
                unit,
                target: tally.cadres,
                trained: tally.trained,
                not_trained: tally.not_trained(),
                percent: tally.percent(),
            }
        })
        .collect()
}

fn planned_courses(conn: &mut DbConn, plan: &TrainingPlan) -> Result<Vec<PlannedCourseProgress>> {
    let ids = course_ids(plan);
    let rows = Courses::outlines(conn, &ids)?;
    let live_sessions = Sessions::outlines_of_live_courses(conn, &ids)?;
    let now = crate::db::now_ms();
    let mut held: HashMap<&str, Held> = HashMap::new();
    for session in &live_sessions {
        let entry = held.entry(session.course_id.as_str()).or_default();
        entry.sessions += 1;
        entry.started += i64::from(session.starts_at <= now);
    }
    let by_id: HashMap<&str, &CourseOutline> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    // A planned course deleted since is left out: there is nothing left of it to hold.
    Ok(plan
        .courses
        .iter()
        .filter_map(|planned| {
            let course = by_id.get(planned.course_id.as_str())?;
            let Held { sessions, started } = held
                .get(planned.course_id.as_str())
                .copied()
                .unwrap_or_default();
            Some(PlannedCourseProgress {
                course_id: course.id.clone(),
                code: course.code.clone(),
                title: course.title.clone(),
                planned_start: planned.planned_start.clone(),
                planned_end: planned.planned_end.clone(),
                start_date: course.start_date.clone(),
                end_date: course.end_date.clone(),
                sessions,
                sessions_held: started,
                held: started > 0,
            })
        })
        .collect())
}

/// Merges and renames in the plan's year of a unit in the plan's scope, of a unit merged into
/// one, or of the plan's own unit; and the people of the target positions moved from one unit to
/// another otherwise (an edit, a roster import) that year, into or out of the plan's units.
fn changes(
    conn: &mut DbConn,
    tree: &UnitTree,
    plan: &TrainingPlan,
    scope: &HashSet<String>,
) -> Result<Vec<PlanChange>> {
    let (from, to) = (
        format!("{}-01-01", plan.year),
        format!("{}-12-31", plan.year),
    );
    let touches = |unit: &str| {
        unit == plan.unit_id
            || scope.contains(unit)
            || scope.contains(&tree.current(unit))
            || tree.ancestors(unit).contains(&plan.unit_id)
    };
    let mut events: Vec<_> = tree
        .events
        .iter()
        .filter(|e| e.effective_date >= from && e.effective_date <= to)
        .filter(|e| {
            touches(&e.unit_id)
                || e.target_unit_id
                    .as_deref()
                    .is_some_and(|t| scope.contains(t))
        })
        .collect();
    events.sort_by(|a, b| {
        (&a.effective_date, a.created_at, &a.id).cmp(&(&b.effective_date, b.created_at, &b.id))
    });
    // Every unit change of the people holding the target positions: a move's destination is
    // the unit of the person's next change, or where they are today.
    let history: Vec<UnitMove> = People::unit_moves_of_positions(conn, &plan.target_positions)?;
    let mut changes: Vec<PlanChange> = events
        .into_iter()
        .filter_map(|e| {
            let kind = match e.kind.as_str() {
                "merge" => ChangeKind::Merge,
                "rename" => ChangeKind::Rename,
                _ => return None,
            };
            let people_moved = match kind {
                ChangeKind::Merge => history
                    .iter()
                    .filter(|m| {
                        m.reason == UnitChangeReason::Merge.as_str()
                            && m.unit_id == e.unit_id
                            && m.left_on == e.effective_date
                    })
                    .map(|m| m.full_name.clone())
                    .collect(),
                ChangeKind::Rename | ChangeKind::PersonMoved => Vec::new(),
            };
            Some(PlanChange {
                date: e.effective_date.clone(),
                kind,
                unit_id: e.unit_id.clone(),
                unit_name: e.old_name.clone().unwrap_or_else(|| tree.name(&e.unit_id)),
                new_unit_id: e.target_unit_id.clone(),
                new_name: e.new_name.clone(),
                people_moved,
            })
        })
        .collect();
    for (i, moved) in history.iter().enumerate() {
        if moved.reason == UnitChangeReason::Merge.as_str()
            || moved.left_on < from
            || moved.left_on > to
        {
            continue;
        }
        let destination = match history.get(i + 1) {
            Some(next) if next.person_id == moved.person_id => Some(next.unit_id.clone()),
            _ => moved.current_unit_id.clone(),
        };
        let into_scope = destination.as_deref().is_some_and(touches);
        if !touches(&moved.unit_id) && !into_scope {
            continue;
        }
        changes.push(PlanChange {
            date: moved.left_on.clone(),
            kind: ChangeKind::PersonMoved,
            unit_id: moved.unit_id.clone(),
            unit_name: tree.name_on(&moved.unit_id, &moved.left_on),
            new_name: destination.as_deref().map(|u| tree.name(u)),
            new_unit_id: destination,
            people_moved: vec![moved.full_name.clone()],
        });
    }
    // Stable: on one day, the reorganisations first, in the order they were recorded.
    changes.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(changes)
}

/// Progress against a plan the caller manages (else not found).
pub fn plan(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<PlanReport> {
    let plan = TrainingPlans::get(conn, caller, id)?;
    let tree = UnitTree::load(conn)?;
    let evaluation = evaluate(conn, &tree, &plan)?;
    let units = unit_rows(&tree, &plan.unit_id, &evaluation);
    let courses = planned_courses(conn, &plan)?;
    let mut unit_plans = Vec::new();
    for other in TrainingPlans::of_year(conn, caller, plan.year)? {
        // A plan of a unit under this one, or of a unit merged into one of them (or into this
        // plan's own unit).
        let below = other.unit_id != plan.unit_id
            && evaluation.scope.contains(&tree.current(&other.unit_id));
        if !below {
            continue;
        }
        let progress = evaluate(conn, &tree, &other)?.progress;
        let unit = tree.units.get(&other.unit_id);
        unit_plans.push(UnitPlanProgress {
            plan_id: other.id.clone(),
            title: other.title.clone(),
            unit_code: unit.map(|u| u.code.clone()).unwrap_or_default(),
            unit_name: tree.name(&other.unit_id),
            unit_in_force: tree.is_current(&other.unit_id),
            unit_id: other.unit_id.clone(),
            target_percent: other.target_percent,
            progress,
        });
    }
    unit_plans.sort_by_key(|p| {
        (
            crate::domain::text::fold(&p.unit_name),
            p.unit_id.clone(),
            p.plan_id.clone(),
        )
    });
    let unit_plans_total = PlanProgress::sum(unit_plans.iter().map(|p| &p.progress));
    let changes = changes(conn, &tree, &plan, &evaluation.scope)?;
    let unit_row = tree.units.get(&plan.unit_id);
    let merged_into = unit_row
        .and_then(|u| u.merged_into_id.as_ref())
        .map(|_| tree.current(&plan.unit_id));
    Ok(PlanReport {
        unit: PlanUnit {
            id: plan.unit_id.clone(),
            code: unit_row.map(|u| u.code.clone()).unwrap_or_default(),
            name: tree.name(&plan.unit_id),
            in_force: tree.is_current(&plan.unit_id),
            merged_into_name: merged_into.as_deref().map(|u| tree.name(u)),
            merged_into_id: merged_into,
        },
        progress: evaluation.progress.clone(),
        units,
        trained: evaluation.trained,
        not_trained: evaluation.not_trained,
        courses_not_held: courses.iter().filter(|c| !c.held).count() as i64,
        courses,
        unit_plans,
        unit_plans_total,
        changes,
        plan,
    })
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "Có" } else { "Không" }
}

impl super::Report for PlanReport {
    fn file_stem(&self) -> String {
        format!("ke-hoach-boi-duong-{}-{}", self.plan.year, self.unit.code)
    }

    fn sheets(&self) -> Vec<Sheet> {
        let progress_row = |code: Value, name: String, p: &PlanProgress| {
            vec![
                code,
                Value::Text(name),
                Value::Int(p.target),
                Value::Int(p.trained),
                Value::Int(p.not_trained),
                Value::opt_percent(p.percent),
                Value::Int(p.required),
                Value::Text(yes_no(p.met).into()),
            ]
        };
        let mut units: Vec<Vec<Value>> = self
            .units
            .iter()
            .map(|u| {
                let mut row = u.unit.cells().to_vec();
                row.extend([
                    Value::Int(u.target),
                    Value::Int(u.trained),
                    Value::Int(u.not_trained),
                    Value::opt_percent(u.percent),
                    Value::Empty,
                    Value::Empty,
                ]);
                row
            })
            .collect();
        units.push(progress_row(
            Value::Empty,
            "Tổng cộng".into(),
            &self.progress,
        ));
        let progress_headers = |first: &[&str]| {
            first
                .iter()
                .chain(&[
                    "Đối tượng",
                    "Đã bồi dưỡng",
                    "Chưa bồi dưỡng",
                    "Tỷ lệ (%)",
                    "Chỉ tiêu",
                    "Đạt chỉ tiêu",
                ])
                .map(|h| (*h).to_owned())
                .collect::<Vec<String>>()
        };
        let mut unit_plans: Vec<Vec<Value>> = self
            .unit_plans
            .iter()
            .map(|p| {
                let mut row = progress_row(
                    Value::Text(p.unit_code.clone()),
                    p.unit_name.clone(),
                    &p.progress,
                );
                row.insert(2, Value::Text(p.title.clone()));
                row
            })
            .collect();
        let mut total = progress_row(Value::Empty, "Tổng cộng".into(), &self.unit_plans_total);
        total.insert(2, Value::Empty);
        unit_plans.push(total);
        let person = |p: &TargetPerson, trained: bool| {
            vec![
                Value::Text(p.full_name.clone()),
                Value::Text(p.unit_name.clone()),
                Value::Text(position_label(&p.position).into()),
                Value::opt_text(p.position_since.as_deref()),
                Value::opt_text(p.phone.as_deref()),
                Value::Text(
                    if trained {
                        "Đã bồi dưỡng"
                    } else {
                        "Chưa bồi dưỡng"
                    }
                    .into(),
                ),
            ]
        };
        let people = self
            .not_trained
            .iter()
            .map(|p| person(p, false))
            .chain(self.trained.iter().map(|p| person(p, true)))
            .enumerate()
            .map(|(i, mut row)| {
                row.insert(0, Value::Int(i as i64 + 1));
                row
            })
            .collect();
        let courses = self
            .courses
            .iter()
            .map(|c| {
                vec![
                    Value::opt_text(c.code.as_deref()),
                    Value::Text(c.title.clone()),
                    Value::Text(c.planned_start.clone()),
                    Value::Text(c.planned_end.clone()),
                    Value::Text(c.start_date.clone()),
                    Value::Text(c.end_date.clone()),
                    Value::Int(c.sessions),
                    Value::Int(c.sessions_held),
                    Value::Text(
                        if c.held {
                            "Đã tổ chức"
                        } else {
                            "Chưa tổ chức"
                        }
                        .into(),
                    ),
                ]
            })
            .collect();
        let changes = self
            .changes
            .iter()
            .map(|c| {
                vec![
                    Value::Text(c.date.clone()),
                    Value::Text(
                        match c.kind {
                            ChangeKind::Merge => "Sáp nhập",
                            ChangeKind::Rename => "Đổi tên",
                            ChangeKind::PersonMoved => "Chuyển đơn vị",
                        }
                        .into(),
                    ),
                    Value::Text(c.unit_name.clone()),
                    Value::opt_text(c.new_name.as_deref()),
                    Value::Int(c.people_moved.len() as i64),
                    Value::Text(c.people_moved.join("; ")),
                ]
            })
            .collect();
        vec![
            Sheet {
                name: "Kế hoạch và kết quả bồi dưỡng".into(),
                headers: progress_headers(&["Mã đơn vị", "Đơn vị"]),
                rows: units,
            },
            Sheet {
                name: "Kế hoạch đơn vị cấp dưới".into(),
                headers: progress_headers(&["Mã đơn vị", "Đơn vị", "Kế hoạch"]),
                rows: unit_plans,
            },
            Sheet {
                name: "Danh sách đối tượng".into(),
                headers: [
                    "STT",
                    "Họ và tên",
                    "Đơn vị",
                    "Chức vụ",
                    "Ngày nhận chức vụ",
                    "Số điện thoại",
                    "Kết quả",
                ]
                .map(String::from)
                .to_vec(),
                rows: people,
            },
            Sheet {
                name: "Lớp theo kế hoạch".into(),
                headers: [
                    "Mã lớp",
                    "Tên lớp",
                    "Dự kiến từ ngày",
                    "Dự kiến đến ngày",
                    "Từ ngày",
                    "Đến ngày",
                    "Số buổi",
                    "Đã diễn ra",
                    "Tình trạng",
                ]
                .map(String::from)
                .to_vec(),
                rows: courses,
            },
            Sheet {
                name: "Thay đổi trong năm".into(),
                headers: [
                    "Ngày",
                    "Thay đổi",
                    "Đơn vị",
                    "Thành",
                    "Số đối tượng chuyển",
                    "Đối tượng chuyển",
                ]
                .map(String::from)
                .to_vec(),
                rows: changes,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_to_train_is_rounded_up() {
        let p = PlanProgress::new(7, 5, 80);
        assert_eq!(p.required, 6, "80% of 7 is 5.6: six people");
        assert!(!p.met);
        assert_eq!(p.not_trained, 2);
        assert!(PlanProgress::new(5, 4, 80).met);
        assert!(PlanProgress::new(0, 0, 100).met, "nobody to train");
        assert_eq!(PlanProgress::new(0, 0, 100).percent, None);
    }

    #[test]
    fn a_sum_adds_the_figures_and_is_met_when_every_plan_is() {
        let a = PlanProgress::new(4, 4, 100);
        let b = PlanProgress::new(6, 2, 50);
        let total = PlanProgress::sum([&a, &b].into_iter());
        assert_eq!(
            (
                total.target,
                total.required,
                total.trained,
                total.not_trained
            ),
            (10, 7, 6, 4)
        );
        assert_eq!(total.percent, Some(60.0));
        assert!(!total.met);
    }
}
