//! Ollama's generation statistics (`prompt_eval_count`, `eval_duration`, ... in nanoseconds) from
//! what an OpenAI-compatible runtime reports: `usage` and, for llama-server, `timings`. Durations the
//! runtime does not report are measured by the router.

use std::time::{Duration, Instant};

use llm_router_protocol::ollama::Metrics;
use serde_json::Value;

/// What is known of one generation so far.
#[derive(Debug, Clone)]
pub struct Stats {
    /// When the router received the request.
    started: Instant,
    first_token: Option<Instant>,
    /// Pieces of answer seen (a fallback token count).
    pieces: u64,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_ms: Option<f64>,
    predicted_ms: Option<f64>,
}

impl Stats {
    pub fn new(started: Instant) -> Self {
        Stats {
            started,
            first_token: None,
            pieces: 0,
            prompt_tokens: None,
            completion_tokens: None,
            prompt_ms: None,
            predicted_ms: None,
        }
    }

    /// Notes a piece of answer arriving now.
    pub fn piece(&mut self) {
        self.first_token.get_or_insert_with(Instant::now);
        self.pieces += 1;
    }

    /// Reads `usage` and `timings` of a response or chunk, if it has them.
    pub fn absorb(&mut self, value: &Value) {
        let usage = &value["usage"];
        if let Some(n) = usage["prompt_tokens"].as_u64() {
            self.prompt_tokens = Some(n);
        }
        if let Some(n) = usage["completion_tokens"].as_u64() {
            self.completion_tokens = Some(n);
        }
        let timings = &value["timings"];
        if let Some(ms) = timings["prompt_ms"].as_f64() {
            self.prompt_ms = Some(ms);
        }
        if let Some(ms) = timings["predicted_ms"].as_f64() {
            self.predicted_ms = Some(ms);
        }
        if self.prompt_tokens.is_none() {
            self.prompt_tokens = timings["prompt_n"].as_u64();
        }
        if self.completion_tokens.is_none() {
            self.completion_tokens = timings["predicted_n"].as_u64();
        }
    }

    /// The statistics of the generation, ended at `now`.
    pub fn metrics(&self, now: Instant) -> Metrics {
        let first = self.first_token.unwrap_or(now);
        let prompt_eval = self
            .prompt_ms
            .map(ms_to_ns)
            .unwrap_or_else(|| ns(first.saturating_duration_since(self.started)));
        let eval = self
            .predicted_ms
            .map(ms_to_ns)
            .unwrap_or_else(|| ns(now.saturating_duration_since(first)));
        Metrics {
            total_duration: ns(now.saturating_duration_since(self.started)),
            load_duration: 0,
            prompt_eval_count: self.prompt_tokens.unwrap_or(0),
            prompt_eval_duration: prompt_eval,
            eval_count: self.completion_tokens.unwrap_or(self.pieces),
            eval_duration: eval,
        }
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms_to_ns(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1_000_000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama_server_timings_become_nanoseconds() {
        let started = Instant::now();
        let mut stats = Stats::new(started);
        stats.absorb(&json!({
            "usage": {"prompt_tokens": 6, "completion_tokens": 8},
            "timings": {"prompt_n": 5, "prompt_ms": 76.2, "predicted_n": 8, "predicted_ms": 308.5}
        }));
        let m = stats.metrics(started + Duration::from_millis(500));
        assert_eq!(m.prompt_eval_count, 6);
        assert_eq!(m.eval_count, 8);
        assert_eq!(m.prompt_eval_duration, 76_200_000);
        assert_eq!(m.eval_duration, 308_500_000);
        assert_eq!(m.total_duration, 500_000_000);
        assert_eq!(m.load_duration, 0);
    }

    #[test]
    fn without_usage_the_router_counts_and_times_the_pieces() {
        let started = Instant::now() - Duration::from_millis(100);
        let mut stats = Stats::new(started);
        stats.piece();
        stats.piece();
        let m = stats.metrics(Instant::now() + Duration::from_millis(50));
        assert_eq!(m.eval_count, 2);
        assert_eq!(m.prompt_eval_count, 0);
        assert!(m.prompt_eval_duration >= 100_000_000, "{m:?}");
        assert!(m.eval_duration >= 50_000_000, "{m:?}");
        assert!(m.total_duration >= m.prompt_eval_duration + m.eval_duration);
    }
}
