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
    let mut latencies = Vec::new();
    let mut failed = 0;
    for r in rows {
        latencies.push(r.latency_ms);
        failed += u64::from(r.failed);
    }
    let n = latencies.len() as u64;
    if n == 0 {
        return Figures {
            success_rate: 1.0,
            ..Figures::default()
        };
    }
    latencies.sort_unstable_by(f64::total_cmp);
    let p95_index = ((latencies.len() as f64) * 0.95).ceil() as usize;
    Figures {
        requests: n,
        succeeded: n - failed,
        failed,
        success_rate: (n - failed) as f64 / n as f64,
        avg_latency_ms: latencies.iter().sum::<f64>() / n as f64,
        p95_latency_ms: latencies[p95_index.clamp(1, latencies.len()) - 1],
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
