//! Field-level last-writer-wins merging of synced records.
//!
//! A record is a JSON object of field values plus one [`Hlc`] stamp per field, the stamp of the
//! write that set it. Merging decides each field on its own:
//!
//! - the value with the greater stamp wins (stamps order by millis, counter, then node id, so
//!   two devices never tie);
//! - a value without a stamp (written before syncing existed) loses to any stamped value;
//! - equal stamps with different values cannot come from real devices, but are still decided
//!   the same way everywhere: the greater canonical JSON text wins.
//!
//! A delete is the field [`DELETED_FIELD`] set to `true`, stamped like any other field, and an
//! edit to another field leaves it alone. Because every field is decided by a total order on
//! (stamp, value), merging is commutative, associative and idempotent: every server and device
//! ends in the same state whatever order the writes arrive in, and however often.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use super::clock::Hlc;

/// A record's field values.
pub type Fields = serde_json::Map<String, Value>;
/// The stamp of the write that set each field.
pub type FieldStamps = BTreeMap<String, Hlc>;

/// A delete is this field set to `true`.
pub const DELETED_FIELD: &str = "_deleted";

/// One field value that lost a conflict, kept for the conflict log.
#[derive(Debug, Clone, PartialEq)]
pub struct LostValue {
    pub field: String,
    pub winning_value: Value,
    pub winning_stamp: Hlc,
    pub losing_value: Value,
    pub losing_stamp: Hlc,
}

/// The outcome of a merge: the new state and what happened to the stored one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    pub fields: Fields,
    pub stamps: FieldStamps,
    /// Fields whose stored value changed (a newer stamp on the same value is not a change, but
    /// `stamps` still has the newer stamp and must be saved).
    pub changed: Vec<String>,
    /// Fields where both sides had a stamped value and the values differ, with the loser. An
    /// ordinary newer edit lands here too, with the overwritten value as the loser, and a write
    /// that loses is reported again each time it is retried.
    pub lost: Vec<LostValue>,
}

/// Merges an incoming change (fields set by one mutation, all stamped with `stamp`) into the
/// stored state.
pub fn merge_change(
    stored: &Fields,
    stored_stamps: &FieldStamps,
    incoming: &Fields,
    stamp: &Hlc,
) -> Merged {
    let incoming_stamps = incoming
        .keys()
        .map(|field| (field.clone(), stamp.clone()))
        .collect();
    merge_states((stored, stored_stamps), (incoming, &incoming_stamps))
}

/// Merges two full states field by field (used to fold a duplicate record into the canonical
/// one).
///
/// The resulting `fields` and `stamps` do not depend on the argument order; `changed` and `lost`
/// are reported from the point of view of `current`, the state being updated.
pub fn merge_states(current: (&Fields, &FieldStamps), other: (&Fields, &FieldStamps)) -> Merged {
    let (current_fields, current_stamps) = current;
    let (other_fields, other_stamps) = other;
    let names: BTreeSet<&String> = current_fields
        .keys()
        .chain(current_stamps.keys())
        .chain(other_fields.keys())
        .chain(other_stamps.keys())
        .collect();

    let mut merged = Merged::default();
    for name in names {
        let (winner, loser) = match (candidate(current, name), candidate(other, name)) {
            (Some(kept), Some(offered)) if offered.outranks(&kept) => (offered, Some(kept)),
            (Some(kept), offered) => (kept, offered),
            (None, Some(offered)) => (offered, None),
            // Cannot happen: every name comes from one of the two states.
            (None, None) => continue,
        };

        if current_fields.get(name) != Some(winner.value) {
            merged.changed.push(name.clone());
        }
        if let Some(loser) = loser
            && loser.value != winner.value
            && let (Some(winning_stamp), Some(losing_stamp)) = (winner.stamp, loser.stamp)
        {
            merged.lost.push(LostValue {
                field: name.clone(),
                winning_value: winner.value.clone(),
                winning_stamp: winning_stamp.clone(),
                losing_value: loser.value.clone(),
                losing_stamp: losing_stamp.clone(),
            });
        }
        merged.fields.insert(name.clone(), winner.value.clone());
        if let Some(stamp) = winner.stamp {
            merged.stamps.insert(name.clone(), stamp.clone());
        }
    }
    merged
}

/// Whether the record is deleted: its [`DELETED_FIELD`] is `true`.
pub fn is_deleted(fields: &Fields) -> bool {
    fields.get(DELETED_FIELD) == Some(&Value::Bool(true))
}

