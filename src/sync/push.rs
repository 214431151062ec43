//! Applying a batch of mutations from one device: idempotency by mutation id, field-level merge
//! by hybrid logical clock, natural-key merge of duplicate records, conflict log and quarantine.
//! The whole batch runs in one write transaction, and one refused mutation does not sink the
//! others (see `push_batch`). Knows no HTTP.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::clock::{Hlc, ServerClock};
use super::merge::{DELETED_FIELD, FieldStamps, Fields, LostValue, merge_change};
use super::records::{self, Collection, PushFacts};
use crate::db::schema::{
    devices, revision_counter, sync_aliases, sync_conflicts, sync_mutations, sync_quarantine,
};
use crate::db::{DbConn, Revisions, now_ms, on_backend, write_tx_of};
use crate::domain::Caller;
use crate::domain::values::{new_id, parse_id};
use crate::error::{Error, Result};
use crate::fault;

/// A push's body as the device sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Kept as raw JSON so that one malformed mutation is refused alone, not the batch.
    pub mutations: Vec<Value>,
}

impl PushRequest {
    /// The batch's mutations; more than `max` refuse the whole batch.
    pub fn into_mutations(self, max: usize) -> Result<Vec<Value>> {
        if self.mutations.len() > max {
            return Err(Error::invalid_field(
                "mutations",
                "too_many_mutations",
                format!("at most {max} mutations per push; send the rest in another batch"),
            ));
        }
        Ok(self.mutations)
    }
}

