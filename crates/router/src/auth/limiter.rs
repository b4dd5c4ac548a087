//! Login throttling, per client address and per account (the username tried): after
//! [`MAX_ADDRESS_FAILURES`] failures from one address, or [`MAX_ACCOUNT_FAILURES`] for one account,
//! within [`WINDOW`], further attempts are refused (429) until the window has passed.
//!
//! An attempt is counted as failed *before* its password is checked ([`LoginLimiter::reserve`]),
//! so parallel attempts cannot all pass a check that only their results would have closed; a right
//! password gives its count back. Only failures count: a user who types the password right is
//! never slowed down. A success forgets the account's failures but not the address's, so logging
//! in to one account does not buy guesses at another.
//!
//! Unknown usernames are counted like known ones (the limiter cannot tell them apart, and a
//! difference would tell an attacker which names exist); each table holds at most
//! [`MAX_TRACKED`] entries, the oldest evicted first.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub const MAX_ADDRESS_FAILURES: u32 = 5;
pub const MAX_ACCOUNT_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Entries one table remembers at most; beyond, expired entries are dropped, then the oldest.
const MAX_TRACKED: usize = 10_000;
/// Characters of a username kept as its key (usernames have at most 64; longer ones share a key
/// with their first 65 characters, and no user).
const MAX_KEY_CHARS: usize = 65;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

/// Failures by key (an address, or an account), each key with at most `limit` per window.
#[derive(Debug)]
struct Table {
    limit: u32,
    entries: HashMap<String, Failures>,
}

impl Table {
    fn new(limit: u32) -> Table {
        Table {
            limit,
            entries: HashMap::new(),
        }
    }

    /// `Err(retry_after)` when `key` has failed `limit` times within the window.
    fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.entries.get(key) {
            Some(f) if f.count >= self.limit && now.duration_since(f.since) < WINDOW => {
                Err(WINDOW.saturating_sub(now.duration_since(f.since)))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure of `key`; the start of its window.
    fn count(&mut self, key: &str, now: Instant) -> Instant {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_TRACKED {
            self.make_room(now);
        }
        let entry = self.entries.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.duration_since(entry.since) >= WINDOW {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count += 1;
        entry.since
    }

    /// Takes back one failure of `key` counted in the window that started at `since`.
    fn uncount(&mut self, key: &str, since: Instant) {
        if let Some(entry) = self.entries.get_mut(key).filter(|f| f.since == since) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                self.entries.remove(key);
            }
        }
    }

    fn make_room(&mut self, now: Instant) {
        self.entries
            .retain(|_, f| now.duration_since(f.since) < WINDOW);
        if self.entries.len() >= MAX_TRACKED {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
    }
}

#[derive(Debug)]
struct Tables {
    addresses: Table,
    accounts: Table,
}

#[derive(Debug)]
pub struct LoginLimiter {
    tables: Mutex<Tables>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            tables: Mutex::new(Tables {
                addresses: Table::new(MAX_ADDRESS_FAILURES),
                accounts: Table::new(MAX_ACCOUNT_FAILURES),
            }),
        }
    }
}

/// An attempt counted as failed until it is given back ([`LoginLimiter::give_back`],
/// [`LoginLimiter::succeeded`]); dropping it leaves it counted.
#[derive(Debug)]
#[must_use = "an attempt stays counted as failed unless given back"]
pub struct Attempt {
    address: String,
    address_since: Instant,
    account: String,
    account_since: Instant,
}

impl LoginLimiter {
    /// Counts an attempt on `account` from `address` as failed, unless either has failed too often
    /// recently: then nothing is counted and `Err(retry_after)` says how long to wait.
    pub fn reserve(&self, address: &str, account: &str, now: Instant) -> Result<Attempt, Duration> {
        let account = account_key(account);
        let mut tables = self.lock();
        let wait = [
            tables.addresses.check(address, now),
            tables.accounts.check(account, now),
        ]
        .into_iter()
        .filter_map(Result::err)
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        Ok(Attempt {
            address_since: tables.addresses.count(address, now),
            address: address.to_owned(),
            account_since: tables.accounts.count(account, now),
            account: account.to_owned(),
        })
    }

