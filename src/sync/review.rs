//! What administrators review: quarantined mutations (refused, never dropped) and the conflict
//! log (every value that lost a merge between two devices). An organiser reviews those of the
//! courses of their subtree; an item naming no course is the province's (admins only); others
//! are not found.

use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::{Deserialize, Serialize, Serializer};

use super::clock::ServerClock;
use super::push::{self, Mutation, MutationResult};
use super::records::Collection;
use crate::db::schema::{sync_conflicts, sync_quarantine};
use crate::db::{Backend, DbConn, now_ms};
use crate::domain::access::visible_courses;
use crate::domain::audit::{Audit, AuditAction, AuditObject, Entry};
use crate::domain::values::{Checker, serialize_ms, serialize_opt_ms};
use crate::domain::{Caller, PageRequest, Paged, ordered_page};
use crate::error::{Error, Result};

pub const QUARANTINE_STATUSES: [&str; 3] = ["open", "reapplied", "dismissed"];

/// Stored JSON text, shown as JSON.
fn serialize_json_text<S: Serializer>(text: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.to_owned()));
    value.serialize(s)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sync_quarantine)]
pub struct QuarantinedMutation {
    pub id: String,
    pub mutation_id: String,
    pub device_id: String,
    pub user_id: String,
    pub collection: String,
    pub record_id: String,
    pub course_id: Option<String>,
    #[serde(serialize_with = "serialize_json_text")]
    pub body: String,
    pub reason: String,
    pub message: String,
    pub status: String,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sync_conflicts)]