/// One mutation as the device sends it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    pub mutation_id: String,
    pub collection: String,
    pub record_id: String,
    pub op: Op,
    #[serde(default)]
    pub fields: Fields,
    pub hlc: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Upsert,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every field of the mutation was taken.
    Applied,
    /// Applied, but a conflict was resolved (some value lost) or the record was merged into
    /// another with the same natural key.
    Merged,
    /// The mutation id was seen before: this is the stored result, nothing changed.
    Duplicate,
    /// Refused; kept in quarantine for an administrator.
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutationResult {
    pub mutation_id: Option<String>,
    pub status: Status,
    /// The record the mutation landed in (the canonical id when merged into another).
    pub record_id: Option<String>,
    /// Set when the device's record id was merged into an existing record with the same
    /// natural key: the device should drop its copy and keep `record_id`.
    pub merged_into: Option<String>,
    pub rev: Option<i64>,
    /// For a duplicate: the status the mutation got the first time.
    pub original_status: Option<Status>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl MutationResult {
    fn rejected(
        mutation_id: Option<String>,
        record_id: Option<String>,
        reason: &str,
        message: String,
    ) -> Self {
        MutationResult {
            mutation_id,
            status: Status::Rejected,
            record_id,
            merged_into: None,
            rev: None,
            original_status: None,
            reason: Some(reason.to_owned()),
            message: Some(message),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PushOutcome {
    pub results: Vec<MutationResult>,
    /// The server's clock after the batch: devices merge it into their own HLC.
    pub server_hlc: String,
}

/// A refusal of one mutation: a stable reason code and a message.
#[derive(Debug)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        message: message.into(),
    }
}

impl From<Error> for Refusal {
    fn from(err: Error) -> Self {
        match err {
            Error::Conflict { code, message }
            | Error::Forbidden { code, message }
            | Error::BadRequest { code, message } => refuse(code, message),
            Error::Validation { message, .. } => refuse("validation_failed", message),
            Error::NotFound { what } => refuse("not_found", format!("{what} not found")),
            other => refuse("rejected", other.to_string()),
        }
    }
}

/// Applies a device's batch in a write transaction of its own; answers once it is committed.
///
/// Most batches refuse nothing, so the first attempt gives no mutation a savepoint of its own
/// (a savepoint per mutation cost about a tenth of a push; one savepoint around the whole batch
/// cost more still, its journal of every page it touched). A mutation refused in that attempt
/// may already have written part of itself (some refusals are found only when the record is
/// written), so the attempt's transaction is rolled back and the batch applied again in a new
/// one, as `apply_batch` does.
pub fn push_batch(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    mutations: &[Value],
) -> Result<PushOutcome> {
    let attempt = |conn: &mut DbConn, isolation| {
        write_tx_of(conn, |conn| {
            let results = apply_all(conn, caller, clock, mutations, isolation)?;
            fault::point(fault::PUSH_BEFORE_COMMIT);
            Ok(results)
        })
    };
    let results = match attempt(conn, Isolation::Batch) {
        Ok(results) => results,
        Err(BatchError::Refused) => {
            attempt(conn, Isolation::Mutation).map_err(BatchError::into_error)?
        }
        Err(BatchError::Failed(err)) => return Err(err),
    };
    Ok(PushOutcome {
        results,
        server_hlc: clock.now(wall_ms()).to_string(),
    })
}

/// Applies a batch inside the caller's write transaction, each mutation in a savepoint of its
/// own, so that a refused one is undone alone and the others stand.
pub fn apply_batch(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    mutations: &[Value],
) -> Result<PushOutcome> {
    let results = apply_all(conn, caller, clock, mutations, Isolation::Mutation)
        .map_err(BatchError::into_error)?;
    Ok(PushOutcome {
        results,
        server_hlc: clock.now(wall_ms()).to_string(),
    })
}

/// What undoes a refused mutation's writes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Isolation {
    /// Only the rollback of the whole transaction: a refusal stops the attempt.
    Batch,
    /// A savepoint per mutation.
    Mutation,
}

/// Why an attempt at a batch stopped.
enum BatchError {
    /// A mutation was refused where only the whole attempt could be undone.
    Refused,
    Failed(Error),
}

impl BatchError {
    /// For an attempt with a savepoint per mutation, which undoes refusals itself.
    fn into_error(self) -> Error {
        match self {
            BatchError::Failed(err) => err,
            BatchError::Refused => {
                Error::Internal("a refusal escaped its mutation's savepoint".into())
            }
        }
    }
}

impl From<Error> for BatchError {
    fn from(err: Error) -> Self {
        BatchError::Failed(err)
    }
}

impl From<diesel::result::Error> for BatchError {
    fn from(err: diesel::result::Error) -> Self {
        BatchError::Failed(err.into())
    }
}

/// What one attempt at a batch carries from mutation to mutation.
struct Attempt {
    revisions: Revisions,
    facts: PushFacts,
}

fn apply_all(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    mutations: &[Value],
    isolation: Isolation,
) -> std::result::Result<Vec<MutationResult>, BatchError> {
    // The reservation takes the revision counter's row lock for the rest of the transaction:
    // held from a push's start, it serialises pushes on PostgreSQL, so two copies of one
    // mutation racing in parallel see each other's log entry.
    let mut attempt = Attempt {
        revisions: Revisions::reserve(conn, mutations.len())?,
        // Read afresh in each attempt: what an undone attempt read may have been its own writes.
        facts: PushFacts::default(),
    };
    let mut results = Vec::with_capacity(mutations.len());
    for raw in mutations {
        if !results.is_empty() {
            fault::point(fault::PUSH_MID_BATCH);
        }
        results.push(apply_one(
            conn,
            &mut attempt,
            caller,
            clock,
            raw,
            isolation,
        )?);
    }
    Ok(results)
}

/// Takes the revision counter's row lock for the rest of the transaction, as a push does when
/// it reserves its revisions: before a WatermelonDB push reads the counter.
pub fn serialize_pushes(conn: &mut DbConn) -> Result<()> {
    diesel::update(revision_counter::table.filter(revision_counter::id.eq(1)))
        .set(revision_counter::value.eq(revision_counter::value))
        .execute(conn)?;
    Ok(())
}

pub(crate) fn wall_ms() -> u64 {
    u64::try_from(now_ms()).unwrap_or_default()
}

fn body_hash(raw: &Value) -> Result<String> {
    // serde_json's map is ordered by key, so equal mutations serialise equally.
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, raw).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Reads one mutation of a batch: the canonical mutation id and the mutation. A refusal is the
/// result to answer (and quarantine) with: not a mutation, or an id that is not a UUID.
pub fn read_mutation(raw: &Value) -> std::result::Result<(String, Mutation), Box<MutationResult>> {
    let mutation = Mutation::deserialize(raw).map_err(|e| {
        let mutation_id = raw
            .get("mutation_id")
            .and_then(Value::as_str)
            .and_then(parse_id);
        let record_id = raw
            .get("record_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        MutationResult::rejected(
            mutation_id,
            record_id,
            "malformed_mutation",
            format!("the mutation is malformed: {e}"),
        )
    })?;
    let mutation_id = parse_id(&mutation.mutation_id).ok_or_else(|| {
        MutationResult::rejected(
            None,
            Some(mutation.record_id.clone()),
            "malformed_mutation",
            "mutation_id must be a UUID".into(),
        )
    })?;
    Ok((mutation_id, mutation))
}

/// A mutation's content, checked as far as it can be without the database.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedMutation {
    pub collection: Collection,
    /// The record id in canonical form.
    pub record_id: String,
    /// The device's stamp as sent (the node is replaced by the device id from the token).
    pub stamp: Hlc,
    /// The fields to merge in their stored form, with the deletion flag the op implies.
    pub fields: Fields,
}

