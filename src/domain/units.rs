//! Administrative units: a tree (province → commune/ward/town/special zone → branch; the
//! pre-2025 district level is still allowed for history) with official codes, validity dates and
//! `merged_into` for reorganisations.
//!
//! A branch (chi đoàn) is the Youth Union's grassroots unit: it sits directly under a commune,
//! ward, town or special zone (the level that trains its secretaries) and has no units under
//! it. A merge moves the sources' sub-units to the target, so the branches of a merged commune
//! move with it, keeping their people; the target must then be a level that can hold branches.

use std::collections::{BTreeSet, HashMap, HashSet};

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::courses::Courses;
use super::people::People;
use super::users::Users;
use super::values::{Checker, MAX_NAME_CHARS, new_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, SortRequest, check_revision, find_live, inserted,
    replaced, sorted_page, text, tombstone,
};
use crate::db::schema::units;
use crate::db::{Backend, DbConn, next_revision, now_ms};
use crate::error::{Error, Result};

pub const KINDS: [&str; 7] = [
    "province",
    "district",
    "commune",
    "ward",
    "town",
    "special_zone",
    "branch",
];
/// The kind of a Youth Union branch (chi đoàn).
pub const BRANCH: &str = "branch";
/// The kinds of unit a branch may sit under: the grassroots level that trains its secretaries.
pub const BRANCH_PARENT_KINDS: [&str; 4] = ["commune", "ward", "town", "special_zone"];

/// Why a unit of `kind` cannot sit under a unit of `parent_kind` (None: it can), as a stable
/// code and a message.
pub fn placement_problem(
    kind: &str,
    parent_kind: Option<&str>,
) -> Option<(&'static str, &'static str)> {
    match parent_kind {
        Some(BRANCH) => Some((
            "branch_has_no_units",
            "a branch (chi đoàn) has no units under it",
        )),
        Some(parent) if kind == BRANCH && !BRANCH_PARENT_KINDS.contains(&parent) => Some((
            "branch_parent",
            "a branch sits under a commune, ward, town or special zone",
        )),
        None if kind == BRANCH => Some((
            "branch_parent",
            "a branch sits under a commune, ward, town or special zone",
        )),
        _ => None,
    }
}
const SORTS: [&str; 5] = ["name", "code", "kind", "created_at", "updated_at"];

impl Unit {
    /// Whether the unit was in force from `from` to `to` (ISO dates, inclusive): a course held
    /// before a merge keeps the unit that organised it, and one held after goes to the unit it
    /// became.
    pub fn in_force_during(&self, from: &str, to: &str) -> bool {
        self.valid_from.as_deref().is_none_or(|since| since <= from)
            && self.valid_to.as_deref().is_none_or(|until| to <= until)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = units, treat_none_as_null = true)]
pub struct Unit {
    pub id: String,
    pub code: String,
    pub name: String,
    #[serde(skip)]
    pub name_key: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub merged_into_id: Option<String>,
    pub rev: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub updated_at: i64,
    #[serde(skip)]
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    pub id: Option<String>,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub merged_into_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFilter {
    /// Matches name or code, ignoring case and diacritics.
    pub q: Option<String>,
    pub kind: Option<String>,
    pub parent_id: Option<String>,
    /// Only units in force today (not merged away, no end date).
    pub current: Option<bool>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A unit as stored, for resolving the units a roster names (`imports::OnRecord`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = units)]
pub struct UnitOnRecord {
    pub id: String,
    pub code: String,
    /// The folded name (`text::fold`).
    pub name_key: String,
    pub merged_into_id: Option<String>,
    pub kind: String,
}

/// A unit and its parent: one edge of the unit tree.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = units)]
struct UnitLink {
    id: String,
    parent_id: Option<String>,
}

/// A unit, its parent and the unit it was merged into: the tree and its merge history.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = units)]
struct UnitLineage {
    id: String,
    parent_id: Option<String>,
    merged_into_id: Option<String>,
}

pub struct Units;

/// What leads from a unit to the next up a chain: its parent, or the unit it was merged into.
#[derive(Debug, Clone, Copy)]
enum Link {
    Parent,
    MergedInto,
}

/// Longer chains than this are taken for loops.
const MAX_CHAIN: usize = 64;

impl Units {
    pub fn find(conn: &mut DbConn, id: &str) -> Result<Unit> {
        find_live!(conn, units, Unit, id, Self::WHAT)
    }

