//! Applying a batch of mutations from one device: idempotency by mutation id (the mutation
//! log), quarantine of refused mutations, and the batch's changes handed to the one writer
//! (`writer`: read set-wise, decide in memory, write set-wise). On PostgreSQL the whole batch runs
//! in one transaction; on SQLite a large batch is read and decided beside the single writer and
//! written in the writer's turns (`StagedPush`), answered once its last turn is committed. One
//! refused mutation does not sink the others, and every refusal is known before the first write.
//! Knows no HTTP.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clock::{Hlc, ServerClock};
use super::merge::{DELETED_FIELD, Fields};
use super::mutation_log::{self, Entry as LogEntry, TakenId};
use super::records::{self, Collection, insert_in_chunks};
pub use super::writer::{Change, Refusal};
use super::writer::{Expect, WriteError, Writer, refuse};
use crate::config::QuarantineCap;
use crate::db::schema::sync_quarantine;
use crate::db::{
    DbConn, lock_revision_counter, now_ms, on_backend, write_tx_of, write_tx_synced_later,
};
use crate::domain::Caller;
use crate::domain::users::Devices;
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

/// How often a push runs: once reading beside other writers, and (should another writer have
/// changed what it read) again holding the write lock from the start, so that nobody can
/// overtake it.
const ATTEMPTS: [Reading; 2] = [Reading::Parallel, Reading::Serialized];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reading {
    Parallel,
    Serialized,
}

/// Refused mutations filed per write transaction when a push writes in turns (SQLite): a
/// device filing a thousand refusals holds the single writer for 25 at a time (a few
/// milliseconds), and other devices' pushes take their turns in between.
const FILINGS_PER_WRITE: usize = 25;

/// A batch of at most this many mutations is read, decided and written in one of the writer's
/// turns on SQLite (`stage_push` then `write_staged`): reading it takes about as long as
/// writing it, and one turn spares it a second wait.
pub const DECIDED_IN_TURN: usize = FILINGS_PER_WRITE;

/// Applies a device's batch in one transaction; answers once it is committed. Reads and decides
/// without the revision counter, which only the write phase takes, so pushes run side by side
/// (PostgreSQL). A batch that would take the device's quarantine beyond `cap` is refused whole
/// (`Error::QuarantineFull`, nothing written); the caller flags the device
/// (`note_full_quarantine`).
pub fn push_batch(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    cap: QuarantineCap,
    mutations: &[Value],
) -> Result<PushOutcome> {
    let mut parsed = parse_first(mutations)?;
    // A read transaction of its own, before the write's: not for a small push.
    if mutations.len() > DECIDED_FIRST {
        let refused = conn.transaction(|conn| {
            refuse_early(conn, caller, clock, cap, 0, &parsed, mutations.len())
        });
        refused?;
    }
    parse_rest(mutations, &mut parsed)?;
    for reading in ATTEMPTS {
        let attempt = write_tx_of(conn, |conn| {
            if reading == Reading::Serialized {
                lock_revision_counter(conn)?;
            }
            let results = apply_parsed(conn, caller, clock, cap, 0, &parsed)?;
            fault::point(fault::PUSH_BEFORE_COMMIT);
            Ok(results)
        });
        match attempt {
            Ok(results) => return Ok(outcome(results, clock)),
            Err(WriteError::Stale) => continue,
            Err(WriteError::Failed(err)) => return Err(err),
        }
    }
    Err(busy())
}

fn outcome(results: Vec<MutationResult>, clock: &ServerClock) -> PushOutcome {
    PushOutcome {
        results,
        server_hlc: clock.now(wall_ms()).to_string(),
    }
}

/// Flags the device of a push refused for a full quarantine, once the push's own transaction
/// is rolled back: the refusal itself wrote nothing. False when the device was flagged already:
/// it pushed refusals again instead of waiting for `Retry-After`.
pub fn note_full_quarantine(conn: &mut DbConn, caller: &Caller) -> Result<bool> {
    Devices::flag_quarantine_full(conn, &caller.device_id)
}

/// How long a device flagged for a full quarantine that pushes refusals again waits for its
/// 429: an app that ignores `Retry-After` and pushes in a loop then takes a push a second of
/// the server's time, not a core.
pub const FULL_AGAIN_PAUSE: Duration = Duration::from_secs(1);

fn busy() -> Error {
    Error::Unavailable("another writer changed the same records; retry the push".into())
}

fn stale_as_busy(err: WriteError) -> Error {
    match err {
        WriteError::Stale => busy(),
        WriteError::Failed(err) => err,
    }
}

