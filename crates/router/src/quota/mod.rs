//! Per-key limits: requests and tokens per minute, requests in flight, and a token budget per day
//! or month that a restart does not reset.
//!
//! A request is admitted ([`Quotas::admit`]) before it is dispatched, or refused with the limit
//! it hit ([`OverLimit`]: the edge answers 429 with `Retry-After`). An admitted request holds a
//! [`Ticket`] until its answer ends (it rides on the request's recording): dropping it frees its
//! place among the key's concurrent requests, and the tokens its answer's `usage` reported are
//! counted for the per-minute window and the budget ([`Ticket::spent`]). Each limit refuses once
//! it is reached: the request that would go beyond a tokens limit cannot be known in advance
//! (tokens are known when its answer ends), so the last admitted request may take a key past a
//! tokens limit; the next one is refused.
//!
//! Budget spend goes to the store through the history writer (never on the request path) as
//! increments per key and period, and is read back at start.

mod limits;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use limits::{KeyLimits, MAX_PRIORITY, Period, period_at};

use crate::store::{HistorySink, SpendRow, StoreOp, unix_ms};

/// The window of the per-minute limits.
const WINDOW_MS: u64 = 60_000;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    RequestsPerMinute,
    TokensPerMinute,
    MaxConcurrent,
    TokenBudget,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::RequestsPerMinute => "requests_per_minute",
            Limit::TokensPerMinute => "tokens_per_minute",
            Limit::MaxConcurrent => "max_concurrent",
            Limit::TokenBudget => "token_budget",
        }
    }
}

/// A request refused by one of its key's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this API key reached its limit {} = {value}{}; retry in {} s",
    .limit.as_str(),
    .period.as_deref().map(|p| format!(" (period {p})")).unwrap_or_default(),
    .retry_after.as_secs()
)]
pub struct OverLimit {
    pub limit: Limit,
    pub value: u64,
    /// The budget period, for [`Limit::TokenBudget`].
    pub period: Option<String>,
    /// When the request could be admitted again (at least 1 s).
    pub retry_after: Duration,
}

/// What one key used, in the windows its limits look at.
#[derive(Debug, Default)]
struct KeyState {
    /// When each request of the last minute was admitted (Unix ms).
    requests: VecDeque<u64>,
    /// Tokens of each answer that ended in the last minute.
    tokens: VecDeque<(u64, u64)>,
    in_flight: u32,
}

impl KeyState {
    /// Forgets what happened a whole window before `now_ms` (the window is `(now - 60 s, now]`).
    fn forget_until(&mut self, now_ms: u64) {
        let gone = |at: u64| at + WINDOW_MS <= now_ms;
        while self.requests.front().is_some_and(|&at| gone(at)) {
            self.requests.pop_front();
        }
        while self.tokens.front().is_some_and(|&(at, _)| gone(at)) {
            self.tokens.pop_front();
        }
    }
}

/// The per-key counters of the whole router.
pub struct Quotas {
    keys: Mutex<HashMap<String, KeyState>>,
    /// Tokens spent per key and period label (`2026-12-03`, `2026-12`).
    spend: Mutex<HashMap<(String, String), u64>>,
    sink: HistorySink,
    /// Unix ms now (a fixed clock in tests).
    clock: fn() -> u64,
}

fn system_clock() -> u64 {
    unix_ms(SystemTime::now())
}

impl Quotas {
    /// The counters, with the budget spend read from the store.
    pub fn new(sink: HistorySink, stored: Vec<SpendRow>) -> Self {
        Self::with_clock(sink, stored, system_clock)
    }

    /// [`Quotas::new`] with another clock for when answers end.
    pub fn with_clock(sink: HistorySink, stored: Vec<SpendRow>, clock: fn() -> u64) -> Self {
        let spend = stored
            .into_iter()
            .map(|row| ((row.key_id, row.period), row.tokens))
            .collect();
        Quotas {
            keys: Mutex::new(HashMap::new()),
            spend: Mutex::new(spend),
            sink,
            clock,
        }
    }

