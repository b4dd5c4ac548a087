//! The real binaries (`llm-router`, `llm-node`) and the real runtime (`llama-server` + a GGUF
//! model) as child processes for end-to-end tests, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::{Mutex, PoisonError};

use anyhow::{Context, bail};
use llm_router_protocol::node::NodeHealth;
use serde_json::{Value, json};

use crate::TEST_ENROLLMENT_TOKEN;
use crate::wait_for;

/// Name of the model the end-to-end fleet serves.
pub const MODEL: &str = "gemma3-270m";

/// Password of the `admin` user of the routers these helpers start.
pub const TEST_ADMIN_PASSWORD: &str = "test-admin-password";

/// Where the runtime, the model and the Python test clients are.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub llama_server: PathBuf,
    pub model: PathBuf,
    pub python: PathBuf,
}

impl Runtime {
    /// From `LLAMA_SERVER`, `LLM_MODEL_PATH`, `LLM_PYTHON`, or the install script's cache
    /// (`$LLM_ROUTER_CACHE`, default `~/.cache/llm-router`). Missing pieces are an error that says
    /// how to install them: end-to-end tests never skip.
    pub fn from_env() -> anyhow::Result<Runtime> {
        let cache = std::env::var_os("LLM_ROUTER_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/llm-router")))
            .context("neither LLM_ROUTER_CACHE nor HOME is set")?;
        let pick = |var: &str, default: PathBuf| {
            std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
        };
        let runtime = Runtime {
            llama_server: pick("LLAMA_SERVER", cache.join("bin/llama-server")),
            model: pick(
                "LLM_MODEL_PATH",
                cache.join("models/gemma-3-270m-q4_k_m.gguf"),
            ),
            python: pick("LLM_PYTHON", cache.join("venv/bin/python")),
        };
        for path in [&runtime.llama_server, &runtime.model, &runtime.python] {
            if !path.exists() {
                bail!(
                    "{} is missing: run `scripts/install-runtime.sh --with-test-clients` first",
                    path.display()
                );
            }
        }
        Ok(runtime)
    }
}

/// A built binary of this workspace: `$LLM_ROUTER_BIN_DIR/NAME`, else next to the test executable's
/// directory (`target/<profile>/NAME`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("LLM_ROUTER_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe()?;
            let deps = exe.parent().context("test executable has no directory")?;
            deps.parent()
                .context("test directory has no parent")?
                .to_owned()
        }
    };
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not built: run `cargo build --release --bins` first (or set LLM_ROUTER_BIN_DIR)",
            path.display()
        );
    }
    Ok(path)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// A child process that is stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
}

impl ChildProcess {
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<ChildProcess> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(ChildProcess {
            name: name.to_owned(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (e.g. "KILL", "TERM") to the process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("process already reaped")?;
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed for {}", self.name);
        }
        Ok(())
    }

    /// SIGKILL and reap: the process is gone when this returns.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait for the exit, up to `timeout`; the exit status when it stopped in time.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("process already stopped")?;
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not stop within {timeout:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate(Duration::from_secs(10));
        }
    }
}

/// A running `llm-router` binary on a free loopback port, with its own SQLite database in a
/// temporary directory (removed when dropped).
#[derive(Debug)]
pub struct RouterProcess {
    pub url: String,
    pub port: u16,
    pub process: ChildProcess,
    pub database: PathBuf,
    args: Vec<String>,
    /// Session token of `admin`, once logged in (sessions survive restarts).
    session: Mutex<Option<String>>,
    /// An API key for inference, once created.
    api_key: Mutex<Option<String>>,
}

