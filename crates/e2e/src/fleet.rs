//! A real router with 100 registered fake nodes (`FakeNode`, scripted) and 10 000 requests in its
//! history: what `tests/browser/load.mjs` loads the dashboard against, in the test and in the
//! first-load benchmark.

use std::time::{Duration, Instant};

use anyhow::ensure;
use futures_util::StreamExt;
use llm_router_testkit::processes::{RouterProcess, TEST_ADMIN_PASSWORD};
use llm_router_testkit::{FakeNode, Reply, wait_for};
use serde_json::json;

/// Registered fake nodes.
pub const NODES: usize = 100;
/// Requests sent through the router before the page is loaded.
pub const REQUESTS: usize = 10_000;

/// The router and its fakes, stopped when dropped.
pub struct Fleet {
    /// Held for their `Drop`, which stops them (before the router).
    _fakes: Vec<FakeNode>,
    pub router: RouterProcess,
}

impl Fleet {
    /// Starts the router, registers [`NODES`] fakes serving four models, sends [`REQUESTS`] chat
    /// completions through the router and waits until the history has stored every one.
    pub async fn start() -> anyhow::Result<Fleet> {
        // Fakes never heartbeat: a long timeout keeps them online for the whole run.
        let router = RouterProcess::start(&[
            "--node-timeout",
            "10m",
            "--heartbeat-interval",
            "5s",
            "--auto-distribute",
            "false",
        ])
        .await?;
        let reply = Reply::Json(json!({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        }));
        let mut fakes = Vec::with_capacity(NODES);
        for i in 0..NODES {
            let fake = FakeNode::builder(format!("fleet-{i:03}"))
                .model(format!("model-{}", i % 4))
                .reply(reply.clone())
                .spawn()
                .await?;
            fake.register(&router.url).await?;
            fakes.push(fake);
        }

        let client = router.client().await?;
        let started = Instant::now();
        let url = format!("{}/v1/chat/completions", router.url);
        let statuses: Vec<u16> = futures_util::stream::iter(0..REQUESTS)
            .map(|i| {
                let request = client.post(&url).json(&json!({
                    "model": format!("model-{}", i % 4),
                    "messages": [{"role": "user", "content": "hi"}]
                }));
                async move { request.send().await.map_or(0, |r| r.status().as_u16()) }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        ensure!(statuses.iter().all(|s| *s == 200), "every request served");
        eprintln!(
            "{REQUESTS} requests through the router in {:?}",
            started.elapsed()
        );
        // The history writer batches; wait until every row is stored.
        wait_for("10 000 stored rows", Duration::from_secs(60), || async {
            let page = router.get_as_admin("/api/requests?limit=1").await.ok()?;
            (page["total"].as_u64()? >= REQUESTS as u64).then_some(())
        })
        .await?;
        Ok(Fleet {
            _fakes: fakes,
            router,
        })
    }

    /// The environment of `tests/browser/load.mjs` for this fleet (besides the browser's).
    pub fn load_script_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ROUTER_URL", self.router.url.clone()),
            ("ADMIN_USER", "admin".to_owned()),
            ("ADMIN_PASSWORD", TEST_ADMIN_PASSWORD.to_owned()),
            ("EXPECT_NODES", NODES.to_string()),
            ("EXPECT_HISTORY", REQUESTS.to_string()),
        ]
    }
}
