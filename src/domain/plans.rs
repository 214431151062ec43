//! Yearly training plans: a unit plans, for one year, whom it trains (the people of its subtree
//! holding the target positions, and the share of them to train), what counts as trained (the
//! completion rule of one of the planned courses, or a number of sessions on required topics
//! in them) and the courses planned, with their planned dates. Progress against a plan is a
//! report (`reports::plans`). Plans are not synced: devices get the courses, never the plan.
//!
//! Target groups are positions (`people::POSITIONS`). A branch's secretaries are the position
//! `branch_secretary` (and `branch_deputy_secretary`), not "secretary" qualified by a unit
//! level: a person's position already says which level they lead, the people API and roster
//! import record it that way ("Bí thư chi đoàn"), and a plan of any unit counts the people of
//! its subtree holding its positions, so a commune plans for its branch secretaries with
//! `["branch_secretary"]` while the province's plan for `secretary` never finds them.
//!
//! "Newly elected this term": a plan may give `elected_since`, the first day of the term; its
//! target group is then only the people whose `position_since` (the day they took their
//! current position) is on or after it. A person whose `position_since` is not recorded is
//! not known to be newly elected, so such a plan leaves them out.
//!
//! Every read and write asks what the caller manages (`access::Manages`) about the plan's unit:
//! administrators every unit, organisers their subtree; a plan of a unit the caller does not
//! manage is not found, and lists leave it out.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::ensure_course_visible;
use super::courses::Courses;
use super::people::POSITIONS;
use super::units::Units;
use super::values::{Checker, MAX_NAME_CHARS, resolve_id, serialize_ms};
use super::{Caller, PageRequest, Paged, Resource, find_live, ordered_page, text, tombstone};
use crate::db::schema::{training_plan_courses, training_plan_topics, training_plans};
use crate::db::{DbConn, next_revision, now_ms};
use crate::error::{Error, Result};

/// The share of the target group a plan trains unless it says otherwise.
pub const DEFAULT_TARGET_PERCENT: i32 = 100;
/// The completion rule's share of a course's sessions unless the plan says otherwise (the
/// course report's default).
pub const DEFAULT_MIN_RATE: i32 = crate::reports::DEFAULT_MIN_RATE as i32;
pub const RULE_KINDS: [&str; 2] = ["course_completion", "sessions_on_topics"];
const MAX_PLANNED_COURSES: usize = 100;
const MAX_TOPICS: usize = 50;
const YEARS: std::ops::RangeInclusive<i64> = 2000..=2100;

