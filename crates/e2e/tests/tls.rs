//! TLS end to end with the real binaries: `llm-router` serving HTTPS with a certificate the test
//! made, one real `llm-node` serving HTTPS (its own certificate, the router's CA given with
//! `--router-ca`) and supervising a real `llama-server` with the real model. The client trusts the
//! test's CA only; the node answers nothing but TLS, so a relayed completion proves the router
//! called it over `https://` and verified its certificate (`--node-ca`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use llm_router_testkit::processes::{
    ChildProcess, MODEL, NodeProcess, Runtime, TEST_ADMIN_PASSWORD, binary, free_port,
};
use llm_router_testkit::{TEST_ENROLLMENT_TOKEN, TempDir, TestCa, wait_for};
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn a_real_node_serves_the_real_model_through_a_router_over_https_both_ways() {
    let runtime = Runtime::from_env().unwrap();
    let dir = TempDir::new("llm-e2e-tls").unwrap();
    let ca = TestCa::new("llm-router e2e CA").unwrap();
    let ca_file = ca.write(dir.path(), "ca").unwrap();
    let router_cert = ca.issue(&["127.0.0.1"], dir.path(), "router").unwrap();
    let node_cert = ca.issue(&["127.0.0.1"], dir.path(), "node").unwrap();

    let port = free_port().unwrap();
    let mut cmd = Command::new(binary("llm-router").unwrap());
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("router.db").display()
        ))
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .arg("--tls-cert")
        .arg(&router_cert.cert)
        .arg("--tls-key")
        .arg(&router_cert.key)
        .arg("--node-ca")
        .arg(&ca_file)
        .args(["--heartbeat-interval", "1s", "--node-timeout", "5s"])
        .env("LLM_ROUTER_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD)
        .env("LLM_ROUTER_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
        .env("RUST_LOG", "info");
    let _router = ChildProcess::spawn("llm-router (TLS)", cmd).unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let https = ca.client().unwrap();
    wait_for("the router's /health over https", READY_TIMEOUT, || async {
        https
            .get(format!("{base}/health"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await
    .unwrap();

    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_err(),
        "plain HTTP was answered on the TLS port"
    );

    let ca_arg = ca_file.to_str().unwrap();
    let node = NodeProcess::start(
        &runtime,
        &base,
        "tls-node",
        0,
        &[
            "--tls-cert",
            node_cert.cert.to_str().unwrap(),
            "--tls-key",
            node_cert.key.to_str().unwrap(),
            "--router-ca",
            ca_arg,
        ],
    )
    .unwrap();

    // The admin logs in over https: the cookie is marked Secure.
    let login = https
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    wait_for(
        "the TLS node online with its model",
        READY_TIMEOUT,
        || async {
            let agents: Vec<Value> = https
                .get(format!("{base}/api/agents"))
                .bearer_auth(&session)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let agent = agents.iter().find(|a| a["machine_name"] == node.name)?;
            (agent["status"] == "online"
                && agent["models"]
                    .as_array()?
                    .iter()
                    .any(|m| m["name"] == MODEL && m["state"] == "ready"))
            .then_some(())
        },
    )
    .await
    .unwrap();

    // The node itself speaks TLS only.
    assert!(
        plain
            .get(format!("http://127.0.0.1:{}/health", node.port))
            .send()
            .await
            .is_err(),
        "the node answered plain HTTP"
    );

    let key: Value = https
        .post(format!("{base}/api/keys"))
        .bearer_auth(&session)
        .json(&json!({"name": "tls"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap();
    let response = https
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llm-router-node"], "tls-node");
    let body: Value = response.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.is_empty(), "{body}");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}
