//! One suite, run against the SQLite store and its in-memory twin.

use std::sync::Arc;

use super::*;

async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap()),
        ),
    ]
}

fn record(id: &str, at_ms: u64, model: &str, node: &str, status: u16) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        at_ms,
        api: Api::Openai,
        endpoint: "/v1/chat/completions".into(),
        model: model.into(),
        requested_model: None,
        node_id: Some(format!("id-{node}")),
        node_name: Some(node.into()),
        status,
        latency_ms: at_ms as f64 / 10.0,
        ttfb_ms: Some(1.5),
        queue_ms: 0.0,
        prompt_tokens: Some(7),
        cached_tokens: Some(5),
        completion_tokens: Some(11),
        routing: Some(Routing {
            policy: "cache_aware".into(),
            reason: Some("affinity".into()),
            candidates: 2,
            attempts: 1,
            predicted_cached_tokens: Some(96),
        }),
        streamed: at_ms.is_multiple_of(2),
        error: (status >= 500).then(|| "boom".to_owned()),
        client: Some("127.0.0.1:5000".into()),
        request_body: None,
        response_body: None,
    }
}

fn node(id: &str, name: &str, last_seen_ms: u64) -> NodeRow {
    NodeRow {
        id: id.into(),
        machine_name: name.into(),
        base_url: "http://127.0.0.1:1".into(),
        runtime_kind: "llama_server".into(),
        runtime_version: Some("1".into()),
        node_version: "0.1.0".into(),
        hardware: "{}".into(),
        models: "[]".into(),
        status: "online".into(),
        first_seen_ms: last_seen_ms,
        last_seen_ms,
        draining: false,
    }
}

fn sample(node_id: &str, at_ms: u64) -> MetricSample {
    MetricSample {
        node_id: node_id.into(),
        at_ms,
        cpu_percent: 12.5,
        memory_percent: 40.0,
        memory_used_bytes: 1 << 30,
        gpu_percent: None,
        gpu_memory_percent: None,
        active_requests: 1,
        avg_response_ms: Some(99.0),
    }
}

async fn insert(store: &dyn Store, records: Vec<RequestRecord>) {
    let ops: Vec<StoreOp> = records
        .into_iter()
        .map(|r| StoreOp::Request(Box::new(r)))
        .collect();
    store.apply(&ops).await.unwrap();
}