/// One state's claim on a field.
struct Candidate<'a> {
    value: &'a Value,
    stamp: Option<&'a Hlc>,
}

impl Candidate<'_> {
    fn outranks(&self, other: &Candidate<'_>) -> bool {
        // `None < Some`, so an unstamped value loses to any stamped one.
        self.stamp
            .cmp(&other.stamp)
            .then_with(|| canonical_json(self.value).cmp(&canonical_json(other.value)))
            .is_gt()
    }
}

/// The state's value and stamp for `name`, if it has either; a stamped field without a value
/// reads as `null`.
fn candidate<'a>(
    (fields, stamps): (&'a Fields, &'a FieldStamps),
    name: &str,
) -> Option<Candidate<'a>> {
    match (fields.get(name), stamps.get(name)) {
        (None, None) => None,
        (value, stamp) => Some(Candidate {
            value: value.unwrap_or(&Value::Null),
            stamp,
        }),
    }
}

/// Compact JSON text with object keys sorted, so equal values always have equal text even if
/// serde_json's `preserve_order` feature gets enabled by some other dependency.
fn canonical_json(value: &Value) -> String {
    let mut text = String::new();
    write_canonical_json(value, &mut text);
    text
}

fn write_canonical_json(value: &Value, text: &mut String) {
    match value {
        Value::Array(items) => {
            text.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                write_canonical_json(item, text);
            }
            text.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            text.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                // Writing to a String cannot fail.
                let _ = write!(text, "{}:", Value::from(key.as_str()));
                write_canonical_json(item, text);
            }
            text.push('}');
        }
        scalar => {
            let _ = write!(text, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const WALL: u64 = 1_764_300_000_000;

    fn stamp(millis_offset: u64, counter: u32, node: &str) -> Hlc {
        Hlc {
            millis: WALL + millis_offset,
            counter,
            node: node.to_owned(),
        }
    }

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// A stored state: `fields` with every field stamped `at`.
    fn state(value: Value, at: &Hlc) -> (Fields, FieldStamps) {
        let merged = merge_change(&Fields::new(), &FieldStamps::new(), &fields(value), at);
        (merged.fields, merged.stamps)
    }

    #[test]
    fn two_trainers_editing_different_fields_both_keep_their_edits() {
        let created = stamp(0, 0, "server");
        let (stored, stamps) = state(json!({"status": "absent", "note": ""}), &created);
        let trainer_a = stamp(10, 0, "device-a");
        let trainer_b = stamp(5, 0, "device-b");

        let after_a = merge_change(
            &stored,
            &stamps,
            &fields(json!({"status": "present"})),
            &trainer_a,
        );
        let after_b = merge_change(
            &after_a.fields,
            &after_a.stamps,
            &fields(json!({"note": "late"})),
            &trainer_b,
        );

        assert_eq!(
            Value::Object(after_b.fields),
            json!({"status": "present", "note": "late"})
        );
        assert_eq!(after_b.stamps["status"], trainer_a);
        assert_eq!(after_b.stamps["note"], trainer_b);
        assert_eq!(after_b.changed, ["note"]);
        // Only the values set at creation were overwritten; neither trainer lost an edit.
        let overwritten = after_a.lost.iter().chain(&after_b.lost);
        assert!(
            overwritten
                .map(|lost| &lost.losing_stamp)
                .eq([&created, &created])
        );
    }

    #[test]
    fn late_arriving_older_edit_loses_and_is_logged() {
        let newer = stamp(20, 0, "device-a");
        let older = stamp(10, 3, "device-b");
        let (stored, stamps) = state(json!({"status": "present"}), &newer);

        let merged = merge_change(
            &stored,
            &stamps,
            &fields(json!({"status": "excused"})),
            &older,
        );

        assert_eq!(merged.fields, stored);
        assert_eq!(merged.stamps, stamps);
        assert!(merged.changed.is_empty());
        assert_eq!(
            merged.lost,
            [LostValue {
                field: "status".to_owned(),
                winning_value: json!("present"),
                winning_stamp: newer,
                losing_value: json!("excused"),
                losing_stamp: older,
            }]
        );
    }

    #[test]
    fn newer_edit_overwrites_and_logs_the_old_value() {
        let older = stamp(10, 0, "device-b");
        let newer = stamp(20, 0, "device-a");
        let (stored, stamps) = state(json!({"status": "present"}), &older);

        let merged = merge_change(
            &stored,
            &stamps,
            &fields(json!({"status": "absent"})),
            &newer,
        );

        assert_eq!(Value::Object(merged.fields), json!({"status": "absent"}));
        assert_eq!(merged.changed, ["status"]);
        assert_eq!(merged.lost.len(), 1);
        assert_eq!(merged.lost[0].losing_value, json!("present"));
        assert_eq!(merged.lost[0].winning_stamp, newer);
    }

    #[test]
    fn identical_writes_are_not_conflicts() {
        let newer = stamp(20, 0, "device-a");
        let older = stamp(10, 0, "device-b");
        let (stored, stamps) = state(json!({"status": "present"}), &newer);
        let same_value = fields(json!({"status": "present"}));

        let older_arrives = merge_change(&stored, &stamps, &same_value, &older);
        assert_eq!(older_arrives.stamps, stamps);
        assert!(older_arrives.changed.is_empty() && older_arrives.lost.is_empty());

        // A newer stamp on the same value moves the stamp but is not a change of value.
        let newest = stamp(30, 0, "device-b");
        let newer_arrives = merge_change(&stored, &stamps, &same_value, &newest);
        assert_eq!(newer_arrives.stamps["status"], newest);
        assert!(newer_arrives.changed.is_empty() && newer_arrives.lost.is_empty());
    }

    #[test]
    fn same_millis_and_counter_is_decided_by_node() {
        let from_a = stamp(10, 1, "device-a");
        let from_b = stamp(10, 1, "device-b");
        let (stored, stamps) = state(json!({"status": "present"}), &from_b);

        let merged = merge_change(
            &stored,
            &stamps,
            &fields(json!({"status": "absent"})),
            &from_a,
        );

        assert_eq!(merged.fields["status"], "present");
        assert_eq!(merged.lost[0].losing_stamp, from_a);
    }

    #[test]
    fn equal_stamps_keep_the_greater_json_text_in_either_order() {
        let at = stamp(10, 0, "device-a");
        let (with_b, b_stamps) = state(json!({"note": "b"}), &at);
        let (with_a, a_stamps) = state(json!({"note": "a"}), &at);

        let a_then_b = merge_change(&with_a, &a_stamps, &with_b, &at);
        let b_then_a = merge_change(&with_b, &b_stamps, &with_a, &at);

        assert_eq!(a_then_b.fields["note"], "b");
        assert_eq!(b_then_a.fields["note"], "b");
        assert_eq!(a_then_b.changed, ["note"]);
        assert!(b_then_a.changed.is_empty());
    }

    #[test]
    fn unstamped_stored_field_is_taken_without_conflict() {
        let stored = fields(json!({"status": "absent", "note": "legacy"}));
        let at = stamp(0, 0, "device-a");

        let merged = merge_change(
            &stored,
            &FieldStamps::new(),
            &fields(json!({"status": "present"})),
            &at,
        );

        assert_eq!(
            Value::Object(merged.fields),
            json!({"status": "present", "note": "legacy"})
        );
        assert_eq!(
            merged.stamps,
            FieldStamps::from([("status".to_owned(), at)])
        );
        assert_eq!(merged.changed, ["status"]);
        assert!(merged.lost.is_empty());
    }

    #[test]
    fn stamped_field_without_value_reads_as_null() {
        let newer = stamp(20, 0, "device-a");
        let stamps = FieldStamps::from([("note".to_owned(), newer.clone())]);

        let merged = merge_change(
            &Fields::new(),
            &stamps,
            &fields(json!({"note": "x"})),
            &stamp(10, 0, "b"),
        );

        assert_eq!(Value::Object(merged.fields), json!({"note": null}));
        assert_eq!(merged.stamps["note"], newer);
        assert_eq!(merged.lost[0].winning_value, Value::Null);
    }

    #[test]
    fn delete_is_a_field_like_any_other() {
        let edited = stamp(10, 0, "device-a");
        let (stored, stamps) = state(json!({"status": "present"}), &edited);
        assert!(!is_deleted(&stored));

        let delete = fields(json!({DELETED_FIELD: true}));
        let deleted = merge_change(&stored, &stamps, &delete, &stamp(20, 0, "device-b"));
        assert!(is_deleted(&deleted.fields));
        assert_eq!(deleted.changed, [DELETED_FIELD]);
        assert_eq!(deleted.fields["status"], "present");

        // An edit stamped after the delete changes its field but does not undelete.
        let edit = fields(json!({"status": "absent"}));
        let edited_after = merge_change(
            &deleted.fields,
            &deleted.stamps,
            &edit,
            &stamp(30, 0, "device-a"),
        );
        assert!(is_deleted(&edited_after.fields));
        assert_eq!(edited_after.fields["status"], "absent");

        // A delete stamped before the last undelete loses.
        let undelete = fields(json!({DELETED_FIELD: false}));
        let restored = merge_change(
            &edited_after.fields,
            &edited_after.stamps,
            &undelete,
            &stamp(40, 0, "device-a"),
        );
        let stale_delete = merge_change(
            &restored.fields,
            &restored.stamps,
            &delete,
            &stamp(35, 0, "device-b"),
        );
        assert!(!is_deleted(&stale_delete.fields));
        assert_eq!(stale_delete.lost[0].field, DELETED_FIELD);
    }

    #[test]
    fn merge_states_folds_a_duplicate_into_the_canonical_record() {
        let (canonical, canonical_stamps) = state(
            json!({"status": "present", "note": "x"}),
            &stamp(10, 0, "device-a"),
        );
        let (duplicate, duplicate_stamps) = state(
            json!({"status": "absent", "arrived_at": "08:05"}),
            &stamp(20, 0, "device-b"),
        );

        let merged = merge_states(
            (&canonical, &canonical_stamps),
            (&duplicate, &duplicate_stamps),
        );

        assert_eq!(
            Value::Object(merged.fields),
            json!({"status": "absent", "note": "x", "arrived_at": "08:05"})
        );
        assert_eq!(merged.changed, ["arrived_at", "status"]);
        assert_eq!(merged.lost.len(), 1);
        assert_eq!(merged.lost[0].losing_value, json!("present"));
    }

    #[test]
    fn canonical_json_sorts_object_keys_at_every_depth() {
        let value = json!({"b": [1, {"d": null, "c": "x\"y"}], "a": true});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":true,"b":[1,{"c":"x\"y","d":null}]}"#
        );
    }

    /// The field names mutations touch.
    const NAMES: [&str; 4] = ["status", "note", "arrived_at", DELETED_FIELD];

    #[derive(Debug, Clone)]
    struct Mutation {
        fields: Fields,
        stamp: Hlc,
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0..3i64).prop_map(Value::from),
            prop_oneof![Just("a"), Just("b")].prop_map(Value::from),
            (0..2i64).prop_map(|n| json!({"n": n, "m": [n]})),
        ]
    }

    /// Few distinct millis, counters and nodes, so equal and near-equal stamps are common.
    fn stamp_strategy() -> impl Strategy<Value = Hlc> {
        (
            0..3u64,
            0..2u32,
            prop_oneof![Just("device-a"), Just("device-b"), Just("server")],
        )
            .prop_map(|(offset, counter, node)| stamp(offset, counter, node))
    }

    fn mutation_strategy() -> impl Strategy<Value = Mutation> {
        (
            proptest::sample::subsequence(NAMES.to_vec(), 1..=NAMES.len()),
            proptest::collection::vec(value_strategy(), NAMES.len()),
            stamp_strategy(),
        )
            .prop_map(|(names, values, stamp)| Mutation {
                fields: names.into_iter().map(str::to_owned).zip(values).collect(),
                stamp,
            })
    }

    fn mutations_strategy() -> impl Strategy<Value = Vec<Mutation>> {
        proptest::collection::vec(mutation_strategy(), 0..8)
    }

    fn apply(mutations: &[Mutation]) -> (Fields, FieldStamps) {
        mutations.iter().fold(
            (Fields::new(), FieldStamps::new()),
            |(fields, stamps), mutation| {
                let merged = merge_change(&fields, &stamps, &mutation.fields, &mutation.stamp);
                (merged.fields, merged.stamps)
            },
        )
    }

    fn fields_and_stamps(merged: Merged) -> (Fields, FieldStamps) {
        (merged.fields, merged.stamps)
    }

    proptest! {
        #[test]
        fn any_arrival_order_converges(
            (first, second) in mutations_strategy()
                .prop_flat_map(|m| (Just(m.clone()).prop_shuffle(), Just(m).prop_shuffle()))
        ) {
            prop_assert_eq!(apply(&first), apply(&second));
        }

        #[test]
        fn applying_a_mutation_twice_changes_nothing(mutations in mutations_strategy()) {
            let (mut fields, mut stamps) = (Fields::new(), FieldStamps::new());
            for mutation in &mutations {
                let once = merge_change(&fields, &stamps, &mutation.fields, &mutation.stamp);
                let twice = merge_change(&once.fields, &once.stamps, &mutation.fields, &mutation.stamp);
                prop_assert_eq!(&twice.fields, &once.fields);
                prop_assert_eq!(&twice.stamps, &once.stamps);
                prop_assert!(twice.changed.is_empty());
                // A retried write that lost loses again, the same way.
                let lost_by_mutation: Vec<_> = once
                    .lost
                    .iter()
                    .filter(|lost| {
                        lost.losing_stamp == mutation.stamp
                            && mutation.fields.get(&lost.field) == Some(&lost.losing_value)
                    })
                    .cloned()
                    .collect();
                prop_assert_eq!(&twice.lost, &lost_by_mutation);
                (fields, stamps) = (once.fields, once.stamps);
            }
            let replayed = [mutations.as_slice(), mutations.as_slice()].concat();
            prop_assert_eq!(apply(&replayed), (fields, stamps));
        }

        #[test]
        fn each_field_holds_its_latest_write(mutations in mutations_strategy()) {
            let (fields, stamps) = apply(&mutations);
            let mut expected = BTreeMap::<&str, (&Hlc, &Value)>::new();
            for mutation in &mutations {
                for (name, value) in &mutation.fields {
                    let write = (&mutation.stamp, value);
                    let replaces = expected.get(name.as_str()).is_none_or(|&(stamp, current)| {
                        (stamp, canonical_json(current)) < (write.0, canonical_json(value))
                    });
                    if replaces {
                        expected.insert(name, write);
                    }
                }
            }
            prop_assert_eq!(fields.len(), expected.len());
            prop_assert_eq!(stamps.len(), expected.len());
            for (name, (stamp, value)) in expected {
                prop_assert_eq!(&fields[name], value);
                prop_assert_eq!(&stamps[name], stamp);
            }
        }

        #[test]
        fn changed_and_lost_describe_the_merge(
            mutations in mutations_strategy(),
            last in mutation_strategy(),
        ) {
            let (fields, stamps) = apply(&mutations);
            let merged = merge_change(&fields, &stamps, &last.fields, &last.stamp);
            for name in NAMES {
                let changed = merged.changed.iter().any(|field| field == name);
                prop_assert_eq!(changed, fields.get(name) != merged.fields.get(name), "{}", name);
            }
            for lost in &merged.lost {
                prop_assert_eq!(&merged.fields[&lost.field], &lost.winning_value);
                prop_assert_eq!(&merged.stamps[&lost.field], &lost.winning_stamp);
                prop_assert_ne!(&lost.losing_value, &lost.winning_value);
                prop_assert!(lost.losing_stamp <= lost.winning_stamp);
            }
            let conflicts = last.fields.iter().filter(|&(name, value)| {
                stamps.contains_key(name) && fields.get(name) != Some(value)
            });
            prop_assert_eq!(merged.lost.len(), conflicts.count());
        }

        #[test]
        fn merge_states_equals_replaying_both_histories(
            a in mutations_strategy(),
            b in mutations_strategy(),
        ) {
            let (a_fields, a_stamps) = apply(&a);
            let (b_fields, b_stamps) = apply(&b);
            let merged = merge_states((&a_fields, &a_stamps), (&b_fields, &b_stamps));
            prop_assert_eq!(fields_and_stamps(merged), apply(&[a, b].concat()));
        }

        #[test]
        fn merge_states_is_commutative_and_associative(
            a in mutations_strategy(),
            b in mutations_strategy(),
            c in mutations_strategy(),
        ) {
            let (a_fields, a_stamps) = apply(&a);
            let (b_fields, b_stamps) = apply(&b);
            let (c_fields, c_stamps) = apply(&c);
            let (a, b, c) = ((&a_fields, &a_stamps), (&b_fields, &b_stamps), (&c_fields, &c_stamps));

            prop_assert_eq!(fields_and_stamps(merge_states(a, b)), fields_and_stamps(merge_states(b, a)));

            let (ab_fields, ab_stamps) = fields_and_stamps(merge_states(a, b));
            let (bc_fields, bc_stamps) = fields_and_stamps(merge_states(b, c));
            prop_assert_eq!(
                fields_and_stamps(merge_states((&ab_fields, &ab_stamps), c)),
                fields_and_stamps(merge_states(a, (&bc_fields, &bc_stamps)))
            );
        }
    }
}
