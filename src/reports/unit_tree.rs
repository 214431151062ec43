//! The unit tree as the reports read it: names as they were on a day, merges followed to the
//! unit in force today, ancestors for roll-ups.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{unit_events, units};
use crate::domain::reorganisation::{UnitEvent, names_on};
use crate::error::Result;

/// Units as the reports need them.
pub(super) struct UnitTree {
    pub(super) units: HashMap<String, UnitRow>,
    pub(super) events: Vec<UnitEvent>,
}

#[derive(Debug, Clone, Queryable)]
pub(super) struct UnitRow {
    pub(super) id: String,
    pub(super) code: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) parent_id: Option<String>,
    pub(super) merged_into_id: Option<String>,
    pub(super) valid_to: Option<String>,
}

impl UnitTree {
    pub(super) fn load(conn: &mut DbConn) -> Result<UnitTree> {
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
}
