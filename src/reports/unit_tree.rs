//! The unit tree as the reports read it: names as they were on a day, merges followed to the
//! unit in force today, ancestors for roll-ups, the tree laid out as rows, and the tally of
//! trained people that the coverage and plan reports count per unit.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::percent;
use super::render::Value;

use crate::db::DbConn;
use crate::domain::reorganisation::{UnitEvent, all_events, names_on};
use crate::domain::text;
use crate::domain::units::{UnitNode, Units};
use crate::error::Result;

/// Units as the reports need them.
pub(super) struct UnitTree {
    pub(super) units: HashMap<String, UnitNode>,
    pub(super) events: Vec<UnitEvent>,
}

impl UnitTree {
    pub(super) fn load(conn: &mut DbConn) -> Result<UnitTree> {
        let nodes = Units::nodes(conn)?;
        let events = all_events(conn)?;
        Ok(UnitTree {
            units: nodes.into_iter().map(|u| (u.id.clone(), u)).collect(),
            events,
        })
    }

    /// The unit in force today that `id` became (itself when it was not merged).
    pub(super) fn current(&self, id: &str) -> String {
        let mut id = id.to_owned();
        for _ in 0..64 {
            match self.units.get(&id).and_then(|u| u.merged_into_id.clone()) {
                Some(next) => id = next,
                None => break,
            }
        }
        id
    }

    pub(super) fn name(&self, id: &str) -> String {
        self.units
            .get(id)
            .map(|u| u.name.clone())
            .unwrap_or_default()
    }

    /// The unit's name as it was on `day`.
    pub(super) fn name_on(&self, id: &str, day: &str) -> String {
        names_on(&self.events, id, &self.name(id), day)
    }

    pub(super) fn is_current(&self, id: &str) -> bool {
        self.units
            .get(id)
            .is_some_and(|u| u.merged_into_id.is_none() && u.valid_to.is_none())
    }

    /// `id` and its ancestors, nearest first.
    pub(super) fn ancestors(&self, id: &str) -> Vec<String> {
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
    /// Adds `tally`, counted in `unit`, to the unit and to each of its ancestors, up to the
    /// first one outside `within`.
    pub(super) fn roll_up(
        &self,
        rolled: &mut HashMap<String, Tally>,
        unit: &str,
        tally: Tally,
        within: impl Fn(&str) -> bool,
    ) {
        for ancestor in self.ancestors(unit) {
            if !within(&ancestor) {
                break;
            }
            rolled.entry(ancestor).or_default().add(tally);
        }
    }

    /// The `shown` units as rows, depth first: from `root` (when shown), or else from every
    /// unit whose parent is not in force, each followed by its sub-units among `shown`,
    /// siblings by name.
    pub(super) fn depth_first<'a>(
        &'a self,
        shown: impl IntoIterator<Item = &'a String>,
        root: Option<&str>,
    ) -> Vec<UnitPlace> {
        let mut starts = Vec::new();
        let mut children: BTreeMap<Option<&str>, Vec<&UnitNode>> = BTreeMap::new();
        for unit in shown.into_iter().filter_map(|id| self.units.get(id)) {
            if root == Some(unit.id.as_str()) {
                starts.push(unit);
            } else {
                let parent = unit.parent_id.as_deref().filter(|p| self.is_current(p));
                children.entry(parent).or_default().push(unit);
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|u| (text::fold(&u.name), u.id.clone()));
        }
        if root.is_none() {
            starts = children.remove(&None).unwrap_or_default();
        }
        let mut rows = Vec::new();
        let mut stack: Vec<(&UnitNode, usize)> = starts.into_iter().rev().map(|u| (u, 0)).collect();
        while let Some((unit, depth)) = stack.pop() {
            rows.push(UnitPlace {
                unit_id: unit.id.clone(),
                code: unit.code.clone(),
                name: unit.name.clone(),
                kind: unit.kind.clone(),
                depth,
            });
            if let Some(list) = children.get(&Some(unit.id.as_str())) {
                stack.extend(list.iter().rev().map(|u| (*u, depth + 1)));
            }
        }
        rows
    }
}

/// A unit as a report's row names it, with its place in the tree the report lays out.
#[derive(Debug, Clone, Serialize)]
pub struct UnitPlace {
    pub unit_id: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    /// Depth under the report's root (0 = the root).
    pub depth: usize,
}

impl UnitPlace {
    /// The code, then the name indented by depth.
    pub(super) fn cells(&self) -> [Value; 2] {
        [
            Value::Text(self.code.clone()),
            Value::Text(format!("{}{}", "  ".repeat(self.depth), self.name)),
        ]
    }
}

/// People of a target group and how many of them are trained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) cadres: i64,
    pub(super) trained: i64,
}

impl Tally {
    /// One person, trained or not.
    pub(super) fn one(trained: bool) -> Tally {
        Tally {
            cadres: 1,
            trained: i64::from(trained),
        }
    }

    pub(super) fn add(&mut self, other: Tally) {
        self.cadres += other.cadres;
        self.trained += other.trained;
    }

    pub(super) fn not_trained(self) -> i64 {
        self.cadres - self.trained
    }

    pub(super) fn percent(self) -> Option<f64> {
        percent(self.trained, self.cadres)
    }
}
