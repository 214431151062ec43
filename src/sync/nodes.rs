//! Stamp nodes by number (`sync_nodes`): the stored stamps of synced records and the mutation
//! log name a node (a device id, or a server's node id) by a small number instead of repeating
//! its id. A node keeps its number forever; numbers are given by the database, so every
//! instance on one database agrees on them.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::db::schema::sync_nodes;
use crate::db::{DbConn, on_backend};
use crate::error::{Error, Result};

/// The numbers of `nodes`, giving the ones not numbered yet their number (a write: call it in
/// the write phase, inside the write transaction).
pub fn numbers(conn: &mut DbConn, nodes: &HashSet<&str>) -> Result<HashMap<String, i32>> {
    let mut found = known(conn, nodes)?;
    let missing: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|node| !found.contains_key(*node))
        .collect();
    if !missing.is_empty() {
        let rows: Vec<_> = missing
            .iter()
            .map(|node| sync_nodes::node.eq(*node))
            .collect();
        // Another writer may number the same node meanwhile: its number is read below.
        on_backend!(conn, |backend| diesel::insert_into(sync_nodes::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(backend))?;
        let missing: HashSet<&str> = missing.into_iter().collect();
        found.extend(known(conn, &missing)?);
    }
    if found.len() < nodes.len() {
        return Err(Error::Internal("a stamp node without a number".into()));
    }
    Ok(found)
}

fn known(conn: &mut DbConn, nodes: &HashSet<&str>) -> Result<HashMap<String, i32>> {
    if nodes.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<&str> = nodes.iter().copied().collect();
    let rows: Vec<(String, i32)> = on_backend!(conn, |backend| sync_nodes::table
        .filter(sync_nodes::node.eq_any(&wanted))
        .select((sync_nodes::node, sync_nodes::number))
        .load(backend))?;
    Ok(rows.into_iter().collect())
}

/// The nodes of `numbers` (a read).
pub fn names(conn: &mut DbConn, numbers: &HashSet<i32>) -> Result<HashMap<i32, String>> {
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<i32> = numbers.iter().copied().collect();
    let rows: Vec<(i32, String)> = on_backend!(conn, |backend| sync_nodes::table
        .filter(sync_nodes::number.eq_any(&wanted))
        .select((sync_nodes::number, sync_nodes::node))
        .load(backend))?;
    if rows.len() < numbers.len() {
        return Err(Error::Internal(
            "a stored stamp names an unknown node".into(),
        ));
    }
    Ok(rows.into_iter().collect())
}
