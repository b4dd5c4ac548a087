//! `curl -fsSL ROUTER/join.sh | sh -s -- --token …` against a real router on 127.0.0.1 serving a
//! bundle made by `scripts/package.sh` (the built binaries, the real `llama-server`): a join
//! installs, starts and registers a node that serves the real model; a second join upgrades in
//! place and keeps the node's id; a wrong token, an unreachable router, a disk too small, a disk
//! that fills up during the download and a bundle whose checksums do not match each stop with a
//! clear message and install nothing; over https, the join and the node trust the router's CA
//! given with `--router-ca` (and without it the join stops, installing nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use llm_router_e2e::join::{Bundle, Installed, join};
use llm_router_testkit::processes::{
    ChildProcess, MODEL, RouterProcess, Runtime, TEST_ADMIN_PASSWORD, binary, free_port,
};
use llm_router_testkit::{TEST_ENROLLMENT_TOKEN, TempDir, TestCa, wait_for};
use serde_json::{Value, json};

async fn router_serving(bundle: &Bundle) -> RouterProcess {
    let dir = bundle.path.to_str().unwrap();
    RouterProcess::start(&[
        "--bundle-dir",
        dir,
        "--node-timeout",
        "3s",
        "--heartbeat-interval",
        "1s",
        "--auto-distribute",
        "false",
    ])
    .await
    .unwrap()
}

fn assert_nothing_installed(installed: &Installed, stderr: &str) {
    assert!(stderr.contains("Nothing was installed"), "{stderr}");
    let contents = installed.contents();
    assert!(contents.is_empty(), "left behind: {contents:?}");
    assert!(installed.pid().is_none(), "a node was started");
}

/// A temporary filesystem of `mib` MiB mounted at `dir`, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, mib: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_stops_the_join_with_a_clear_message_and_installs_nothing() {
    let runtime = Runtime::from_env().unwrap();
    let bundle = Bundle::package(&runtime, false).unwrap();
    let router = router_serving(&bundle).await;
    let token_args = ["--token", TEST_ENROLLMENT_TOKEN];

    // A wrong token: refused before anything is written.
    let machine = Installed::fresh("join-wrong-token").unwrap();
    let joined = join(&router.url, &machine, &["--token", "not-the-token"], None)
        .await
        .unwrap();
    assert!(!joined.ok());
    assert!(
        joined.stderr().contains("refused the enrolment token"),
        "{}",
        joined.stderr()
    );
    assert_nothing_installed(&machine, &joined.stderr());

    // A router that cannot be reached (the bundle's own join.sh, told where the router is).
    let closed = free_port().unwrap();
    let machine = Installed::fresh("join-unreachable").unwrap();
    let out = Command::new("sh")
        .arg(bundle.path.join("join.sh"))
        .args(["--router", &format!("http://127.0.0.1:{closed}")])
        .args(token_args)
        .arg("--prefix")
        .arg(&machine.prefix)
        .arg("--no-service")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot reach the router"), "{stderr}");
    assert_nothing_installed(&machine, &stderr);

    // A disk too small for the bundle: refused before the download.
    let machine = Installed::fresh("join-full-disk").unwrap();
    match SmallDisk::mount(&machine.prefix, 48) {
        Some(_disk) => {
            let joined = join(&router.url, &machine, &token_args, None)
                .await
                .unwrap();
            assert!(!joined.ok());
            assert!(
                joined.stderr().contains("not enough disk space"),
                "{}",
                joined.stderr()
            );
            assert_nothing_installed(&machine, &joined.stderr());
        }
        None => eprintln!(
            "\n*** SKIPPED the full-disk case: cannot mount a tmpfs here (needs root) ***\n"
        ),
    }

    // A disk that fills up during the download: a fake `df` (on PATH for this join only) says
    // there is room, the 16 MiB disk runs out while the bundle is written.
    let machine = Installed::fresh("join-disk-fills").unwrap();
    match SmallDisk::mount(&machine.prefix, 16) {
        Some(_disk) => {
            let fake_bin = machine.home().join("fake-bin");
            std::fs::create_dir_all(&fake_bin).unwrap();
            let fake_df = fake_bin.join("df");
            std::fs::write(
                &fake_df,
                "#!/bin/sh
# Fake df (test only): 100 GiB free, whatever the disk.
                 echo 'Filesystem 1024-blocks Used Available Capacity Mounted on'
                 echo 'fake 104857600 0 104857600 0% /'
",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake_df, std::fs::Permissions::from_mode(0o755)).unwrap();
            let out = Command::new("sh")
                .arg(bundle.path.join("join.sh"))
                .args(["--router", &router.url])
                .args(token_args)
                .arg("--prefix")
                .arg(&machine.prefix)
                .arg("--no-service")
                .env("PATH", format!("{}:/usr/bin:/bin", fake_bin.display()))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(
                // llm-node in a debug build, the runtime after a release build's smaller binary.
                stderr.contains("the disk filled up while downloading"),
                "{stderr}"
            );
            assert_nothing_installed(&machine, &stderr);
        }
        None => eprintln!(
            "\n*** SKIPPED the disk-fills-up case: cannot mount a tmpfs here (needs root) ***\n"
        ),
    }

    // A bundle file that no longer matches SHA256SUMS: downloaded, refused, removed.
    let node = bundle.path.join("llm-node");
    let mut bytes = std::fs::read(&node).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&node, bytes).unwrap();
    let machine = Installed::fresh("join-mismatch").unwrap();
    let joined = join(&router.url, &machine, &token_args, None)
        .await
        .unwrap();
    assert!(!joined.ok());
    assert!(
        joined.stderr().contains("checksum mismatch for llm-node"),
        "{}",
        joined.stderr()
    );
    assert_nothing_installed(&machine, &joined.stderr());
}