    pub fn find_by_code(conn: &mut DbConn, code: &str) -> Result<Option<Unit>> {
        Ok(units::table
            .filter(units::code.eq(code))
            .filter(units::deleted_at.is_null())
            .select(Unit::as_select())
            .first(conn)
            .optional()?)
    }

    /// The live units among `ids` (`None`: every live unit), as a roster import resolves the
    /// units its rows name.
    pub fn on_record(conn: &mut DbConn, ids: Option<&[String]>) -> Result<Vec<UnitOnRecord>> {
        let mut live = units::table
            .filter(units::deleted_at.is_null())
            .into_boxed::<Backend>();
        if let Some(ids) = ids {
            live = live.filter(units::id.eq_any(ids));
        }
        Ok(live.select(UnitOnRecord::as_select()).load(conn)?)
    }

    fn exists(conn: &mut DbConn, id: &str) -> Result<bool> {
        let count: i64 = units::table
            .find(id)
            .filter(units::deleted_at.is_null())
            .count()
            .get_result(conn)?;
        Ok(count > 0)
    }

    /// Checks input and builds the stored row. `existing` is the row being replaced, if any.
    fn build(conn: &mut DbConn, input: UnitInput, existing: Option<&Unit>) -> Result<Unit> {
        let mut check = Checker::new();
        let code = check.text("code", &input.code, 20);
        if !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            check.fail(
                "code",
                "invalid_code",
                "may contain only letters, digits, - _ .",
            );
        }
        let name = check.text("name", &input.name, MAX_NAME_CHARS);
        let kind = check.one_of("kind", &input.kind, &KINDS);
        let parent_id = check.opt_id("parent_id", input.parent_id.as_deref());
        let merged_into_id = check.opt_id("merged_into_id", input.merged_into_id.as_deref());
        let valid_from = check.opt_date("valid_from", input.valid_from.as_deref());
        let valid_to = check.opt_date("valid_to", input.valid_to.as_deref());
        if let (Some(from), Some(to)) = (&valid_from, &valid_to) {
            check.ordered("valid_to", from, to, "must not be before valid_from");
        }
        let id = match (existing, input.id.as_deref()) {
            (Some(row), Some(given))
                if super::values::parse_id(given).as_deref() != Some(&row.id) =>
            {
                check.fail("id", "id_mismatch", "does not match the id in the path");
                row.id.clone()
            }
            (Some(row), _) => row.id.clone(),
            (None, Some(given)) => check.id("id", given),
            (None, None) => new_id(),
        };
        check.finish()?;

        let mut check = Checker::new();
        let parent = match &parent_id {
            Some(parent) => units::table
                .find(parent)
                .filter(units::deleted_at.is_null())
                .select(units::kind)
                .first::<String>(conn)
                .optional()?
                .map(|kind| (parent, kind)),
            None => None,
        };
        match (&parent_id, &parent) {
            (Some(_), None) => check.fail("parent_id", "unknown_unit", "no such unit"),
            (Some(parent), Some(_)) if Self::chain_reaches(conn, parent, &id, Link::Parent)? => {
                check.fail("parent_id", "cycle", "a unit cannot be placed under itself");
            }
            _ => {
                if let Some((code, message)) =
                    placement_problem(&kind, parent.as_ref().map(|(_, k)| k.as_str()))
                {
                    check.fail("parent_id", code, message);
                }
            }
        }
        if existing.is_some() {
            let below: Vec<String> = units::table
                .filter(units::parent_id.eq(&id))
                .filter(units::deleted_at.is_null())
                .select(units::kind)
                .load(conn)?;
            if let Some((code, message)) = below
                .iter()
                .find_map(|child| placement_problem(child, Some(&kind)))
            {
                check.fail("kind", code, message);
            }
        }
        if let Some(target) = &merged_into_id {
            if !Self::exists(conn, target)? {
                check.fail("merged_into_id", "unknown_unit", "no such unit");
            } else if Self::chain_reaches(conn, target, &id, Link::MergedInto)? {
                check.fail(
                    "merged_into_id",
                    "cycle",
                    "units cannot be merged into each other",
                );
            }
        }
        check.finish()?;

