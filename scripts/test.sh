#!/usr/bin/env bash
# Runs every test: installs what the tests need (llama-server, the model, the Python clients,
# Chromium and playwright-core for the dashboard's browser tests),
# builds the binaries, runs the whole workspace test suite with nextest (unit, integration and
# end-to-end tests with real llama-server processes), then checks README command 1 with a smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${LLM_ROUTER_CACHE:-$HOME/.cache/llm-router}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

eval "$(scripts/install-runtime.sh --with-test-clients)"
export LLAMA_SERVER LLM_MODEL_PATH LLM_PYTHON
eval "$(scripts/install-browser.sh)"
export CHROMIUM NODE_PATH

# The multi-machine test (crates/e2e/tests/fleet_netns.rs) needs `ip` and `ss` (network
# namespaces) and `systemd-analyze` (it checks the service units).
apt_missing=()
command -v ip >/dev/null || apt_missing+=(iproute2)
command -v systemd-analyze >/dev/null || apt_missing+=(systemd)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "[test] installing Debian packages: ${apt_missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_missing[@]}" >&2
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "[test] installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi

cargo build --release --bins
cargo nextest run --release --workspace "$@"
scripts/smoke-run.sh