/// What counts as trained under a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanRule {
    /// Completed one of the plan's courses: attended (present or late) at least `min_rate`
    /// percent of its sessions.
    CourseCompletion { min_rate: i32 },
    /// Attended (present or late) at least `min_sessions` sessions of the plan's courses whose
    /// topic contains one of `topics` (ignoring case and diacritics).
    SessionsOnTopics {
        min_sessions: i32,
        topics: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCourse {
    pub course_id: String,
    pub planned_start: String,
    pub planned_end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainingPlan {
    pub id: String,
    pub unit_id: String,
    pub year: i32,
    pub title: String,
    pub target_positions: Vec<String>,
    /// Only people whose position started on or after this day (the term's first day).
    pub elected_since: Option<String>,
    pub target_percent: i32,
    pub rule: PlanRule,
    pub courses: Vec<PlannedCourse>,
    pub rev: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub updated_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingPlanInput {
    pub id: Option<String>,
    pub unit_id: String,
    pub year: i64,
    pub title: String,
    pub target_positions: Vec<String>,
    pub elected_since: Option<String>,
    pub target_percent: Option<i64>,
    pub rule: Option<PlanRuleInput>,
    pub courses: Option<Vec<PlannedCourseInput>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRuleInput {
    pub kind: String,
    pub min_rate: Option<i64>,
    pub min_sessions: Option<i64>,
    pub topics: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedCourseInput {
    pub course_id: String,
    pub planned_start: String,
    pub planned_end: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingPlanFilter {
    pub unit_id: Option<String>,
    pub year: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A plan as stored, without its courses and topics.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = training_plans, treat_none_as_null = true)]
struct PlanRow {
    id: String,
    unit_id: String,
    year: i32,
    title: String,
    target_positions: String,
    target_percent: i32,
    rule: String,
    min_rate: Option<i32>,
    min_sessions: Option<i32>,
    rev: i64,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
    elected_since: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = training_plan_courses)]
struct PlanCourseRow {
    plan_id: String,
    ordinal: i32,
    course_id: String,
    planned_start: String,
    planned_end: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = training_plan_topics)]
struct PlanTopicRow {
    plan_id: String,
    ordinal: i32,
    topic: String,
    topic_key: String,
}

impl PlanRule {
    fn kind(&self) -> &'static str {
        match self {
            PlanRule::CourseCompletion { .. } => "course_completion",
            PlanRule::SessionsOnTopics { .. } => "sessions_on_topics",
        }
    }

    /// The topics' folded keys, for matching session topics.
    pub fn topic_keys(&self) -> Vec<String> {
        match self {
            PlanRule::CourseCompletion { .. } => Vec::new(),
            PlanRule::SessionsOnTopics { topics, .. } => {
                topics.iter().map(|t| text::fold(t)).collect()
            }
        }
    }
}

/// Whether a session's topic is one of the required ones: it contains a required topic,
/// ignoring case, diacritics and Unicode form.
pub fn topic_matches(topic: &str, required_keys: &[String]) -> bool {
    let topic = text::fold(topic);
    required_keys.iter().any(|key| topic.contains(key.as_str()))
}

pub struct TrainingPlans;

impl TrainingPlans {
    fn find_row(conn: &mut DbConn, id: &str) -> Result<PlanRow> {
        find_live!(conn, training_plans, PlanRow, id, Self::WHAT)
    }

    /// The live plans of a year that the caller manages, with their courses and topics.
    pub fn of_year(conn: &mut DbConn, caller: &Caller, year: i32) -> Result<Vec<TrainingPlan>> {
        let rows = Self::managed(caller)
            .filter(training_plans::year.eq(year))
            .order(training_plans::id.asc())
            .select(PlanRow::as_select())
            .load(conn)?;
        Self::assemble(conn, rows)
    }

    /// The live plans of the units the caller manages.
    fn managed(caller: &Caller) -> training_plans::BoxedQuery<'static, crate::db::Backend> {
        let mut query = training_plans::table
            .filter(training_plans::deleted_at.is_null())
            .into_boxed();
        if let Some(units) = caller.manages.units() {
            query = query.filter(training_plans::unit_id.eq_any(units));
        }
        query
    }

    /// Plans from their rows, with their courses and topics (two reads for all of them).
    fn assemble(conn: &mut DbConn, rows: Vec<PlanRow>) -> Result<Vec<TrainingPlan>> {
        let ids: Vec<&String> = rows.iter().map(|r| &r.id).collect();
        let course_rows = training_plan_courses::table
            .filter(training_plan_courses::plan_id.eq_any(&ids))
            .order((
                training_plan_courses::plan_id.asc(),
                training_plan_courses::ordinal.asc(),
            ))
            .select(PlanCourseRow::as_select())
            .load(conn)?;
        let topic_rows = training_plan_topics::table
            .filter(training_plan_topics::plan_id.eq_any(&ids))
            .order((
                training_plan_topics::plan_id.asc(),
                training_plan_topics::ordinal.asc(),
            ))
            .select(PlanTopicRow::as_select())
            .load(conn)?;
        let mut courses: HashMap<String, Vec<PlannedCourse>> = HashMap::new();
        for row in course_rows {
            courses.entry(row.plan_id).or_default().push(PlannedCourse {
                course_id: row.course_id,
                planned_start: row.planned_start,
                planned_end: row.planned_end,
            });
        }
        let mut topics: HashMap<String, Vec<String>> = HashMap::new();
        for row in topic_rows {
            topics.entry(row.plan_id).or_default().push(row.topic);
        }
        rows.into_iter()
            .map(|row| {
                let rule = match row.rule.as_str() {
                    "course_completion" => PlanRule::CourseCompletion {
                        min_rate: row.min_rate.unwrap_or(DEFAULT_MIN_RATE),
                    },
                    "sessions_on_topics" => PlanRule::SessionsOnTopics {
                        min_sessions: row.min_sessions.unwrap_or(1),
                        topics: topics.remove(&row.id).unwrap_or_default(),
                    },
                    other => {
                        return Err(Error::Internal(format!("a plan with the rule {other:?}")));
                    }
                };
                Ok(TrainingPlan {
                    courses: courses.remove(&row.id).unwrap_or_default(),
                    target_positions: row
                        .target_positions
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    elected_since: row.elected_since,
                    id: row.id,
                    unit_id: row.unit_id,
                    year: row.year,
                    title: row.title,
                    target_percent: row.target_percent,
                    rule,
                    rev: row.rev,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                })
            })
            .collect()
    }

    /// Checks the input whole, then everything it names; writes nothing.
    fn build(
        conn: &mut DbConn,
        caller: &Caller,
        input: TrainingPlanInput,
        existing: Option<&TrainingPlan>,
    ) -> Result<TrainingPlan> {
        let mut check = Checker::new();
        let id = resolve_id(
            &mut check,
            existing.map(|p| p.id.as_str()),
            input.id.as_deref(),
        );
        let unit_id = check.id("unit_id", &input.unit_id);
        if !YEARS.contains(&input.year) {
            check.fail(
                "year",
                "out_of_range",
                format!("must be between {} and {}", YEARS.start(), YEARS.end()),
            );
        }
        let year = input.year.clamp(*YEARS.start(), *YEARS.end()) as i32;
        let title = check.text("title", &input.title, MAX_NAME_CHARS);
        let mut target_positions: Vec<String> = Vec::new();
        if input.target_positions.is_empty() {
            check.fail("target_positions", "required", "name at least one position");
        }
        for position in &input.target_positions {
            let position = check.one_of("target_positions", position, &POSITIONS);
            if target_positions.contains(&position) {
                check.fail(
                    "target_positions",
                    "duplicate",
                    "a position is listed twice",
                );
            } else {
                target_positions.push(position);
            }
        }
        let elected_since = check.opt_date("elected_since", input.elected_since.as_deref());
        let target_percent = input
            .target_percent
            .unwrap_or(i64::from(DEFAULT_TARGET_PERCENT));
        if !(1..=100).contains(&target_percent) {
            check.fail(
                "target_percent",
                "out_of_range",
                "must be between 1 and 100",
            );
        }
        let rule = Self::check_rule(&mut check, input.rule);
        let mut courses: Vec<PlannedCourse> = Vec::new();
        let planned = input.courses.unwrap_or_default();
        if planned.len() > MAX_PLANNED_COURSES {
            check.fail(
                "courses",
                "too_many",
                format!("at most {MAX_PLANNED_COURSES} courses"),
            );
        }
        for (i, course) in planned.iter().enumerate() {
            let field = |name: &str| format!("courses[{i}].{name}");
            let course_id = check.id(&field("course_id"), &course.course_id);
            let planned_start = check.date(&field("planned_start"), &course.planned_start);
            let planned_end = check.date(&field("planned_end"), &course.planned_end);
            check.ordered(
                &field("planned_end"),
                &planned_start,
                &planned_end,
                "must not be before planned_start",
            );
            if !planned_start.starts_with(&format!("{year}-")) {
                check.fail(
                    &field("planned_start"),
                    "outside_year",
                    "a planned course starts in the plan's year",
                );
            }
            if courses.iter().any(|c| c.course_id == course_id) {
                check.fail(
                    &field("course_id"),
                    "duplicate",
                    "a course is planned twice",
                );
            }
            courses.push(PlannedCourse {
                course_id,
                planned_start,
                planned_end,
            });
        }
        check.finish()?;

        let unit = Units::find(conn, &unit_id).map_err(|failure| match failure {
            Error::NotFound { .. } => {
                Error::invalid_field("unit_id", "unknown_unit", "no such unit")
            }
            failure => failure,
        })?;
        caller.manages.require_unit("unit_id", Some(&unit.id))?;
        let unit_changed = existing.is_none_or(|p| p.unit_id != unit.id);
        if unit_changed && (unit.merged_into_id.is_some() || unit.valid_to.is_some()) {
            return Err(Error::invalid_field(
                "unit_id",
                "unit_not_current",
                format!(
                    "{} was merged or ended; plan for the unit it became",
                    unit.name
                ),
            ));
        }
        let mut check = Checker::new();
        for (i, course) in courses.iter().enumerate() {
            // A course the caller adds must be one they can see; one the plan already names
            // stays even when it is not theirs (a ward's plan counting the province's class
            // its cadres attend), so that its organiser can still edit the rest of the plan.
            let planned_before =
                existing.is_some_and(|p| p.courses.iter().any(|c| c.course_id == course.course_id));
            // Only "no such course" (or one the caller cannot see) is the input's fault; a
            // database failure stays one.
            let known = match Courses::find(conn, &course.course_id).and_then(|_| {
                if planned_before {
                    Ok(())
                } else {
                    ensure_course_visible(conn, caller, &course.course_id, "course")
                }
            }) {
                Ok(()) => true,
                Err(Error::NotFound { .. }) => false,
                Err(failure) => return Err(failure),
            };
            if !known {
                check.fail(
                    &format!("courses[{i}].course_id"),
                    "unknown_course",
                    "no such course",
                );
            }
        }
        check.finish()?;
        let taken: i64 = training_plans::table
            .filter(training_plans::deleted_at.is_null())
            .filter(training_plans::unit_id.eq(&unit.id))
            .filter(training_plans::year.eq(year))
            .filter(training_plans::id.ne(&id))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(Error::conflict(
                "plan_exists",
                format!("{} already has a training plan for {year}", unit.name),
            ));
        }
        let now = now_ms();
        Ok(TrainingPlan {
            id,
            unit_id: unit.id,
            year,
            title,
            target_positions,
            elected_since,
            target_percent: target_percent.clamp(1, 100) as i32,
            rule,
            courses,
            rev: next_revision(conn)?,
            created_at: existing.map_or(now, |p| p.created_at),
            updated_at: now,
        })
    }

    fn check_rule(check: &mut Checker, input: Option<PlanRuleInput>) -> PlanRule {
        let Some(input) = input else {
            return PlanRule::CourseCompletion {
                min_rate: DEFAULT_MIN_RATE,
            };
        };
        let kind = check.one_of("rule.kind", &input.kind, &RULE_KINDS);
        let not_here = |check: &mut Checker, field: &str, given: bool| {
            if given {
                check.fail(
                    &format!("rule.{field}"),
                    "not_allowed",
                    format!("not part of a {kind} rule"),
                );
            }
        };
        match kind.as_str() {
            "sessions_on_topics" => {
                not_here(check, "min_rate", input.min_rate.is_some());
                let min_sessions = match input.min_sessions {
                    Some(n) if (1..=1000).contains(&n) => n as i32,
                    Some(_) => {
                        check.fail("rule.min_sessions", "out_of_range", "must be 1 to 1000");
                        1
                    }
                    None => {
                        check.fail("rule.min_sessions", "required", "how many sessions count");
                        1
                    }
                };
                let mut topics: Vec<String> = Vec::new();
                let given = input.topics.unwrap_or_default();
                if given.is_empty() {
                    check.fail("rule.topics", "required", "name at least one topic");
                }
                if given.len() > MAX_TOPICS {
                    check.fail(
                        "rule.topics",
                        "too_many",
                        format!("at most {MAX_TOPICS} topics"),
                    );
                }
                for topic in &given {
                    let topic = check.text("rule.topics", topic, MAX_NAME_CHARS);
                    if topics.iter().any(|t| text::fold(t) == text::fold(&topic)) {
                        check.fail("rule.topics", "duplicate", "a topic is listed twice");
                    } else {
                        topics.push(topic);
                    }
                }
                PlanRule::SessionsOnTopics {
                    min_sessions,
                    topics,
                }
            }
            _ => {
                not_here(check, "min_sessions", input.min_sessions.is_some());
                not_here(check, "topics", input.topics.is_some());
                let min_rate = input.min_rate.unwrap_or(i64::from(DEFAULT_MIN_RATE));
                if !(1..=100).contains(&min_rate) {
                    check.fail("rule.min_rate", "out_of_range", "must be between 1 and 100");
                }
                PlanRule::CourseCompletion {
                    min_rate: min_rate.clamp(1, 100) as i32,
                }
            }
        }
    }

    /// Writes a plan built by `build`: the row, then its courses and topics in place of any
    /// held before.
    fn write(conn: &mut DbConn, plan: &TrainingPlan, existed: bool) -> Result<()> {
        let (min_rate, min_sessions) = match &plan.rule {
            PlanRule::CourseCompletion { min_rate } => (Some(*min_rate), None),
            PlanRule::SessionsOnTopics { min_sessions, .. } => (None, Some(*min_sessions)),
        };
        let row = PlanRow {
            id: plan.id.clone(),
            unit_id: plan.unit_id.clone(),
            year: plan.year,
            title: plan.title.clone(),
            target_positions: plan.target_positions.join(","),
            target_percent: plan.target_percent,
            rule: plan.rule.kind().to_owned(),
            min_rate,
            min_sessions,
            rev: plan.rev,
            created_at: plan.created_at,
            updated_at: plan.updated_at,
            deleted_at: None,
            elected_since: plan.elected_since.clone(),
        };
        if existed {
            diesel::update(training_plans::table.find(&row.id))
                .set(&row)
                .execute(conn)?;
            diesel::delete(
                training_plan_courses::table.filter(training_plan_courses::plan_id.eq(&row.id)),
            )
            .execute(conn)?;
            diesel::delete(
                training_plan_topics::table.filter(training_plan_topics::plan_id.eq(&row.id)),
            )
            .execute(conn)?;
        } else {
            diesel::insert_into(training_plans::table)
                .values(&row)
                .execute(conn)?;
        }
        let courses: Vec<PlanCourseRow> = plan
            .courses
            .iter()
            .enumerate()
            .map(|(i, c)| PlanCourseRow {
                plan_id: plan.id.clone(),
                ordinal: i as i32,
                course_id: c.course_id.clone(),
                planned_start: c.planned_start.clone(),
                planned_end: c.planned_end.clone(),
            })
            .collect();
        // One statement per row: batch inserts are not available on the multi-backend
        // connection.
        for course in &courses {
            diesel::insert_into(training_plan_courses::table)
                .values(course)
                .execute(conn)?;
        }
        if let PlanRule::SessionsOnTopics { topics, .. } = &plan.rule {
            let topics: Vec<PlanTopicRow> = topics
                .iter()
                .enumerate()
                .map(|(i, topic)| PlanTopicRow {
                    plan_id: plan.id.clone(),
                    ordinal: i as i32,
                    topic: topic.clone(),
                    topic_key: text::fold(topic),
                })
                .collect();
            for topic in &topics {
                diesel::insert_into(training_plan_topics::table)
                    .values(topic)
                    .execute(conn)?;
            }
        }
        Ok(())
    }
}

