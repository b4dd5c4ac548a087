//! Request statistics (`GET /api/stats`), computed from stored request summaries.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::RequestSummary;

/// Figures for one group of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// succeeded / requests; 1 when there were none.
    pub success_rate: f64,
    pub avg_latency_ms: f64,
    pub p95_latency_ms: f64,
}

/// Figures overall, per model and per node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Window {
    pub total: Figures,
    pub by_model: BTreeMap<String, Figures>,
    pub by_node: BTreeMap<String, Figures>,
}

impl Window {
    pub fn of(rows: &[RequestSummary]) -> Window {
        let mut by_model: BTreeMap<String, Vec<&RequestSummary>> = BTreeMap::new();
        let mut by_node: BTreeMap<String, Vec<&RequestSummary>> = BTreeMap::new();
        for row in rows {
            by_model.entry(row.model.clone()).or_default().push(row);
            if let Some(node) = &row.node_name {
                by_node.entry(node.clone()).or_default().push(row);
            }
        }
        Window {
            total: figures(rows.iter()),
            by_model: by_model
                .into_iter()
                .map(|(k, v)| (k, figures(v.into_iter())))
                .collect(),
            by_node: by_node
                .into_iter()
                .map(|(k, v)| (k, figures(v.into_iter())))
                .collect(),
        }
    }
}

fn figures<'a>(rows: impl Iterator<Item = &'a RequestSummary>) -> Figures {
    Figures::of(rows.map(|r| (r.latency_ms, r.failed)))
}

impl Figures {
    /// Figures of requests given as (latency in ms, failed); p95 by nearest rank.
    pub fn of(requests: impl Iterator<Item = (f64, bool)>) -> Figures {
        let mut latencies = Vec::with_capacity(requests.size_hint().0);
        let mut failed = 0;
        for (latency_ms, f) in requests {
            latencies.push(latency_ms);
            failed += u64::from(f);
        }
        let n = latencies.len();
        if n == 0 {
            return Figures {
                success_rate: 1.0,
                ..Figures::default()
            };
        }
        let avg_latency_ms = latencies.iter().sum::<f64>() / n as f64;
        let rank = ((n as f64) * 0.95).ceil() as usize;
        let (_, p95, _) = latencies.select_nth_unstable_by(rank.clamp(1, n) - 1, f64::total_cmp);
        let requests = n as u64;
        Figures {
            requests,
            succeeded: requests - failed,
            failed,
            success_rate: (requests - failed) as f64 / requests as f64,
            avg_latency_ms,
            p95_latency_ms: *p95,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, node: &str, latency_ms: f64, failed: bool) -> RequestSummary {
        RequestSummary {
            at_ms: 0,
            model: model.into(),
            node_name: Some(node.into()),
            status: if failed { 502 } else { 200 },
            failed,
            latency_ms,
        }
    }

    #[test]
    fn figures_give_rates_average_and_p95() {
        let rows: Vec<_> = (1..=20)
            .map(|i| row("m", if i % 2 == 0 { "a" } else { "b" }, i as f64, i == 20))
            .collect();
        let w = Window::of(&rows);
        assert_eq!(w.total.requests, 20);
        assert_eq!(w.total.failed, 1);
        assert_eq!(w.total.success_rate, 0.95);
        assert_eq!(w.total.avg_latency_ms, 10.5);
        assert_eq!(w.total.p95_latency_ms, 19.0);
        assert_eq!(w.by_node["a"].requests, 10);
        assert_eq!(w.by_model["m"].requests, 20);
    }

    #[test]
    fn empty_window_has_no_requests_and_full_success() {
        let w = Window::of(&[]);
        assert_eq!(w.total.requests, 0);
        assert_eq!(w.total.success_rate, 1.0);
    }
}