        if let Some(other) = Self::find_by_code(conn, &code)?
            && other.id != id
        {
            return Err(Error::conflict(
                "duplicate_code",
                format!("unit code {code} is already used"),
            ));
        }
        let now = now_ms();
        Ok(Unit {
            name_key: text::fold(&name),
            id,
            code,
            name,
            kind,
            parent_id,
            valid_from,
            valid_to,
            merged_into_id,
            rev: next_revision(conn)?,
            created_at: existing.map_or(now, |row| row.created_at),
            updated_at: now,
            deleted_at: None,
        })
    }

    /// Follows `link` from `start`: true when the chain reaches `unit_id` (making `start` the
    /// parent of `unit_id`, or merging `unit_id` into `start`, would close a loop), or runs
    /// longer than any real tree (a loop already stored).
    fn chain_reaches(conn: &mut DbConn, start: &str, unit_id: &str, link: Link) -> Result<bool> {
        let mut current = Some(start.to_owned());
        for _ in 0..=MAX_CHAIN {
            let Some(id) = current else { return Ok(false) };
            if id == unit_id {
                return Ok(true);
            }
            let unit = units::table.find(&id);
            current = match link {
                Link::Parent => unit.select(units::parent_id).first::<Option<String>>(conn),
                Link::MergedInto => unit.select(units::merged_into_id).first(conn),
            }
            .optional()?
            .flatten();
        }
        Ok(true)
    }

    /// Each root with every unit below it, current or merged away (people of a merged unit have
    /// moved, but history keeps the unit), from one read of the tree: it is small (a province's
    /// units), so it is read whole and walked in memory.
    pub fn subtrees(
        conn: &mut DbConn,
        roots: &[String],
    ) -> Result<HashMap<String, HashSet<String>>> {
        if roots.is_empty() {
            return Ok(HashMap::new());
        }
        let links = units::table
            .select(UnitLink::as_select())
            .load::<UnitLink>(conn)?;
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for link in &links {
            if let Some(parent) = &link.parent_id {
                children.entry(parent).or_default().push(&link.id);
            }
        }
        let walk = |root: &str| {
            let mut found = HashSet::from([root.to_owned()]);
            let mut next = vec![root];
            while let Some(parent) = next.pop() {
                for child in children.get(parent).into_iter().flatten() {
                    if found.insert((*child).to_owned()) {
                        next.push(child);
                    }
                }
            }
            found
        };
        Ok(roots
            .iter()
            .map(|root| (root.clone(), walk(root)))
            .collect())
    }

    /// An organiser's subtree: `root`, every unit below it and every unit merged into one of
    /// those (a merged unit's people and courses are now the absorbing unit's), found again in
    /// whatever lies below or was merged into each unit found. Read whole, like `subtrees`.
    pub fn subtree(conn: &mut DbConn, root: &str) -> Result<BTreeSet<String>> {
        let lineage = units::table
            .select(UnitLineage::as_select())
            .load::<UnitLineage>(conn)?;
        let mut below: HashMap<&str, Vec<&str>> = HashMap::new();
        for unit in &lineage {
            for above in [&unit.parent_id, &unit.merged_into_id]
                .into_iter()
                .flatten()
            {
                below.entry(above).or_default().push(&unit.id);
            }
        }
        let mut found = BTreeSet::from([root.to_owned()]);
        let mut next = vec![root];
        while let Some(unit) = next.pop() {
            for child in below.get(unit).into_iter().flatten() {
                if found.insert((*child).to_owned()) {
                    next.push(child);
                }
            }
        }
        Ok(found)
    }
}

impl Resource for Units {
    const WHAT: &'static str = "unit";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::Units);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Unit;
    type Record = Unit;
    type Input = UnitInput;
    type Filter = UnitFilter;

