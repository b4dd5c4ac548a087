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

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "[test] installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi

cargo build --release --bins
cargo nextest run --release --workspace "$@"
scripts/smoke-run.sh
