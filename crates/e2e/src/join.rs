//! Joining machines the way an operator does: a bundle made by `scripts/package.sh` from the
//! built binaries and the real runtime, a router serving it (`--bundle-dir`), and
//! `curl -fsSL ROUTER/join.sh | sh -s -- --token …` run with an empty `HOME`, optionally inside a
//! network namespace. What a join started (a node in the background) is stopped when its
//! [`Installed`] guard is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, bail};
use llm_router_testkit::TempDir;
use llm_router_testkit::processes::{Runtime, binary};

/// Settings of the nodes the tests join, as `KEY=VALUE` (the small model and one thread).
const NODE_SETTINGS: [&str; 4] = [
    "LLM_NODE_CHAT_TEMPLATE=gemma",
    "LLM_NODE_CTX_SIZE=2048",
    "LLM_NODE_PARALLEL=2",
    "LLM_NODE_THREADS=1",
];

/// How long one join may take (download, check, install, start).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(180);

/// A bundle directory made by `scripts/package.sh --bin-dir` (removed when dropped).
pub struct Bundle {
    _dir: TempDir,
    pub path: PathBuf,
    /// The .deb packages, when asked for.
    pub debs: Vec<PathBuf>,
}

impl Bundle {
    /// Packages the built `llm-router` and `llm-node` with `runtime`'s `llama-server`, and the
    /// .deb packages when `debs`.
    pub fn package(runtime: &Runtime, debs: bool) -> anyhow::Result<Bundle> {
        let dir = TempDir::new("bundle")?;
        let bin_dir = binary("llm-node")?
            .parent()
            .context("the binary has no directory")?
            .to_owned();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args(["--profile", "debug", "--no-archive", "--bin-dir"])
            .arg(&bin_dir)
            .args(if debs { None } else { Some("--no-deb") })
            .arg("--out")
            .arg(dir.path())
            .env("LLAMA_SERVER", &runtime.llama_server)
            .output()?;
        if !out.status.success() {
            bail!(
                "scripts/package.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let path = PathBuf::from(String::from_utf8(out.stdout)?.trim());
        let debs = std::fs::read_dir(dir.path())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect();
        Ok(Bundle {
            _dir: dir,
            path,
            debs,
        })
    }
}

/// A machine's install prefix: the node a join started there is stopped, and the prefix
/// removed, when this is dropped.
pub struct Installed {
    pub prefix: PathBuf,
    /// Holds the prefix and the home directory.
    _dir: TempDir,
}

impl Installed {
    /// A fresh, empty prefix (and `HOME`) in a temporary directory.
    pub fn fresh(tag: &str) -> anyhow::Result<Installed> {
        let dir = TempDir::new(tag)?;
        let prefix = dir.path().join("prefix");
        std::fs::create_dir_all(dir.path().join("home"))?;
        Ok(Installed { prefix, _dir: dir })
    }

    /// The empty home directory joins run with.
    pub fn home(&self) -> PathBuf {
        self.prefix.with_file_name("home")
    }

    /// The environment file the join wrote.
    pub fn env_file(&self) -> PathBuf {
        self.prefix.join("etc/node.env")
    }

    /// The node's pid, from the pid file the join wrote (when it is running).
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.prefix.join("var/llm-node.pid")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// `key` of the environment file.
    pub fn setting(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.env_file()).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
    }

    /// Every file and directory under the prefix (empty when nothing was installed).
    pub fn contents(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![self.prefix.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                found.push(path.display().to_string());
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        found
    }

    /// Stops the node the join started (SIGTERM, then SIGKILL after 10 s).
    pub fn stop_node(&self, signal: &str) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.stop_node("TERM");
    }
}

/// The outcome of one join.
pub struct Joined {
    pub output: Output,
    pub elapsed: Duration,
}

impl Joined {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `curl -fsSL ROUTER/join.sh | sh -s -- ARGS --prefix PREFIX --no-service` with an empty
/// `HOME` and cache (and a minimal environment), inside `netns` when given.
pub async fn join(
    router_url: &str,
    installed: &Installed,
    args: &[&str],
    netns: Option<&str>,
) -> anyhow::Result<Joined> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns, "env", "-i"]);
            c
        }
        None => {
            let mut c = tokio::process::Command::new("env");
            c.arg("-i");
            c
        }
    };
    let home = installed.home();
    cmd.arg(format!("HOME={}", home.display()))
        .arg(format!("LLM_ROUTER_CACHE={}", home.join(".cache").display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        // What every end-to-end node runs with (the node inherits the join's environment).
        .args(NODE_SETTINGS)
        .arg("sh")
        .arg("-c")
        .arg(r#"(set -o pipefail) 2>/dev/null && set -o pipefail; curl -fsSL "$0/join.sh" | sh -s -- "$@""#)
        .arg(router_url)
        .args(args)
        .arg("--prefix")
        .arg(&installed.prefix)
        .arg("--no-service")
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(JOIN_TIMEOUT, cmd.output())
        .await
        .context("the join did not end in time")??;
    Ok(Joined {
        output,
        elapsed: started.elapsed(),
    })
}