#[tokio::test]
async fn requests_come_back_newest_first_paged_with_total() {
    for (name, store) in stores().await {
        insert(
            &*store,
            (1..=5)
                .map(|i| record(&format!("r{i}"), i * 100, "m", "a", 200))
                .collect(),
        )
        .await;
        let page = store
            .requests(&RequestQuery {
                limit: Some(2),
                offset: Some(1),
                ..RequestQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 5, "{name}");
        let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r4", "r3"], "{name}");
        assert_eq!(
            page.items[0],
            record("r4", 400, "m", "a", 200),
            "{name}: round trip"
        );
    }
}

#[tokio::test]
async fn requests_filter_by_model_node_status_and_time() {
    for (name, store) in stores().await {
        insert(
            &*store,
            vec![
                record("a", 100, "m1", "n1", 200),
                record("b", 200, "m2", "n1", 500),
                record("c", 300, "m1", "n2", 404),
                record("d", 400, "m1", "n2", 200),
            ],
        )
        .await;
        let ids = |q: RequestQuery| {
            let store = Arc::clone(&store);
            async move {
                let page = store.requests(&q).await.unwrap();
                page.items.into_iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        let q = |f: fn(&mut RequestQuery)| {
            let mut q = RequestQuery::default();
            f(&mut q);
            q
        };
        assert_eq!(
            ids(q(|q| q.model = Some("m1".into()))).await,
            ["d", "c", "a"],
            "{name}"
        );
        assert_eq!(
            ids(q(|q| q.node = Some("n1".into()))).await,
            ["b", "a"],
            "{name}"
        );
        assert_eq!(
            ids(q(|q| q.status = Some("error".into()))).await,
            ["c", "b"],
            "{name}"
        );
        assert_eq!(
            ids(q(|q| q.status = Some("success".into()))).await,
            ["d", "a"],
            "{name}"
        );
        assert_eq!(
            ids(q(|q| q.status = Some("404".into()))).await,
            ["c"],
            "{name}"
        );
        assert_eq!(
            ids(q(|q| {
                q.since = Some(200);
                q.until = Some(400);
            }))
            .await,
            ["c", "b"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn request_by_id_and_duplicates_ignored() {
    for (name, store) in stores().await {
        insert(&*store, vec![record("x", 1, "m", "a", 200)]).await;
        insert(&*store, vec![record("x", 2, "m", "a", 500)]).await;
        let got = store.request("x").await.unwrap().unwrap();
        assert_eq!(got.status, 200, "{name}: first write wins");
        assert!(store.request("nope").await.unwrap().is_none(), "{name}");
    }
}

#[tokio::test]
async fn summaries_cover_requests_since_a_time() {
    for (name, store) in stores().await {
        insert(
            &*store,
            vec![
                record("a", 100, "m", "n", 200),
                record("b", 300, "m", "n", 502),
            ],
        )
        .await;
        let s = store.request_summaries(200).await.unwrap();
        assert_eq!(s.len(), 1, "{name}");
        assert!(s[0].failed, "{name}");
        assert_eq!(s[0].latency_ms, 30.0, "{name}");
    }
}

#[tokio::test]
async fn nodes_upsert_by_id_replace_by_name_and_delete() {
    for (name, store) in stores().await {
        store
            .apply(&[
                StoreOp::UpsertNode(Box::new(node("1", "alpha", 10))),
                StoreOp::UpsertNode(Box::new(node("2", "beta", 20))),
                StoreOp::UpsertNode(Box::new(node("1", "alpha", 30))),
            ])
            .await
            .unwrap();
        let nodes = store.nodes().await.unwrap();
        assert_eq!(nodes.len(), 2, "{name}");
        assert_eq!(
            (nodes[0].first_seen_ms, nodes[0].last_seen_ms),
            (10, 30),
            "{name}"
        );
        assert!(!nodes[0].draining, "{name}");
        let drained = NodeRow {
            draining: true,
            ..node("1", "alpha", 35)
        };
        store
            .apply(&[StoreOp::UpsertNode(Box::new(drained))])
            .await
            .unwrap();
        assert!(store.nodes().await.unwrap()[0].draining, "{name}");
        // The same machine under a new id replaces the old row.
        store
            .apply(&[StoreOp::UpsertNode(Box::new(node("3", "beta", 40)))])
            .await
            .unwrap();
        let names: Vec<(String, String)> = store
            .nodes()
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.id, n.machine_name))
            .collect();
        assert_eq!(
            names,
            [("1".into(), "alpha".into()), ("3".into(), "beta".into())],
            "{name}"
        );
        store
            .apply(&[StoreOp::DeleteNode("1".into())])
            .await
            .unwrap();
        assert_eq!(store.nodes().await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn metrics_history_is_per_node_oldest_first_and_pruned() {
    for (name, store) in stores().await {
        store
            .apply(&[
                StoreOp::Metrics(sample("a", 300)),
                StoreOp::Metrics(sample("a", 100)),
                StoreOp::Metrics(sample("b", 200)),
            ])
            .await
            .unwrap();
        let history = store.metrics_history("a", 0).await.unwrap();
        let times: Vec<u64> = history.iter().map(|m| m.at_ms).collect();
        assert_eq!(times, [100, 300], "{name}");
        assert_eq!(history[0], sample("a", 100), "{name}: round trip");
        insert(&*store, vec![record("old", 50, "m", "a", 200)]).await;
        let pruned = store.prune(200, 100).await.unwrap();
        assert_eq!(pruned, 2, "{name}: one sample and one request");
        assert_eq!(
            store.metrics_history("a", 0).await.unwrap().len(),
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn sqlite_file_keeps_rows_across_reopen() {
    let dir = std::env::temp_dir().join(format!("llm-router-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("router.db").display());
    {
        let store = SqliteStore::open(&url).await.unwrap();
        insert(&store, vec![record("keep", 1, "m", "a", 200)]).await;
        store
            .apply(&[StoreOp::UpsertNode(Box::new(node("1", "alpha", 1)))])
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&url).await.unwrap();
    assert!(store.request("keep").await.unwrap().is_some());
    assert_eq!(store.nodes().await.unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn writer_applies_queued_ops_and_drains_on_shutdown() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (sink, rx) = HistorySink::channel(16);
    let cancel = tokio_util::sync::CancellationToken::new();
    let retention = writer::Retention {
        metrics: std::time::Duration::from_secs(3600),
        requests: std::time::Duration::from_secs(3600),
    };
    for i in 0..10 {
        sink.send(StoreOp::Request(Box::new(record(
            &format!("w{i}"),
            unix_ms(std::time::SystemTime::now()),
            "m",
            "a",
            200,
        ))));
    }
    cancel.cancel();
    run_writer(Arc::clone(&store), sink.clone(), rx, retention, cancel).await;
    let page = store.requests(&RequestQuery::default()).await.unwrap();
    assert_eq!(page.total, 10);
    assert_eq!(
        sink.counters()
            .written
            .load(std::sync::atomic::Ordering::Relaxed),
        10
    );
}

#[tokio::test]
async fn full_sink_drops_and_counts_instead_of_blocking() {
    let (sink, _rx) = HistorySink::channel(2);
    for i in 0..5 {
        sink.send(StoreOp::DeleteNode(format!("{i}")));
    }
    assert_eq!(
        sink.counters()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

fn user(id: &str, name: &str) -> UserRow {
    UserRow {
        id: id.into(),
        username: name.into(),
        password_hash: format!("$argon2id$hash-of-{name}"),
        role: "viewer".into(),
        created_ms: 10,
        updated_ms: 10,
    }
}

fn key(id: &str, created_ms: u64) -> ApiKeyRow {
    ApiKeyRow {
        id: id.into(),
        name: format!("key {id}"),
        key_hash: format!("{id:0>64}"),
        prefix: "sk-llmr-abcdef".into(),
        models: Some(vec!["m".into()]),
        created_by: Some("admin".into()),
        created_ms,
        expires_ms: None,
        revoked_ms: None,
        last_used_ms: None,
        limits: Some(r#"{"requests_per_minute":3}"#.into()),
    }
}

#[tokio::test]
async fn key_spend_adds_up_per_key_and_period() {
    for (name, store) in stores().await {
        let add = |key: &str, period: &str, tokens| StoreOp::AddSpend {
            key_id: key.into(),
            period: period.into(),
            tokens,
        };
        store
            .apply(&[
                add("a", "2026-12", 5),
                add("a", "2026-12", 7),
                add("a", "2026-11", 1),
            ])
            .await
            .unwrap();
        store.apply(&[add("b", "2026-12-03", 2)]).await.unwrap();
        let mut spend = store.credentials(0).await.unwrap().key_spend;
        spend.sort_by(|x, y| (&x.key_id, &x.period).cmp(&(&y.key_id, &y.period)));
        let got: Vec<(&str, &str, u64)> = spend
            .iter()
            .map(|r| (r.key_id.as_str(), r.period.as_str(), r.tokens))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "2026-11", 1),
                ("a", "2026-12", 12),
                ("b", "2026-12-03", 2)
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn credentials_round_trip_and_sessions_go_with_their_user_or_expiry() {
    for (name, store) in stores().await {
        let session = |hash: &str, user_id: &str, expires_ms: u64| {
            StoreOp::InsertSession(Box::new(SessionRow {
                token_hash: hash.into(),
                user_id: user_id.into(),
                created_ms: 1,
                expires_ms,
            }))
        };
        store
            .apply(&[
                StoreOp::UpsertUser(Box::new(user("u1", "alice"))),
                StoreOp::UpsertUser(Box::new(user("u2", "bob"))),
                session("s1", "u1", 1_000),
                session("s2", "u2", 1_000),
                session("old", "u1", 50),
                StoreOp::UpsertApiKey(Box::new(key("k2", 2))),
                StoreOp::UpsertApiKey(Box::new(key("k1", 1))),
                StoreOp::SetSetting {
                    key: "enrollment_token".into(),
                    value: "e".into(),
                },
            ])
            .await
            .unwrap();
        let c = store.credentials(100).await.unwrap();
        assert_eq!(c.users.len(), 2, "{name}");
        assert_eq!(c.users[0], user("u1", "alice"), "{name}");
        let mut sessions: Vec<&str> = c.sessions.iter().map(|s| s.token_hash.as_str()).collect();
        sessions.sort_unstable();
        assert_eq!(sessions, ["s1", "s2"], "{name}: the expired one is gone");
        assert_eq!(c.api_keys, vec![key("k1", 1), key("k2", 2)], "{name}");
        assert_eq!(c.settings, vec![("enrollment_token".into(), "e".into())]);

        // A role change keeps the creation time; deleting a user takes its sessions.
        let mut admin = user("u1", "alice");
        admin.role = "admin".into();
        admin.created_ms = 99;
        store
            .apply(&[
                StoreOp::UpsertUser(Box::new(admin)),
                StoreOp::DeleteUser("u2".into()),
                StoreOp::DeleteSession("s1".into()),
                StoreOp::TouchApiKey {
                    id: "k1".into(),
                    at_ms: 70,
                },
                StoreOp::TouchApiKey {
                    id: "k1".into(),
                    at_ms: 60,
                },
            ])
            .await
            .unwrap();
        let mut revoked = key("k2", 2);
        revoked.revoked_ms = Some(80);
        store
            .apply(&[StoreOp::UpsertApiKey(Box::new(revoked.clone()))])
            .await
            .unwrap();
        let c = store.credentials(100).await.unwrap();
        assert_eq!(c.users.len(), 1, "{name}");
        assert_eq!(
            (c.users[0].role.as_str(), c.users[0].created_ms),
            ("admin", 10)
        );
        assert!(c.sessions.is_empty(), "{name}: {:?}", c.sessions);
        assert_eq!(
            c.api_keys[0].last_used_ms,
            Some(70),
            "{name}: latest use kept"
        );
        assert_eq!(c.api_keys[1], revoked, "{name}");
    }
}
