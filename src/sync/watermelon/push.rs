//! WatermelonDB's push: its changes object read into records, each a native mutation applied
//! by `push::apply_batch` under a mutation id that makes a retry the same mutation.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::state::{EarlierPush, PushedRow, earlier_pushes, remember_pushed};
use super::tables::same_columns;
use super::{Mark, invalid_last_pulled_at};
use crate::db::identity::Epoch;
use crate::db::{DbConn, current_revision, lock_revision_counter};
use crate::domain::Caller;
use crate::error::{Error, Result};
use crate::sync::clock::ServerClock;
use crate::sync::merge::Fields;
use crate::sync::mutation_log;
use crate::sync::pull::{self, Change};
use crate::sync::push::{self, MutationResult, Op, Status};
use crate::sync::records::{self, Collection, ROWS_PER_STATEMENT};
use crate::sync::writer;

/// Why a record was refused, per table and id.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct PushResponse {
    /// The records refused, per table: WatermelonDB keeps them unsynced on the device.
    #[serde(rename = "experimentalRejectedIds")]
    pub rejected_ids: BTreeMap<String, Vec<String>>,
    /// The reason for each refusal (the same as in the quarantine).
    pub rejected_reasons: BTreeMap<String, BTreeMap<String, Rejection>>,
}

/// One record of a WatermelonDB push.
pub(super) struct Incoming {
    table: String,
    id: String,
    op: Op,
    fields: Fields,
    /// The device's raw record (null for a delete), to tell whether its copy is the server's.
    raw: Value,
}

fn bad_changes(field: &str, message: impl Into<String>) -> Error {
    Error::invalid_field(field, "invalid_changes", message)
}

/// Reads WatermelonDB's changes object. A malformed shape refuses the whole push (nothing can
/// be said about its records); a record's content is checked when it is applied.
fn parse_changes(body: &Value, max_records: usize) -> Result<Vec<Incoming>> {
    let tables = body
        .as_object()
        .ok_or_else(|| bad_changes("changes", "the body must be WatermelonDB's changes object"))?;
    // Tables in the list's order (enrollments before the attendance they allow), then the ones
    // the server does not sync: a push that enrolls a trainee and marks them applies.
    let mut ordered: Vec<(&String, &Value)> = tables.iter().collect();
    ordered.sort_by_key(|(name, _)| {
        Collection::parse(name).map_or(Collection::ALL.len(), Collection::index)
    });
    let mut incoming = Vec::new();
    for (table, changes) in ordered {
        let changes = changes.as_object().ok_or_else(|| {
            bad_changes(
                table,
                "each table must be {created: [], updated: [], deleted: []}",
            )
        })?;
        for key in changes.keys() {
            if !["created", "updated", "deleted"].contains(&key.as_str()) {
                return Err(bad_changes(
                    &format!("{table}.{key}"),
                    "a table's changes are created, updated and deleted",
                ));
            }
        }
        let list = |name: &str| -> Result<&[Value]> {
            match changes.get(name) {
                None => Ok(&[]),
                Some(Value::Array(items)) => Ok(items),
                Some(_) => Err(bad_changes(&format!("{table}.{name}"), "must be an array")),
            }
        };
        let collection = Collection::parse(table);
        for (op_name, records) in [("created", list("created")?), ("updated", list("updated")?)] {
            for (index, raw) in records.iter().enumerate() {
                let field = format!("{table}.{op_name}[{index}]");
                let record = raw
                    .as_object()
                    .ok_or_else(|| bad_changes(&field, "a record must be an object"))?;
                let id = record
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_changes(&field, "a record needs a string id"))?;
                // A read-only or unknown table is refused when applied; its columns are kept
                // as sent, so that the quarantine shows what the device tried.
                let writable: Vec<&str> = match collection {
                    Some(c) if c.device_writable() => c.writable_fields().to_vec(),
                    _ => record
                        .keys()
                        .map(String::as_str)
                        .filter(|k| !["id", "_status", "_changed"].contains(k))
                        .collect(),
                };
                let set: Vec<&str> = if op_name == "created" {
                    writable.clone()
                } else {
                    let changed = match record.get("_changed") {
                        None | Some(Value::Null) => "",
                        Some(Value::String(changed)) => changed.as_str(),
                        Some(_) => {
                            return Err(bad_changes(
                                &format!("{field}._changed"),
                                "must be a comma-separated list of columns",
                            ));
                        }
                    };
                    // Columns the server does not sync are the app's own.
                    changed
                        .split(',')
                        .map(str::trim)
                        .filter(|c| writable.contains(c))
                        .collect()
                };
                let fields: Fields = set
                    .into_iter()
                    .filter_map(|name| record.get(name).map(|v| (name.to_owned(), v.clone())))
                    .collect();
                incoming.push(Incoming {
                    table: table.clone(),
                    id: id.to_owned(),
                    op: Op::Upsert,
                    fields,
                    raw: raw.clone(),
                });
            }
        }
        for (index, id) in list("deleted")?.iter().enumerate() {
            let id = id.as_str().ok_or_else(|| {
                bad_changes(&format!("{table}.deleted[{index}]"), "ids must be strings")
            })?;
            incoming.push(Incoming {
                table: table.clone(),
                id: id.to_owned(),
                op: Op::Delete,
                fields: Fields::new(),
                raw: Value::Null,
            });
        }
    }
    if incoming.len() > max_records {
        return Err(Error::invalid_field(
            "changes",
            "too_many_mutations",
            format!("at most {max_records} records per push; sync more often"),
        ));
    }
    Ok(incoming)
}

