//! History writer throughput: request rows pushed through the sink as fast as possible into a
//! SQLite file by the production writer task (batched transactions, WAL).
//!
//! Run: `cargo bench -p llm-router --bench history_writer` (env: BENCH_ROWS)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use llm_router::store::{
    Api, HistorySink, RequestRecord, Retention, SqliteStore, Store, StoreOp, run_writer, unix_ms,
};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn row(i: usize) -> RequestRecord {
    RequestRecord {
        id: uuid::Uuid::new_v4().to_string(),
        at_ms: unix_ms(SystemTime::now()),
        api: Api::Openai,
        endpoint: "/v1/chat/completions".into(),
        model: "gemma3-270m".into(),
        requested_model: None,
        node_id: Some("5b3c5c1e-9d8e-4c8a-9e43-1f4b2a7d6c10".into()),
        node_name: Some(format!("node-{}", i % 8)),
        status: 200,
        latency_ms: 812.5,
        ttfb_ms: Some(41.2),
        queue_ms: 0.0,
        prompt_tokens: Some(24),
        cached_tokens: None,
        completion_tokens: Some(128),
        routing: None,
        streamed: i.is_multiple_of(2),
        error: None,
        client: Some("127.0.0.1:53412".into()),
        request_body: None,
        response_body: None,
    }
}

async fn run() -> anyhow::Result<()> {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("llm-router-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("router.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await?);
    let (sink, rx) = HistorySink::channel(65_536);
    let cancel = CancellationToken::new();
    let writer = tokio::spawn(run_writer(
        Arc::clone(&store),
        sink.clone(),
        rx,
        Retention {
            metrics: Duration::from_secs(3600),
            requests: Duration::from_secs(3600),
        },
        cancel.clone(),
    ));

    let started = Instant::now();
    // Offered at a steady rate (BENCH_RATE rows/s, default 20 000: 4x the target), in bursts
    // every 10 ms.
    let burst = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20_000)
        / 100;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sent = 0;
    while sent < rows {
        tick.tick().await;
        for _ in 0..burst.min(rows - sent) {
            sink.send(StoreOp::Request(Box::new(row(sent))));
            sent += 1;
        }
    }
    let offered = started.elapsed();
    while sink.counters().written.load(Ordering::Relaxed)
        + sink.counters().dropped.load(Ordering::Relaxed)
        < rows as u64
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = started.elapsed();
    let written = sink.counters().written.load(Ordering::Relaxed);
    let dropped = sink.counters().dropped.load(Ordering::Relaxed);
    cancel.cancel();
    writer.await?;
    let stored = store
        .requests(&llm_router::store::RequestQuery::default())
        .await?
        .total;
    println!(
        "{rows} rows offered over {:.2} s; all written after {:.2} s: {:.0} rows/s sustained; \
         {written} written, {dropped} dropped, {stored} in the database",
        offered.as_secs_f64(),
        done.as_secs_f64(),
        written as f64 / done.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