impl Resource for TrainingPlans {
    const WHAT: &'static str = "training plan";
    /// Training plans are administered here only: no device receives them.
    const COLLECTION: Option<super::collections::Collection> = None;
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::TrainingPlan;
    type Record = TrainingPlan;
    type Input = TrainingPlanInput;
    type Filter = TrainingPlanFilter;

    /// Plans of the units the caller manages, newest year first, then by unit and id.
    fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &TrainingPlanFilter,
    ) -> Result<Paged<TrainingPlan>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let mut check = Checker::new();
        let unit_id = check.opt_id("unit_id", filter.unit_id.as_deref());
        if let Some(year) = filter.year
            && !YEARS.contains(&year)
        {
            check.fail(
                "year",
                "out_of_range",
                format!("must be between {} and {}", YEARS.start(), YEARS.end()),
            );
        }
        check.finish()?;
        let query = || {
            let mut query = Self::managed(caller);
            if let Some(unit) = &unit_id {
                query = query.filter(training_plans::unit_id.eq(unit.clone()));
            }
            if let Some(year) = filter.year {
                query = query.filter(training_plans::year.eq(year as i32));
            }
            query
        };
        let order = (
            training_plans::year.desc(),
            training_plans::unit_id.asc(),
            training_plans::id.asc(),
        );
        let rows = ordered_page!(conn, query, page, order, PlanRow);
        Ok(Paged::new(
            Self::assemble(conn, rows.items)?,
            rows.total,
            page,
        ))
    }

    /// A plan of a unit the caller manages (the plans they see), with its courses and topics.
    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<TrainingPlan> {
        let row = Self::find_row(conn, id)?;
        if !caller.manages.covers(Some(&row.unit_id)) {
            return Err(Error::NotFound { what: Self::WHAT });
        }
        Ok(Self::assemble(conn, vec![row])?.remove(0))
    }

    fn create(
        conn: &mut DbConn,
        caller: &Caller,
        input: TrainingPlanInput,
    ) -> Result<TrainingPlan> {
        if let Some(given) = input.id.as_deref().and_then(super::values::parse_id) {
            let held: i64 = training_plans::table
                .find(&given)
                .count()
                .get_result(conn)?;
            if held > 0 {
                return Err(Error::id_taken());
            }
        }
        let plan = Self::build(conn, caller, input, None)?;
        Self::write(conn, &plan, false)?;
        Ok(plan)
    }

    fn update_found(
        conn: &mut DbConn,
        caller: &Caller,
        existing: TrainingPlan,
        input: TrainingPlanInput,
    ) -> Result<TrainingPlan> {
        let plan = Self::build(conn, caller, input, Some(&existing))?;
        Self::write(conn, &plan, true)?;
        Ok(plan)
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: TrainingPlan) -> Result<()> {
        tombstone!(conn, training_plans, &existing.id, now_ms())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_match_ignoring_case_and_diacritics() {
        let keys = PlanRule::SessionsOnTopics {
            min_sessions: 1,
            topics: vec!["Không gian mạng".into(), "phần mềm".into()],
        }
        .topic_keys();
        assert!(topic_matches(
            "Bảo vệ nền tảng tư tưởng của Đảng trên KHÔNG GIAN MẠNG",
            &keys
        ));
        assert!(topic_matches("Sử dụng phan mem quan ly doan vien", &keys));
        assert!(!topic_matches("Kỹ năng cắm trại", &keys));
        assert!(
            PlanRule::CourseCompletion { min_rate: 80 }
                .topic_keys()
                .is_empty()
        );
    }
}