/// A push on SQLite between its turns: SQLite has one writer, so a push reads and decides in a
/// read transaction beside the writer ([`stage_push`]), then writes in the writer's turns
/// ([`write_staged`]): first its records, its log entries and its first filings, checked
/// under the write lock against what was read; then its remaining filings, a bounded number per
/// turn. It is answered once its last turn is committed. A device flooding the server with
/// refused mutations so holds the writer for a short write at a time, never for its reading,
/// deciding and whole filing (issue 20).
pub struct StagedPush {
    caller: Caller,
    cap: QuarantineCap,
    mutations: Vec<Value>,
    stage: Stage,
}

enum Stage {
    /// Decided; the records are written next, with the first filings. `new_filings`: how many
    /// of the filings were not open yet when the batch was read.
    Decided {
        decided: Box<Decided>,
        new_filings: usize,
    },
    /// The records are written and answered; the rest of the filings follow, a turn each.
    Filing {
        results: Vec<MutationResult>,
        filings: Vec<Filing>,
        reserved: Reservation,
    },
}

/// What a turn of a staged push left.
pub enum Step {
    /// More to write in another turn.
    More(Box<StagedPush>),
    /// Committed: the answer.
    Done(PushOutcome),
}

/// Reads and decides a batch in a read transaction, holding no write lock (SQLite). A batch the
/// device's quarantine has no room for is refused here already (`Error::QuarantineFull`), as
/// soon as its first `DECIDED_FIRST` mutations show it; the caller flags the device.
pub fn stage_push(
    conn: &mut DbConn,
    caller: Caller,
    clock: &ServerClock,
    cap: QuarantineCap,
    mutations: Vec<Value>,
    in_flight: &FilingsInFlight,
) -> Result<StagedPush> {
    let (decided, new_filings) = conn.transaction(|conn| -> Result<(Decided, usize)> {
        let mut parsed = parse_first(&mutations)?;
        let filing = in_flight.of(&caller.device_id);
        refuse_early(conn, &caller, clock, cap, filing, &parsed, mutations.len())?;
        parse_rest(&mutations, &mut parsed)?;
        let decided = decide(conn, &caller, clock, &parsed).map_err(stale_as_busy)?;
        let new_filings = if decided.filings.is_empty() {
            0
        } else {
            let fresh = not_yet_filed(conn, &caller, &decided.filings)?;
            let new_filings = fresh.iter().filter(|fresh| **fresh).count();
            ensure_room(
                conn,
                &caller,
                cap,
                in_flight.of(&caller.device_id),
                new_filings,
            )?;
            new_filings
        };
        Ok((decided, new_filings))
    })?;
    Ok(StagedPush {
        caller,
        cap,
        mutations,
        stage: Stage::Decided {
            decided: Box::new(decided),
            new_filings,
        },
    })
}

/// Mutations of a large push decided first on their own: should they file more refusals than
/// the device has room for, the whole batch would (its refusals include theirs), and it is
/// refused without reading or deciding the rest. A device flooding the server after its
/// quarantine is full so costs a 429 the decision of 25 mutations, not of its whole batch.
const DECIDED_FIRST: usize = FILINGS_PER_WRITE;

/// The first `DECIDED_FIRST` mutations of a batch, read and their bodies hashed.
fn parse_first(mutations: &[Value]) -> Result<Vec<Parsed<'_>>> {
    mutations[..mutations.len().min(DECIDED_FIRST)]
        .iter()
        .map(parse)
        .collect()
}

/// Refuses a batch of `batch_len` mutations larger than `DECIDED_FIRST` when the new refusals of
/// its `first` mutations (`parse_first`) already do not fit in the device's room, `in_flight`
/// of it taken by refusals admitted and not filed yet. Writes nothing.
fn refuse_early(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    cap: QuarantineCap,
    in_flight: usize,
    first: &[Parsed],
    batch_len: usize,
) -> Result<()> {
    if batch_len <= DECIDED_FIRST {
        return Ok(());
    }
    let decided = decide(conn, caller, clock, first).map_err(stale_as_busy)?;
    refuse_if_no_room(conn, caller, cap, in_flight, &decided.filings)
}

/// Reads the rest of a batch after its first mutations (`parse_first`).
fn parse_rest<'a>(mutations: &'a [Value], parsed: &mut Vec<Parsed<'a>>) -> Result<()> {
    for raw in &mutations[parsed.len()..] {
        parsed.push(parse(raw)?);
    }
    Ok(())
}

