//! Test-only fault points: named places in the push path where a crash-test build kills its own
//! process with SIGKILL, so that `tests/crash` can crash the server at the worst moments (with
//! a batch written but not committed, or committed but not answered) and prove that nothing
//! acknowledged is lost. Built only with the `fault-points` feature; without it [`point`] is an
//! empty inline function and the binary holds none of this.
//!
//! Armed when the process starts by `DIEMDANH_FAULT_POINT=<name>@<n>`: the n-th pass through the
//! point of that name kills the process (`<name>` alone means the first pass).

/// A point inside a push where the SQL of some mutations has run and more are to come.
pub const PUSH_MID_BATCH: &str = "push_mid_batch";
/// A push whose whole batch is written, before its transaction commits.
pub const PUSH_BEFORE_COMMIT: &str = "push_before_commit";
/// A push that is committed, before its response is sent.
pub const PUSH_AFTER_COMMIT: &str = "push_after_commit";

#[cfg(not(feature = "fault-points"))]
#[inline(always)]
pub fn point(_name: &str) {}

#[cfg(feature = "fault-points")]
pub fn point(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Armed {
        name: String,
        at_pass: u64,
        passes: AtomicU64,
    }

    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let value = std::env::var("DIEMDANH_FAULT_POINT").ok()?;
        let (name, at_pass) = value.split_once('@').unwrap_or((&value, "1"));
        let known = [PUSH_MID_BATCH, PUSH_BEFORE_COMMIT, PUSH_AFTER_COMMIT];
        let at_pass = at_pass.parse().ok().filter(|&n| n > 0);
        match at_pass {
            Some(at_pass) if known.contains(&name) => Some(Armed {
                name: name.to_owned(),
                at_pass,
                passes: AtomicU64::new(0),
            }),
            // A typo must not leave the crash test waiting for a point that never fires.
            _ => {
                eprintln!("DIEMDANH_FAULT_POINT={value}: expected <one of {known:?}>@<pass ≥ 1>");
                std::process::exit(2)
            }
        }
    });
    if let Some(armed) = armed
        && armed.name == name
        && armed.passes.fetch_add(1, Ordering::SeqCst) + 1 == armed.at_pass
    {
        eprintln!(
            "fault point {name} reached (pass {}): SIGKILL",
            armed.at_pass
        );
        // SAFETY: kill and getpid have no memory-safety preconditions. A signal a process sends
        // itself is delivered before kill returns, and SIGKILL cannot be caught or blocked.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        unreachable!("SIGKILL returned");
    }
}