async fn complete(router: &RouterProcess) -> Option<String> {
    let response = router
        .client()
        .await
        .ok()?
        .post(format!("{}/v1/completions", router.url))
        .json(&json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 4}))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let node = response
        .headers()
        .get("x-llm-router-node")?
        .to_str()
        .ok()?
        .to_owned();
    let body: Value = response.json().await.ok()?;
    (body["object"] == "text_completion").then_some(node)
}

async fn node_id(router: &RouterProcess, name: &str) -> Option<String> {
    router
        .agents()
        .await
        .ok()?
        .into_iter()
        .find(|n| n["machine_name"] == name)
        .and_then(|n| n["id"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_serves_the_model_and_a_second_join_upgrades_in_place_with_the_same_id() {
    let runtime = Runtime::from_env().unwrap();
    let bundle = Bundle::package(&runtime, false).unwrap();
    let router = router_serving(&bundle).await;
    let machine = Installed::fresh("join-twice").unwrap();
    let port = free_port().unwrap().to_string();
    let models = format!("{MODEL}={}", runtime.model.display());
    let args = [
        "--token",
        TEST_ENROLLMENT_TOKEN,
        "--name",
        "joined-1",
        "--port",
        &port,
        "--models",
        &models,
    ];

    let started = Instant::now();
    let joined = join(&router.url, &machine, &args, None).await.unwrap();
    assert!(joined.ok(), "{}", joined.stderr());
    let served_by = wait_for(
        "a completion served by the joined node",
        Duration::from_secs(120),
        || complete(&router),
    )
    .await
    .unwrap();
    let first_request = started.elapsed();
    assert_eq!(served_by, "joined-1");
    eprintln!(
        "join to first served request: {first_request:?} (the join itself: {:?})",
        joined.elapsed
    );
    let id = node_id(&router, "joined-1").await.unwrap();
    let first_pid = machine.pid().unwrap();
    let env = std::fs::read_to_string(machine.env_file()).unwrap();
    assert!(env.contains("LLM_NODE_HOST=0.0.0.0"), "{env}");
    assert!(
        !format!("{:?}", joined.output).contains(TEST_ENROLLMENT_TOKEN),
        "the token is never printed"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(machine.env_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the environment file holds the token: owner only"
    );
    // The unit, rendered for this prefix, next to the configuration.
    let unit = std::fs::read_to_string(machine.prefix.join("etc/llm-node.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={}/bin/llm-node",
            machine.prefix.display()
        )),
        "{unit}"
    );

    // Again, without --name: the same name from the environment file, so the same id; the node
    // is restarted on the new files.
    let again: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "--name" && *a != "joined-1")
        .collect();
    let rejoined = join(&router.url, &machine, &again, None).await.unwrap();
    assert!(rejoined.ok(), "{}", rejoined.stderr());
    assert!(
        rejoined.stderr().contains("stopping the running node"),
        "{}",
        rejoined.stderr()
    );
    let second_pid = machine.pid().unwrap();
    assert_ne!(first_pid, second_pid, "the node was restarted");
    assert_eq!(
        machine.setting("LLM_NODE_NAME").as_deref(),
        Some("joined-1")
    );
    let served_by = wait_for(
        "a completion after the upgrade",
        Duration::from_secs(120),
        || complete(&router),
    )
    .await
    .unwrap();
    assert_eq!(served_by, "joined-1");
    assert_eq!(
        node_id(&router, "joined-1").await.unwrap(),
        id,
        "same node id"
    );
    assert_eq!(router.agents().await.unwrap().len(), 1, "one node, not two");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_over_https_trusts_the_routers_ca_and_so_does_the_node() {
    let runtime = Runtime::from_env().unwrap();
    let bundle = Bundle::package(&runtime, false).unwrap();
    let state = TempDir::new("join-tls").unwrap();
    let ca = TestCa::new("join test CA").unwrap();
    let ca_file = ca.write(state.path(), "ca").unwrap();
    let cert = ca.issue(&["127.0.0.1"], state.path(), "router").unwrap();
    let port = free_port().unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let mut cmd = Command::new(binary("llm-router").unwrap());
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}",
            state.path().join("router.db").display()
        ))
        .arg("--log-dir")
        .arg(state.path().join("logs"))
        .arg("--bundle-dir")
        .arg(&bundle.path)
        .arg("--tls-cert")
        .arg(&cert.cert)
        .arg("--tls-key")
        .arg(&cert.key)
        .args(["--node-timeout", "3s", "--heartbeat-interval", "1s"])
        .args(["--auto-distribute", "false"])
        .env("LLM_ROUTER_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD)
        .env("LLM_ROUTER_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN);
    let _router = ChildProcess::spawn("llm-router (https)", cmd).unwrap();
    let client = ca.client().unwrap();
    wait_for(
        "the router's /health over https",
        Duration::from_secs(30),
        || async {
            let r = client.get(format!("{url}/health")).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await
    .unwrap();
    // The script names the router with https://.
    let script = client
        .get(format!("{url}/join.sh"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains(&format!("LLM_ROUTER_URL:-{url}}}")),
        "{script}"
    );

    let join_with = |machine: &Installed, ca: Option<&Path>| {
        let mut cmd = Command::new("sh");
        cmd.arg(bundle.path.join("join.sh"))
            .args(["--router", &url, "--token", TEST_ENROLLMENT_TOKEN])
            .args(["--name", "tls-node", "--no-service", "--prefix"])
            .arg(&machine.prefix)
            .env("HOME", machine.home())
            // A port of its own: other tests' nodes may hold 8081.
            .args(["--port", &free_port().unwrap().to_string()]);
        if let Some(ca) = ca {
            cmd.arg("--router-ca").arg(ca);
        }
        cmd.output().unwrap()
    };
    // Without the CA: a clear message, nothing installed.
    let machine = Installed::fresh("join-tls-untrusted").unwrap();
    let out = join_with(&machine, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--router-ca"), "{stderr}");
    assert_nothing_installed(&machine, &stderr);

    // With it: installed, and the node trusts the router too (it registers over https).
    let machine = Installed::fresh("join-tls").unwrap();
    let out = join_with(&machine, Some(&ca_file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept_ca = machine.setting("LLM_NODE_ROUTER_CA").unwrap();
    assert_eq!(
        std::fs::read_to_string(&kept_ca).unwrap(),
        ca.pem(),
        "the CA is kept next to the configuration"
    );
    let login: Value = client
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = login["token"].as_str().unwrap().to_owned();
    wait_for(
        "the node registered over https",
        Duration::from_secs(60),
        || async {
            let fleet: Vec<Value> = client
                .get(format!("{url}/api/agents"))
                .bearer_auth(&session)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            fleet
                .iter()
                .any(|n| n["machine_name"] == "tls-node")
                .then_some(())
        },
    )
    .await
    .unwrap();
}
