//! A fleet across real network boundaries: three Linux network namespaces stand for three
//! machines (the router's, holding a bridge at 10.77.0.1, and two node machines at 10.77.0.10 and
//! .11, addresses that exist only inside them). The real router listens on 10.77.0.1 with a
//! bundle made by `scripts/package.sh`; on each node machine the operator's command
//! `curl -fsSL http://10.77.0.1:PORT/join.sh | sh -s -- --token …` runs with an empty HOME and
//! cache. Checked: both nodes register with their own namespace address (found by the node from
//! its route to the router, no --advertise-address), serve the real model through the router
//! (requests sent from the other machine), nothing listens on a node machine but the node port
//! (llama-server stays on loopback), a node killed on its machine goes offline and comes back
//! when started again, and the systemd units are valid (`systemd-analyze verify`). Prints the
//! time from the join command to the node's first served request.
//!
//! Needs root (network namespaces); elsewhere it says loudly that it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use llm_router_e2e::join::{Bundle, Installed, join};
use llm_router_e2e::netns::{Network, ROUTER_IP, node_ip};
use llm_router_testkit::processes::{ChildProcess, MODEL, Runtime, TEST_ADMIN_PASSWORD, binary};
use llm_router_testkit::{TEST_ENROLLMENT_TOKEN, TempDir, wait_for};
use serde_json::{Value, json};

const ROUTER_PORT: u16 = 8080;
const NODE_PORT: u16 = 8081;

/// `curl` run inside `ns`: the status and the body.
fn curl(net: &Network, ns: &str, args: &str) -> (u16, String) {
    let out = net
        .sh(
            ns,
            &format!("curl -sS --max-time 60 -w '\\n%{{http_code}}' {args}"),
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn router_url() -> String {
    format!("http://{ROUTER_IP}:{ROUTER_PORT}")
}

/// The fleet as the admin sees it, asked from the router's machine.
fn agents(net: &Network, session: &str) -> Vec<Value> {
    let (status, body) = curl(
        net,
        &net.router,
        &format!(
            "-H 'Authorization: Bearer {session}' {}/api/agents",
            router_url()
        ),
    );
    if status != 200 {
        return Vec::new();
    }
    serde_json::from_str(&body).unwrap_or_default()
}

fn agent<'a>(fleet: &'a [Value], name: &str) -> Option<&'a Value> {
    fleet.iter().find(|n| n["machine_name"] == name)
}

/// A completion through the router, sent from machine `from`: the node that served it.
fn complete(net: &Network, from: &str, key: &str) -> Option<String> {
    let body = json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 4});
    let out = net
        .sh(
            from,
            &format!(
                "curl -sS --max-time 60 -D - -H 'Authorization: Bearer {key}' \
                 -H 'Content-Type: application/json' -d '{body}' {}/v1/completions",
                router_url()
            ),
        )
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.starts_with("HTTP/1.1 200") || !text.contains("\"text_completion\"") {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("x-llm-router-node: "))
        .map(|n| n.trim().to_owned())
}

