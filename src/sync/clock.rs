//! Hybrid logical clocks (HLC): the stamps that order every synced write.
//!
//! A stamp is (wall-clock milliseconds, counter, node id). The counter orders events within one
//! millisecond and lets the clock run ahead of a wall clock that stalls or steps back; the node id
//! breaks the remaining ties, so two stamps from different devices are never equal.
//!
//! The text form is `MILLIS-COUNTER-NODE`: 13 zero-padded decimal digits, 4 lowercase hex digits
//! and the node id, e.g. `1764300000000-001f-server`. Both numbers have a fixed width, so the text
//! sorts byte-wise in exactly the order of [`Hlc`]'s `Ord`; the database can order and compare
//! stamps stored as text without parsing them.
//!
//! [`ServerClock`] is the server's own clock. It merges the stamps devices send so its later stamps
//! come after them, except stamps too far in the future: those are replaced rather than merged,
//! because one device with a clock set years ahead would otherwise drag the server clock along.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest millis the 13-digit text form can hold (a day in the year 2286).
const MAX_MILLIS: u64 = 9_999_999_999_999;
const MILLIS_DIGITS: usize = 13;
/// The largest counter the 4-hex-digit text form can hold.
const MAX_COUNTER: u32 = 0xffff;
const COUNTER_DIGITS: usize = 4;
const MAX_NODE_LEN: usize = 64;

/// A hybrid logical clock stamp. Ordered by (millis, counter, node).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hlc {
    pub millis: u64,
    pub counter: u32,
    pub node: String,
}

/// Why a text stamp was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error(
        "malformed clock stamp {0:?}: expected 13 digits, '-', 4 lowercase hex digits, '-', node"
    )]
    WrongShape(String),
    #[error("clock stamp counter {0:?} is larger than ffff")]
    CounterOverflow(String),
    #[error(
        "clock stamp node {0:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':', '-'"
    )]
    NodeInvalid(String),
    #[error("clock stamp millis {0:?} is larger than {MAX_MILLIS}")]
    MillisOutOfRange(String),
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}-{:04x}-{}", self.millis, self.counter, self.node)
    }
}

impl FromStr for Hlc {
    type Err = ClockError;

    /// Accepts only the canonical text form, so every accepted text sorts like its stamp.
    fn from_str(text: &str) -> Result<Self, ClockError> {
        let wrong_shape = || ClockError::WrongShape(text.to_owned());
        // Node ids may contain '-' (UUIDs), so only the first two dashes separate fields.
        let mut parts = text.splitn(3, '-');
        let (Some(millis_text), Some(counter_text), Some(node)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(wrong_shape());
        };

        if millis_text.is_empty() || !millis_text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(wrong_shape());
        }
        if millis_text.len() > MILLIS_DIGITS {
            return Err(ClockError::MillisOutOfRange(millis_text.to_owned()));
        }
        if millis_text.len() < MILLIS_DIGITS {
            return Err(wrong_shape());
        }

        let is_lower_hex = |byte: u8| matches!(byte, b'0'..=b'9' | b'a'..=b'f');
        if counter_text.is_empty() || !counter_text.bytes().all(is_lower_hex) {
            return Err(wrong_shape());
        }
        if counter_text.len() > COUNTER_DIGITS {
            return Err(ClockError::CounterOverflow(counter_text.to_owned()));
        }
        if counter_text.len() < COUNTER_DIGITS {
            return Err(wrong_shape());
        }

        if !is_valid_node(node) {
            return Err(ClockError::NodeInvalid(node.to_owned()));
        }

        // Both fields were checked to be fixed-width digits, so these parses cannot fail.
        let millis = millis_text.parse().map_err(|_| wrong_shape())?;
        let counter = u32::from_str_radix(counter_text, 16).map_err(|_| wrong_shape())?;
        Ok(Hlc {
            millis,
            counter,
            node: node.to_owned(),
        })
    }
}

