//! TLS on the router, with certificates the test makes (a CA and certificates for 127.0.0.1):
//! HTTPS end to end (login with a `Secure` cookie, the model list, a chat completion relayed to a
//! node serving HTTPS), plain HTTP and silent clients on the TLS port closed while the router keeps
//! serving, silent handshakes counted against the connection cap, nodes with an untrusted or
//! wrong-name certificate refused at registration with the generic message (the reason in the
//! router's log), and unusable TLS files refused at start-up naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, TestRouter, chat, client, spawn_router, test_config};
use llm_router::{Config, Server, Settings};
use llm_router_testkit::hostile::{closed_by_server, still_open};
use llm_router_testkit::{CertFiles, FakeNode, TempDir, TestCa};
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The header-read timeout (and so the handshake timeout) of these tests' routers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// How late past the timeout a connection may still be closed (a loaded two-core machine).
const SLACK: Duration = Duration::from_secs(3);

/// A CA, the router's certificate for 127.0.0.1 and the files, in a directory of their own.
struct Pki {
    dir: TempDir,
    ca: TestCa,
    ca_file: std::path::PathBuf,
    router: CertFiles,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("tls").unwrap();
        let ca = TestCa::new("llm-router test CA").unwrap();
        let ca_file = ca.write(dir.path(), "ca").unwrap();
        let router = ca.issue(&["127.0.0.1"], dir.path(), "router").unwrap();
        Pki {
            dir,
            ca,
            ca_file,
            router,
        }
    }

    /// The test configuration serving HTTPS with the router's certificate and trusting the CA
    /// for nodes.
    fn router_config(&self) -> Config {
        Config {
            tls: Some(llm_router::TlsFiles {
                cert: self.router.cert.clone(),
                key: self.router.key.clone(),
            }),
            node_ca: Some(self.ca_file.clone()),
            header_read_timeout: HEADER_TIMEOUT,
            ..test_config()
        }
    }

    /// A fake node serving HTTPS with a certificate of `ca` for `names`, calling the router
    /// through a client trusting this CA.
    async fn node(&self, name: &str, ca: &TestCa, names: &[&str]) -> FakeNode {
        let files = ca.issue(names, self.dir.path(), name).unwrap();
        FakeNode::builder(name)
            .model("m")
            .tls(files)
            .router_client(self.ca.client().unwrap())
            .spawn()
            .await
            .unwrap()
    }
}

fn https(router: &TestRouter, path: &str) -> String {
    router.url(path).replacen("http://", "https://", 1)
}

