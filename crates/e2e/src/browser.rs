//! The dashboard's browser scripts (`tests/browser/*.mjs`), run with Node.js against Debian's
//! Chromium through `playwright-core` (`scripts/install-browser.sh` installs both).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};

/// Longest a browser script may run.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Set to `1` to write the screenshots over the README's pictures in `docs/screenshots/`.
pub const UPDATE_SCREENSHOTS: &str = "UPDATE_SCREENSHOTS";

/// The workspace's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `CHROMIUM` and `NODE_PATH` as `scripts/install-browser.sh` prints them, or its defaults; an
/// error saying how to install them when either is missing.
pub fn browser_env() -> anyhow::Result<Vec<(&'static str, String)>> {
    let cache = std::env::var("LLM_ROUTER_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/llm-router",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_path =
        std::env::var("NODE_PATH").unwrap_or_else(|_| format!("{cache}/browser/node_modules"));
    ensure!(
        Path::new(&chromium).exists() && Path::new(&node_path).join("playwright-core").exists(),
        "chromium ({chromium}) or playwright-core (in {node_path}) is missing: \
         run `eval \"$(scripts/install-browser.sh)\"` first"
    );
    Ok(vec![("CHROMIUM", chromium), ("NODE_PATH", node_path)])
}

/// Where the scripts save their screenshots: `docs/screenshots/` when `UPDATE_SCREENSHOTS=1`,
/// else `scratch`, so that a test run leaves the work tree as it found it.
pub fn screenshot_dir(scratch: &Path) -> PathBuf {
    if std::env::var(UPDATE_SCREENSHOTS).as_deref() == Ok("1") {
        repo_root().join("docs/screenshots")
    } else {
        scratch.to_owned()
    }
}

/// Runs `node tests/browser/<script>` with `env`; an error when it fails or is still running
/// after [`SCRIPT_TIMEOUT`].
pub async fn run_script(script: &str, env: &[(&str, String)]) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(repo_root().join("tests/browser").join(script))
        .current_dir(repo_root())
        .envs(env.iter().map(|(name, value)| (name, value)))
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .context("cannot run node (is Node.js installed?)")?;
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait())
        .await
        .with_context(|| format!("{script} still running after {SCRIPT_TIMEOUT:?}"))??;
    if !status.success() {
        bail!("{script} failed: {status}");
    }
    Ok(())
}
