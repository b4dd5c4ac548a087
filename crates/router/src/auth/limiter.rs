//! Login throttling: after [`MAX_FAILURES`] failed logins from one client address within
//! [`WINDOW`], further attempts from it are refused (429) until the window has passed.
//!
//! Only failures count, so a user who types the password right is never slowed down; argon2's
//! cost bounds how fast the allowed attempts can go.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond, expired entries are dropped first.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Failures>>,
}

impl LoginLimiter {
    /// `Err(retry_after)` when `client` has failed too often recently.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(client) {
            Some(f) if f.count >= MAX_FAILURES && now.duration_since(f.since) < WINDOW => {
                Err(WINDOW.saturating_sub(now.duration_since(f.since)))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, client: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| now.duration_since(f.since) < WINDOW);
        }
        let entry = failures.entry(client.to_owned()).or_insert(Failures {
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
    }

    pub fn succeeded(&self, client: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_until_the_window_passes() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.check("1.2.3.4", t0).is_ok());
            limiter.failed("1.2.3.4", t0);
        }
        let wait = limiter.check("1.2.3.4", t0).unwrap_err();
        assert_eq!(wait, WINDOW);
        assert!(
            limiter.check("5.6.7.8", t0).is_ok(),
            "other clients unaffected"
        );
        assert!(limiter.check("1.2.3.4", t0 + WINDOW).is_ok());
    }

    #[test]
    fn success_clears_the_count() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed("c", t0);
        }
        limiter.succeeded("c");
        limiter.failed("c", t0);
        assert!(limiter.check("c", t0).is_ok());
    }
}
