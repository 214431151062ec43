//! The mutation log (`sync_mutations`): every mutation id ever pushed, with the device that sent
//! it, a hash of its body and the result it got. A replay answers from here and changes
//! nothing; the same id with another body is refused (`push`).
//!
//! Stored compactly (about 120 bytes a row on SQLite, was about 400): the device by its node
//! number (`nodes`), the first 16 bytes of the body's SHA-256 (a different body under a reused
//! id is told apart just as surely), and the result as a JSON array of its fields in a fixed
//! order without trailing nulls and without the mutation id it is stored under.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use serde_json::Value;

use super::nodes;
use super::push::{MutationResult, Status};
use super::records::{ROWS_PER_STATEMENT, insert_in_chunks};
use super::writer::WriteError;
use crate::db::schema::sync_mutations;
use crate::db::{DbConn, now_ms, on_backend};
use crate::error::{Error, Result};

/// Bytes of the body's SHA-256 kept.
const HASH_BYTES: usize = 16;

/// A mutation to log: its id, the hex SHA-256 of its body and the result it got.
#[derive(Debug, Clone)]
pub struct Entry {
    pub mutation_id: String,
    pub body_hash: String,
    pub result: MutationResult,
}

/// What the log holds for a mutation id.
#[derive(Debug, Clone)]
pub struct Logged {
    hash: Vec<u8>,
    pub result: MutationResult,
}

impl Logged {
    /// Whether the body whose hex SHA-256 is `body_hash` is the one logged.
    pub fn same_body(&self, body_hash: &str) -> bool {
        stored_hash(body_hash) == self.hash
    }
}

/// What a mutation id logged by another push since this one read the log means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TakenId {
    /// The push is stale (unique violation): run it again, and it answers duplicates.
    Stale,
    /// Keep the entry there: a refusal filed after the push's records were committed, logged
    /// meanwhile by a copy of the same push.
    Keep,
}

/// The entries of mutation ids.
pub fn read(conn: &mut DbConn, ids: &[&str]) -> Result<HashMap<String, Logged>> {
    let mut logged = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<(String, Vec<u8>, String)> = on_backend!(conn, |backend| {
            sync_mutations::table
                .filter(sync_mutations::mutation_id.eq_any(chunk))
                .select((
                    sync_mutations::mutation_id,
                    sync_mutations::body_hash,
                    sync_mutations::result,
                ))
                .load(backend)
        })?;
        for (id, hash, result) in rows {
            let result = decode_result(&id, &result)?;
            logged.insert(id, Logged { hash, result });
        }
    }
    Ok(logged)
}

/// The stored results of the mutations among `ids` that were logged.
pub fn results(conn: &mut DbConn, ids: &[&str]) -> Result<BTreeMap<String, MutationResult>> {
    Ok(read(conn, ids)?
        .into_iter()
        .map(|(id, logged)| (id, logged.result))
        .collect())
}