/// Fails with `QuarantineFull` when those of `filings` not open yet do not fit in the device's
/// room, `in_flight` of it taken by refusals admitted and not filed yet.
fn refuse_if_no_room(
    conn: &mut DbConn,
    caller: &Caller,
    cap: QuarantineCap,
    in_flight: usize,
    filings: &[Filing],
) -> Result<()> {
    if filings.is_empty() {
        return Ok(());
    }
    let fresh = not_yet_filed(conn, caller, filings)?;
    let adding = fresh.iter().filter(|fresh| **fresh).count();
    ensure_room(conn, caller, cap, in_flight, adding)
}

/// Writes the next part of a staged push in a write transaction of its own (the caller holds
/// the writer's turn). Should another writer have changed a record the push read, the push is
/// read, decided and written again in this turn, holding the write lock from the start.
pub fn write_staged(
    conn: &mut DbConn,
    staged: StagedPush,
    clock: &ServerClock,
    in_flight: &Arc<FilingsInFlight>,
) -> Result<Step> {
    let StagedPush {
        caller,
        cap,
        mutations,
        stage,
    } = staged;
    match stage {
        Stage::Decided {
            decided,
            new_filings,
        } => {
            let attempt = write_tx_of(conn, |conn| {
                let written = write_first(conn, &caller, cap, *decided, new_filings, in_flight)?;
                fault::point(fault::PUSH_BEFORE_COMMIT);
                Ok(written)
            });
            match attempt {
                Ok((results, None)) => Ok(Step::Done(outcome(results, clock))),
                Ok((results, Some((filings, reserved)))) => Ok(Step::More(Box::new(StagedPush {
                    caller,
                    cap,
                    mutations,
                    stage: Stage::Filing {
                        results,
                        filings,
                        reserved,
                    },
                }))),
                Err(WriteError::Stale) => {
                    let parsed = mutations.iter().map(parse).collect::<Result<Vec<_>>>()?;
                    let results = write_tx_of(conn, |conn| {
                        lock_revision_counter(conn)?;
                        let waiting = in_flight.of(&caller.device_id);
                        let results = apply_parsed(conn, &caller, clock, cap, waiting, &parsed)?;
                        fault::point(fault::PUSH_BEFORE_COMMIT);
                        Ok(results)
                    })
                    .map_err(stale_as_busy)?;
                    Ok(Step::Done(outcome(results, clock)))
                }
                Err(WriteError::Failed(err)) => Err(err),
            }
        }
        Stage::Filing {
            results,
            mut filings,
            mut reserved,
        } => {
            let rest = filings.split_off(FILINGS_PER_WRITE.min(filings.len()));
            let filing = |conn: &mut DbConn| {
                file_unless_open(conn, &caller, &filings)?;
                fault::point(fault::PUSH_BEFORE_COMMIT);
                Ok::<_, Error>(())
            };
            // Only the last turn's commit is synced before the push is answered, and it syncs
            // the turns before it: a crash before it loses filings of an unanswered push,
            // which its retry files again.
            if rest.is_empty() {
                write_tx_of(conn, filing)?;
            } else {
                write_tx_synced_later(conn, filing)?;
            }
            reserved.release(filings.len());
            if rest.is_empty() {
                return Ok(Step::Done(outcome(results, clock)));
            }
            Ok(Step::More(Box::new(StagedPush {
                caller,
                cap,
                mutations,
                stage: Stage::Filing {
                    results,
                    filings: rest,
                    reserved,
                },
            })))
        }
    }
}

/// The first write of a staged push: the cap checked under the write lock (counting what the
/// device's other pushes are still to file), the records checked against what was read and
/// written, the answers and the log entries of the applied mutations, and the first filings.
/// The rest of the filings, if any, with their reservation against the cap.
#[allow(
    clippy::type_complexity,
    reason = "the two parts of one answer, named at the one caller"
)]
fn write_first(
    conn: &mut DbConn,
    caller: &Caller,
    cap: QuarantineCap,
    decided: Decided,
    new_filings: usize,
    in_flight: &Arc<FilingsInFlight>,
) -> std::result::Result<(Vec<MutationResult>, Option<(Vec<Filing>, Reservation)>), WriteError> {
    let Decided {
        mut writer,
        outcomes,
        mut filings,
        restamped,
    } = decided;
    if !filings.is_empty() {
        ensure_room(
            conn,
            caller,
            cap,
            in_flight.of(&caller.device_id),
            new_filings,
        )?;
    }
    writer.write(conn)?;
    let (results, log) = answers(outcomes, &writer)?;
    mutation_log::write(conn, &caller.device_id, &log, TakenId::Stale)?;
    flag_clock(conn, caller, restamped)?;
    let rest = filings.split_off(FILINGS_PER_WRITE.min(filings.len()));
    file_unless_open(conn, caller, &filings)?;
    if rest.is_empty() {
        return Ok((results, None));
    }
    let reserved = in_flight.reserve(&caller.device_id, rest.len());
    Ok((results, Some((rest, reserved))))
}

