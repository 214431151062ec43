//! Pull cursors: any text given as a cursor decodes or is refused with `invalid_cursor`; any
//! payload under a valid signature (what the server itself could have issued) decodes or is
//! refused the same way, and its age check does not fail; every cursor round-trips through its
//! text form, and only for its own user and key.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diemdanh::domain::collections::Collection;
use diemdanh::sync::cursor::{Cursor, PendingBackfill, PendingRemoval, RemovalPosition};
use diemdanh::sync::pull::check_age;
use hmac::{Hmac, Mac};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &[u8] = b"fuzzing cursor key";
const USER: &str = "0b6c4f9e-2d1a-4c3e-9f3b-7a1d2e3f4a5b";
const NOW_MS: i64 = 1_764_300_000_000;
/// The default tombstone retention: 180 days.
const RETENTION_MS: i64 = 180 * 86_400_000;

fn signed(payload: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{signature}")
}

fn assert_round_trips(cursor: &Cursor) {
    let text = cursor.encode(KEY);
    assert_eq!(
        Cursor::decode(&text, KEY, &cursor.user).ok().as_ref(),
        Some(cursor)
    );
    let other_user = format!("{}x", cursor.user);
    assert!(Cursor::decode(&text, KEY, &other_user).is_err());
    assert!(Cursor::decode(&text, b"another key", &cursor.user).is_err());
}

fn arbitrary_cursor(input: &mut Unstructured) -> Result<Cursor> {
    Ok(Cursor {
        rev: input.arbitrary()?,
        user: input.arbitrary()?,
        issued_ms: input.arbitrary()?,
        courses: input.arbitrary()?,
        epoch: input.arbitrary()?,
        backfill: (0..input.int_in_range(0..=3)?)
            .map(|_| {
                Ok(PendingBackfill {
                    courses: input.arbitrary()?,
                    after: input.arbitrary()?,
                })
            })
            .collect::<Result<_>>()?,
        removals: (0..input.int_in_range(0..=3)?)
            .map(|_| {
                let after = if input.arbitrary()? {
                    Some(RemovalPosition {
                        collection: *input.choose(&Collection::ALL)?,
                        id: input.arbitrary()?,
                    })
                } else {
                    None
                };
                Ok(PendingRemoval {
                    courses: input.arbitrary()?,
                    after,
                })
            })
            .collect::<Result<_>>()?,
    })
}

fuzz_target!(|data: &[u8]| {
    // As a client sends it: without the key, nothing decodes.
    if let Ok(text) = std::str::from_utf8(data) {
        let refused = Cursor::decode(text, KEY, USER).expect_err("a cursor forged without the key");
        assert_eq!(refused.code(), "invalid_cursor");
    }

    // As the payload of a validly signed cursor.
    match Cursor::decode(&signed(data), KEY, USER) {
        Ok(cursor) => {
            // Any outcome but a panic: a signed cursor's fields are whatever the server wrote.
            let _ = check_age(NOW_MS, cursor.issued_ms, RETENTION_MS);
            assert_round_trips(&cursor);
        }
        Err(refused) => assert_eq!(refused.code(), "invalid_cursor"),
    }

    // As a cursor's fields.
    if let Ok(cursor) = arbitrary_cursor(&mut Unstructured::new(data)) {
        let _ = check_age(NOW_MS, cursor.issued_ms, RETENTION_MS);
        assert_round_trips(&cursor);
    }
});