fn addr(router: &TestRouter) -> SocketAddr {
    router
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

async fn https_health(router: &TestRouter, ca: &TestCa) -> StatusCode {
    ca.client()
        .unwrap()
        .get(https(router, "/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("the router answers over HTTPS")
        .status()
}

/// What the whole test process logged so far (one global subscriber, installed once).
fn logged() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned()
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(Vec::new())
    })
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `Set-Cookie` of a successful admin login at `url`.
async fn login_cookie(http: &reqwest::Client, url: &str) -> String {
    let response = http
        .post(url)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn over_https_a_login_gets_a_secure_cookie_and_a_chat_is_relayed_to_an_https_node() {
    let pki = Pki::new();
    let router = spawn_router(pki.router_config()).await.unwrap();
    let http = pki.ca.client().unwrap();

    let cookie = login_cookie(&http, &https(&router, "/api/auth/login")).await;
    assert!(cookie.starts_with("llm_router_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    // The same login on a router serving plain HTTP: no `Secure` (a browser would drop it).
    let plain = spawn_router(test_config()).await.unwrap();
    let plain_cookie = login_cookie(&client(), &plain.url("/api/auth/login")).await;
    assert!(!plain_cookie.contains("Secure"), "{plain_cookie}");

    let node = pki.node("tls-node", &pki.ca, &["127.0.0.1"]).await;
    assert!(node.base_url().starts_with("https://"));
    node.register(&https(&router, "")).await.unwrap();

    let models: Value = http
        .get(https(&router, "/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "m", "{models}");

    let response = http
        .post(https(&router, "/v1/chat/completions"))
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"], "hello from tls-node",
        "{body}"
    );
    assert_eq!(node.requests(), 1);
    assert_eq!(node.unauthorized_requests(), 0);
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_no_answer_and_the_router_keeps_serving() {
    let pki = Pki::new();
    let router = spawn_router(pki.router_config()).await.unwrap();

    let mut stream = TcpStream::connect(addr(&router)).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(SLACK, stream.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "the connection stayed open"
    );
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        client().get(router.url("/health")).send().await.is_err(),
        "an HTTP client got an answer from the TLS port"
    );
    assert_eq!(https_health(&router, &pki.ca).await, StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_never_speaks_tls_is_closed_within_the_header_timeout() {
    let pki = Pki::new();
    let router = spawn_router(pki.router_config()).await.unwrap();

    let mut silent = TcpStream::connect(addr(&router)).await.unwrap();
    let opened = Instant::now();
    assert!(still_open(&mut silent, HEADER_TIMEOUT / 2).await);
    let closed = closed_by_server(silent, opened + HEADER_TIMEOUT + SLACK)
        .await
        .expect("the silent connection is closed");
    let open_for = closed - opened;
    assert!(
        open_for + Duration::from_millis(500) >= HEADER_TIMEOUT,
        "closed after {open_for:?}, before the timeout"
    );
    assert_eq!(https_health(&router, &pki.ca).await, StatusCode::OK);
}

#[tokio::test]
async fn connections_still_shaking_hands_count_against_the_cap() {
    const CAP: usize = 4;
    let pki = Pki::new();
    let router = spawn_router(Config {
        max_connections: CAP,
        // Longer than the test: the held connections are not closed by the timeout meanwhile.
        header_read_timeout: Duration::from_secs(30),
        ..pki.router_config()
    })
    .await
    .unwrap();
    let addr = addr(&router);
    let mut held = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The router accepts in order: give it time to take the held ones first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let over = TcpStream::connect(addr).await.unwrap();
    let closed = closed_by_server(over, Instant::now() + Duration::from_secs(2)).await;
    assert!(closed.is_some(), "a connection over the cap stayed open");
    assert!(still_open(&mut held[0], Duration::from_millis(200)).await);
    drop(held);
    common::wait_until("HTTPS answers again", Duration::from_secs(5), || async {
        pki.ca
            .client()
            .unwrap()
            .get(https(&router, "/health"))
            .send()
            .await
            .is_ok()
    })
    .await;
}

/// Registers `node` at `router`; the refusal's body, after checking it is the generic 502.
async fn refused_registration(router: &TestRouter, node: &FakeNode) -> String {
    let response = node
        .send_registration(
            &https(router, ""),
            Some(llm_router_testkit::TEST_ENROLLMENT_TOKEN),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("could not reach the node's API"),
        "not the generic message: {body}"
    );
    assert!(!body.to_lowercase().contains("certificate"), "{body}");
    body
}

#[tokio::test]
async fn a_node_with_an_untrusted_or_wrong_name_certificate_is_refused_and_the_log_says_why() {
    log_buffer();
    let pki = Pki::new();
    let router = spawn_router(pki.router_config()).await.unwrap();

    let stranger = TestCa::new("another CA").unwrap();
    let untrusted = pki.node("untrusted-node", &stranger, &["127.0.0.1"]).await;
    refused_registration(&router, &untrusted).await;
    let log = logged();
    let line = log
        .lines()
        .find(|l| l.contains("registration refused") && l.contains(&untrusted.base_url()))
        .unwrap_or_else(|| panic!("no refusal of the untrusted node in the log:\n{log}"));
    assert!(line.contains("UnknownIssuer"), "{line}");

    let misnamed = pki.node("misnamed-node", &pki.ca, &["node.example"]).await;
    refused_registration(&router, &misnamed).await;
    let log = logged();
    let line = log
        .lines()
        .find(|l| l.contains("registration refused") && l.contains(&misnamed.base_url()))
        .unwrap_or_else(|| panic!("no refusal of the misnamed node in the log:\n{log}"));
    assert!(line.contains("not valid for name"), "{line}");

    assert_eq!(untrusted.requests() + misnamed.requests(), 0);
    let http = pki.ca.client().unwrap();
    let login: Value = http
        .post(https(&router, "/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nodes: Value = http
        .get(https(&router, "/api/agents"))
        .bearer_auth(login["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodes.as_array().map(Vec::len), Some(0), "{nodes}");
}

fn start_error(config: Config) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(Server::bind(config)) {
        Ok(_) => panic!("the router started"),
        Err(e) => e.to_string(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unusable_tls_files_are_start_up_errors_naming_the_file() {
    let pki = Pki::new();
    let dir = pki.dir.path();

    // One without the other, from any layer.
    let only_cert = Settings {
        tls_cert: Some(pki.router.cert.clone()),
        ..Settings::default()
    };
    let why = Config::try_from(only_cert).unwrap_err().to_string();
    assert!(why.contains("tls_key"), "{why}");

    let with = |cert: &Path, key: &Path| Config {
        tls: Some(llm_router::TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
        ..test_config()
    };
    let missing = dir.join("missing.key");
    let why = start_error(with(&pki.router.cert, &missing));
    assert!(why.contains(&missing.display().to_string()), "{why}");

    let garbage = write(dir, "garbage.crt", "this is not a certificate\n");
    let why = start_error(with(&garbage, &pki.router.key));
    assert!(why.contains(&garbage.display().to_string()), "{why}");
    assert!(why.contains("no PEM certificate"), "{why}");

    let broken = write(
        dir,
        "broken.key",
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n",
    );
    let why = start_error(with(&pki.router.cert, &broken));
    assert!(why.contains(&broken.display().to_string()), "{why}");

    // The certificate as the key: no key in it.
    let why = start_error(with(&pki.router.cert, &pki.router.cert));
    assert!(why.contains("no PEM private key"), "{why}");

    // A key that is not the certificate's.
    let other = pki.ca.issue(&["127.0.0.1"], dir, "other").unwrap();
    let why = start_error(with(&pki.router.cert, &other.key));
    assert!(why.contains(&other.key.display().to_string()), "{why}");

    let bad_ca = Config {
        node_ca: Some(garbage.clone()),
        ..test_config()
    };
    let why = start_error(bad_ca);
    assert!(why.contains(&garbage.display().to_string()), "{why}");

    // And the good files start.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(runtime.block_on(Server::bind(pki.router_config())).is_ok());
}