    /// The attempt was not decided (no password check ran): it does not count.
    pub fn give_back(&self, attempt: Attempt) {
        let mut tables = self.lock();
        tables
            .addresses
            .uncount(&attempt.address, attempt.address_since);
        tables
            .accounts
            .uncount(&attempt.account, attempt.account_since);
    }

    /// The password was right: the attempt does not count, and the account's failures are
    /// forgotten. The address's stay: a success on one account is no licence to guess another's.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut tables = self.lock();
        tables
            .addresses
            .uncount(&attempt.address, attempt.address_since);
        tables.accounts.entries.remove(&attempt.account);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The username as a key: its first [`MAX_KEY_CHARS`] characters.
fn account_key(username: &str) -> &str {
    username
        .char_indices()
        .nth(MAX_KEY_CHARS)
        .map_or(username, |(end, _)| &username[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_an_address_after_its_failures_until_the_window_passes() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_ADDRESS_FAILURES {
            drop(limiter.reserve("1.2.3.4", &format!("user{i}"), t0).unwrap());
        }
        let wait = limiter.reserve("1.2.3.4", "other", t0).unwrap_err();
        assert_eq!(wait, WINDOW);
        assert!(
            limiter.reserve("5.6.7.8", "other", t0).is_ok(),
            "other clients unaffected"
        );
        assert!(limiter.reserve("1.2.3.4", "other", t0 + WINDOW).is_ok());
    }

    #[test]
    fn locks_an_account_after_its_failures_from_any_address() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_ACCOUNT_FAILURES {
            drop(
                limiter
                    .reserve(&format!("10.0.0.{i}"), "admin", t0)
                    .unwrap(),
            );
        }
        assert!(limiter.reserve("10.0.1.1", "admin", t0).is_err());
        assert!(limiter.reserve("10.0.1.1", "viewer", t0).is_ok());
    }

    #[test]
    fn reserved_attempts_count_before_they_are_decided() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let pending: Vec<Attempt> = (0..MAX_ADDRESS_FAILURES)
            .map(|_| limiter.reserve("c", "admin", t0).unwrap())
            .collect();
        assert!(limiter.reserve("c", "admin", t0).is_err(), "all in flight");
        let mut pending = pending.into_iter();
        limiter.give_back(pending.next().unwrap());
        assert!(
            limiter.reserve("c", "admin", t0).is_ok(),
            "one was given back"
        );
    }

    #[test]
    fn success_forgets_the_account_but_not_the_address() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_ADDRESS_FAILURES - 1 {
            drop(limiter.reserve("c", "admin", t0).unwrap());
        }
        let viewer = limiter.reserve("c", "viewer", t0).unwrap();
        limiter.succeeded(viewer);
        drop(limiter.reserve("c", "admin", t0).unwrap());
        assert!(
            limiter.reserve("c", "admin", t0).is_err(),
            "the viewer's success gave the address nothing"
        );
        // The admin's own success forgets the admin account's failures (seen from elsewhere).
        for _ in 0..MAX_ACCOUNT_FAILURES - MAX_ADDRESS_FAILURES - 1 {
            drop(limiter.reserve("d", "admin", t0).unwrap());
        }
        let right = limiter.reserve("e", "admin", t0).unwrap();
        limiter.succeeded(right);
        for _ in 0..MAX_ADDRESS_FAILURES {
            drop(limiter.reserve("f", "admin", t0).unwrap());
        }
        assert!(limiter.reserve("g", "admin", t0).is_ok());
    }

    #[test]
    fn tables_stay_bounded_evicting_the_oldest() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            let at = t0 + Duration::from_millis(i as u64);
            drop(
                limiter
                    .reserve(&format!("a-{i}"), &format!("name-{i}"), at)
                    .ok(),
            );
        }
        let tables = limiter.lock();
        assert!(tables.accounts.entries.len() <= MAX_TRACKED);
        assert!(tables.addresses.entries.len() <= MAX_TRACKED);
    }

    #[test]
    fn long_usernames_are_keyed_by_their_start() {
        let long = "x".repeat(10_000);
        assert_eq!(account_key(&long).len(), MAX_KEY_CHARS);
        assert_eq!(account_key("admin"), "admin");
    }
}