/// The ids of one table's records in a push, in statements of bounded size.
pub(super) fn id_chunks<'a>(records: &'a [Incoming], table: &'a str) -> Vec<Vec<&'a str>> {
    let ids: Vec<&str> = records
        .iter()
        .filter(|r| r.table == table)
        .map(|r| r.id.as_str())
        .collect();
    ids.chunks(ROWS_PER_STATEMENT)
        .map(<[&str]>::to_vec)
        .collect()
}

/// The tables a push names, each once.
pub(super) fn tables_of(records: &[Incoming]) -> BTreeSet<&str> {
    records.iter().map(|r| r.table.as_str()).collect()
}

/// The revision of each stored device-writable record a push names, following merged ids
/// (absent: none stored). Read a table at a time, not a record at a time: a page of a backlog
/// is hundreds of records.
fn base_revs(conn: &mut DbConn, records: &[Incoming]) -> Result<BTreeMap<(String, String), i64>> {
    let mut revs = BTreeMap::new();
    for table in tables_of(records) {
        // Only records devices write are stored with a revision a push may name.
        let Some(writable) = Collection::parse(table).and_then(Collection::writable) else {
            continue;
        };
        let collection = writable.collection();
        for ids in id_chunks(records, table) {
            let named: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
            let aliases = writer::canonical_ids(conn, &[collection], &named)?;
            let target = |id: &str| {
                aliases
                    .get(&(collection, id.to_owned()))
                    .cloned()
                    .unwrap_or_else(|| id.to_owned())
            };
            let targets: Vec<String> = ids.iter().map(|id| target(id)).collect();
            let stored = records::versions(conn, writable, &targets)?;
            for id in ids {
                if let Some(version) = stored.get(&target(id)) {
                    revs.insert((table.to_owned(), id.to_owned()), version.rev());
                }
            }
        }
    }
    Ok(revs)
}

/// The mutation id of a pushed record: the same change sent again over the same server state
/// (a refused record still waiting on the device) is the same mutation and gets its first
/// answer; any other is new.
fn mutation_id(caller: &Caller, record: &Incoming, base_rev: i64) -> String {
    record_uuid(caller, record, [json!(base_rev)])
}

/// The key of a pushed record as the device sent it: the same change sent again before the
/// device pulls (a push whose answer was lost, or a sync cut half-way and retried) has the same
/// key, although the server state moved on when the first one was applied.
fn retry_key(caller: &Caller, record: &Incoming, last_pulled_at: i64) -> String {
    record_uuid(
        caller,
        record,
        [json!("before the pull after"), json!(last_pulled_at)],
    )
}