impl Mutation {
    /// Checks what needs no database: a device-writable collection, a UUID record id, a valid
    /// stamp, and fields the collection has with values of the right type.
    pub fn check(&self) -> std::result::Result<CheckedMutation, Refusal> {
        let collection = Collection::parse(&self.collection).ok_or_else(|| {
            refuse(
                "unknown_collection",
                format!("unknown collection {:?}", self.collection),
            )
        })?;
        if !collection.device_writable() {
            return Err(refuse(
                "read_only_collection",
                format!("{} cannot be changed by devices", collection.name()),
            ));
        }
        let record_id = parse_id(&self.record_id)
            .ok_or_else(|| refuse("malformed_mutation", "record_id must be a UUID"))?;
        let stamp: Hlc = self
            .hlc
            .parse()
            .map_err(|e| refuse("invalid_hlc", format!("hlc: {e}")))?;
        let mut fields = self.fields.clone();
        if fields.contains_key(DELETED_FIELD) {
            return Err(refuse(
                "unknown_field",
                "use op \"delete\" to delete a record",
            ));
        }
        match self.op {
            // An upsert also (re)states that the record exists; a later delete still wins.
            Op::Upsert => fields.insert(DELETED_FIELD.into(), Value::Bool(false)),
            Op::Delete => {
                fields.clear();
                fields.insert(DELETED_FIELD.into(), Value::Bool(true))
            }
        };
        let fields = records::normalize_fields(collection, fields)?;
        Ok(CheckedMutation {
            collection,
            record_id,
            stamp,
            fields,
        })
    }
}

fn apply_one(
    conn: &mut DbConn,
    attempt: &mut Attempt,
    caller: &Caller,
    clock: &ServerClock,
    raw: &Value,
    isolation: Isolation,
) -> std::result::Result<MutationResult, BatchError> {
    let (mutation_id, mutation) = match read_mutation(raw) {
        Ok(read) => read,
        Err(result) => {
            quarantine(conn, caller, raw, None, &result)?;
            return Ok(*result);
        }
    };
    let hash = body_hash(raw)?;
    let seen = on_backend!(conn, |backend| sync_mutations::table
        .find(&mutation_id)
        .select((sync_mutations::body_hash, sync_mutations::result))
        .get_result::<(String, String)>(backend)
        .optional())?;
    if let Some((seen_hash, stored)) = seen {
        if seen_hash != hash {
            let result = MutationResult::rejected(
                Some(mutation_id.clone()),
                Some(mutation.record_id.clone()),
                "mutation_id_reused",
                "this mutation id was already used for a different mutation".into(),
            );
            quarantine(conn, caller, raw, None, &result)?;
            return Ok(result);
        }
        let mut original: MutationResult = serde_json::from_str(&stored)
            .map_err(|e| Error::Internal(format!("stored result unreadable: {e}")))?;
        original.original_status = Some(original.status);
        original.status = Status::Duplicate;
        return Ok(original);
    }

    // A refusal of `check` comes before anything is written, whatever the isolation.
    let applied = match mutation.check() {
        Err(refusal) => Err(ApplyError::Refused(refusal)),
        Ok(checked) => {
            let apply = |conn: &mut DbConn| {
                apply_mutation(
                    conn,
                    attempt,
                    caller,
                    clock,
                    &mutation_id,
                    &mutation,
                    checked,
                )
            };
            match isolation {
                Isolation::Mutation => conn.transaction::<_, ApplyError, _>(apply),
                Isolation::Batch => match apply(conn) {
                    Err(ApplyError::Refused(_)) => return Err(BatchError::Refused),
                    done => done,
                },
            }
        }
    };
    let result = match applied {
        Ok(result) => result,
        Err(ApplyError::Refused(refusal)) => {
            let result = MutationResult::rejected(
                Some(mutation_id.clone()),
                Some(mutation.record_id.clone()),
                refusal.reason,
                refusal.message,
            );
            let course = records::course_of_fields(conn, &mutation.collection, &mutation.fields)
                .unwrap_or(None);
            quarantine(conn, caller, raw, course, &result)?;
            result
        }
        Err(ApplyError::Failed(err)) => return Err(err.into()),
    };
    let stored = serde_json::to_string(&result).map_err(|e| Error::Internal(e.to_string()))?;
    on_backend!(conn, |backend| diesel::insert_into(sync_mutations::table)
        .values((
            sync_mutations::mutation_id.eq(&mutation_id),
            sync_mutations::device_id.eq(&caller.device_id),
            sync_mutations::user_id.eq(&caller.user_id),
            sync_mutations::body_hash.eq(&hash),
            sync_mutations::result.eq(&stored),
            sync_mutations::created_at.eq(now_ms()),
        ))
        .execute(backend))?;
    Ok(result)
}

