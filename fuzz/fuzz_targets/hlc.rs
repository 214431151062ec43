//! Hybrid logical clock stamps: parsing any text never panics and accepts only the canonical
//! form (format ∘ parse is the identity on accepted text); the text order of two accepted
//! stamps is their order; the server clock merging parsed stamps stays strictly increasing and
//! its stamps stay printable.

#![no_main]

use diemdanh::sync::clock::{Hlc, ServerClock};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_DRIFT_MS: u64 = 60_000;
/// The wall clock ranges over the years 1970 to 2200 (the server's own clock, not input).
const MAX_WALL_MS: u64 = 7_258_118_400_000;

fn parse_and_check(text: &str) -> Option<Hlc> {
    let stamp = text.parse::<Hlc>().ok()?;
    assert_eq!(
        stamp.to_string(),
        text,
        "only the canonical form is accepted"
    );
    Some(stamp)
}

fn run_clock(input: &mut Unstructured, stamps: &[Hlc]) -> Result<()> {
    let clock = ServerClock::new("server", MAX_DRIFT_MS);
    let mut latest: Option<(u64, u32)> = None;
    let mut wall_ms = input.int_in_range(0..=MAX_WALL_MS)?;
    for stamp in stamps {
        // The wall clock mostly moves forward, and sometimes steps back.
        let step: i32 = input.arbitrary()?;
        wall_ms = wall_ms
            .saturating_add_signed(i64::from(step))
            .min(MAX_WALL_MS);
        let observed = clock.observe(stamp, wall_ms);
        if !observed.restamped {
            assert_eq!(&observed.stamp, stamp);
            latest = latest.max(Some((stamp.millis, stamp.counter)));
        }
        let now = clock.now(wall_ms);
        let position = (now.millis, now.counter);
        assert!(latest < Some(position), "{now} after {latest:?}");
        assert!(now.millis >= wall_ms);
        assert_eq!(
            now.to_string().parse(),
            Ok(now.clone()),
            "clock stamps print"
        );
        latest = Some(position);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    parse_and_check(&text);

    // Several stamps, one per line: their text order is their order.
    let stamps: Vec<Hlc> = text.lines().filter_map(parse_and_check).collect();
    for pair in stamps.windows(2) {
        assert_eq!(
            pair[0].cmp(&pair[1]),
            pair[0].to_string().cmp(&pair[1].to_string())
        );
    }
    let _ = run_clock(&mut Unstructured::new(data), &stamps);
});