fn is_valid_node(node: &str) -> bool {
    (1..=MAX_NODE_LEN).contains(&node.len())
        && node
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b':' | b'-'))
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The result of [`ServerClock::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The stamp to store the write under.
    pub stamp: Hlc,
    /// The remote stamp was too far in the future and `stamp` is a fresh server stamp instead.
    pub restamped: bool,
}

/// The server's hybrid logical clock, shared by all request handlers.
///
/// The wall clock is passed in rather than read here, so callers pass the system time and tests
/// pass whatever they need.
#[derive(Debug)]
pub struct ServerClock {
    /// The greatest stamp issued or accepted so far (with this server's node id).
    last: Mutex<Hlc>,
    max_drift_ms: u64,
}

impl ServerClock {
    /// A clock that stamps with `node` and accepts remote stamps at most `max_drift_ms` ahead of
    /// the wall clock.
    ///
    /// # Panics
    ///
    /// If `node` is not a valid node id (1 to 64 characters of A-Z, a-z, 0-9, `_`, `.`, `:`, `-`):
    /// its stamps could not be written as text.
    pub fn new(node: impl Into<String>, max_drift_ms: u64) -> Self {
        let node = node.into();
        assert!(is_valid_node(&node), "invalid HLC node id {node:?}");
        ServerClock {
            last: Mutex::new(Hlc {
                millis: 0,
                counter: 0,
                node,
            }),
            max_drift_ms,
        }
    }

    /// A clock for a process that stamps only its own writes (the CLI, the demo loader): no
    /// device's stamp is offered to it, so it allows no drift.
    pub fn for_own_writes(node: impl Into<String>) -> Self {
        Self::new(node, 0)
    }

    /// A new stamp for a local event, greater than every stamp issued or accepted before.
    pub fn now(&self, wall_ms: u64) -> Hlc {
        let mut last = self.lock();
        let millis = last.millis.max(wall_ms);
        let counter = if millis == last.millis {
            last.counter + 1
        } else {
            0
        };
        set_carrying(&mut last, millis, counter);
        last.clone()
    }

    /// Receives a stamp from a device.
    ///
    /// A stamp within the drift allowance is merged into the clock, so later [`now`](Self::now)
    /// stamps come after it, and is returned unchanged. A stamp further ahead is not merged; it
    /// is replaced by a fresh server stamp that keeps the device's node id for tie-breaking.
    pub fn observe(&self, remote: &Hlc, wall_ms: u64) -> Observed {
        if remote.millis > wall_ms.saturating_add(self.max_drift_ms) {
            let mut stamp = self.now(wall_ms);
            stamp.node.clone_from(&remote.node);
            return Observed {
                stamp,
                restamped: true,
            };
        }

        let mut last = self.lock();
        let millis = last.millis.max(remote.millis).max(wall_ms);
        // The counter continues from whichever clocks are already at `millis`.
        let counter = match (millis == last.millis, millis == remote.millis) {
            (true, true) => last.counter.max(remote.counter) + 1,
            (true, false) => last.counter + 1,
            (false, true) => remote.counter + 1,
            (false, false) => 0,
        };
        set_carrying(&mut last, millis, counter);
        Observed {
            stamp: remote.clone(),
            restamped: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hlc> {
        // The guarded stamp is replaced by whole-field writes that cannot panic halfway, so a
        // poisoned lock still holds a consistent stamp.
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sets the clock to (`millis`, `counter`); a counter past the text form's 4 hex digits carries
/// into the next millisecond instead.
fn set_carrying(last: &mut Hlc, millis: u64, counter: u32) {
    if counter > MAX_COUNTER {
        last.millis = millis + 1;
        last.counter = 0;
    } else {
        last.millis = millis;
        last.counter = counter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WALL: u64 = 1_764_300_000_000;
    const DRIFT: u64 = 60_000;

    fn hlc(millis: u64, counter: u32, node: &str) -> Hlc {
        Hlc {
            millis,
            counter,
            node: node.to_owned(),
        }
    }

    #[test]
    fn text_form_is_fixed_width() {
        assert_eq!(
            hlc(WALL, 0x1f, "server").to_string(),
            "1764300000000-001f-server"
        );
        assert_eq!(hlc(5, 0, "a").to_string(), "0000000000005-0000-a");
        assert_eq!(
            hlc(MAX_MILLIS, MAX_COUNTER, "a").to_string(),
            "9999999999999-ffff-a"
        );
    }

    #[test]
    fn parses_uuid_nodes_with_dashes() {
        let text = "1764300000000-00a0-0b6c4f9e-2d1a-4c3e-9f3b-7a1d2e3f4a5b";
        let stamp: Hlc = text.parse().unwrap();
        assert_eq!(
            stamp,
            hlc(WALL, 0xa0, "0b6c4f9e-2d1a-4c3e-9f3b-7a1d2e3f4a5b")
        );
        assert_eq!(stamp.to_string(), text);
    }

    #[test]
    fn rejects_malformed_text() {
        let wrong_shape = [
            "",
            "abc",
            "123-zz-x",
            "1764300000000",
            "1764300000000-0000",
            "176430000000-0000-x",
            "+764300000000-0000-x",
            "1764300000000-000-x",
            "1764300000000-00AF-x",
            "1764300000000-+0af-x",
            " 1764300000000-0000-x",
        ];
        for text in wrong_shape {
            assert_eq!(
                text.parse::<Hlc>(),
                Err(ClockError::WrongShape(text.to_owned())),
                "{text:?}"
            );
        }
        assert_eq!(
            "1764300000000-10000-x".parse::<Hlc>(),
            Err(ClockError::CounterOverflow("10000".to_owned()))
        );
        assert_eq!(
            "17643000000000-0000-x".parse::<Hlc>(),
            Err(ClockError::MillisOutOfRange("17643000000000".to_owned()))
        );
        let too_long = "n".repeat(MAX_NODE_LEN + 1);
        for node in ["", "bad node", "bad/node", "thiết-bị", too_long.as_str()] {
            assert_eq!(
                format!("1764300000000-0000-{node}").parse::<Hlc>(),
                Err(ClockError::NodeInvalid(node.to_owned())),
                "{node:?}"
            );
        }
        assert!("1764300000000-0000-server:1_a.B-2".parse::<Hlc>().is_ok());
        assert!(
            format!("1764300000000-0000-{}", "n".repeat(MAX_NODE_LEN))
                .parse::<Hlc>()
                .is_ok()
        );
    }

    #[test]
    fn serde_uses_the_text_form() {
        let stamp = hlc(WALL, 2, "server");
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, r#""1764300000000-0002-server""#);
        assert_eq!(serde_json::from_str::<Hlc>(&json).unwrap(), stamp);
        assert!(serde_json::from_str::<Hlc>(r#""1764300000000-0002-""#).is_err());
        assert!(serde_json::from_str::<Hlc>("17").is_err());
    }

    #[test]
    #[should_panic(expected = "invalid HLC node id")]
    fn server_clock_rejects_invalid_node() {
        ServerClock::new("bad node", DRIFT);
    }

    #[test]
    fn now_counts_within_a_millisecond_and_survives_the_wall_clock_stepping_back() {
        let clock = ServerClock::new("server", DRIFT);
        assert_eq!(clock.now(WALL), hlc(WALL, 0, "server"));
        assert_eq!(clock.now(WALL), hlc(WALL, 1, "server"));
        assert_eq!(clock.now(WALL - 5_000), hlc(WALL, 2, "server"));
        assert_eq!(clock.now(WALL + 1), hlc(WALL + 1, 0, "server"));
    }

    #[test]
    fn counter_overflow_carries_into_the_next_millisecond() {
        let clock = ServerClock::new("server", DRIFT);
        for counter in 0..=MAX_COUNTER {
            assert_eq!(clock.now(WALL), hlc(WALL, counter, "server"));
        }
        assert_eq!(clock.now(WALL), hlc(WALL + 1, 0, "server"));
    }

    #[test]
    fn observed_stamp_within_drift_is_kept_and_moves_the_clock() {
        let clock = ServerClock::new("server", DRIFT);
        let remote = hlc(WALL + DRIFT, 7, "device");
        let observed = clock.observe(&remote, WALL);
        assert_eq!(
            observed,
            Observed {
                stamp: remote.clone(),
                restamped: false
            }
        );
        let next = clock.now(WALL);
        assert_eq!(next, hlc(WALL + DRIFT, 9, "server"));
    }

    #[test]
    fn observed_stamp_at_the_counter_limit_carries() {
        let clock = ServerClock::new("server", DRIFT);
        let remote = hlc(WALL, MAX_COUNTER, "device");
        assert!(!clock.observe(&remote, WALL).restamped);
        assert_eq!(clock.now(WALL), hlc(WALL + 1, 1, "server"));
    }

    #[test]
    fn future_stamp_is_restamped_and_does_not_move_the_clock() {
        let clock = ServerClock::new("server", DRIFT);
        clock.now(WALL);
        let remote = hlc(WALL + DRIFT + 1, 0, "device");
        let observed = clock.observe(&remote, WALL);
        assert_eq!(
            observed,
            Observed {
                stamp: hlc(WALL, 1, "device"),
                restamped: true
            }
        );
        assert_eq!(clock.now(WALL), hlc(WALL, 2, "server"));
    }

    /// Either a local event or a remote stamp arriving, at some wall time.
    #[derive(Debug, Clone)]
    enum Event {
        Now { wall_ms: u64 },
        Observe { remote: Hlc, wall_ms: u64 },
    }

    fn node_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.:-]{1,64}"
    }

    fn hlc_strategy() -> impl Strategy<Value = Hlc> {
        (0..=MAX_MILLIS, 0..=MAX_COUNTER, node_strategy()).prop_map(|(millis, counter, node)| Hlc {
            millis,
            counter,
            node,
        })
    }

    /// Stamps drawn from few values, so equal millis, counters and node prefixes are common.
    fn clashing_hlc_strategy() -> impl Strategy<Value = Hlc> {
        let millis = prop_oneof![0..3u64, Just(MAX_MILLIS), 0..=MAX_MILLIS];
        let counter = prop_oneof![0..3u32, Just(0xa), Just(MAX_COUNTER), 0..=MAX_COUNTER];
        (millis, counter, "[a-c.:_-]{1,3}").prop_map(|(millis, counter, node)| Hlc {
            millis,
            counter,
            node,
        })
    }

    fn event_strategy() -> impl Strategy<Value = Event> {
        // Wall times wander back and forth; remote stamps range from far behind to far ahead.
        let wall = WALL - 1_000..WALL + 1_000;
        prop_oneof![
            wall.clone().prop_map(|wall_ms| Event::Now { wall_ms }),
            (
                wall,
                -5_000i64..3 * DRIFT as i64,
                0..=MAX_COUNTER,
                prop_oneof![Just("device-a"), Just("device-b")],
            )
                .prop_map(|(wall_ms, offset, counter, node)| Event::Observe {
                    remote: hlc(wall_ms.saturating_add_signed(offset), counter, node),
                    wall_ms,
                }),
        ]
    }

    proptest! {
        #[test]
        fn text_round_trips(stamp in hlc_strategy()) {
            let text = stamp.to_string();
            prop_assert_eq!(text.parse::<Hlc>(), Ok(stamp));
        }

        #[test]
        fn text_order_is_stamp_order(a in clashing_hlc_strategy(), b in clashing_hlc_strategy()) {
            prop_assert_eq!(a.to_string().cmp(&b.to_string()), a.cmp(&b));
        }

        #[test]
        fn now_is_strictly_increasing(
            walls in proptest::collection::vec(prop_oneof![WALL - 2..WALL + 2, 0..WALL], 1..50)
        ) {
            let clock = ServerClock::new("server", DRIFT);
            let mut previous = clock.now(0);
            for wall_ms in walls {
                let stamp = clock.now(wall_ms);
                prop_assert!(stamp > previous, "{stamp} after {previous}");
                prop_assert!(stamp.millis >= wall_ms);
                previous = stamp;
            }
        }

        #[test]
        fn later_stamps_follow_everything_issued_or_accepted(
            events in proptest::collection::vec(event_strategy(), 1..40)
        ) {
            let clock = ServerClock::new("server", DRIFT);
            let mut latest: Option<(u64, u32)> = None;
            for event in events {
                match event {
                    Event::Now { wall_ms } => {
                        let stamp = clock.now(wall_ms);
                        let position = (stamp.millis, stamp.counter);
                        prop_assert!(latest < Some(position), "{stamp} after {latest:?}");
                        latest = Some(position);
                    }
                    Event::Observe { remote, wall_ms } => {
                        let observed = clock.observe(&remote, wall_ms);
                        let within_drift = remote.millis <= wall_ms + DRIFT;
                        prop_assert_eq!(observed.restamped, !within_drift);
                        prop_assert_eq!(&observed.stamp.node, &remote.node);
                        if within_drift {
                            prop_assert_eq!(&observed.stamp, &remote);
                            latest = latest.max(Some((remote.millis, remote.counter)));
                        } else {
                            let position = (observed.stamp.millis, observed.stamp.counter);
                            prop_assert!(latest < Some(position));
                            latest = Some(position);
                        }
                    }
                }
            }
        }

        /// A restamped observe leaves the clock exactly as a plain `now` would have.
        #[test]
        fn future_stamps_never_move_the_clock(
            events in proptest::collection::vec(event_strategy(), 1..40)
        ) {
            let clock = ServerClock::new("server", DRIFT);
            let reference = ServerClock::new("server", DRIFT);
            for event in events {
                match event {
                    Event::Now { wall_ms } => {
                        prop_assert_eq!(clock.now(wall_ms), reference.now(wall_ms));
                    }
                    Event::Observe { remote, wall_ms } => {
                        let observed = clock.observe(&remote, wall_ms);
                        if observed.restamped {
                            let expected = reference.now(wall_ms);
                            prop_assert_eq!(
                                (observed.stamp.millis, observed.stamp.counter),
                                (expected.millis, expected.counter)
                            );
                        } else {
                            reference.observe(&remote, wall_ms);
                        }
                    }
                }
            }
        }
    }
}