/// A UUID made of the record as the device sent it (the device, table, id, operation and
/// fields) followed by `after`: the same record and `after` always make the same UUID.
fn record_uuid(
    caller: &Caller,
    record: &Incoming,
    after: impl IntoIterator<Item = Value>,
) -> String {
    let mut key = vec![
        json!(caller.device_id),
        json!(record.table),
        json!(record.id),
        json!(record.op),
        json!(record.fields),
    ];
    key.extend(after);
    let digest = Sha256::digest(Value::Array(key).to_string().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Applies a WatermelonDB push inside the caller's write transaction.
pub fn push(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    last_pulled_at: i64,
    body: &Value,
    max_records: usize,
    room: push::Room,
) -> Result<PushResponse> {
    let incoming = parse_changes(body, max_records)?;
    lock_revision_counter(conn)?;
    let current = current_revision(conn)?;
    // A timestamp of another epoch comes from a device that last pulled before a restore: what
    // it pushes does not depend on its position (the timestamp only keys a retry), and its next
    // pull starts it over.
    let position = Mark::of(last_pulled_at);
    let in_this_epoch = position.tag == Epoch::current(conn)?.timestamp_tag();
    if last_pulled_at < 1 || (in_this_epoch && position.mark > current + 1) {
        return Err(invalid_last_pulled_at(
            "last_pulled_at must be the timestamp of this device's last pull",
        ));
    }

    // Records with nothing the server syncs changed are accepted as they are.
    let sends = |record: &Incoming| {
        !(record.op == Op::Upsert
            && record.fields.is_empty()
            && Collection::parse(&record.table).is_some_and(Collection::device_writable))
    };
    let base = base_revs(conn, &incoming)?;
    let earlier = earlier_pushes(conn, caller, &incoming)?;
    // Per record, the mutation it is (or was, for a retry) and the key it was sent under.
    let sent: Vec<Option<(String, String)>> = incoming
        .iter()
        .map(|record| {
            if !sends(record) {
                return None;
            }
            let key = (record.table.clone(), record.id.clone());
            let retry = retry_key(caller, record, last_pulled_at);
            let id = match earlier.get(&key) {
                Some(EarlierPush {
                    retry_key: Some(earlier_key),
                    mutation_id: Some(earlier_id),
                }) if *earlier_key == retry => earlier_id.clone(),
                _ => mutation_id(caller, record, base.get(&key).copied().unwrap_or(0)),
            };
            Some((id, retry))
        })
        .collect();
    let ids: Vec<&str> = sent.iter().flatten().map(|(id, _)| id.as_str()).collect();
    let mut seen = mutation_log::results(conn, &ids)?;
    let mut results: Vec<Option<MutationResult>> = Vec::with_capacity(incoming.len());
    let mut fresh = Vec::new();
    let mut fresh_at = Vec::new();
    for (index, (record, sent)) in incoming.iter().zip(&sent).enumerate() {
        let Some((id, _)) = sent else {
            results.push(None);
            continue;
        };
        match seen.remove(id) {
            Some(seen) => results.push(Some(seen)),
            None => {
                let mut stamp = clock.now(push::wall_ms());
                stamp.node.clone_from(&caller.device_id);
                fresh.push(json!({
                    "mutation_id": id,
                    "collection": record.table,
                    "record_id": record.id,
                    "op": record.op,
                    "fields": record.fields,
                    "hlc": stamp.to_string(),
                }));
                fresh_at.push(index);
                results.push(None);
            }
        }
    }
    let applied = push::apply_batch(conn, caller, clock, room, &fresh)?;
    for (index, result) in fresh_at.into_iter().zip(applied.results) {
        results[index] = Some(result);
    }

    // What the device holds of each record now, read a collection at a time.
    let canonical: Vec<Option<(Collection, String, bool)>> = incoming
        .iter()
        .zip(&results)
        .map(|(record, result)| {
            let result = result.as_ref()?;
            let collection = Collection::parse(&record.table)?;
            let rejected = result.status == Status::Rejected;
            let canonical_id = match (rejected, &result.record_id) {
                (false, Some(target)) => target.clone(),
                _ => record.id.clone(),
            };
            Some((collection, canonical_id, rejected))
        })
        .collect();
    let mut stored: BTreeMap<Collection, BTreeMap<String, Change>> = BTreeMap::new();
    for collection in Collection::ALL {
        let ids: Vec<&str> = canonical
            .iter()
            .flatten()
            .filter(|(c, _, _)| *c == collection)
            .map(|(_, id, _)| id.as_str())
            .collect();
        if !ids.is_empty() {
            stored.insert(collection, pull::changes_by_id(conn, collection, &ids)?);
        }
    }

    let mut response = PushResponse::default();
    // The rows `watermelon_pushed` gets, one per record (the last word on a record sent twice).
    let mut remembered: BTreeMap<(Collection, String), PushedRow> = BTreeMap::new();
    for (((record, result), sent), canonical) in
        incoming.iter().zip(results).zip(sent).zip(canonical)
    {
        let (Some(result), Some((mutation_id, retry_key))) = (result, sent) else {
            continue;
        };
        let rejected = result.status == Status::Rejected;
        if rejected {
            response
                .rejected_ids
                .entry(record.table.clone())
                .or_default()
                .push(record.id.clone());
            response
                .rejected_reasons
                .entry(record.table.clone())
                .or_default()
                .insert(
                    record.id.clone(),
                    Rejection {
                        reason: result.reason.unwrap_or_default(),
                        message: result.message.unwrap_or_default(),
                    },
                );
        }
        let Some((collection, canonical_id, _)) = canonical else {
            continue;
        };
        // The device keeps a refused record: should the server come to have it (an
        // administrator re-applies it), it is one the device holds.
        let now_stored = stored
            .get(&collection)
            .and_then(|changes| changes.get(&canonical_id));
        let in_sync_rev = match now_stored {
            None if record.op == Op::Delete => {
                remembered.remove(&(collection, record.id.clone()));
                continue;
            }
            None => None,
            Some(_) if rejected => None,
            Some(stored) if canonical_id == record.id => {
                let same = match (&stored.data, record.op) {
                    (None, Op::Delete) => true,
                    (Some(data), Op::Upsert) => {
                        same_columns(collection, &record.raw, &data.to_value()?)
                    }
                    _ => false,
                };
                same.then_some(stored.rev)
            }
            Some(_) => None,
        };
        remembered.insert(
            (collection, record.id.clone()),
            PushedRow {
                canonical_id,
                in_sync_rev,
                retry_key,
                mutation_id,
                deleted_on_device: record.op == Op::Delete && !rejected,
            },
        );
    }
    remember_pushed(conn, caller, &incoming, remembered)?;
    Ok(response)
}
