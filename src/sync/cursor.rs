//! Pull cursors: opaque to clients, signed (HMAC-SHA256) so that a forged, garbled or another
//! user's cursor is refused. A cursor names the last revision delivered, whose it is, when it
//! was issued (server time), the courses the device held then, so the next pull can backfill
//! courses that came into scope and delete those that left it, how far such a backfill or such
//! deletions have gone (both come in pages too), and the database's epoch (a cursor of another
//! epoch predates a restore: `db::identity`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::collections::Collection;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Every change up to this revision has been delivered.
    pub rev: i64,
    pub user: String,
    /// Server time of issue, in Unix milliseconds.
    pub issued_ms: i64,
    /// The courses in the device's scope when the cursor was issued; `None` for "every course".
    pub courses: Option<Vec<String>>,
    /// The database's epoch at issue; cursors issued before epochs existed carry none and
    /// belong to the first.
    #[serde(default)]
    pub epoch: i64,
    /// Backfills still to send before the feed goes on from `rev`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfill: Vec<PendingBackfill>,
    /// Deletions for courses that left the scope still to send, before the backfills.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removals: Vec<PendingRemoval>,
}

/// Courses that came into the device's scope whose older records (up to the cursor's `rev`;
/// the feed carries later ones) are being sent page by page, in revision order: those up to
/// `after` are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBackfill {
    pub courses: Vec<String>,
    pub after: i64,
}

/// Courses that left the device's scope, whose records it is told to delete page by page, in
/// the order `sync::pull` lists them (collection by collection, by id): those up to `after`
/// are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRemoval {
    pub courses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<RemovalPosition>,
}

/// The last deletion a page of a removal sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalPosition {
    pub collection: Collection,
    pub id: String,
}

impl RemovalPosition {
    /// Where the deletion of `id` of `collection` stands in a removal's order.
    pub fn key(&self) -> (usize, &str) {
        (self.collection.index(), &self.id)
    }
}

fn invalid() -> Error {
    Error::bad_request(
        "invalid_cursor",
        "the cursor is not valid; start over without one",
    )
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload);
    mac
}

impl Cursor {
    pub fn encode(&self, key: &[u8]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let signature =
            URL_SAFE_NO_PAD.encode(mac(key, payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Verifies the signature and that the cursor belongs to `user`.
    pub fn decode(raw: &str, key: &[u8], user: &str) -> Result<Cursor> {
        let (payload, signature) = raw.trim().split_once('.').ok_or_else(invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        mac(key, payload.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| invalid())?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.user != user {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            rev: 42,
            user: "u1".into(),
            issued_ms: 1_764_300_000_000,
            courses: Some(vec!["c1".into()]),
            epoch: 12_345,
            backfill: vec![PendingBackfill {
                courses: vec!["c2".into()],
                after: 17,
            }],
            removals: vec![PendingRemoval {
                courses: vec!["c3".into()],
                after: Some(RemovalPosition {
                    collection: Collection::Sessions,
                    id: "s9".into(),
                }),
            }],
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_user() {
        let raw = cursor().encode(b"key");
        assert_eq!(Cursor::decode(&raw, b"key", "u1").unwrap(), cursor());
    }

    #[test]
    fn forged_garbled_and_foreign_cursors_are_refused() {
        let raw = cursor().encode(b"key");
        assert!(Cursor::decode(&raw, b"other key", "u1").is_err());
        assert!(Cursor::decode(&raw, b"key", "u2").is_err());
        assert!(Cursor::decode("garbage", b"key", "u1").is_err());
        let (_, signature) = raw.split_once('.').unwrap();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"rev":0,"user":"u1","issued_ms":0,"courses":null}"#);
        let forged = format!("{forged_payload}.{signature}");
        assert_eq!(
            Cursor::decode(&forged, b"key", "u1").unwrap_err().code(),
            "invalid_cursor"
        );
    }

    #[test]
    fn a_cursor_from_before_epochs_belongs_to_the_first() {
        let payload = URL_SAFE_NO_PAD
            .encode(br#"{"rev":7,"user":"u1","issued_ms":1764300000000,"courses":null}"#);
        let signature =
            URL_SAFE_NO_PAD.encode(mac(b"key", payload.as_bytes()).finalize().into_bytes());
        let decoded = Cursor::decode(&format!("{payload}.{signature}"), b"key", "u1").unwrap();
        assert_eq!(decoded.epoch, crate::db::identity::Epoch::FIRST.id());
        assert_eq!(decoded.rev, 7);
        assert!(decoded.backfill.is_empty(), "nothing to backfill");
        assert!(decoded.removals.is_empty(), "nothing to remove");
    }
}
