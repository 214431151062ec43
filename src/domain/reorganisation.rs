//! Unit reorganisation: merges (units A and B become C from a date) and renames, with their
//! history.
//!
//! A merge ends the sources (`merged_into_id` = the target, `valid_to` = the day before the
//! effective date), moves their sub-units and their people to the target, and remembers each
//! moved person's old unit in `person_unit_history` (left on the effective date): people move
//! with their units while what they attended before stays attributed to the unit it happened
//! in. Every changed unit and person takes a new revision, so devices receive the new tree
//! through the pull feed. Renames keep the old name in `unit_events`, so a report about a past
//! day can name the unit as it was called then.
//!
//! A commune's branches (chi đoàn) are sub-units: they move to the target with their people and
//! keep their ids, so a branch secretary stays the secretary of the same branch, now under the
//! target (which must be able to hold branches: `units::placement_problem`).
//!
//! Organisers move with their unit: the organiser of a source becomes an organiser of the target
//! (their people are now the target's), and the merge's answer and audit entry name the accounts
//! moved. The sources stay in the target's subtree through `merged_into` (see
//! `Units::subtree`), so the courses they organised stay in reach. A rename changes nothing for
//! an organiser: the unit keeps its id.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::audit::{Audit, AuditAction, AuditObject, Entry};
use super::people::{People, UnitChangeReason, record_unit_change};
use super::units::{Unit, UnitInput, Units, placement_problem};
use super::users::Users;
use super::values::{Checker, MAX_NAME_CHARS, new_id, parse_id, path_id, serialize_ms};
use super::{Caller, Resource, text};
use crate::db::schema::{people, unit_events, units};
use crate::db::{DbConn, next_revision, next_revisions, now_ms};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The units that end.
    pub source_ids: Vec<String>,
    /// An existing unit that takes them in ...
    pub target_id: Option<String>,
    /// ... or a new unit created for the merge (its `valid_from` defaults to the effective
    /// date and its parent to the sources' common parent).
    pub target: Option<UnitInput>,
    /// The first day of the new arrangement.
    pub effective_date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergeOutcome {
    pub target: Unit,
    pub sources: Vec<Unit>,
    pub units_moved: usize,
    pub people_moved: usize,
    /// The organiser accounts of the sources, now organisers of the target.
    pub organisers_moved: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: String,
    /// The first day of the new name; defaults to today.
    pub effective_date: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = unit_events)]
pub struct UnitEvent {
    pub id: String,
    pub unit_id: String,
    /// `rename` or `merge`.
    pub kind: String,
    pub effective_date: String,
    pub old_name: Option<String>,
    pub new_name: Option<String>,
    pub target_unit_id: Option<String>,
    pub recorded_by: Option<String>,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
}

fn day_before(date: &str) -> Result<String> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.pred_opt())
        .ok_or_else(|| Error::invalid_field("effective_date", "invalid_date", "not a date"))?;
    Ok(day.format("%Y-%m-%d").to_string())
}

fn is_current(unit: &Unit) -> bool {
    unit.merged_into_id.is_none() && unit.valid_to.is_none()
}

fn recorded_by(caller: &Caller) -> Option<String> {
    Some(caller.user_id.clone()).filter(|id| !id.is_empty())
}

/// One reorganisation event to remember.
struct Event<'a> {
    unit_id: &'a str,
    kind: &'a str,
    effective_date: &'a str,
    old_name: Option<&'a str>,
    new_name: Option<&'a str>,
    target: Option<&'a str>,
}