/// Logs `entries` sent by `device_id`, in multi-row inserts. A mutation id logged meanwhile by
/// another push is `WriteError::Stale` when `taken` says so.
pub fn write(
    conn: &mut DbConn,
    device_id: &str,
    entries: &[Entry],
    taken: TakenId,
) -> std::result::Result<(), WriteError> {
    if entries.is_empty() {
        return Ok(());
    }
    let device = nodes::numbers(conn, &HashSet::from([device_id]))?[device_id];
    let now = now_ms();
    let rows = entries
        .iter()
        .map(|entry| {
            Ok((
                sync_mutations::mutation_id.eq(&entry.mutation_id),
                sync_mutations::device.eq(device),
                sync_mutations::body_hash.eq(stored_hash(&entry.body_hash)),
                sync_mutations::result.eq(encode_result(&entry.result)?),
                sync_mutations::created_at.eq(now),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    match taken {
        TakenId::Stale => insert_in_chunks!(conn, sync_mutations::table, rows)?,
        TakenId::Keep => {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                on_backend!(conn, |backend| diesel::insert_into(sync_mutations::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(backend))?;
            }
        }
    }
    Ok(())
}

/// Replaces the result logged for `mutation_id` (a quarantined mutation applied later).
pub fn set_result(conn: &mut DbConn, mutation_id: &str, result: &MutationResult) -> Result<()> {
    let stored = encode_result(result)?;
    on_backend!(conn, |backend| diesel::update(
        sync_mutations::table.find(mutation_id)
    )
    .set(sync_mutations::result.eq(&stored))
    .execute(backend))?;
    Ok(())
}

/// The first 16 bytes of a hex SHA-256 (a shorter or malformed text keeps what it has).
fn stored_hash(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks_exact(2)
        .take(HASH_BYTES)
        .map_while(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// `[status, rev, record_id, merged_into, reason, message]`, trailing nulls left out.
fn encode_result(result: &MutationResult) -> Result<String> {
    let to_value =
        |value: serde_json::Result<Value>| value.map_err(|e| Error::Internal(e.to_string()));
    let mut slots = vec![
        to_value(serde_json::to_value(result.status))?,
        to_value(serde_json::to_value(result.rev))?,
        to_value(serde_json::to_value(&result.record_id))?,
        to_value(serde_json::to_value(&result.merged_into))?,
        to_value(serde_json::to_value(&result.reason))?,
        to_value(serde_json::to_value(&result.message))?,
    ];
    while slots.last() == Some(&Value::Null) {
        slots.pop();
    }
    serde_json::to_string(&slots).map_err(|e| Error::Internal(e.to_string()))
}

fn decode_result(mutation_id: &str, stored: &str) -> Result<MutationResult> {
    let unreadable =
        |e: serde_json::Error| Error::Internal(format!("stored result unreadable: {e}"));
    let slots: Vec<Value> = serde_json::from_str(stored).map_err(unreadable)?;
    let slot = |index: usize| slots.get(index).cloned().unwrap_or(Value::Null);
    let status: Status = serde_json::from_value(slot(0)).map_err(unreadable)?;
    Ok(MutationResult {
        mutation_id: Some(mutation_id.to_owned()),
        status,
        rev: serde_json::from_value(slot(1)).map_err(unreadable)?,
        record_id: serde_json::from_value(slot(2)).map_err(unreadable)?,
        merged_into: serde_json::from_value(slot(3)).map_err(unreadable)?,
        original_status: None,
        reason: serde_json::from_value(slot(4)).map_err(unreadable)?,
        message: serde_json::from_value(slot(5)).map_err(unreadable)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status) -> MutationResult {
        MutationResult {
            mutation_id: Some("0b8f6b1e-3c1f-4a5e-9d56-8f7a0d2c1e11".into()),
            status,
            record_id: Some("7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f".into()),
            merged_into: None,
            rev: Some(336),
            original_status: None,
            reason: None,
            message: None,
        }
    }

    /// Stores `result`, checks that it reads back whole, and gives what was stored.
    fn stored_and_read_back(result: &MutationResult) -> String {
        let stored = encode_result(result).unwrap();
        let read = decode_result(result.mutation_id.as_deref().unwrap(), &stored).unwrap();
        assert_eq!(
            serde_json::to_value(read).unwrap(),
            serde_json::to_value(result).unwrap()
        );
        stored
    }

    #[test]
    fn an_applied_result_is_stored_without_its_id_and_nulls_and_read_back_whole() {
        assert_eq!(
            stored_and_read_back(&result(Status::Applied)),
            r#"["applied",336,"7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"]"#
        );
    }

    #[test]
    fn a_refusal_keeps_its_reason_and_message() {
        stored_and_read_back(&MutationResult {
            rev: None,
            reason: Some("not_enrolled".into()),
            message: Some("the person is not enrolled, \"here\"".into()),
            ..result(Status::Rejected)
        });
    }

    #[test]
    fn a_result_in_the_migrated_form_with_spaces_and_all_six_slots_is_read() {
        let read = decode_result("m", r#"["merged", 12, "a", "b", null, null]"#).unwrap();
        assert_eq!(read.status, Status::Merged);
        assert_eq!(read.rev, Some(12));
        assert_eq!(read.merged_into.as_deref(), Some("b"));
        assert_eq!(read.mutation_id.as_deref(), Some("m"));
    }

    #[test]
    fn only_the_first_16_bytes_of_the_hash_are_kept_and_they_tell_bodies_apart() {
        let a = format!("{:064x}", 0xabcdu128);
        let b = format!("{:x}{}", 0xf, &a[1..]);
        assert_eq!(stored_hash(&a).len(), 16);
        let logged = Logged {
            hash: stored_hash(&a),
            result: result(Status::Applied),
        };
        assert!(logged.same_body(&a));
        assert!(!logged.same_body(&b));
    }
}