    fn list(conn: &mut DbConn, _caller: &Caller, filter: &UnitFilter) -> Result<Paged<Unit>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "name", &SORTS)?;
        let mut filter_check = Checker::new();
        let kind = filter_check.opt_one_of("kind", filter.kind.as_deref(), &KINDS);
        let parent_id = filter_check.opt_id("parent_id", filter.parent_id.as_deref());
        filter_check.finish()?;
        let query = || {
            let mut query = units::table
                .filter(units::deleted_at.is_null())
                .into_boxed();
            if let Some(q) = &filter.q {
                let pattern = text::contains_pattern(q);
                query = query.filter(
                    units::name_key
                        .like(pattern.clone())
                        .escape('\\')
                        .or(text::lower(units::code).like(pattern).escape('\\')),
                );
            }
            if let Some(kind) = &kind {
                query = query.filter(units::kind.eq(kind.clone()));
            }
            if let Some(parent) = &parent_id {
                query = query.filter(units::parent_id.eq(parent.clone()));
            }
            if filter.current == Some(true) {
                query = query
                    .filter(units::merged_into_id.is_null())
                    .filter(units::valid_to.is_null());
            }
            query
        };
        Ok(sorted_page!(conn, query, page, sort, units::id, Unit, {
            "name" => [units::name_key, units::name],
            "code" => [units::code],
            "kind" => [units::kind],
            "created_at" => [units::created_at],
            "updated_at" => [units::updated_at],
        }))
    }

    /// Every signed-in caller sees every unit.
    fn find_visible(conn: &mut DbConn, _caller: &Caller, id: &str) -> Result<Unit> {
        Self::find(conn, id)
    }

    fn create(conn: &mut DbConn, caller: &Caller, input: UnitInput) -> Result<Unit> {
        caller.manages.require_everything()?;
        inserted!(conn, units, Self::build(conn, input, None)?)
    }

    /// Only administrators change units: anyone else is refused before the unit is looked up.
    fn find_to_change(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
    ) -> Result<Unit> {
        caller.manages.require_everything()?;
        let existing = Self::get(conn, caller, id)?;
        check_revision(Self::WHAT, existing.rev, expected_rev)?;
        Ok(existing)
    }

    fn update_found(
        conn: &mut DbConn,
        caller: &Caller,
        existing: Unit,
        input: UnitInput,
    ) -> Result<Unit> {
        let row = Self::build(conn, input, Some(&existing))?;
        super::reorganisation::record_plain_rename(conn, caller, &existing, &row)?;
        replaced!(conn, units, row)
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: Unit) -> Result<()> {
        let children: i64 = units::table
            .filter(
                units::parent_id
                    .eq(&existing.id)
                    .or(units::merged_into_id.eq(&existing.id)),
            )
            .filter(units::deleted_at.is_null())
            .count()
            .get_result(conn)?;
        let members = People::count_in_unit(conn, &existing.id)?;
        let organised = Courses::count_organised_by(conn, &existing.id)?;
        let organisers = Users::count_organisers_of(conn, &existing.id)?;
        if children + members + organised + organisers > 0 {
            return Err(Error::conflict(
                "unit_in_use",
                format!(
                    "the unit still has {children} units and {members} people under it, \
                     organises {organised} courses and has {organisers} organisers"
                ),
            ));
        }
        let now = now_ms();
        tombstone!(conn, units, &existing.id, now)?;
        Ok(())
    }
}

// Reads for reports

/// A unit as the reports place it: its name and kind, where it sits and what became of it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = units)]
pub struct UnitNode {
    pub id: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub merged_into_id: Option<String>,
    pub valid_to: Option<String>,
}

impl Units {
    /// Every live unit, in force or merged away: the tree is small (one province's units), so a
    /// report reads it whole and walks it in memory.
    pub fn nodes(conn: &mut DbConn) -> Result<Vec<UnitNode>> {
        Ok(units::table
            .filter(units::deleted_at.is_null())
            .select(UnitNode::as_select())
            .load(conn)?)
    }
}