/// `systemd-analyze verify` of `unit`: passes with nothing to say.
fn verify_unit(unit: &Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{}: {stderr}",
        unit.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn machines_join_across_namespaces_and_serve_through_the_router() {
    let net = match Network::build("fleet", 2) {
        Ok(net) => net,
        Err(e) => {
            eprintln!(
                "\n********************************************************************\n\
                 SKIPPED fleet_netns: cannot create network namespaces here ({e}).\n\
                 Run as root on Linux with iproute2 to run this test.\n\
                 ********************************************************************\n"
            );
            return;
        }
    };
    let runtime = Runtime::from_env().unwrap();
    let bundle = Bundle::package(&runtime, false).unwrap();
    let state = TempDir::new("netns-router").unwrap();

    // The router, on the router machine's address only.
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.router])
        .arg(binary("llm-router").unwrap())
        .args(["--listen", &format!("{ROUTER_IP}:{ROUTER_PORT}")])
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}",
            state.path().join("router.db").display()
        ))
        .arg("--log-dir")
        .arg(state.path().join("logs"))
        .arg("--bundle-dir")
        .arg(&bundle.path)
        .args(["--node-timeout", "3s", "--heartbeat-interval", "1s"])
        .args(["--auto-distribute", "false"])
        .env("LLM_ROUTER_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD)
        .env("LLM_ROUTER_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
        .env("RUST_LOG", "info");
    let _router = ChildProcess::spawn("llm-router (netns)", cmd).unwrap();
    wait_for("the router's /health", Duration::from_secs(30), || async {
        (curl(&net, &net.router, &format!("{}/health", router_url())).0 == 200).then_some(())
    })
    .await
    .unwrap();
    let (_, login) = curl(
        &net,
        &net.router,
        &format!(
            "-H 'Content-Type: application/json' -d '{}' {}/api/auth/login",
            json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}),
            router_url()
        ),
    );
    let session = serde_json::from_str::<Value>(&login).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, key) = curl(
        &net,
        &net.router,
        &format!(
            "-H 'Authorization: Bearer {session}' -H 'Content-Type: application/json' \
             -d '{{\"name\":\"netns\"}}' {}/api/keys",
            router_url()
        ),
    );
    let key = serde_json::from_str::<Value>(&key).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Each node machine joins with the operator's command, one after the other.
    let models = format!("{MODEL}={}", runtime.model.display());
    let port = NODE_PORT.to_string();
    let machines: Vec<Installed> = (0..2)
        .map(|i| Installed::fresh(&format!("netns-node{i}")).unwrap())
        .collect();
    for (i, machine) in machines.iter().enumerate() {
        let name = format!("machine-{i}");
        let ns = &net.nodes[i];
        let args = [
            "--token",
            TEST_ENROLLMENT_TOKEN,
            "--name",
            &name,
            "--port",
            &port,
            "--models",
            &models,
        ];
        let started = Instant::now();
        let joined = join(&router_url(), machine, &args, Some(ns)).await.unwrap();
        assert!(joined.ok(), "join on {ns}: {}", joined.stderr());
        // Requests come from the other machine; the first one this node serves ends the clock.
        let other = &net.nodes[1 - i];
        wait_for(
            &format!("a completion served by {name}"),
            Duration::from_secs(120),
            || async {
                (complete(&net, other, &key).as_deref() == Some(name.as_str())).then_some(())
            },
        )
        .await
        .unwrap();
        eprintln!(
            "{name}: join command to first request served through the router: {:?} \
             (the join command itself: {:?})",
            started.elapsed(),
            joined.elapsed
        );
        let fleet = agents(&net, &session);
        let node = agent(&fleet, &name).unwrap();
        assert_eq!(
            node["base_url"],
            format!("http://{}:{NODE_PORT}", node_ip(i)),
            "registered with its own namespace address"
        );
        assert_eq!(node["status"], "online");
    }

    // Nothing on a node machine listens beyond loopback but the node port.
    for ns in &net.nodes {
        let listeners = net.listeners(ns).unwrap();
        assert!(
            listeners
                .iter()
                .any(|l| l.ends_with(&format!(":{NODE_PORT}"))),
            "{ns}: {listeners:?}"
        );
        for l in &listeners {
            let loopback = l.starts_with("127.") || l.starts_with("[::1]");
            assert!(
                loopback || l.ends_with(&format!(":{NODE_PORT}")),
                "{ns} listens on {l}: {listeners:?}"
            );
        }
    }

    // A node killed on its machine goes offline, and comes back when started again (the same
    // join command: an upgrade in place).
    machines[0].stop_node("KILL");
    wait_for("machine-0 offline", Duration::from_secs(30), || async {
        let fleet = agents(&net, &session);
        (agent(&fleet, "machine-0")?["status"] == "offline").then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        complete(&net, &net.nodes[0], &key).as_deref(),
        Some("machine-1"),
        "the other machine serves meanwhile"
    );
    let id_before = agent(&agents(&net, &session), "machine-0").unwrap()["id"].clone();
    let args = [
        "--token",
        TEST_ENROLLMENT_TOKEN,
        "--port",
        &port,
        "--models",
        &models,
    ];
    let joined = join(&router_url(), &machines[0], &args, Some(&net.nodes[0]))
        .await
        .unwrap();
    assert!(joined.ok(), "{}", joined.stderr());
    wait_for(
        "machine-0 online again",
        Duration::from_secs(120),
        || async {
            let fleet = agents(&net, &session);
            (agent(&fleet, "machine-0")?["status"] == "online").then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        agent(&agents(&net, &session), "machine-0").unwrap()["id"],
        id_before,
        "same node id"
    );

    // The units, rendered for this install (the node's by the join, the router's here).
    verify_unit(&machines[0].prefix.join("etc/llm-node.service"));
    let router_prefix = state.path().join("prefix");
    std::fs::create_dir_all(router_prefix.join("bin")).unwrap();
    std::os::unix::fs::symlink(
        bundle.path.join("llm-router"),
        router_prefix.join("bin/llm-router"),
    )
    .unwrap();
    let unit = std::fs::read_to_string(bundle.path.join("llm-router.service"))
        .unwrap()
        .replace("@PREFIX@", router_prefix.to_str().unwrap())
        .replace("@BUNDLE@", bundle.path.to_str().unwrap());
    let unit_path = state.path().join("llm-router.service");
    std::fs::write(&unit_path, unit).unwrap();
    verify_unit(&unit_path);

    drop(machines);
}
