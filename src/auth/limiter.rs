//! Login rate limiting: failed attempts are counted per account and per client address in a
//! sliding window; past the limit a login answers 429 with the seconds until the oldest failure
//! leaves the window. Counters live in this process (documented: with several instances each
//! keeps its own, so the effective limit is per instance).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Above this many tracked keys, keys with no failure inside the window are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    per_account: u32,
    per_address: u32,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(window: Duration, per_account: u32, per_address: u32) -> Self {
        LoginLimiter {
            window,
            per_account: per_account.max(1),
            per_address: per_address.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, address: &str) -> [(String, bool); 2] {
        [
            (format!("user:{}", username.trim().to_lowercase()), true),
            (format!("addr:{address}"), false),
        ]
    }

    /// Fails with `rate_limited` when either counter is full.
    pub fn check(&self, username: &str, address: &str, now: Instant) -> Result<()> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = Duration::ZERO;
        for (key, is_account) in Self::keys(username, address) {
            let limit = if is_account {
                self.per_account
            } else {
                self.per_address
            } as usize;
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    wait = wait.max(self.window.saturating_sub(now.duration_since(*oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(Error::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            })
        }
    }

    pub fn record_failure(&self, username: &str, address: &str, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > PRUNE_ABOVE {
            let window = self.window;
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for (key, _) in Self::keys(username, address) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    /// A successful login clears the account's counter (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&format!("user:{}", username.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_limited_after_its_failures_until_the_window_passes() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let start = Instant::now();
        for i in 0..3 {
            limiter.check("Hoa", "1.2.3.4", start).unwrap();
            limiter.record_failure("hoa", "1.2.3.4", start + Duration::from_secs(i));
        }
        let Err(Error::RateLimited { retry_after_secs }) =
            limiter.check("hoa", "5.6.7.8", start + Duration::from_secs(10))
        else {
            panic!("expected rate limit")
        };
        assert_eq!(retry_after_secs, 50);
        assert!(
            limiter
                .check("other", "1.2.3.4", start + Duration::from_secs(10))
                .is_ok()
        );
        assert!(
            limiter
                .check("hoa", "1.2.3.4", start + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        let now = Instant::now();
        limiter.record_failure("a", "9.9.9.9", now);
        limiter.record_failure("b", "9.9.9.9", now);
        assert!(limiter.check("c", "9.9.9.9", now).is_err());
        assert!(limiter.check("c", "8.8.8.8", now).is_ok());
    }

    #[test]
    fn success_clears_the_account_counter() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 1, 100);
        let now = Instant::now();
        limiter.record_failure("a", "1.1.1.1", now);
        assert!(limiter.check("a", "2.2.2.2", now).is_err());
        limiter.record_success("A");
        assert!(limiter.check("a", "2.2.2.2", now).is_ok());
    }
}