/// What stopped one mutation: a refusal, undone and quarantined (see `apply_batch`), or a
/// database failure, which fails the whole batch (nothing is acknowledged).
enum ApplyError {
    Refused(Refusal),
    Failed(Error),
}

impl From<Error> for ApplyError {
    fn from(err: Error) -> Self {
        match err {
            Error::Validation { .. }
            | Error::NotFound { .. }
            | Error::Forbidden { .. }
            | Error::Conflict { .. }
            | Error::BadRequest { .. } => ApplyError::Refused(err.into()),
            other => ApplyError::Failed(other),
        }
    }
}

impl From<diesel::result::Error> for ApplyError {
    fn from(err: diesel::result::Error) -> Self {
        ApplyError::Failed(err.into())
    }
}

impl From<Refusal> for ApplyError {
    fn from(refusal: Refusal) -> Self {
        ApplyError::Refused(refusal)
    }
}

/// Applies a quarantined mutation again, as corrected by an administrator: authorised as an
/// administrator, stamped and recorded as the device that sent it. The mutation log then answers
/// replays with the new result.
pub fn reapply(
    conn: &mut DbConn,
    on_behalf_of: &Caller,
    clock: &ServerClock,
    mutation_id: &str,
    mutation: &Mutation,
) -> Result<MutationResult> {
    let checked = mutation
        .check()
        .map_err(|refusal| Error::conflict(refusal.reason, refusal.message))?;
    let attempt = conn.transaction::<_, ApplyError, _>(|conn| {
        apply_mutation(
            conn,
            &mut Attempt {
                revisions: Revisions::one_by_one(),
                facts: PushFacts::default(),
            },
            on_behalf_of,
            clock,
            mutation_id,
            mutation,
            checked,
        )
    });
    let result = match attempt {
        Ok(result) => result,
        Err(ApplyError::Refused(refusal)) => {
            return Err(Error::conflict(refusal.reason, refusal.message));
        }
        Err(ApplyError::Failed(err)) => return Err(err),
    };
    let stored = serde_json::to_string(&result).map_err(|e| Error::Internal(e.to_string()))?;
    diesel::update(sync_mutations::table.find(mutation_id))
        .set(sync_mutations::result.eq(&stored))
        .execute(conn)?;
    Ok(result)
}