impl RouterProcess {
    /// Starts `llm-router` with `args` (besides `--listen` and `--database-url`) and waits for its
    /// `/health`.
    pub async fn start(args: &[&str]) -> anyhow::Result<RouterProcess> {
        let dir = std::env::temp_dir().join(format!(
            "llm-router-e2e-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let port = free_port()?;
        let database = dir.join("router.db");
        let process = Self::launch(port, &database, &args).await?;
        Ok(RouterProcess {
            url: format!("http://127.0.0.1:{port}"),
            port,
            process,
            database,
            args,
            session: Mutex::new(None),
            api_key: Mutex::new(None),
        })
    }

    async fn launch(port: u16, database: &Path, args: &[String]) -> anyhow::Result<ChildProcess> {
        let mut cmd = Command::new(binary("llm-router")?);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(format!("sqlite://{}", database.display()))
            .arg("--log-dir")
            .arg(database.with_file_name("logs"))
            .args(args)
            .env("LLM_ROUTER_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD)
            .env("LLM_ROUTER_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
            // No placement unless a test asks for it (`--auto-distribute true` wins over this):
            // the built-in CPU tiers give a node with 32 GB of RAM or more gpt-oss:20b, a 12 GB
            // download from the internet, whatever the test is about.
            .env("LLM_ROUTER_AUTO_DISTRIBUTE", "false")
            .env("RUST_LOG", "info");
        let process = ChildProcess::spawn("llm-router", cmd)?;
        let client = reqwest::Client::new();
        let health = format!("http://127.0.0.1:{port}/health");
        wait_for("the router's /health", Duration::from_secs(20), || async {
            client
                .get(&health)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await?;
        Ok(process)
    }

    /// Stops the router with `signal` ("TERM" waits for a clean exit, "KILL" does not) and starts
    /// it again on the same port with the same database and arguments.
    pub async fn restart(&mut self, signal: &str) -> anyhow::Result<()> {
        match signal {
            "KILL" => self.process.kill()?,
            _ => {
                let status = self.process.terminate(Duration::from_secs(30))?;
                if !status.success() {
                    bail!("router exited with {status} on SIGTERM");
                }
            }
        }
        self.process = Self::launch(self.port, &self.database, &self.args).await?;
        Ok(())
    }

    /// A session token of the `admin` user (logs in the first time).
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        if let Some(token) = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(token);
        }
        let login: Value = reqwest::Client::new()
            .post(format!("{}/api/auth/login", self.url))
            .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = login["token"]
            .as_str()
            .context("no token in the login answer")?
            .to_owned();
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(token)
    }

    /// `GET path` as the admin, as JSON.
    pub async fn get_as_admin(&self, path: &str) -> anyhow::Result<Value> {
        Ok(reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(self.admin_token().await?)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// A new API key for inference, created by the admin.
    pub async fn create_api_key(&self, name: &str) -> anyhow::Result<String> {
        let created: Value = reqwest::Client::new()
            .post(format!("{}/api/keys", self.url))
            .bearer_auth(self.admin_token().await?)
            .json(&json!({"name": name}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(created["key"]
            .as_str()
            .context("no key in the answer")?
            .to_owned())
    }

    /// The API key of this test's clients (created by the admin the first time).
    pub async fn api_key(&self) -> anyhow::Result<String> {
        if let Some(key) = self
            .api_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(key);
        }
        let key = self.create_api_key("e2e").await?;
        *self.api_key.lock().unwrap_or_else(PoisonError::into_inner) = Some(key.clone());
        Ok(key)
    }

    /// An HTTP client that sends [`api_key`](Self::api_key) with every request.
    pub async fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut auth =
            reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.api_key().await?))?;
        auth.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .build()?)
    }

    /// `GET /api/agents`.
    pub async fn agents(&self) -> anyhow::Result<Vec<Value>> {
        Ok(serde_json::from_value(
            self.get_as_admin("/api/agents").await?,
        )?)
    }

    /// The status the router shows for the node named `name`, if it is registered.
    pub async fn node_status(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .agents()
            .await?
            .into_iter()
            .find(|n| n["machine_name"] == name)
            .and_then(|n| n["status"].as_str().map(str::to_owned)))
    }

    /// Waits until the node named `name` has status `status`; returns how long that took.
    pub async fn wait_node_status(
        &self,
        name: &str,
        status: &str,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        wait_for(&format!("node {name} to be {status}"), timeout, || async {
            (self.node_status(name).await.ok()?.as_deref() == Some(status)).then_some(())
        })
        .await?;
        Ok(started.elapsed())
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        if let Some(dir) = self.database.parent() {
            let _ = self.process.terminate(Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A running `llm-node` binary serving [`MODEL`] with a real `llama-server`.
#[derive(Debug)]
pub struct NodeProcess {
    pub name: String,
    pub port: u16,
    pub url: String,
    pub process: ChildProcess,
    /// Where the node writes its JSON-lines log (removed when dropped).
    pub log_dir: PathBuf,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }
}

impl NodeProcess {
    /// Starts `llm-node` named `name` for the router at `router_url`, heartbeating every second.
    /// `port` 0 picks a free one. `extra` is appended to the command line.
    pub fn start(
        runtime: &Runtime,
        router_url: &str,
        name: &str,
        port: u16,
        extra: &[&str],
    ) -> anyhow::Result<NodeProcess> {
        let models = format!("{MODEL}={}", runtime.model.display());
        Self::start_serving(runtime, router_url, name, port, Some(&models), extra)
    }

    /// [`start`](Self::start) with `--models models`, or with no model at all (the router places
    /// models on it).
    pub fn start_serving(
        runtime: &Runtime,
        router_url: &str,
        name: &str,
        port: u16,
        models: Option<&str>,
        extra: &[&str],
    ) -> anyhow::Result<NodeProcess> {
        let port = if port == 0 { free_port()? } else { port };
        let log_dir =
            std::env::temp_dir().join(format!("llm-node-e2e-{}-{port}-logs", std::process::id()));
        let mut cmd = Command::new(binary("llm-node")?);
        cmd.args(["--router-url", router_url, "--name", name])
            .args(["--port", &port.to_string()]);
        if let Some(models) = models {
            cmd.args(["--models", models]);
        }
        cmd.arg("--llama-server")
            .arg(&runtime.llama_server)
            .args(["--chat-template", "gemma", "--heartbeat-interval", "1s"])
            .args(["--ctx-size", "2048", "--parallel", "2", "--threads", "1"])
            .args(extra)
            .env("LLM_NODE_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
            .env("LLM_NODE_LOG_DIR", &log_dir)
            .env("RUST_LOG", "info");
        let process = ChildProcess::spawn(&format!("llm-node {name}"), cmd)?;
        Ok(NodeProcess {
            name: name.to_owned(),
            port,
            url: format!("http://127.0.0.1:{port}"),
            process,
            log_dir,
        })
    }

    /// The node's `GET /health`: its own request counters and model states.
    pub async fn health(&self) -> anyhow::Result<NodeHealth> {
        Ok(reqwest::get(format!("{}/health", self.url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// Pids of the live (not zombie) child processes of `parent` (via `ps`).
pub fn live_children(parent: u32) -> Vec<u32> {
    let Ok(out) = Command::new("ps")
        .args(["-o", "pid=,stat=", "--ppid", &parent.to_string()])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let pid = cols.next()?.parse().ok()?;
            let stat = cols.next()?;
            (!stat.starts_with('Z')).then_some(pid)
        })
        .collect()
}

/// True while a process with this pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the parenthesised command name.
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}
