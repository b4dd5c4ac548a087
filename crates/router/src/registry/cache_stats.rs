//! What the router learns of a node's prompt cache and speed from the answers passing through it:
//! prompt tokens reused and computed, measured speeds, and the prompt work it has been given but
//! not finished. Read by the `cache_aware` policy and shown in the fleet API.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Prompt tokens an answer must have computed for its speed to count.
const MIN_MEASURED_PROMPT: u64 = 128;

/// Weight of a new measurement in the moving averages of speeds and answer lengths.
const EWMA_WEIGHT: f64 = 0.2;

/// Per-node figures, updated without locks.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Prompt tokens of answers that said how many they reused.
    prompt_tokens: AtomicU64,
    /// Of those, the tokens the node took from its cache.
    cached_tokens: AtomicU64,
    /// Prompt tokens still to compute for requests sent to the node and not finished.
    backlog_prompt_tokens: AtomicU64,
    /// Moving averages, as `f64` bits (0: not measured yet).
    prompt_tps: AtomicU64,
    gen_tps: AtomicU64,
    answer_tokens: AtomicU64,
}

/// One answer's figures, as the node reported them (llama.cpp `timings`, OpenAI `usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AnswerFigures {
    /// The whole prompt, cached part included.
    pub prompt_tokens: Option<u64>,
    /// Prompt tokens taken from the cache.
    pub cached_tokens: Option<u64>,
    /// Prompt tokens computed and the time it took.
    pub prompt_computed: Option<(u64, f64)>,
    /// Tokens generated and the time it took.
    pub generated: Option<(u64, f64)>,
}

/// The figures as the fleet API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CacheSummary {
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    /// `cached_tokens / prompt_tokens`; `None` before any answer said.
    pub hit_rate: Option<f64>,
    pub prompt_tokens_per_second: Option<f64>,
    pub generated_tokens_per_second: Option<f64>,
    pub backlog_prompt_tokens: u64,
}

impl CacheStats {
    /// Learns from one answer.
    pub fn record(&self, figures: &AnswerFigures) {
        if let (Some(prompt), Some(cached)) = (figures.prompt_tokens, figures.cached_tokens) {
            self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
            self.cached_tokens
                .fetch_add(cached.min(prompt), Ordering::Relaxed);
        }
        // Short prompts (a cached prefix and a new turn) run at a per-token speed far from a long
        // one's, which is the cost that matters: only long ones are measured.
        if let Some((tokens, ms)) = figures.prompt_computed
            && tokens >= MIN_MEASURED_PROMPT
            && ms > 0.0
        {
            average(&self.prompt_tps, tokens as f64 * 1000.0 / ms);
        }
        if let Some((tokens, ms)) = figures.generated
            && tokens >= 2
            && ms > 0.0
        {
            average(&self.gen_tps, tokens as f64 * 1000.0 / ms);
            average(&self.answer_tokens, tokens as f64);
        }
    }

    /// Measured prompt processing speed, tokens per second (0: unknown).
    pub fn prompt_tps(&self) -> f64 {
        load(&self.prompt_tps)
    }

    /// Measured generation speed, tokens per second (0: unknown).
    pub fn gen_tps(&self) -> f64 {
        load(&self.gen_tps)
    }

    /// Average tokens per answer (0: unknown).
    pub fn answer_tokens(&self) -> f64 {
        load(&self.answer_tokens)
    }

    pub fn backlog_prompt_tokens(&self) -> u64 {
        self.backlog_prompt_tokens.load(Ordering::Relaxed)
    }

    /// Adds prompt work given to the node; [`CacheStats::finish_prompt`] takes it off again.
    pub fn start_prompt(&self, tokens: u64) {
        self.backlog_prompt_tokens
            .fetch_add(tokens, Ordering::Relaxed);
    }

    pub fn finish_prompt(&self, tokens: u64) {
        // Never below zero, whatever the order of updates.
        let _ =
            self.backlog_prompt_tokens
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(tokens))
                });
    }

    pub fn summary(&self) -> CacheSummary {
        let prompt_tokens = self.prompt_tokens.load(Ordering::Relaxed);
        let cached_tokens = self.cached_tokens.load(Ordering::Relaxed);
        let known = |v: f64| (v > 0.0).then_some(v);
        CacheSummary {
            prompt_tokens,
            cached_tokens,
            hit_rate: (prompt_tokens > 0).then(|| cached_tokens as f64 / prompt_tokens as f64),
            prompt_tokens_per_second: known(self.prompt_tps()),
            generated_tokens_per_second: known(self.gen_tps()),
            backlog_prompt_tokens: self.backlog_prompt_tokens(),
        }
    }
}

fn load(cell: &AtomicU64) -> f64 {
    f64::from_bits(cell.load(Ordering::Relaxed))
}

/// Folds `value` into the moving average in `cell` (the first value is taken as it is).
fn average(cell: &AtomicU64, value: f64) {
    if !value.is_finite() || value <= 0.0 {
        return;
    }
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        let old = f64::from_bits(bits);
        let new = if old > 0.0 {
            old + EWMA_WEIGHT * (value - old)
        } else {
            value
        };
        Some(new.to_bits())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_and_speeds_come_from_answers() {
        let stats = CacheStats::default();
        assert_eq!(stats.summary().hit_rate, None);
        stats.record(&AnswerFigures {
            prompt_tokens: Some(400),
            cached_tokens: Some(300),
            prompt_computed: Some((200, 1000.0)),
            generated: Some((20, 1000.0)),
        });
        stats.record(&AnswerFigures {
            prompt_tokens: Some(100),
            cached_tokens: Some(0),
            prompt_computed: Some((200, 2000.0)),
            generated: None,
        });
        let s = stats.summary();
        assert_eq!((s.prompt_tokens, s.cached_tokens), (500, 300));
        assert_eq!(s.hit_rate, Some(0.6));
        // 200 t/s, then 100 t/s folded in at 0.2.
        assert!((stats.prompt_tps() - 180.0).abs() < 1e-9);
        assert!((stats.gen_tps() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn tiny_or_nonsense_measurements_are_ignored() {
        let stats = CacheStats::default();
        stats.record(&AnswerFigures {
            prompt_computed: Some((3, 1.0)),
            generated: Some((100, 0.0)),
            cached_tokens: Some(10),
            prompt_tokens: None,
        });
        assert_eq!(stats.prompt_tps(), 0.0);
        assert_eq!(stats.gen_tps(), 0.0);
        assert_eq!(stats.summary().prompt_tokens, 0);
    }

    #[test]
    fn backlog_never_goes_below_zero() {
        let stats = CacheStats::default();
        stats.start_prompt(100);
        stats.finish_prompt(60);
        assert_eq!(stats.backlog_prompt_tokens(), 40);
        stats.finish_prompt(60);
        assert_eq!(stats.backlog_prompt_tokens(), 0);
    }
}
