//! Exponential backoff between download attempts.

use std::time::Duration;

/// How often and how patiently a download is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in a row that may fail before the pull gives up (at least 1). An attempt that
    /// received bytes before failing starts the count afresh, so a long download over a flaky
    /// link is not abandoned while it still advances.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// Upper bound of the wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure in a row (1-based): base, 2×base, 4×base … capped.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base_delay
            .checked_mul(1 << doublings)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_base_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.delay(0), Duration::from_secs(1));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(10));
    }
}