pub struct Conflict {
    pub id: String,
    pub collection: String,
    pub record_id: String,
    pub course_id: Option<String>,
    pub field: String,
    #[serde(serialize_with = "serialize_json_text")]
    pub winning_value: String,
    pub winning_stamp: String,
    #[serde(serialize_with = "serialize_json_text")]
    pub losing_value: String,
    pub losing_stamp: String,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFilter {
    pub status: Option<String>,
    pub course_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// What waits for an administrator: open quarantined mutations and unresolved conflicts.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    pub quarantine_open: i64,
    pub conflicts_unresolved: i64,
}

pub fn backlog(conn: &mut DbConn) -> Result<Backlog> {
    Ok(Backlog {
        quarantine_open: sync_quarantine::table
            .filter(sync_quarantine::status.eq("open"))
            .count()
            .get_result(conn)?,
        conflicts_unresolved: sync_conflicts::table
            .filter(sync_conflicts::resolved_at.is_null())
            .count()
            .get_result(conn)?,
    })
}

/// The courses whose items the caller reviews, `None` for every item (an admin); 403 for a
/// trainer or trainee.
fn reviewable_courses(conn: &mut DbConn, caller: &Caller) -> Result<Option<Vec<String>>> {
    caller.manages.require_some()?;
    visible_courses(conn, caller)
}

/// Whether an item of `course_id` is among those the caller reviews.
fn reviews(courses: &Option<Vec<String>>, course_id: Option<&String>) -> bool {
    match (courses, course_id) {
        (None, _) => true,
        (Some(ids), Some(course)) => ids.contains(course),
        (Some(_), None) => false,
    }
}

/// A review list's filter, checked, and the courses whose items the caller reviews.
struct ReviewList {
    courses: Option<Vec<String>>,
    page: PageRequest,
    status: Option<String>,
    course_id: Option<String>,
}

impl ReviewList {
    fn check(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &ReviewFilter,
        statuses: &[&str],
    ) -> Result<Self> {
        let courses = reviewable_courses(conn, caller)?;
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let mut check = Checker::new();
        let status = check.opt_one_of("status", filter.status.as_deref(), statuses);
        let course_id = check.opt_id("course_id", filter.course_id.as_deref());
        check.finish()?;
        Ok(ReviewList {
            courses,
            page,
            status,
            course_id,
        })
    }
}

pub fn list_quarantine(
    conn: &mut DbConn,
    caller: &Caller,
    filter: &ReviewFilter,
) -> Result<Paged<QuarantinedMutation>> {
    let ReviewList {
        courses,
        page,
        status,
        course_id,
    } = ReviewList::check(conn, caller, filter, &QUARANTINE_STATUSES)?;
    let query = || {
        let mut query = sync_quarantine::table.into_boxed::<Backend>();
        if let Some(ids) = &courses {
            query = query.filter(sync_quarantine::course_id.eq_any(ids.clone()));
        }
        if let Some(status) = &status {
            query = query.filter(sync_quarantine::status.eq(status.clone()));
        }
        if let Some(course) = &course_id {
            query = query.filter(sync_quarantine::course_id.eq(course.clone()));
        }
        query
    };
    let order = (sync_quarantine::created_at.asc(), sync_quarantine::id.asc());
    Ok(ordered_page!(conn, query, page, order, QuarantinedMutation))
}

/// Closes an open quarantined mutation without applying it (it stays on record).
pub fn dismiss(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<QuarantinedMutation> {
    let item = open_quarantined(conn, caller, id)?;
    let entry = Entry::new(AuditAction::QuarantineDismissed).detail("reason", item.reason.clone());
    settle(conn, caller, &item, "dismissed", entry)
}

/// Closes an open quarantined mutation with its final status (`QUARANTINE_STATUSES`), by the
/// caller, now, and puts it on the audit trail (`entry`, told which mutation and record): a
/// dismissal and a re-application settle it alike. Gives it back as stored.
fn settle(
    conn: &mut DbConn,
    caller: &Caller,
    item: &QuarantinedMutation,
    status: &str,
    entry: Entry,
) -> Result<QuarantinedMutation> {
    diesel::update(sync_quarantine::table.find(&item.id))
        .set((
            sync_quarantine::status.eq(status),
            sync_quarantine::resolved_at.eq(now_ms()),
            sync_quarantine::resolved_by.eq(&caller.user_id),
        ))
        .execute(conn)?;
    let entry = entry
        .about(AuditObject::QuarantinedMutation, &item.id)
        .detail("collection", item.collection.clone())
        .detail("record_id", item.record_id.clone());
    Audit::record_by(conn, caller, entry)?;
    find_quarantined(conn, &item.id)
}

pub fn list_conflicts(
    conn: &mut DbConn,
    caller: &Caller,
    filter: &ReviewFilter,
) -> Result<Paged<Conflict>> {
    let ReviewList {
        courses,
        page,
        status,
        course_id,
    } = ReviewList::check(conn, caller, filter, &["open", "resolved"])?;
    let query = || {
        let mut query = sync_conflicts::table.into_boxed::<Backend>();
        if let Some(ids) = &courses {
            query = query.filter(sync_conflicts::course_id.eq_any(ids.clone()));
        }
        match status.as_deref() {
            Some("open") => query = query.filter(sync_conflicts::resolved_at.is_null()),
            Some(_) => query = query.filter(sync_conflicts::resolved_at.is_not_null()),
            None => {}
        }
        if let Some(course) = &course_id {
            query = query.filter(sync_conflicts::course_id.eq(course.clone()));
        }
        query
    };
    let order = (sync_conflicts::created_at.asc(), sync_conflicts::id.asc());
    Ok(ordered_page!(conn, query, page, order, Conflict))
}

/// The administrator's correction of a quarantined mutation: replacement fields (optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reapply {
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A quarantined mutation the caller reviews, still open (a dismissal or re-application
/// settles it).
fn open_quarantined(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<QuarantinedMutation> {
    let courses = reviewable_courses(conn, caller)?;
    let item = find_quarantined(conn, id)?;
    if !reviews(&courses, item.course_id.as_ref()) {
        return Err(Error::NotFound {
            what: "quarantined mutation",
        });
    }
    if item.status != "open" {
        return Err(Error::conflict(
            "already_resolved",
            format!("the mutation is already {}", item.status),
        ));
    }
    Ok(item)
}

fn find_quarantined(conn: &mut DbConn, id: &str) -> Result<QuarantinedMutation> {
    sync_quarantine::table
        .find(id)
        .select(QuarantinedMutation::as_select())
        .get_result(conn)
        .optional()?
        .ok_or(Error::NotFound {
            what: "quarantined mutation",
        })
}

/// Applies an open quarantined mutation again (with corrected fields if given) and marks it
/// re-applied. A refusal leaves it open and answers 409 with the reason.
pub fn reapply(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    id: &str,
    correction: Reapply,
) -> Result<(QuarantinedMutation, MutationResult)> {
    let item = open_quarantined(conn, caller, id)?;
    let mut mutation: Mutation = serde_json::from_str(&item.body).map_err(|e| {
        Error::conflict(
            "malformed_mutation",
            format!("the stored mutation cannot be applied: {e}"),
        )
    })?;
    let has_correction = correction.fields.is_some();
    if let Some(fields) = correction.fields {
        mutation.fields = fields;
    }
    // Applied for the device that sent it, with the reviewer's reach: an admin's, or an
    // organiser's subtree (a correction cannot carry the record outside it).
    let on_behalf_of = Caller {
        user_id: item.user_id.clone(),
        device_id: item.device_id.clone(),
        role: caller.role,
        person_id: None,
        address: None,
        unit_id: caller.unit_id.clone(),
        manages: caller.manages.clone(),
    };
    let corrected = mutation.fields.keys().cloned().collect::<Vec<_>>();
    let result = push::reapply(conn, &on_behalf_of, clock, &item.mutation_id, &mutation)?;
    let mut entry = Entry::new(AuditAction::QuarantineReapplied);
    if has_correction {
        entry = entry.detail("corrected_fields", corrected);
    }
    Ok((settle(conn, caller, &item, "reapplied", entry)?, result))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// The value the field should have (either side's, or another).
    pub value: serde_json::Value,
}

/// Resolves a conflict by choosing the field's value; the choice is written to the record with
/// a fresh server stamp and reaches devices through the feed.
pub fn resolve_conflict(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    id: &str,
    resolution: Resolution,
) -> Result<Conflict> {
    let courses = reviewable_courses(conn, caller)?;
    let conflict = sync_conflicts::table
        .find(id)
        .select(Conflict::as_select())
        .get_result(conn)
        .optional()?
        .filter(|conflict| reviews(&courses, conflict.course_id.as_ref()))
        .ok_or(Error::NotFound { what: "conflict" })?;
    if conflict.resolved_at.is_some() {
        return Err(Error::conflict(
            "already_resolved",
            "the conflict is already resolved",
        ));
    }
    let collection = Collection::parse(&conflict.collection).ok_or_else(|| {
        Error::Internal(format!(
            "conflict on unknown collection {}",
            conflict.collection
        ))
    })?;
    let chosen = resolution.value.clone();
    push::apply_server_choice(
        conn,
        caller,
        clock,
        collection,
        &conflict.record_id,
        &conflict.field,
        resolution.value,
    )?;
    diesel::update(sync_conflicts::table.find(id))
        .set((
            sync_conflicts::resolved_at.eq(now_ms()),
            sync_conflicts::resolved_by.eq(&caller.user_id),
        ))
        .execute(conn)?;
    Audit::record_by(
        conn,
        caller,
        Entry::new(AuditAction::ConflictResolved)
            .about(AuditObject::Conflict, id)
            .detail("collection", conflict.collection.clone())
            .detail("record_id", conflict.record_id.clone())
            .detail("field", conflict.field.clone())
            .detail("value", chosen),
    )?;
    Ok(sync_conflicts::table
        .find(id)
        .select(Conflict::as_select())
        .get_result(conn)?)
}

// Reads for reports

/// How many open items name a course (`None`: the items naming no course).
#[derive(Debug, Clone, Queryable)]
pub struct OpenItems {
    pub course_id: Option<String>,
    pub count: i64,
}

/// The unresolved conflicts of each of the courses.
pub fn unresolved_conflicts_of_courses(
    conn: &mut DbConn,
    course_ids: &[String],
) -> Result<Vec<OpenItems>> {
    Ok(sync_conflicts::table
        .filter(sync_conflicts::course_id.eq_any(course_ids))
        .filter(sync_conflicts::resolved_at.is_null())
        .group_by(sync_conflicts::course_id)
        .select((sync_conflicts::course_id, count_star()))
        .load(conn)?)
}

/// The open quarantined mutations of a user's devices, per course they name.
pub fn open_quarantine_of_user(conn: &mut DbConn, user_id: &str) -> Result<Vec<OpenItems>> {
    Ok(sync_quarantine::table
        .filter(sync_quarantine::user_id.eq(user_id))
        .filter(sync_quarantine::status.eq("open"))
        .group_by(sync_quarantine::course_id)
        .select((sync_quarantine::course_id, count_star()))
        .load(conn)?)
}
