//! What a key may use: its limits as set by an admin, and the budget periods (UTC days and
//! months) they are counted in.

use serde::{Deserialize, Serialize};

/// Per-key limits; each absent one does not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests admitted in any 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt + completion, from each answer's `usage`) in any 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once (waiting in the queue included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Tokens per `budget_period`, persisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
    /// `day` or `month` (UTC); `month` when a budget is set without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_period: Option<Period>,
    /// Rank of the key's requests in the wait queue, 0 (the default) to [`MAX_PRIORITY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

/// The highest priority a key may have.
pub const MAX_PRIORITY: u8 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == KeyLimits::default()
    }

    /// Every limit set is above zero.
    pub fn validate(&self) -> Result<(), String> {
        let zero = [
            (
                "requests_per_minute",
                self.requests_per_minute.map(u64::from),
            ),
            ("tokens_per_minute", self.tokens_per_minute),
            ("max_concurrent", self.max_concurrent.map(u64::from)),
            ("token_budget", self.token_budget),
        ]
        .into_iter()
        .find(|(_, v)| *v == Some(0));
        if let Some((name, _)) = zero {
            return Err(format!(
                "'{name}' must be above 0 (leave it out for no limit)"
            ));
        }
        if self.priority.is_some_and(|p| p > MAX_PRIORITY) {
            return Err(format!("'priority' is 0 to {MAX_PRIORITY}"));
        }
        if self.budget_period.is_some() && self.token_budget.is_none() {
            return Err("'budget_period' needs a 'token_budget'".to_owned());
        }
        Ok(())
    }

    /// The budget and its period, when one is set.
    pub fn budget(&self) -> Option<(u64, Period)> {
        self.token_budget
            .map(|b| (b, self.budget_period.unwrap_or(Period::Month)))
    }
}

const DAY_MS: u64 = 86_400_000;

/// The period containing `now_ms`: its label (`2026-12-03`, `2026-12`) and when it ends (Unix ms).
pub fn period_at(period: Period, now_ms: u64) -> (String, u64) {
    let days = i64::try_from(now_ms / DAY_MS).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(days);
    match period {
        Period::Day => (
            format!("{y:04}-{m:02}-{d:02}"),
            (now_ms / DAY_MS + 1) * DAY_MS,
        ),
        Period::Month => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let end_days = days_from_civil(ny, nm, 1);
            (
                format!("{y:04}-{m:02}"),
                u64::try_from(end_days).unwrap_or(0) * DAY_MS,
            )
        }
    }
}

/// Year, month, day of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_days_and_months() {
        // 2026-12-03T18:00:00Z
        let now = 1_796_320_800_000;
        assert_eq!(
            period_at(Period::Day, now),
            ("2026-12-03".to_owned(), 1_796_342_400_000)
        );
        // Ends 2027-01-01T00:00:00Z.
        assert_eq!(
            period_at(Period::Month, now),
            ("2026-12".to_owned(), 1_798_761_600_000)
        );
        assert_eq!(period_at(Period::Month, 0).0, "1970-01");
        // 2024-02-29 (leap day) → March starts next.
        let leap = days_from_civil(2024, 2, 29) as u64 * DAY_MS;
        assert_eq!(period_at(Period::Day, leap).0, "2024-02-29");
        assert_eq!(
            period_at(Period::Month, leap).1,
            days_from_civil(2024, 3, 1) as u64 * DAY_MS
        );
    }

    #[test]
    fn limits_are_checked() {
        assert!(KeyLimits::default().is_empty());
        let zero = KeyLimits {
            requests_per_minute: Some(0),
            ..KeyLimits::default()
        };
        assert!(zero.validate().is_err());
        let period_alone = KeyLimits {
            budget_period: Some(Period::Day),
            ..KeyLimits::default()
        };
        assert!(period_alone.validate().is_err());
        let budget = KeyLimits {
            token_budget: Some(10),
            ..KeyLimits::default()
        };
        assert_eq!(budget.budget(), Some((10, Period::Month)));
        assert!(serde_json::from_str::<KeyLimits>(r#"{"rpm": 1}"#).is_err());
    }
}
