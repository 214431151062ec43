//! A push body, read and checked as `POST /api/v1/sync/push` does before it touches the
//! database: actix's JSON extractor (`serde_json::from_slice`), the batch size, each mutation's
//! shape and id (`read_mutation`) and its content (`Mutation::check`). Nothing may panic, and what
//! is accepted must be in the form the rest of the push relies on.

#![no_main]

use diemdanh::domain::values::parse_id;
use diemdanh::sync::merge::DELETED_FIELD;
use diemdanh::sync::push::{MutationResult, PushRequest, Status, read_mutation};
use diemdanh::sync::records::normalize_fields;
use libfuzzer_sys::fuzz_target;

/// The server's default `max_push_mutations`.
const MAX_MUTATIONS: usize = 1000;

fuzz_target!(|body: &[u8]| {
    let Ok(request) = serde_json::from_slice::<PushRequest>(body) else {
        return;
    };
    let Ok(mutations) = request.into_mutations(MAX_MUTATIONS) else {
        return;
    };
    for raw in &mutations {
        match read_mutation(raw) {
            Err(rejected) => {
                assert_eq!(rejected.status, Status::Rejected);
                assert_eq!(rejected.reason.as_deref(), Some("malformed_mutation"));
                assert_stored_result_reads_back(&rejected);
            }
            Ok((mutation_id, mutation)) => {
                assert_eq!(parse_id(&mutation_id).as_ref(), Some(&mutation_id));
                let checked = match mutation.check() {
                    Ok(checked) => checked,
                    Err(refusal) => {
                        assert!(!refusal.reason.is_empty() && !refusal.message.is_empty());
                        continue;
                    }
                };
                assert!(checked.collection.device_writable());
                assert_eq!(
                    parse_id(&checked.record_id),
                    Some(checked.record_id.clone())
                );
                assert_eq!(checked.stamp.to_string().parse(), Ok(checked.stamp.clone()));
                assert!(checked.fields[DELETED_FIELD].is_boolean());
                // The stored form is final: the same values sent again are not a change.
                let again = normalize_fields(checked.collection, checked.fields.clone())
                    .expect("stored values are valid values");
                assert_eq!(again, checked.fields);
            }
        }
    }
});

/// Results are stored as JSON and read back to answer a replay.
fn assert_stored_result_reads_back(result: &MutationResult) {
    let stored = serde_json::to_string(result).expect("a result serialises");
    let read: MutationResult = serde_json::from_str(&stored).expect("a stored result reads back");
    assert_eq!(serde_json::to_string(&read).unwrap(), stored);
}
