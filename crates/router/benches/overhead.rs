//! Load benchmark: what the router adds to a request.
//!
//! A scripted FAKE node answers chat completions at once; the same load (N requests, C at a time)
//! goes once straight to the fake and once through the production router in front of it. The
//! difference of the latency percentiles is the router's overhead (parsing, selection, slot claim,
//! one more loopback hop, relay). Everything runs in this process on loopback.
//!
//! Run: `cargo bench -p llm-router --bench overhead` (env: BENCH_REQUESTS, BENCH_CONCURRENCY,
//! BENCH_DATABASE_URL — `memory` by default, or `sqlite:///tmp/bench.db` to write history to disk;
//! BENCH_DASHBOARD=1 keeps a dashboard socket open during the runs, so every request is also sent
//! as a live frame)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_router::{Config, Server};
use llm_router_protocol::Secret;
use llm_router_testkit::{FakeNode, Reply, TEST_ENROLLMENT_TOKEN};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() -> anyhow::Result<()> {
    let requests = env_usize("BENCH_REQUESTS", 20_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let answer = json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello there, how can I help?"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17}
    });
    let fake = FakeNode::builder("bench-node")
        .model("m")
        .slots(None)
        .reply(Reply::Json(answer))
        .spawn()
        .await?;
    // BENCH_DATABASE_URL=sqlite:///tmp/x.db measures with history written to SQLite.
    let database_url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "memory".into());
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url.clone(),
        ..Config::default()
    };
    config.auth.admin_password = Some(Secret::new(BENCH_PASSWORD));
    config.auth.enrollment_token = Some(Secret::new(TEST_ENROLLMENT_TOKEN));
    let server = Server::bind(config).await?;
    let router_url = format!("http://{}", server.local_addr()?);
    let cancel = CancellationToken::new();
    let router = tokio::spawn(server.run(cancel.clone()));
    fake.register(&router_url).await?;

    // Every request carries a credential, as in production: the router checks an API key (part of
    // the figure), the fake node its API token (as llm-node does).
    let (session, key) = credentials(&router_url).await?;
    let dashboard = if std::env::var("BENCH_DASHBOARD").is_ok_and(|v| v == "1") {
        Some(watch_dashboard(&router_url, &session).await?)
    } else {
        None
    };
    let routed_client = client(&key, concurrency)?;
    let direct_client = client(fake.api_token(), concurrency)?;
    let body = Arc::new(
        json!({"model": "m", "messages": [{"role": "user", "content": "Say hello"}],
               "max_tokens": 16, "temperature": 0})
        .to_string(),
    );
    let direct_url = format!("{}/v1/chat/completions", fake.base_url());
    let routed_url = format!("{router_url}/v1/chat/completions");

    println!(
        "{requests} requests, {concurrency} concurrent, 2 x warm-up of 1000, history: {database_url}"
    );
    load(&direct_client, &direct_url, &body, 1000, concurrency).await?;
    load(&routed_client, &routed_url, &body, 1000, concurrency).await?;
    let direct = load(&direct_client, &direct_url, &body, requests, concurrency).await?;
    let routed = load(&routed_client, &routed_url, &body, requests, concurrency).await?;
    print_row("direct to node", &direct);
    print_row("through router", &routed);
    println!(
        "router adds: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs",
        micros(routed.p(0.50)) - micros(direct.p(0.50)),
        micros(routed.p(0.90)) - micros(direct.p(0.90)),
        micros(routed.p(0.99)) - micros(direct.p(0.99)),
    );
    if let Some(frames) = dashboard {
        println!(
            "dashboard socket open throughout: {} request frames received",
            frames.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    cancel.cancel();
    let _ = router.await;
    Ok(())
}

/// Opens `/ws/dashboard` with the admin session and counts the `request` frames it receives.
async fn watch_dashboard(
    router_url: &str,
    session: &str,
) -> anyhow::Result<Arc<std::sync::atomic::AtomicU64>> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request =
        format!("{}/ws/dashboard", router_url.replace("http://", "ws://")).into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {session}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&frames);
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message
                && text.starts_with(r#"{"type":"request""#)
            {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    Ok(frames)
}

struct Run {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Run {
    fn p(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_row(name: &str, run: &Run) {
    println!(
        "{name:>16}: p50 {:>6.0} µs  p90 {:>6.0} µs  p99 {:>6.0} µs  {:>7.0} req/s",
        micros(run.p(0.50)),
        micros(run.p(0.90)),
        micros(run.p(0.99)),
        run.latencies.len() as f64 / run.wall.as_secs_f64()
    );
}

async fn load(
    client: &reqwest::Client,
    url: &str,
    body: &Arc<String>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let per_task = requests.div_ceil(concurrency);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            let body = Arc::clone(body);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.as_bytes().to_vec())
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "status {}",
                        response.status()
                    );
                    response.bytes().await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_unstable();
    Ok(Run {
        latencies,
        wall: started.elapsed(),
    })
}

/// A pooled client sending `Authorization: Bearer token` with every request.
fn client(token: &str, concurrency: usize) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::try_from(format!("Bearer {token}"))?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?)
}

const BENCH_PASSWORD: &str = "bench-admin-password";

/// Logs in as admin and creates an API key: the session and the key.
async fn credentials(router_url: &str) -> anyhow::Result<(String, String)> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let login: serde_json::Value = http
        .post(format!("{router_url}/api/auth/login"))
        .json(&json!({"username": "admin", "password": BENCH_PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let session = login["token"].as_str().unwrap_or_default().to_owned();
    let created: serde_json::Value = http
        .post(format!("{router_url}/api/keys"))
        .bearer_auth(&session)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = created["key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no key in {created}"))?;
    Ok((session, key))
}