fn record_event(conn: &mut DbConn, caller: &Caller, event: Event) -> Result<()> {
    diesel::insert_into(unit_events::table)
        .values((
            unit_events::id.eq(new_id()),
            unit_events::unit_id.eq(event.unit_id),
            unit_events::kind.eq(event.kind),
            unit_events::effective_date.eq(event.effective_date),
            unit_events::old_name.eq(event.old_name),
            unit_events::new_name.eq(event.new_name),
            unit_events::target_unit_id.eq(event.target),
            unit_events::recorded_by.eq(recorded_by(caller)),
            unit_events::created_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Merges units into one. Runs in the caller's transaction: all of it happens, or none.
pub fn merge(conn: &mut DbConn, caller: &Caller, request: MergeRequest) -> Result<MergeOutcome> {
    caller.manages.require_everything()?;
    let mut check = Checker::new();
    let effective_date = check.date("effective_date", &request.effective_date);
    let mut source_ids = Vec::new();
    for raw in &request.source_ids {
        let id = check.id("source_ids", raw);
        if source_ids.contains(&id) {
            check.fail("source_ids", "duplicate", "a unit is listed twice");
        }
        source_ids.push(id);
    }
    if source_ids.is_empty() {
        check.fail("source_ids", "required", "name at least one unit to merge");
    }
    let target_id = check.opt_id("target_id", request.target_id.as_deref());
    let new_target = match (&target_id, request.target) {
        (Some(_), None) => None,
        (None, Some(input)) => Some(input),
        _ => {
            check.fail(
                "target_id",
                "one_target",
                "give either target_id (an existing unit) or target (a new unit)",
            );
            None
        }
    };
    check.finish()?;
    let until = day_before(&effective_date)?;

    let mut sources = Vec::new();
    for id in &source_ids {
        let unit = Units::find(conn, id).map_err(|_| {
            Error::invalid_field("source_ids", "unknown_unit", format!("no unit {id}"))
        })?;
        if !is_current(&unit) {
            return Err(Error::conflict(
                "unit_not_current",
                format!("{} was already merged or ended", unit.name),
            ));
        }
        sources.push(unit);
    }
    let target = match (target_id, new_target) {
        (Some(id), _) => {
            let unit = Units::find(conn, &id)
                .map_err(|_| Error::invalid_field("target_id", "unknown_unit", "no such unit"))?;
            if source_ids.contains(&unit.id) {
                return Err(Error::invalid_field(
                    "target_id",
                    "target_is_source",
                    "a unit cannot be merged into itself",
                ));
            }
            if !is_current(&unit) {
                return Err(Error::conflict(
                    "unit_not_current",
                    format!("{} was already merged or ended", unit.name),
                ));
            }
            unit
        }
        (None, Some(mut input)) => {
            if input.valid_from.is_none() {
                input.valid_from = Some(effective_date.clone());
            }
            if input.parent_id.is_none() {
                let parents: Vec<_> = sources.iter().map(|s| s.parent_id.clone()).collect();
                if parents.windows(2).all(|w| w[0] == w[1]) {
                    input.parent_id = parents.into_iter().next().flatten();
                }
            }
            Units::create(conn, caller, input)?
        }
        (None, None) => {
            return Err(Error::invalid_field(
                "target_id",
                "one_target",
                "give either target_id (an existing unit) or target (a new unit)",
            ));
        }
    };
    // The target must not sit under a source: the source's sub-units move to the target.
    let mut ancestor = target.parent_id.clone();
    for _ in 0..64 {
        let Some(id) = ancestor else { break };
        if source_ids.contains(&id) {
            return Err(Error::invalid_field(
                "target_id",
                "cycle",
                "the target lies under one of the units merged into it",
            ));
        }
        ancestor = Units::find(conn, &id)?.parent_id;
    }
    // The sources' sub-units (a commune's branches) move under the target: it must be a level
    // that can hold them.
    let moving_kinds: Vec<String> = units::table
        .filter(units::parent_id.eq_any(&source_ids))
        .filter(units::deleted_at.is_null())
        .select(units::kind)
        .load(conn)?;
    if let Some((code, message)) = moving_kinds
        .iter()
        .find_map(|kind| placement_problem(kind, Some(&target.kind)))
    {
        return Err(Error::invalid_field("target_id", code, message));
    }

    let now = now_ms();
    let mut ended = Vec::new();
    for source in sources {
        record_event(
            conn,
            caller,
            Event {
                unit_id: &source.id,
                kind: "merge",
                effective_date: &effective_date,
                old_name: Some(&source.name),
                new_name: Some(&target.name),
                target: Some(&target.id),
            },
        )?;
        let unit = Unit {
            merged_into_id: Some(target.id.clone()),
            valid_to: Some(until.clone()),
            rev: next_revision(conn)?,
            updated_at: now,
            ..source
        };
        diesel::update(units::table.find(&unit.id))
            .set(&unit)
            .execute(conn)?;
        ended.push(unit);
    }
    let children: Vec<String> = units::table
        .filter(units::parent_id.eq_any(&source_ids))
        .filter(units::deleted_at.is_null())
        .select(units::id)
        .load(conn)?;
    for (child, rev) in children.iter().zip(next_revisions(conn, children.len())?) {
        diesel::update(units::table.find(child))
            .set((
                units::parent_id.eq(&target.id),
                units::rev.eq(rev),
                units::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let members = People::members_of_units(conn, &source_ids)?;
    for (member, rev) in members.iter().zip(next_revisions(conn, members.len())?) {
        let person = &member.id;
        if let Some(old) = &member.unit_id {
            record_unit_change(
                conn,
                person,
                old,
                &effective_date,
                UnitChangeReason::Merge,
                now,
            )?;
        }
        diesel::update(people::table.find(person))
            .set((
                people::unit_id.eq(&target.id),
                people::rev.eq(rev),
                people::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let mut organisers_moved = Vec::new();
    for source in &source_ids {
        organisers_moved.extend(Users::move_organisers(conn, source, &target.id)?);
    }
    Audit::record_by(
        conn,
        caller,
        Entry::new(AuditAction::UnitsMerged)
            .about(AuditObject::Unit, &target.id)
            .detail("source_ids", source_ids.clone())
            .detail("effective_date", effective_date.clone())
            .detail("target_code", target.code.clone())
            .detail("target_name", target.name.clone())
            .detail("units_moved", children.len())
            .detail("people_moved", members.len())
            .detail("organisers_moved", organisers_moved.clone()),
    )?;
    Ok(MergeOutcome {
        target,
        sources: ended,
        units_moved: children.len(),
        people_moved: members.len(),
        organisers_moved,
    })
}

/// Renames a unit from a date, keeping the old name in its history.
pub fn rename(
    conn: &mut DbConn,
    caller: &Caller,
    id: &str,
    request: RenameRequest,
) -> Result<Unit> {
    caller.manages.require_everything()?;
    let unit = Units::find(conn, &path_id(id, "unit")?)?;
    let mut check = Checker::new();
    let name = check.text("name", &request.name, MAX_NAME_CHARS);
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let effective_date = check.date(
        "effective_date",
        request.effective_date.as_deref().unwrap_or(&today),
    );
    check.finish()?;
    if !is_current(&unit) {
        return Err(Error::conflict(
            "unit_not_current",
            format!(
                "{} was merged or ended; rename the unit it became",
                unit.name
            ),
        ));
    }
    if name == unit.name {
        return Ok(unit);
    }
    record_event(
        conn,
        caller,
        Event {
            unit_id: &unit.id,
            kind: "rename",
            effective_date: &effective_date,
            old_name: Some(&unit.name),
            new_name: Some(&name),
            target: None,
        },
    )?;
    let unit = Unit {
        name_key: text::fold(&name),
        name,
        rev: next_revision(conn)?,
        updated_at: now_ms(),
        ..unit
    };
    diesel::update(units::table.find(&unit.id))
        .set(&unit)
        .execute(conn)?;
    Audit::record_by(
        conn,
        caller,
        Entry::new(AuditAction::UnitRenamed)
            .about(AuditObject::Unit, &unit.id)
            .detail("name", unit.name.clone())
            .detail("effective_date", effective_date),
    )?;
    Ok(unit)
}

/// Records a rename made through a plain replace of the unit (effective today).
pub fn record_plain_rename(
    conn: &mut DbConn,
    caller: &Caller,
    old: &Unit,
    new: &Unit,
) -> Result<()> {
    if old.name == new.name {
        return Ok(());
    }
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    record_event(
        conn,
        caller,
        Event {
            unit_id: &old.id,
            kind: "rename",
            effective_date: &today,
            old_name: Some(&old.name),
            new_name: Some(&new.name),
            target: None,
        },
    )
}

/// A unit's reorganisation history: its renames, its merge into another unit and the units
/// merged into it, oldest first.
pub fn history(conn: &mut DbConn, _caller: &Caller, id: &str) -> Result<Vec<UnitEvent>> {
    let unit = Units::find(conn, &path_id(id, "unit")?)?;
    Ok(unit_events::table
        .filter(
            unit_events::unit_id
                .eq(&unit.id)
                .or(unit_events::target_unit_id.eq(&unit.id)),
        )
        .order((
            unit_events::effective_date.asc(),
            unit_events::created_at.asc(),
        ))
        .select(UnitEvent::as_select())
        .load(conn)?)
}

/// A unit's name on a day: the old name of its first rename after that day, else its name.
pub fn names_on(events: &[UnitEvent], unit: &str, current: &str, day: &str) -> String {
    events
        .iter()
        .filter(|e| e.kind == "rename" && e.unit_id == unit && e.effective_date.as_str() > day)
        .min_by(|a, b| a.effective_date.cmp(&b.effective_date))
        .and_then(|e| e.old_name.clone())
        .unwrap_or_else(|| current.to_owned())
}

/// Finds a unit by id or code (for the command line).
pub fn find_unit(conn: &mut DbConn, id_or_code: &str) -> Result<Unit> {
    match parse_id(id_or_code) {
        Some(id) => Units::find(conn, &id),
        None => Units::find_by_code(conn, id_or_code)?.ok_or(Error::NotFound { what: "unit" }),
    }
}

// Reads for reports

/// Every rename and merge recorded, for a report that names units as they were called on a day
/// and lists the reorganisations of a year.
pub fn all_events(conn: &mut DbConn) -> Result<Vec<UnitEvent>> {
    Ok(unit_events::table
        .select(UnitEvent::as_select())
        .load(conn)?)
}