/// An administrator's choice of a field's value (resolving a conflict): merged with a fresh
/// server stamp, so it wins over everything recorded so far and syncs out like any edit.
pub fn apply_server_choice(
    conn: &mut DbConn,
    admin: &Caller,
    clock: &ServerClock,
    collection: Collection,
    record_id: &str,
    field: &str,
    value: Value,
) -> Result<Option<i64>> {
    let stored =
        records::load(conn, collection, record_id)?.ok_or(Error::NotFound { what: "record" })?;
    let mut incoming = Fields::new();
    incoming.insert(field.to_owned(), value);
    let incoming = records::normalize_fields(collection, incoming)?;
    records::check_immutable(collection, &stored.fields, &incoming)?;
    let stamp = clock.now(wall_ms());
    let merged = merge_change(&stored.fields, &stored.stamps, &incoming, &stamp);
    records::write(
        conn,
        &mut Revisions::one_by_one(),
        admin,
        collection,
        record_id,
        &merged.fields,
        &merged.stamps,
        false,
        true,
    )
}

fn apply_mutation(
    conn: &mut DbConn,
    attempt: &mut Attempt,
    caller: &Caller,
    clock: &ServerClock,
    mutation_id: &str,
    mutation: &Mutation,
    checked: CheckedMutation,
) -> std::result::Result<MutationResult, ApplyError> {
    let CheckedMutation {
        collection,
        record_id,
        stamp,
        fields: incoming,
    } = checked;
    let stamp = device_stamp(conn, caller, clock, stamp)?;

    // An id that was merged into another record keeps pointing there.
    let aliased = on_backend!(conn, |backend| sync_aliases::table
        .find((collection.name(), &record_id))
        .select(sync_aliases::canonical_id)
        .get_result::<String>(backend)
        .optional())?;
    let mut target_id = aliased.clone().unwrap_or_else(|| record_id.clone());
    let mut merged_into = aliased;
    let mut stored = records::load(conn, collection, &target_id)?;
    if stored.is_none() {
        if mutation.op == Op::Delete {
            // Deleting what the server never had: nothing to do, and nothing lost.
            return Ok(MutationResult {
                mutation_id: Some(mutation_id.to_owned()),
                status: Status::Applied,
                record_id: Some(record_id),
                merged_into: None,
                rev: None,
                original_status: None,
                reason: None,
                message: None,
            });
        }
        if let Some(existing) = records::find_by_natural_key(conn, collection, &incoming)? {
            diesel::insert_into(sync_aliases::table)
                .values((
                    sync_aliases::collection.eq(collection.name()),
                    sync_aliases::alias_id.eq(&record_id),
                    sync_aliases::canonical_id.eq(&existing.id),
                    sync_aliases::created_at.eq(now_ms()),
                ))
                .execute(conn)?;
            target_id = existing.id.clone();
            merged_into = Some(existing.id.clone());
            stored = Some(existing);
        }
    }
    let (stored_fields, stored_stamps, is_new) = match &stored {
        Some(record) => {
            records::check_immutable(collection, &record.fields, &incoming)?;
            (record.fields.clone(), record.stamps.clone(), false)
        }
        None => (Fields::new(), FieldStamps::new(), true),
    };
    let merged = merge_change(&stored_fields, &stored_stamps, &incoming, &stamp);
    let course_id =
        records::authorize(conn, &mut attempt.facts, caller, collection, &merged.fields)?;
    if collection == Collection::Enrollments {
        attempt.facts.forget_enrollments();
    }
    let changed = is_new || !merged.changed.is_empty();
    let mut rev = records::write(
        conn,
        &mut attempt.revisions,
        caller,
        collection,
        &target_id,
        &merged.fields,
        &merged.stamps,
        is_new,
        changed,
    )?;
    // When the mutation lost every field it set, nothing changed, yet the device holds its own
    // losing values: a new revision sends it the winning state on its next pull.
    let stale = incoming
        .iter()
        .any(|(field, value)| merged.fields.get(field) != Some(value));
    if rev.is_none() && stale {
        rev = Some(records::touch(
            conn,
            &mut attempt.revisions,
            collection,
            &target_id,
        )?);
    }
    let conflicts = log_conflicts(
        conn,
        collection,
        &target_id,
        course_id.as_deref(),
        &merged.lost,
    )?;
    let status = if conflicts > 0 || merged_into.is_some() {
        Status::Merged
    } else {
        Status::Applied
    };
    Ok(MutationResult {
        mutation_id: Some(mutation_id.to_owned()),
        status,
        record_id: Some(target_id),
        merged_into,
        rev,
        original_status: None,
        reason: None,
        message: None,
    })
}

