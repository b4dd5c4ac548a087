//! TLS on the node, the production `Node` in-process (no model, a stand-in runtime binary) with
//! certificates the test makes: it serves its API over HTTPS only, registers with a router
//! served over HTTPS (trusted through `router_ca`) saying `scheme: https`, and that router reaches
//! its API at `https://`; without the router's CA it does not register; unusable TLS files are
//! start-up errors naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use llm_node::{Config, Node, Settings};
use llm_router_common::serve::Limits;
use llm_router_protocol::Secret;
use llm_router_protocol::node::{NodeStatus, RegisterRequest, RegisterResponse, Scheme};
use llm_router_testkit::processes::free_port;
use llm_router_testkit::{CertFiles, TempDir, TestCa};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A registration as the fake router saw it, with what the node's API answered it.
#[derive(Debug, Clone)]
struct Seen {
    request: RegisterRequest,
    /// Status of `GET {base_url}/v1/models` with the node's API token, or the error.
    models_check: Result<StatusCode, String>,
}

/// A router stand-in serving HTTPS: it takes registrations, checks each node's `/v1/models` at
/// the URL the registration gives (trusting the test CA) and records both.
struct FakeRouter {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl FakeRouter {
    async fn start(cert: &CertFiles, ca: &TestCa) -> FakeRouter {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = (Arc::clone(&seen), ca.client().unwrap());
        let app = axum::Router::new()
            .route("/api/agents/register", post(register))
            .with_state(state);
        let tls = llm_router_common::tls::acceptor(&cert.cert, &cert.key).unwrap();
        let stop = CancellationToken::new();
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 64,
        };
        tokio::spawn(llm_router_common::serve::serve(
            listener,
            app,
            limits,
            Some(tls),
            stop.clone().cancelled_owned(),
        ));
        FakeRouter { url, seen, stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeRouter {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn register(
    State((seen, http)): State<(Arc<Mutex<Vec<Seen>>>, reqwest::Client)>,
    Json(request): Json<RegisterRequest>,
) -> Json<RegisterResponse> {
    let models_check = http
        .get(format!("{}/v1/models", request.base_url()))
        .bearer_auth(request.api_token.expose())
        .send()
        .await
        .map(|r| r.status())
        .map_err(|e| format!("{e:?}"));
    seen.lock().unwrap().push(Seen {
        request,
        models_check,
    });
    Json(RegisterResponse {
        node_id: "node-1".into(),
        node_token: Secret::new("node-token"),
        status: NodeStatus::Initializing,
        heartbeat_interval_secs: 3600,
    })
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Settings of a node in `dir` (a stand-in runtime, no model) registering at `router_url`.
fn settings(dir: &Path, router_url: &str, port: u16) -> Settings {
    let runtime = dir.join("llama-server");
    std::fs::write(&runtime, "#!/bin/sh\nexit 0\n").unwrap();
    make_executable(&runtime);
    Settings {
        router_url: Some(router_url.to_owned()),
        port: Some(port),
        name: Some(format!("tls-node-{port}")),
        llama_server: Some(runtime),
        enrollment_token: Some(Secret::new("e")),
        models_dir: Some(dir.join("models")),
        log_dir: Some(dir.join("logs")),
        runtimes_dir: Some(dir.join("runtimes")),
        header_read_timeout: Some(Duration::from_secs(2)),
        ..Settings::default()
    }
}

/// A CA and certificates for 127.0.0.1 of a router and a node.
struct Pki {
    dir: TempDir,
    ca: TestCa,
    ca_file: PathBuf,
    router: CertFiles,
    node: CertFiles,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("node-tls").unwrap();
        let ca = TestCa::new("llm-node test CA").unwrap();
        let ca_file = ca.write(dir.path(), "ca").unwrap();
        let router = ca.issue(&["127.0.0.1"], dir.path(), "router").unwrap();
        let node = ca.issue(&["127.0.0.1"], dir.path(), "node").unwrap();
        Pki {
            dir,
            ca,
            ca_file,
            router,
            node,
        }
    }
}

/// Runs `settings` as a node until the returned token is cancelled (or dropped with the test).
async fn start(settings: Settings) -> CancellationToken {
    let node = Node::bind(Config::try_from(settings).unwrap())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(node.run(stop.clone()));
    stop
}

#[tokio::test]
async fn a_tls_node_registers_over_https_as_https_and_serves_https_only() {
    let pki = Pki::new();
    let router = FakeRouter::start(&pki.router, &pki.ca).await;
    let port = free_port().unwrap();
    let stop = start(Settings {
        tls_cert: Some(pki.node.cert.clone()),
        tls_key: Some(pki.node.key.clone()),
        router_ca: Some(pki.ca_file.clone()),
        ..settings(pki.dir.path(), &router.url, port)
    })
    .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let seen = loop {
        if let Some(seen) = router.seen().into_iter().next() {
            break seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never registered over HTTPS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seen.request.scheme, Scheme::Https);
    assert_eq!(seen.request.base_url(), format!("https://127.0.0.1:{port}"));
    assert_eq!(seen.models_check, Ok(StatusCode::OK));

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let health = pki
        .ca
        .client()
        .unwrap()
        .get(format!("https://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    stop.cancel();
}

#[tokio::test]
async fn without_the_routers_ca_the_node_does_not_register() {
    let pki = Pki::new();
    let router = FakeRouter::start(&pki.router, &pki.ca).await;
    let stop = start(settings(pki.dir.path(), &router.url, free_port().unwrap())).await;
    // Registration is retried from 0.5 s on: several tries fit in this wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        router.seen().is_empty(),
        "registered with an untrusted router"
    );
    stop.cancel();
}

#[tokio::test]
async fn unusable_tls_files_are_start_up_errors_naming_the_file() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let base = || settings(dir, "https://127.0.0.1:1", free_port().unwrap());

    let why = Config::try_from(Settings {
        tls_key: Some(pki.node.key.clone()),
        ..base()
    })
    .unwrap_err()
    .to_string();
    assert!(why.contains("tls_cert"), "{why}");

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not PEM\n").unwrap();
    for settings in [
        Settings {
            tls_cert: Some(pki.node.cert.clone()),
            tls_key: Some(garbage.clone()),
            ..base()
        },
        Settings {
            tls_cert: Some(garbage.clone()),
            tls_key: Some(pki.node.key.clone()),
            ..base()
        },
        Settings {
            router_ca: Some(garbage.clone()),
            ..base()
        },
    ] {
        let error = match Node::bind(Config::try_from(settings).unwrap()).await {
            Ok(_) => panic!("the node started with {}", garbage.display()),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(&garbage.display().to_string()), "{error}");
    }
}
