//! A node whose `llama-server` is missing fetches it: the real `llama-server` and its libraries,
//! packed as a .tar.gz and served by a local file server, are downloaded, checked against their
//! SHA-256, unpacked and run; the node then serves a completion. A wrong digest stops the node
//! with a clear error and leaves no runtime behind; the download honours `HTTP_PROXY` (a local
//! forward proxy sees it) and `NO_PROXY` (it does not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime, binary};
use llm_router_testkit::{FileServer, ForwardProxy, TEST_ENROLLMENT_TOKEN, TempDir};
use serde_json::{Value, json};

/// Packs the directory holding the real `llama-server` (it finds its libraries next to it) as
/// `runtime.tar.gz` in `into`; its SHA-256.
fn pack_runtime(runtime: &Runtime, into: &Path) -> String {
    let real = std::fs::canonicalize(&runtime.llama_server).unwrap();
    let bin = real.parent().unwrap();
    let archive = into.join("runtime.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(bin.parent().unwrap())
        .arg(bin.file_name().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("sha256sum").arg(&archive).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_llama_server_fetches_verifies_and_runs_it() {
    let runtime = Runtime::from_env().unwrap();
    let dir = TempDir::new("runtime-fetch").unwrap();
    let work = dir.path().to_owned();
    let sha256 = pack_runtime(&runtime, &work);
    let server = FileServer::spawn(&work, 200_000_000, None).await.unwrap();
    let runtimes = work.join("runtimes");
    let url = server.url("runtime.tar.gz");

    // A wrong digest, fetched through HTTP_PROXY: the node stops with a clear error and unpacks
    // nothing. Then again with NO_PROXY covering the server: the proxy sees nothing new.
    let proxy = ForwardProxy::start().await.unwrap();
    let wrong_digest = |no_proxy: Option<&str>| {
        let mut cmd = tokio::process::Command::new(binary("llm-node").unwrap());
        cmd.args(["--router-url", "http://127.0.0.1:9", "--port", "0"])
            .arg("--llama-server")
            .arg(work.join("missing/llama-server"))
            .args(["--runtime-url", &url, "--runtime-sha256", &"0".repeat(64)])
            .arg("--runtimes-dir")
            .arg(&runtimes)
            .env("LLM_NODE_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
            .env("HTTP_PROXY", proxy.url())
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("http_proxy")
            .kill_on_drop(true);
        if let Some(no_proxy) = no_proxy {
            cmd.env("NO_PROXY", no_proxy);
        }
        cmd
    };
    for no_proxy in [None, Some("127.0.0.1")] {
        let out = tokio::time::timeout(Duration::from_secs(60), wrong_digest(no_proxy).output())
            .await
            .expect("the node gave up in time")
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("sha256 mismatch"), "{stderr}");
        assert_eq!(
            proxy.seen(),
            [format!("GET {url} HTTP/1.1")],
            "through the proxy, then past it (NO_PROXY={no_proxy:?})"
        );
    }
    assert!(
        std::fs::read_dir(&runtimes)
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "nothing left in {}",
        runtimes.display()
    );

    // The right digest: fetched, unpacked, started, serving.
    let router = RouterProcess::start(&["--node-timeout", "3s", "--heartbeat-interval", "1s"])
        .await
        .unwrap();
    let missing = Runtime {
        llama_server: work.join("missing/llama-server"),
        ..runtime.clone()
    };
    let runtimes_arg = runtimes.to_str().unwrap().to_owned();
    let node = NodeProcess::start(
        &missing,
        &router.url,
        "node-r",
        0,
        &[
            "--runtime-url",
            &url,
            "--runtime-sha256",
            &sha256,
            "--runtimes-dir",
            &runtimes_arg,
        ],
    )
    .unwrap();
    router
        .wait_node_status("node-r", "online", Duration::from_secs(120))
        .await
        .unwrap();
    let unpacked = runtimes.join(&sha256[..16]).join("bin/llama-server");
    assert!(unpacked.is_file(), "{}", unpacked.display());
    let answer: Value = router
        .client()
        .await
        .unwrap()
        .post(format!("{}/v1/completions", router.url))
        .json(&json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["object"], "text_completion", "{answer}");
    drop(node);
}