/// Takes the device's stamp with its node from the token, never from the body. A stamp too far
/// in the future is re-stamped and the device flagged for administrators.
fn device_stamp(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    parsed: Hlc,
) -> std::result::Result<Hlc, ApplyError> {
    let stamp = Hlc {
        node: caller.device_id.clone(),
        ..parsed
    };
    let observed = clock.observe(&stamp, wall_ms());
    if observed.restamped {
        diesel::update(
            devices::table
                .find(&caller.device_id)
                .filter(devices::clock_flagged_at.is_null()),
        )
        .set(devices::clock_flagged_at.eq(now_ms()))
        .execute(conn)?;
    }
    Ok(observed.stamp)
}

/// Logs the values that lost, when they came from another device than the winner: a device
/// overwriting its own earlier value is not a conflict.
fn log_conflicts(
    conn: &mut DbConn,
    collection: Collection,
    record_id: &str,
    course_id: Option<&str>,
    lost: &[LostValue],
) -> Result<usize> {
    let mut logged = 0;
    for value in lost
        .iter()
        .filter(|v| v.winning_stamp.node != v.losing_stamp.node)
    {
        diesel::insert_into(sync_conflicts::table)
            .values((
                sync_conflicts::id.eq(new_id()),
                sync_conflicts::collection.eq(collection.name()),
                sync_conflicts::record_id.eq(record_id),
                sync_conflicts::course_id.eq(course_id),
                sync_conflicts::field.eq(&value.field),
                sync_conflicts::winning_value.eq(value.winning_value.to_string()),
                sync_conflicts::winning_stamp.eq(value.winning_stamp.to_string()),
                sync_conflicts::losing_value.eq(value.losing_value.to_string()),
                sync_conflicts::losing_stamp.eq(value.losing_stamp.to_string()),
                sync_conflicts::created_at.eq(now_ms()),
            ))
            .execute(conn)?;
        logged += 1;
    }
    Ok(logged)
}

