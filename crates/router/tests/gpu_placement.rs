//! Placement and distribution with nodes that report GPUs (NVIDIA and AMD, one and several cards)
//! or only RAM: which models each gets and why, distribution to `"all"`, to a list and to an
//! offline node, and progress reported by several nodes at once. The nodes are fakes
//! ([`gpu_support::FakeGpuNode`]): they register the hardware they are given and record the
//! pulls the router sends them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod gpu_support;

use std::time::Duration;

use common::{TestRouter, client, spawn_router, test_config, wait_until};
use gpu_support::{FakeGpuNode, amd, nvidia};
use llm_router::Config;
use llm_router_protocol::node::TaskStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn placing_router() -> TestRouter {
    spawn_router(Config {
        auto_distribute: true,
        ..test_config()
    })
    .await
    .unwrap()
}

/// `GET /api/tasks` of the node `node_id`, oldest first.
async fn tasks_of(router: &TestRouter, node_id: &str) -> Vec<Value> {
    let all: Value = router
        .get_as_admin("/api/tasks")
        .await
        .json()
        .await
        .unwrap();
    let mut mine: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["node_id"] == node_id)
        .cloned()
        .collect();
    mine.reverse();
    mine
}

/// Waits until `node` received `models` as pulls, in that order, and returns its tasks.
async fn placed(router: &TestRouter, node: &FakeGpuNode, models: &[&str]) -> Vec<Value> {
    wait_until(
        &format!("{} to receive {models:?}", node.name),
        WAIT,
        || async { node.pulled_models().len() >= models.len() },
    )
    .await;
    assert_eq!(node.pulled_models(), models, "pulls of {}", node.name);
    let tasks = tasks_of(router, &node.id).await;
    // Tasks created in the same instant list in either order: compared as sets.
    let mut task_models: Vec<&str> = tasks.iter().map(|t| t["model"].as_str().unwrap()).collect();
    let mut expected = models.to_vec();
    task_models.sort_unstable();
    expected.sort_unstable();
    assert_eq!(task_models, expected, "tasks of {}", node.name);
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reporting_gpus_get_their_tiers_models_with_the_reason() {
    let router = placing_router().await;
    let url = router.base_url();
    let cases: Vec<(FakeGpuNode, Vec<&str>, &str)> = vec![
        (
            FakeGpuNode::spawn(
                "fake-nvidia-4090",
                32,
                vec![nvidia(0, "NVIDIA GeForce RTX 4090", 24)],
            )
            .await,
            vec!["gpt-oss:20b"],
            "placement: GPU memory 24.0 GiB (GPU 0: NVIDIA GeForce RTX 4090), tier ≥ 16 GB: gpt-oss:20b",
        ),
        (
            // Two 12 GB cards: 24 GB together, not 12.
            FakeGpuNode::spawn(
                "fake-nvidia-2x3060",
                32,
                vec![
                    nvidia(0, "NVIDIA GeForce RTX 3060", 12),
                    nvidia(1, "NVIDIA GeForce RTX 3060", 12),
                ],
            )
            .await,
            vec!["gpt-oss:20b"],
            "placement: GPU memory 24.0 GiB over 2 GPUs (GPU 0: NVIDIA GeForce RTX 3060 12.0 GiB, \
             GPU 1: NVIDIA GeForce RTX 3060 12.0 GiB), tier ≥ 16 GB: gpt-oss:20b",
        ),
        (
            FakeGpuNode::spawn("fake-amd-7900", 32, vec![amd(0, "Radeon RX 7900 XTX", 24)]).await,
            vec!["gpt-oss:20b"],
            "placement: GPU memory 24.0 GiB (GPU 0: AMD Radeon RX 7900 XTX), tier ≥ 16 GB: gpt-oss:20b",
        ),
        (
            FakeGpuNode::spawn(
                "fake-amd-2x32",
                64,
                vec![amd(0, "AMD GPU (card0)", 32), amd(1, "AMD GPU (card1)", 32)],
            )
            .await,
            vec!["gpt-oss:20b", "gpt-oss-safeguard:20b", "qwen3-coder:30b"],
            "placement: GPU memory 64.0 GiB over 2 GPUs (GPU 0: AMD GPU (card0) 32.0 GiB, \
             GPU 1: AMD GPU (card1) 32.0 GiB), tier ≥ 48 GB: gpt-oss:20b, gpt-oss-safeguard:20b, \
             qwen3-coder:30b",
        ),
        (
            FakeGpuNode::spawn("fake-cpu-64g", 64, Vec::new()).await,
            vec!["gpt-oss:20b"],
            "placement: no GPU reported; 64.0 GiB of RAM, tier CPU, ≥ 32 GB RAM: gpt-oss:20b",
        ),
        (
            FakeGpuNode::spawn("fake-cpu-8g", 8, Vec::new()).await,
            vec!["gemma3-270m"],
            "placement: no GPU reported; 8.0 GiB of RAM, below every CPU tier, tier no GPU: gemma3-270m",
        ),
    ];
    let mut cases = cases;
    for (node, _, _) in &mut cases {
        node.register(&url).await;
    }
    for (node, models, reason) in &cases {
        let tasks = placed(&router, node, models).await;
        for task in &tasks {
            assert_eq!(task["reason"], *reason, "{task}");
            assert_eq!(task["node_name"], node.name.as_str());
        }
        // What the node is sent comes from the catalog entry.
        let pull = &node.pulls()[0];
        assert_eq!(pull.model, models[0]);
        assert!(
            pull.url.starts_with("https://huggingface.co/"),
            "{}",
            pull.url
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_to_all_to_a_list_and_to_an_offline_node() {
    let router = spawn_router(Config {
        heartbeat_interval: Duration::from_millis(200),
        // Long enough that the beating fakes stay online on a loaded machine.
        node_timeout: Duration::from_millis(1500),
        ..test_config()
    })
    .await
    .unwrap();
    let url = router.base_url();
    let mut a = FakeGpuNode::spawn("fake-a", 32, vec![nvidia(0, "NVIDIA L4", 24)]).await;
    let mut b = FakeGpuNode::spawn("fake-b", 32, vec![amd(0, "Radeon PRO W7800", 32)]).await;
    let mut gone = FakeGpuNode::spawn("fake-gone", 32, Vec::new()).await;
    for node in [&mut a, &mut b, &mut gone] {
        node.register(&url).await;
    }
    // a and b heartbeat; `gone` never does and goes offline.
    let beating = {
        let url = url.clone();
        let (a, b) = (a.beat_handle(), b.beat_handle());
        tokio::spawn(async move {
            loop {
                a.beat(&url).await;
                b.beat(&url).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_until("fake-gone to go offline", WAIT, || async {
        common::agent(&router, "fake-gone").await["status"] == "offline"
    })
    .await;
    for name in ["fake-a", "fake-b"] {
        let status = common::agent(&router, name).await["status"].clone();
        assert_ne!(status, "offline", "{name} heartbeats");
    }

    let distribute = |target: Value| {
        let router = &router;
        async move {
            client()
                .post(router.url("/api/models/distribute"))
                .bearer_auth(router.admin_token().await)
                .json(&json!({"model": "gemma3-270m", "target": target}))
                .send()
                .await
                .unwrap()
        }
    };

    // "all": every node that is not offline.
    let response = distribute(json!("all")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    let mut nodes: Vec<&str> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["node_name"].as_str().unwrap())
        .collect();
    nodes.sort_unstable();
    assert_eq!(nodes, ["fake-a", "fake-b"]);
    assert_eq!(a.pulled_models(), ["gemma3-270m"]);
    assert_eq!(b.pulled_models(), ["gemma3-270m"]);
    assert!(gone.pulls().is_empty());

    // A list: the offline node among several is skipped, the others get their task.
    let response = distribute(json!([a.id, gone.id])).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    let tasks = body["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{body}");
    assert_eq!(tasks[0]["node_name"], "fake-a");
    // The unfinished task of a is returned again, not ordered twice.
    assert_eq!(a.pulled_models(), ["gemma3-270m"]);

    // The offline node alone: 503 naming it, and no pull.
    for target in [json!(gone.id), json!([gone.id])] {
        let response = distribute(target).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "node_offline", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("fake-gone"),
            "{body}"
        );
    }
    assert!(gone.pulls().is_empty());
    assert!(tasks_of(&router, &gone.id).await.is_empty());

    // An unknown node in a list: 404, nothing ordered.
    let response = distribute(json!([b.id, "no-such-node"])).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(b.pulled_models(), ["gemma3-270m"]);
    beating.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_from_several_nodes_at_once_lands_on_each_ones_task() {
    let router = spawn_router(test_config()).await.unwrap();
    let url = router.base_url();
    let mut nodes = Vec::new();
    for (i, name) in ["fake-p0", "fake-p1", "fake-p2"].into_iter().enumerate() {
        let mut node =
            FakeGpuNode::spawn(name, 32, vec![nvidia(0, "NVIDIA A10", 8 * (i as u64 + 1))]).await;
        node.register(&url).await;
        nodes.push(node);
    }
    let response = client()
        .post(router.url("/api/models/distribute"))
        .bearer_auth(router.admin_token().await)
        .json(&json!({"model": "gemma3-270m", "target": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let task_of = |node: &FakeGpuNode| node.pulls()[0].task_id.clone();
    let total = 253_113_024u64;
    // Every node reports its steps at the same time as the others, each with its own figures.
    let reports = nodes.iter().enumerate().map(|(i, node)| {
        let url = url.clone();
        let task = task_of(node);
        async move {
            let share = total / 4 * (i as u64 + 1);
            for (status, done) in [
                (TaskStatus::Downloading, share / 2),
                (TaskStatus::Downloading, share),
                (TaskStatus::Verifying, share),
            ] {
                let answer = node.report(&url, &task, status, done, Some(total)).await;
                assert!(answer.is_success(), "{answer}");
            }
        }
    });
    futures_util::future::join_all(reports).await;
    for (i, node) in nodes.iter().enumerate() {
        let task: Value = router
            .get_as_admin(&format!("/api/tasks/{}", task_of(node)))
            .await
            .json()
            .await
            .unwrap();
        let share = total / 4 * (i as u64 + 1);
        assert_eq!(task["status"], "verifying", "{task}");
        assert_eq!(task["bytes_done"], share, "{task}");
        assert_eq!(task["node_name"], node.name.as_str());
        let percent = task["percent"].as_f64().unwrap();
        assert!((percent - 25.0 * (i as f64 + 1.0)).abs() < 0.01, "{task}");
    }
    // A node cannot report on another node's task.
    let stolen = task_of(&nodes[1]);
    assert_eq!(
        nodes[0]
            .report(&url, &stolen, TaskStatus::Failed, 0, None)
            .await,
        StatusCode::FORBIDDEN
    );
    // Finishing one leaves the others running.
    assert!(
        nodes[2]
            .report(&url, &task_of(&nodes[2]), TaskStatus::Ready, 0, None)
            .await
            .is_success()
    );
    let states: Vec<String> = {
        let mut s = Vec::new();
        for node in &nodes {
            let task: Value = router
                .get_as_admin(&format!("/api/tasks/{}", task_of(node)))
                .await
                .json()
                .await
                .unwrap();
            s.push(task["status"].as_str().unwrap().to_owned());
        }
        s
    };
    assert_eq!(states, ["verifying", "verifying", "ready"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ollama_node_is_placed_and_sent_the_ollama_model() {
    let router = placing_router().await;
    let mut node = FakeGpuNode::spawn_with(
        "fake-ollama-4090",
        32,
        vec![nvidia(0, "NVIDIA GeForce RTX 4090", 24)],
        llm_router_protocol::node::RuntimeKind::Ollama,
    )
    .await;
    node.register(&router.base_url()).await;
    let tasks = placed(&router, &node, &["gpt-oss:20b"]).await;
    assert!(
        tasks[0]["reason"]
            .as_str()
            .unwrap()
            .contains("tier ≥ 16 GB"),
        "{}",
        tasks[0]
    );
    // Ollama pulls the model through its own API: the node gets the Ollama model, no GGUF.
    let pull = &node.pulls()[0];
    assert_eq!(pull.ollama.as_deref(), Some("gpt-oss:20b"));
    assert!(pull.url.is_empty() && pull.file_name.is_empty() && pull.parts.is_empty());
    // Its progress lands on the task like a GGUF pull's.
    let url = router.base_url();
    let answer = node
        .report(
            &url,
            &pull.task_id,
            TaskStatus::Downloading,
            7_000_000_000,
            Some(14_000_000_000),
        )
        .await;
    assert!(answer.is_success(), "{answer}");
    let task: Value = router
        .get_as_admin(&format!("/api/tasks/{}", pull.task_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["percent"], 50.0, "{task}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_model_is_sent_with_every_part() {
    let router = placing_router().await;
    // Four 24 GB cards: 96 GB together, the tier of gpt-oss:120b (three parts).
    let gpus = (0..4).map(|i| nvidia(i, "NVIDIA RTX A5000", 24)).collect();
    let mut node = FakeGpuNode::spawn("fake-4xa5000", 128, gpus).await;
    node.register(&router.base_url()).await;
    placed(&router, &node, &["gpt-oss:120b", "gpt-oss-safeguard:20b"]).await;
    let pull = &node.pulls()[0];
    let names: Vec<&str> = pull.parts.iter().map(|p| p.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gpt-oss-120b-mxfp4-00001-of-00003.gguf",
            "gpt-oss-120b-mxfp4-00002-of-00003.gguf",
            "gpt-oss-120b-mxfp4-00003-of-00003.gguf",
        ]
    );
    assert_eq!(
        pull.file_name, names[0],
        "the runtime starts on the first part"
    );
    assert_eq!(pull.size_bytes, Some(63_387_346_464));
    // No digest published: sent without one (the catalog says unverified).
    assert!(pull.parts.iter().all(|p| p.sha256.is_none()));
    // The safeguard model has a published digest: sent with it.
    let safeguard = &node.pulls()[1];
    assert_eq!(safeguard.sha256.as_deref().map(str::len), Some(64));
    assert!(safeguard.parts.is_empty());
}