/// Refusals that staged pushes (SQLite) were admitted to file but have not filed yet, per
/// device: counted against the device's cap with its open entries by every push that files,
/// native or WatermelonDB, so that pushes filing in turns never take a device beyond it. Read
/// and changed only in the writer's turn (a reservation dropped elsewhere only gives room
/// back). One process writes a SQLite database's pushes.
#[derive(Debug, Default)]
pub struct FilingsInFlight {
    devices: Mutex<HashMap<String, usize>>,
}

impl FilingsInFlight {
    /// The device's refusals admitted and not filed yet.
    pub fn of(&self, device: &str) -> usize {
        self.lock().get(device).copied().unwrap_or(0)
    }

    fn reserve(self: &Arc<Self>, device: &str, count: usize) -> Reservation {
        *self.lock().entry(device.to_owned()).or_default() += count;
        Reservation {
            registry: Arc::clone(self),
            device: device.to_owned(),
            left: count,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic elsewhere cannot leave the counts half-updated: each update is one statement.
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A staged push's filings still to come; released as they are filed, or when the push ends.
pub struct Reservation {
    registry: Arc<FilingsInFlight>,
    device: String,
    left: usize,
}

impl Reservation {
    fn release(&mut self, count: usize) {
        let count = count.min(self.left);
        self.left -= count;
        let mut devices = self.registry.lock();
        if let Some(held) = devices.get_mut(&self.device) {
            *held = held.saturating_sub(count);
            if *held == 0 {
                devices.remove(&self.device);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release(self.left);
    }
}

/// The room a push's refusals may take in the device's quarantine: the cap, less the entries
/// open and those the device's staged pushes are still to file.
#[derive(Debug, Clone, Copy)]
pub struct Room<'a> {
    pub cap: QuarantineCap,
    pub in_flight: &'a FilingsInFlight,
}

/// Applies a batch inside the caller's write transaction, in the writer's turn (a WatermelonDB
/// push, which holds the revision counter from its start, so that no other writer can overtake
/// it). A full quarantine refuses it as `push_batch` does, before its first write, counting the
/// refusals native pushes of the device are still to file; the caller rolls back and flags the
/// device (`note_full_quarantine`).
pub fn apply_batch(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    room: Room,
    mutations: &[Value],
) -> Result<PushOutcome> {
    let parsed = mutations.iter().map(parse).collect::<Result<Vec<_>>>()?;
    let in_flight = room.in_flight.of(&caller.device_id);
    let results =
        apply_parsed(conn, caller, clock, room.cap, in_flight, &parsed).map_err(stale_as_busy)?;
    Ok(PushOutcome {
        results,
        server_hlc: clock.now(wall_ms()).to_string(),
    })
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

/// The hash a quarantine entry is found by: of its stored body, as `body_hash` of the mutation
/// (the body is the mutation's compact JSON).
fn stored_body_hash(body: &str) -> String {
    format!("{:x}", Sha256::digest(body.as_bytes()))
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

impl Mutation {
    /// Checks what needs no database: a device-writable collection, a UUID record id, a valid
    /// stamp, and fields the collection has with values of the right type.
    pub fn check(&self) -> std::result::Result<Change, Refusal> {
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
        Ok(Change {
            collection,
            record_id,
            stamp,
            fields,
            expect: Expect::Anything,
        })
    }
}

/// One mutation of a batch as far as it can be read without the database.
enum Parsed<'a> {
    /// Not a mutation, or an id that is not a UUID: refused without a log entry.
    Malformed {
        raw: &'a Value,
        result: MutationResult,
    },
    Read {
        raw: &'a Value,
        mutation_id: String,
        hash: String,
        mutation: Mutation,
        checked: std::result::Result<Change, Refusal>,
    },
}

fn parse(raw: &Value) -> Result<Parsed<'_>> {
    Ok(match read_mutation(raw) {
        Err(result) => Parsed::Malformed {
            raw,
            result: *result,
        },
        Ok((mutation_id, mutation)) => Parsed::Read {
            raw,
            mutation_id,
            hash: body_hash(raw)?,
            checked: mutation.check(),
            mutation,
        },
    })
}

/// What a mutation of the batch comes to, once decided.
enum Outcome {
    /// The answer is known (refused, a duplicate). A refusal's log entry goes with its filing.
    Answered(MutationResult),
    /// Applied (or nothing to do): its revision is known once the batch is written; logged
    /// under its id with the body's hash.
    Applied {
        result: MutationResult,
        hash: String,
        collection: Collection,
        revised: bool,
    },
    /// The same mutation as an earlier one of this batch.
    DuplicateOf(usize),
}

/// A refused or malformed mutation to file for an administrator: its stored body (the
/// mutation's compact JSON) and that body's hash, and the log entry of a refusal logged under
/// its mutation id, written in the same transaction as the filing, so that a refusal the log
/// answers for is always filed.
struct Filing {
    body: String,
    hash: String,
    collection: String,
    course_id: Option<String>,
    result: MutationResult,
    log: Option<LogEntry>,
}

impl Filing {
    /// `hash`: the mutation's `body_hash` when it was read (the same as its stored body's).
    fn new(
        raw: &Value,
        hash: Option<&str>,
        course_id: Option<String>,
        result: MutationResult,
    ) -> Filing {
        let body = raw.to_string();
        Filing {
            hash: hash.map_or_else(|| stored_body_hash(&body), str::to_owned),
            body,
            collection: raw
                .get("collection")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            course_id,
            result,
            log: None,
        }
    }
}

/// A mutation log entry to write: the id, the body's hash and the result.
fn log_entry(mutation_id: &str, body_hash: &str, result: &MutationResult) -> LogEntry {
    LogEntry {
        mutation_id: mutation_id.to_owned(),
        body_hash: body_hash.to_owned(),
        result: result.clone(),
    }
}

/// A batch read and decided, nothing written: the working copies of its records, what each
/// mutation comes to and what is filed. Owns all of it, so that it can wait for its turn to
/// write.
struct Decided {
    writer: Writer,
    outcomes: Vec<Outcome>,
    filings: Vec<Filing>,
    /// A stamp too far in the future was re-stamped: the device is flagged.
    restamped: bool,
}

/// Reads, decides and writes a parsed batch inside the caller's transaction. `in_flight`: the
/// device's refusals that its other pushes are still to file (counted against `cap`).
fn apply_parsed(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    cap: QuarantineCap,
    in_flight: usize,
    parsed: &[Parsed],
) -> std::result::Result<Vec<MutationResult>, WriteError> {
    let decided = decide(conn, caller, clock, parsed)?;
    write_decided(conn, caller, cap, in_flight, decided)
}

/// Reads what a parsed batch needs (the mutation log, then everything its changes need) and
/// decides every mutation in memory. Writes nothing.
fn decide(
    conn: &mut DbConn,
    caller: &Caller,
    clock: &ServerClock,
    parsed: &[Parsed],
) -> std::result::Result<Decided, WriteError> {
    let ids: Vec<&str> = parsed
        .iter()
        .filter_map(|item| match item {
            Parsed::Read { mutation_id, .. } => Some(mutation_id.as_str()),
            Parsed::Malformed { .. } => None,
        })
        .collect();
    let seen = mutation_log::read(conn, &ids)?;
    let wall = wall_ms();
    let mut restamped = false;
    // The device's stamps with its node from the token, never from the body; a stamp too far
    // in the future is re-stamped and the device flagged for administrators.
    let changes: Vec<Option<Change>> = parsed
        .iter()
        .map(|item| match item {
            Parsed::Read {
                mutation_id,
                checked: Ok(change),
                ..
            } if !seen.contains_key(mutation_id) => {
                let stamp = Hlc {
                    node: caller.device_id.clone(),
                    ..change.stamp.clone()
                };
                let observed = clock.observe(&stamp, wall);
                restamped |= observed.restamped;
                Some(Change {
                    stamp: observed.stamp,
                    ..change.clone()
                })
            }
            _ => None,
        })
        .collect();
    let sessions_named: Vec<String> = parsed
        .iter()
        .filter_map(|item| match item {
            Parsed::Read { mutation, .. } => mutation
                .fields
                .get("session_id")
                .and_then(Value::as_str)
                .and_then(parse_id),
            Parsed::Malformed { .. } => None,
        })
        .collect();
    let wanted: Vec<&Change> = changes.iter().flatten().collect();
    let mut writer = Writer::read(conn, caller, &wanted, &sessions_named)?;

    // Decide, mutation by mutation, in memory.
    let mut outcomes = Vec::with_capacity(parsed.len());
    let mut filings = Vec::new();
    // Mutation ids logged by this batch: id → (body hash, index of the mutation).
    let mut logged: HashMap<&str, (&str, usize)> = HashMap::new();
    for (index, (item, change)) in parsed.iter().zip(&changes).enumerate() {
        let (raw, mutation_id, hash, mutation, checked) = match item {
            Parsed::Malformed { raw, result } => {
                filings.push(Filing::new(raw, None, None, result.clone()));
                outcomes.push(Outcome::Answered(result.clone()));
                continue;
            }
            Parsed::Read {
                raw,
                mutation_id,
                hash,
                mutation,
                checked,
            } => (*raw, mutation_id, hash, mutation, checked),
        };
        let earlier = seen
            .get(mutation_id)
            .map(|logged| (logged.same_body(hash), Some(&logged.result)))
            .or_else(|| {
                logged
                    .get(mutation_id.as_str())
                    .map(|(seen_hash, _)| (*seen_hash == hash.as_str(), None))
            });
        if let Some((same_body, stored)) = earlier {
            if !same_body {
                let result = MutationResult::rejected(
                    Some(mutation_id.clone()),
                    Some(mutation.record_id.clone()),
                    "mutation_id_reused",
                    "this mutation id was already used for a different mutation".into(),
                );
                filings.push(Filing::new(raw, Some(hash), None, result.clone()));
                outcomes.push(Outcome::Answered(result));
                continue;
            }
            outcomes.push(match stored {
                Some(stored) => Outcome::Answered(as_duplicate(stored)),
                None => Outcome::DuplicateOf(logged[mutation_id.as_str()].1),
            });
            continue;
        }
        logged.insert(mutation_id, (hash, index));
        let decided = match (checked, change) {
            (Err(refusal), _) => Err(refusal.clone()),
            (Ok(_), Some(change)) => writer.apply(change).map(|applied| (change, applied)),
            (Ok(_), None) => {
                return Err(Error::Internal("a checked mutation without its change".into()).into());
            }
        };
        outcomes.push(match decided {
            Ok((change, applied)) => {
                let status = if applied.conflicts > 0 || applied.merged_into.is_some() {
                    Status::Merged
                } else {
                    Status::Applied
                };
                Outcome::Applied {
                    result: MutationResult {
                        mutation_id: Some(mutation_id.clone()),
                        status,
                        record_id: Some(applied.record_id),
                        merged_into: applied.merged_into,
                        rev: None,
                        original_status: None,
                        reason: None,
                        message: None,
                    },
                    hash: hash.clone(),
                    collection: change.collection,
                    revised: applied.revised,
                }
            }
            Err(refusal) => {
                let result = MutationResult::rejected(
                    Some(mutation_id.clone()),
                    Some(mutation.record_id.clone()),
                    refusal.reason,
                    refusal.message,
                );
                let course_id = match mutation.fields.get("course_id").and_then(Value::as_str) {
                    Some(course) => Some(course.to_owned()),
                    None if mutation.collection == Collection::Attendance.name() => mutation
                        .fields
                        .get("session_id")
                        .and_then(Value::as_str)
                        .and_then(parse_id)
                        .and_then(|session| writer.course_of_session(&session)),
                    None => None,
                };
                let mut filing = Filing::new(raw, Some(hash), course_id, result.clone());
                filing.log = Some(log_entry(mutation_id, hash, &result));
                filings.push(filing);
                Outcome::Answered(result)
            }
        });
    }
    Ok(Decided {
        writer,
        outcomes,
        filings,
        restamped,
    })
}

/// Writes a decided batch in one go inside the caller's transaction. Whether the device's
/// quarantine has room for what is filed (beside `in_flight` entries other pushes are still to
/// file) is decided before the first write, so that a refusal leaves nothing behind.
fn write_decided(
    conn: &mut DbConn,
    caller: &Caller,
    cap: QuarantineCap,
    in_flight: usize,
    decided: Decided,
) -> std::result::Result<Vec<MutationResult>, WriteError> {
    let Decided {
        mut writer,
        outcomes,
        filings,
        restamped,
    } = decided;
    let fresh = if filings.is_empty() {
        Vec::new()
    } else {
        hold_device_filings(conn, caller)?;
        let fresh = not_yet_filed(conn, caller, &filings)?;
        ensure_room(
            conn,
            caller,
            cap,
            in_flight,
            fresh.iter().filter(|fresh| **fresh).count(),
        )?;
        fresh
    };
    // Write: records (taking their revisions and the counter's lock), then the answers.
    writer.write(conn)?;
    let (results, mut log) = answers(outcomes, &writer)?;
    file(conn, caller, &filings, &fresh)?;
    log.extend(filings.into_iter().filter_map(|filing| filing.log));
    mutation_log::write(conn, &caller.device_id, &log, TakenId::Stale)?;
    flag_clock(conn, caller, restamped)?;
    Ok(results)
}

/// The answers of a batch whose records are written (their revisions known), and the log
/// entries of its applied mutations. A nothing-to-do delete was answered at once but is logged
/// like any applied mutation.
fn answers(
    outcomes: Vec<Outcome>,
    writer: &Writer,
) -> Result<(Vec<MutationResult>, Vec<LogEntry>)> {
    let mut results: Vec<MutationResult> = Vec::with_capacity(outcomes.len());
    let mut log = Vec::new();
    for outcome in outcomes {
        let result = match outcome {
            Outcome::Answered(result) => result,
            Outcome::Applied {
                mut result,
                hash,
                collection,
                revised,
            } => {
                if revised {
                    result.rev = result
                        .record_id
                        .as_deref()
                        .and_then(|id| writer.revision_of(collection, id));
                }
                if let Some(id) = &result.mutation_id {
                    log.push(log_entry(id, &hash, &result));
                }
                result
            }
            Outcome::DuplicateOf(index) => {
                let mut original = results[index].clone();
                original.original_status = Some(original.status);
                original.status = Status::Duplicate;
                original
            }
        };
        results.push(result);
    }
    Ok((results, log))
}

/// Flags the device whose stamps ran too far ahead (once).
fn flag_clock(conn: &mut DbConn, caller: &Caller, restamped: bool) -> Result<()> {
    if restamped {
        Devices::flag_clock(conn, &caller.device_id)?;
    }
    Ok(())
}

fn as_duplicate(stored: &MutationResult) -> MutationResult {
    let mut original = stored.clone();
    original.original_status = Some(original.status);
    original.status = Status::Duplicate;
    original
}

/// Which filings are not already open for this device: a device retrying a mutation that
/// cannot be logged by id (malformed, or a reused id) would otherwise file it on every retry.
/// Found by the body's hash on the (device, status, hash) index; of equal bodies in one batch,
/// the first is filed.
fn not_yet_filed(conn: &mut DbConn, caller: &Caller, filings: &[Filing]) -> Result<Vec<bool>> {
    let hashes: Vec<&str> = filings.iter().map(|f| f.hash.as_str()).collect();
    let open_of_device = sync_quarantine::table
        .filter(sync_quarantine::device_id.eq(&caller.device_id))
        .filter(sync_quarantine::status.eq("open"));
    // Entries filed before hashes were kept (SQLite: the migration could not compute them)
    // have none and are compared by body, when the device has any.
    let unhashed: bool = on_backend!(conn, |backend| diesel::select(diesel::dsl::exists(
        open_of_device.filter(sync_quarantine::body_hash.is_null())
    ))
    .get_result(backend))?;
    let found: Vec<String> = if unhashed {
        let bodies: Vec<&str> = filings.iter().map(|f| f.body.as_str()).collect();
        on_backend!(conn, |backend| open_of_device
            .filter(
                sync_quarantine::body_hash
                    .eq_any(&hashes)
                    .or(sync_quarantine::body_hash
                        .is_null()
                        .and(sync_quarantine::body.eq_any(&bodies))),
            )
            .select(sync_quarantine::body)
            .load::<String>(backend))?
    } else {
        on_backend!(conn, |backend| open_of_device
            .filter(sync_quarantine::body_hash.eq_any(&hashes))
            .select(sync_quarantine::body)
            .load::<String>(backend))?
    };
    let open: HashSet<String> = found.iter().map(|body| stored_body_hash(body)).collect();
    let mut taken = HashSet::new();
    Ok(filings
        .iter()
        .map(|f| !open.contains(&f.hash) && taken.insert(f.hash.as_str()))
        .collect())
}

/// Files those of `filings` not open yet with the log entries of all of them (a turn of a
/// staged push, under the write lock: a copy of the same push may have filed some meanwhile).
fn file_unless_open(conn: &mut DbConn, caller: &Caller, filings: &[Filing]) -> Result<()> {
    if filings.is_empty() {
        return Ok(());
    }
    let fresh = not_yet_filed(conn, caller, filings)?;
    file(conn, caller, filings, &fresh)?;
    let log: Vec<LogEntry> = filings
        .iter()
        .filter_map(|filing| filing.log.clone())
        .collect();
    mutation_log::write(conn, &caller.device_id, &log, TakenId::Keep).map_err(stale_as_busy)?;
    Ok(())
}

/// Takes the device's row lock for the rest of the transaction on PostgreSQL, so that two
/// copies of a batch racing there do not both find a refused mutation not yet filed, nor both
/// find room for it. The device's own lock, not the revision counter's: a device filing
/// refusals by the thousand does not hold other devices' pushes. (SQLite's write transaction
/// already holds every other writer off.)
fn hold_device_filings(conn: &mut DbConn, caller: &Caller) -> Result<()> {
    if let DbConn::Postgres(pg) = conn {
        Devices::lock(pg, &caller.device_id)?;
    }
    Ok(())
}

/// Fails with `QuarantineFull` when filing `adding` more entries would take the device beyond
/// its cap, counting its open entries and the `in_flight` ones its other pushes are still to
/// file.
fn ensure_room(
    conn: &mut DbConn,
    caller: &Caller,
    cap: QuarantineCap,
    in_flight: usize,
    adding: usize,
) -> Result<()> {
    if adding == 0 {
        return Ok(());
    }
    let open: i64 = on_backend!(conn, |backend| sync_quarantine::table
        .filter(sync_quarantine::device_id.eq(&caller.device_id))
        .filter(sync_quarantine::status.eq("open"))
        .count()
        .get_result(backend))?;
    let open = usize::try_from(open)
        .unwrap_or(usize::MAX)
        .saturating_add(in_flight);
    if open.saturating_add(adding) > cap.per_device {
        return Err(Error::QuarantineFull {
            open,
            limit: cap.per_device,
            retry_after_secs: cap.retry_after_secs,
        });
    }
    Ok(())
}

/// Files the filings marked fresh, and clears the device's full-quarantine flag when any is:
/// the device had room again.
fn file(conn: &mut DbConn, caller: &Caller, filings: &[Filing], fresh: &[bool]) -> Result<()> {
    let now = now_ms();
    let rows: Vec<_> = filings
        .iter()
        .zip(fresh)
        .filter(|(_, fresh)| **fresh)
        .map(|(filing, _)| {
            let result = &filing.result;
            (
                sync_quarantine::id.eq(new_id()),
                sync_quarantine::mutation_id.eq(result.mutation_id.clone().unwrap_or_default()),
                sync_quarantine::device_id.eq(&caller.device_id),
                sync_quarantine::user_id.eq(&caller.user_id),
                sync_quarantine::collection.eq(&filing.collection),
                sync_quarantine::record_id.eq(result.record_id.clone().unwrap_or_default()),
                sync_quarantine::course_id.eq(filing.course_id.clone()),
                sync_quarantine::body.eq(&filing.body),
                sync_quarantine::body_hash.eq(&filing.hash),
                sync_quarantine::reason.eq(result.reason.clone().unwrap_or_default()),
                sync_quarantine::message.eq(result.message.clone().unwrap_or_default()),
                sync_quarantine::status.eq("open"),
                sync_quarantine::created_at.eq(now),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    insert_in_chunks!(conn, sync_quarantine::table, rows)?;
    Devices::clear_quarantine_full(conn, &caller.device_id)
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
    let change = mutation.check().map_err(Refusal::into_error)?;
    let stamp = Hlc {
        node: on_behalf_of.device_id.clone(),
        ..change.stamp.clone()
    };
    let change = Change {
        stamp: clock.observe(&stamp, wall_ms()).stamp,
        ..change
    };
    let mut writer = Writer::read(conn, on_behalf_of, &[&change], &[])?;
    let applied = writer.apply(&change).map_err(Refusal::into_error)?;
    writer.write(conn).map_err(stale_as_busy)?;
    let result = MutationResult {
        mutation_id: Some(mutation_id.to_owned()),
        status: if applied.conflicts > 0 || applied.merged_into.is_some() {
            Status::Merged
        } else {
            Status::Applied
        },
        rev: if applied.revised {
            writer.revision_of(change.collection, &applied.record_id)
        } else {
            None
        },
        record_id: Some(applied.record_id),
        merged_into: applied.merged_into,
        original_status: None,
        reason: None,
        message: None,
    };
    mutation_log::set_result(conn, mutation_id, &result)?;
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
    let mut fields = Fields::new();
    fields.insert(field.to_owned(), value);
    let change = Change {
        collection,
        record_id: record_id.to_owned(),
        stamp: clock.now(wall_ms()),
        fields: records::normalize_fields(collection, fields)?,
        expect: Expect::Anything,
    };
    let mut writer = Writer::read(conn, admin, &[&change], &[])?;
    if writer.record(collection, record_id).is_none() {
        return Err(Error::NotFound { what: "record" });
    }
    let applied = writer.apply(&change).map_err(Refusal::into_error)?;
    // The administrator chose this value over the ones it replaces: deciding a conflict is
    // not a new one.
    writer.settle_conflicts();
    writer.write(conn).map_err(stale_as_busy)?;
    Ok(if applied.revised {
        writer.revision_of(collection, &applied.record_id)
    } else {
        None
    })
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
