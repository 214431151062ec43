//! Login throttling. Failed logins are counted in the database (`login_failures`), so that every
//! instance on one database sees the same counts, in three scopes over a sliding window:
//!
//! - the account from one client address: past its limit, that address waits for the window;
//! - the client address, whatever the accounts: past its limit, the address waits for the window;
//! - the account, from any address: past the same number of failures the account is slowed
//!   down, not locked: each further attempt must wait 1, 2, 4… seconds (up to a ceiling) after
//!   the account's last failure. Someone guessing from many addresses gets a few guesses a
//!   minute; the owner, from an address of their own, waits at most the ceiling.
//!
//! A refused attempt answers 429 with `Retry-After` and is not counted. A successful login clears
//! the account's failures and the pair's, not the address's.

use std::time::Duration;

use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::login_failures;
use crate::domain::values::new_id;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    window_ms: i64,
    /// Failures of one account from one address before that pair waits for the window; also
    /// the failures of an account before it is slowed down.
    per_pair: i64,
    per_address: i64,
    max_delay_ms: i64,
}

/// The failures of one scope inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub oldest_at: Option<i64>,
    pub latest_at: Option<i64>,
}

/// The three scopes a login attempt is counted in.
struct Scopes {
    account: String,
    pair: String,
    address: String,
}

impl Scopes {
    fn of(username: &str, address: &str) -> Scopes {
        let account = username.trim().to_lowercase();
        Scopes {
            pair: format!("pair:{account}\n{address}"),
            account: format!("account:{account}"),
            address: format!("address:{address}"),
        }
    }
}

impl LoginThrottle {
    pub fn new(window: Duration, per_pair: u32, per_address: u32, max_delay: Duration) -> Self {
        LoginThrottle {
            window_ms: window.as_millis() as i64,
            per_pair: i64::from(per_pair.max(1)),
            per_address: i64::from(per_address.max(1)),
            max_delay_ms: (max_delay.as_millis() as i64).max(1000),
        }
    }

    fn failures(&self, conn: &mut DbConn, scope: &str, now: i64) -> Result<Failures> {
        let (count, oldest_at, latest_at) = login_failures::table
            .filter(login_failures::scope.eq(scope))
            .filter(login_failures::failed_at.gt(now - self.window_ms))
            .select((
                count_star(),
                min(login_failures::failed_at),
                max(login_failures::failed_at),
            ))
            .get_result::<(i64, Option<i64>, Option<i64>)>(conn)?;
        Ok(Failures {
            count,
            oldest_at,
            latest_at,
        })
    }

    /// Fails with `rate_limited` when the attempt must wait.
    pub fn check(&self, conn: &mut DbConn, username: &str, address: &str, now: i64) -> Result<()> {
        let scopes = Scopes::of(username, address);
        let account = self.failures(conn, &scopes.account, now)?;
        let pair = self.failures(conn, &scopes.pair, now)?;
        let address = self.failures(conn, &scopes.address, now)?;
        match self.wait_ms(account, pair, address, now) {
            0 => Ok(()),
            wait => Err(Error::RateLimited {
                retry_after_secs: (wait as u64).div_ceil(1000).max(1),
            }),
        }
    }

    /// How long an attempt must wait, in milliseconds (0: it may go ahead).
    pub fn wait_ms(&self, account: Failures, pair: Failures, address: Failures, now: i64) -> i64 {
        let until_window_passes = |failures: Failures, limit: i64| match failures.oldest_at {
            Some(oldest) if failures.count >= limit => oldest + self.window_ms - now,
            _ => 0,
        };
        let slowed = match account.latest_at {
            Some(latest) if account.count >= self.per_pair => {
                let doublings = (account.count - self.per_pair).min(30) as u32;
                let delay = 1000_i64
                    .saturating_mul(1 << doublings)
                    .min(self.max_delay_ms);
                latest + delay - now
            }
            _ => 0,
        };
        until_window_passes(pair, self.per_pair)
            .max(until_window_passes(address, self.per_address))
            .max(slowed)
            .max(0)
    }

    /// Counts a failed attempt in its three scopes, and forgets failures older than the window.
    /// Runs inside the caller's write transaction.
    pub fn record_failure(
        &self,
        conn: &mut DbConn,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<()> {
        let scopes = Scopes::of(username, address);
        diesel::delete(
            login_failures::table.filter(login_failures::failed_at.le(now - self.window_ms)),
        )
        .execute(conn)?;
        // One row at a time: the connection that serves both backends has no batch insert.
        for scope in [scopes.account, scopes.pair, scopes.address] {
            diesel::insert_into(login_failures::table)
                .values((
                    login_failures::id.eq(new_id()),
                    login_failures::scope.eq(scope),
                    login_failures::failed_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    /// A successful login clears the account's failures and the pair's (not the address's).
    /// Runs inside the caller's transaction.
    pub fn record_success(&self, conn: &mut DbConn, username: &str, address: &str) -> Result<()> {
        let scopes = Scopes::of(username, address);
        diesel::delete(
            login_failures::table
                .filter(login_failures::scope.eq_any([scopes.account, scopes.pair])),
        )
        .execute(conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 900_000;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(
            Duration::from_millis(WINDOW as u64),
            5,
            20,
            Duration::from_secs(60),
        )
    }

    fn failures(count: i64, oldest_at: i64, latest_at: i64) -> Failures {
        Failures {
            count,
            oldest_at: Some(oldest_at),
            latest_at: Some(latest_at),
        }
    }

    const NONE: Failures = Failures {
        count: 0,
        oldest_at: None,
        latest_at: None,
    };

    #[test]
    fn a_pair_past_its_limit_waits_for_the_window() {
        let t = throttle();
        let pair = failures(5, 1_000, 5_000);
        assert_eq!(t.wait_ms(pair, pair, pair, 6_000), WINDOW - 5_000);
        assert_eq!(t.wait_ms(NONE, failures(4, 1_000, 5_000), NONE, 6_000), 0);
    }

    #[test]
    fn an_address_past_its_limit_waits_whatever_the_account() {
        let t = throttle();
        assert_eq!(
            t.wait_ms(NONE, NONE, failures(20, 0, 10_000), 10_000),
            WINDOW - 10_000
        );
        assert_eq!(t.wait_ms(NONE, NONE, failures(19, 0, 10_000), 10_000), 0);
    }

    #[test]
    fn an_account_is_slowed_down_progressively_never_locked() {
        let t = throttle();
        // Five failures from five addresses: one second after the last, then 2, 4… up to 60.
        let delays: Vec<i64> = (5..14)
            .map(|count| t.wait_ms(failures(count, 0, 100_000), NONE, NONE, 100_000))
            .collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
        // The wait runs from the last failure; once it has passed, the owner may try.
        let account = failures(40, 0, 100_000);
        assert_eq!(t.wait_ms(account, NONE, NONE, 130_000), 30_000);
        assert_eq!(t.wait_ms(account, NONE, NONE, 160_000), 0);
        assert_eq!(t.wait_ms(failures(4, 0, 100_000), NONE, NONE, 100_000), 0);
    }
}