    /// Tokens `key_id` spent in the period of `period` containing `now_ms`.
    pub fn spent(&self, key_id: &str, period: Period, now_ms: u64) -> (String, u64) {
        let (label, _) = period_at(period, now_ms);
        let spent = self
            .spend
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(key_id.to_owned(), label.clone()))
            .copied()
            .unwrap_or(0);
        (label, spent)
    }

    /// Admits a request of `key_id` under `limits` at `now_ms`, or says which limit refuses it.
    /// (A key with only a `priority` is never refused: nothing is counted for it but its
    /// concurrent requests.)
    pub fn admit(
        self: &Arc<Self>,
        key_id: &str,
        limits: &KeyLimits,
        now_ms: u64,
    ) -> Result<Ticket, OverLimit> {
        let over = |limit, value: u64, wait_ms: u64, period: Option<String>| OverLimit {
            limit,
            value,
            period,
            retry_after: Duration::from_secs(wait_ms.div_ceil(1000).max(1)),
        };
        if let Some((budget, period)) = limits.budget() {
            let (label, spent) = self.spent(key_id, period, now_ms);
            if spent >= budget {
                let (_, end) = period_at(period, now_ms);
                let wait = end.saturating_sub(now_ms);
                return Err(over(Limit::TokenBudget, budget, wait, Some(label)));
            }
        }
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let state = keys.entry(key_id.to_owned()).or_default();
        state.forget_until(now_ms);
        let window_end = |at: u64| (at + WINDOW_MS).saturating_sub(now_ms);
        if let Some(max) = limits.max_concurrent
            && state.in_flight >= max
        {
            return Err(over(Limit::MaxConcurrent, u64::from(max), 1000, None));
        }
        if let Some(rpm) = limits.requests_per_minute
            && state.requests.len() >= rpm as usize
        {
            let oldest = state.requests.front().copied().unwrap_or(now_ms);
            return Err(over(
                Limit::RequestsPerMinute,
                u64::from(rpm),
                window_end(oldest),
                None,
            ));
        }
        if let Some(tpm) = limits.tokens_per_minute {
            let used: u64 = state.tokens.iter().map(|&(_, n)| n).sum();
            if used >= tpm {
                // Admitted again once enough of the window's tokens have left it.
                let mut left = used;
                let mut at = now_ms;
                for &(t, n) in &state.tokens {
                    left -= n;
                    at = t;
                    if left < tpm {
                        break;
                    }
                }
                return Err(over(Limit::TokensPerMinute, tpm, window_end(at), None));
            }
        }
        state.requests.push_back(now_ms);
        state.in_flight += 1;
        Ok(Ticket {
            quotas: Arc::clone(self),
            key_id: key_id.to_owned(),
            budget: limits.budget().map(|(_, p)| p),
            tokens: 0,
        })
    }

    fn ended(&self, key_id: &str, tokens: u64, budget: Option<Period>, now_ms: u64) {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = keys.get_mut(key_id) {
            state.in_flight = state.in_flight.saturating_sub(1);
            if tokens > 0 {
                state.tokens.push_back((now_ms, tokens));
            }
        }
        drop(keys);
        if let (Some(period), true) = (budget, tokens > 0) {
            let (label, _) = period_at(period, now_ms);
            *self
                .spend
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((key_id.to_owned(), label.clone()))
                .or_default() += tokens;
            self.sink.send(StoreOp::AddSpend {
                key_id: key_id.to_owned(),
                period: label,
                tokens,
            });
        }
    }
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").finish_non_exhaustive()
    }
}

/// An admitted request: holds its place among the key's concurrent requests until dropped.
#[derive(Debug)]
pub struct Ticket {
    quotas: Arc<Quotas>,
    key_id: String,
    budget: Option<Period>,
    tokens: u64,
}

impl Ticket {
    /// The answer ended having used `tokens` (prompt + completion); counted when dropped.
    pub fn spent(&mut self, tokens: u64) {
        self.tokens = tokens;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let now_ms = (self.quotas.clock)();
        self.quotas
            .ended(&self.key_id, self.tokens, self.budget, now_ms);
    }
}

#[cfg(test)]
mod tests;