fn quarantine(
    conn: &mut DbConn,
    caller: &Caller,
    raw: &Value,
    course_id: Option<String>,
    result: &MutationResult,
) -> Result<()> {
    // A device retrying a mutation that cannot be logged by id (malformed, or a reused id) would
    // otherwise file it again on every retry.
    let body = raw.to_string();
    let already_open: i64 = sync_quarantine::table
        .filter(sync_quarantine::device_id.eq(&caller.device_id))
        .filter(sync_quarantine::body.eq(&body))
        .filter(sync_quarantine::status.eq("open"))
        .count()
        .get_result(conn)?;
    if already_open > 0 {
        return Ok(());
    }
    diesel::insert_into(sync_quarantine::table)
        .values((
            sync_quarantine::id.eq(new_id()),
            sync_quarantine::mutation_id.eq(result.mutation_id.clone().unwrap_or_default()),
            sync_quarantine::device_id.eq(&caller.device_id),
            sync_quarantine::user_id.eq(&caller.user_id),
            sync_quarantine::collection.eq(raw
                .get("collection")
                .and_then(Value::as_str)
                .unwrap_or_default()),
            sync_quarantine::record_id.eq(result.record_id.clone().unwrap_or_default()),
            sync_quarantine::course_id.eq(course_id),
            sync_quarantine::body.eq(&body),
            sync_quarantine::reason.eq(result.reason.clone().unwrap_or_default()),
            sync_quarantine::message.eq(result.message.clone().unwrap_or_default()),
            sync_quarantine::status.eq("open"),
            sync_quarantine::created_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_mutations_hash_equally_whatever_their_key_order() {
        let a: Value = serde_json::from_str(r#"{"op":"upsert","collection":"attendance","fields":{"status":"present","note":null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"fields":{"note":null,"status":"present"},"collection":"attendance","op":"upsert"}"#).unwrap();
        assert_eq!(body_hash(&a).unwrap(), body_hash(&b).unwrap());
        assert_ne!(
            body_hash(&a).unwrap(),
            body_hash(&serde_json::json!({"op": "delete"})).unwrap()
        );
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_compact_json_in_lowercase_hex() {
        // Logged hashes must stay comparable across versions: this is the SHA-256 of
        // `{"fields":{"a":1},"op":"delete"}` as computed elsewhere (Python's hashlib).
        let body = serde_json::json!({"op": "delete", "fields": {"a": 1}});
        assert_eq!(
            body_hash(&body).unwrap(),
            "4d03b06f1aeb11e26f85d569a1acec6a10cebb6b8a26e3f8b9ee39894e754b74"
        );
    }

    fn mutation(body: Value) -> Mutation {
        let (_, mutation) = read_mutation(&body).unwrap();
        mutation
    }

    fn attendance(op: &str, fields: Value, hlc: &str) -> Value {
        serde_json::json!({
            "mutation_id": "0B6C4F9E-2D1A-4C3E-9F3B-7A1D2E3F4A5B",
            "collection": "attendance",
            "record_id": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
            "op": op,
            "fields": fields,
            "hlc": hlc,
        })
    }

    #[test]
    fn a_mutation_is_read_with_its_canonical_id_or_refused_with_what_can_be_told() {
        let (id, _) = read_mutation(&attendance("upsert", serde_json::json!({}), "x")).unwrap();
        assert_eq!(id, "0b6c4f9e-2d1a-4c3e-9f3b-7a1d2e3f4a5b");
        let refused =
            read_mutation(&serde_json::json!({"mutation_id": "0b6c4f9e-2d1a-4c3e-9f3b-7a1d2e3f4a5b", "op": "merge"}))
                .unwrap_err();
        assert_eq!(refused.reason.as_deref(), Some("malformed_mutation"));
        assert_eq!(
            refused.mutation_id.as_deref(),
            Some("0b6c4f9e-2d1a-4c3e-9f3b-7a1d2e3f4a5b")
        );
        let mut bad_id = attendance("delete", serde_json::json!({}), "x");
        bad_id["mutation_id"] = "m1".into();
        let refused = read_mutation(&bad_id).unwrap_err();
        assert_eq!(refused.mutation_id, None);
        assert_eq!(
            refused.message.as_deref(),
            Some("mutation_id must be a UUID")
        );
    }

    #[test]
    fn checking_puts_fields_in_stored_form_with_the_deletion_flag_of_the_op() {
        let stamp = "1764300000000-0001-device";
        let upsert = attendance(
            "upsert",
            serde_json::json!({"status": "present", "checked_in_at": "2026-03-01T08:15:00+07:00"}),
            stamp,
        );
        let checked = mutation(upsert).check().unwrap();
        assert_eq!(checked.collection, Collection::Attendance);
        assert_eq!(checked.stamp.to_string(), stamp);
        assert_eq!(
            Value::Object(checked.fields),
            serde_json::json!({"status": "present", "checked_in_at": "2026-03-01T01:15:00.000Z", DELETED_FIELD: false})
        );
        let delete = attendance("delete", serde_json::json!({"status": "absent"}), stamp);
        assert_eq!(
            Value::Object(mutation(delete).check().unwrap().fields),
            serde_json::json!({DELETED_FIELD: true})
        );
    }

    #[test]
    fn checking_refuses_what_the_database_need_not_see() {
        let stamp = "1764300000000-0001-device";
        let reason = |body: Value| mutation(body).check().unwrap_err().reason;
        let mut people = attendance("upsert", serde_json::json!({}), stamp);
        people["collection"] = "people".into();
        assert_eq!(reason(people), "read_only_collection");
        let mut unknown = attendance("upsert", serde_json::json!({}), stamp);
        unknown["collection"] = "secrets".into();
        assert_eq!(reason(unknown), "unknown_collection");
        let mut record = attendance("upsert", serde_json::json!({}), stamp);
        record["record_id"] = "r1".into();
        assert_eq!(reason(record), "malformed_mutation");
        assert_eq!(
            reason(attendance("upsert", serde_json::json!({}), "yesterday")),
            "invalid_hlc"
        );
        assert_eq!(
            reason(attendance(
                "upsert",
                serde_json::json!({DELETED_FIELD: true}),
                stamp
            )),
            "unknown_field"
        );
        assert_eq!(
            reason(attendance(
                "upsert",
                serde_json::json!({"status": 3}),
                stamp
            )),
            "invalid_field_type"
        );
    }
}
