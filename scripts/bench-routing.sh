#!/usr/bin/env bash
# Routing benchmark on real processes (run on demand, not part of the test suite): for each
# balancing policy, a fresh llm-router + two llm-nodes with real llama-server and Gemma 3 270M on
# 127.0.0.1, a multi-tenant chat trace replayed through the router, a Markdown table on stdout
# and JSON results under ~/.cache/llm-router/bench/. Arguments go to benches/routing_real.py
# (see --help), e.g.
#   scripts/bench-routing.sh --policies round_robin,auto,cache_aware
#   scripts/bench-routing.sh --trace distinct
#   scripts/bench-routing.sh --tenants 2 --conversations 1 --turns 2    # a quick check
#
# Binaries: $ROUTER_BIN / $NODE_BIN, default ${CARGO_TARGET_DIR:-$LLM_ROUTER_CACHE/target}/release/
# (build them first: cargo build --release --bins). llama-server and the model: $LLAMA_SERVER and
# $LLM_MODEL_PATH, else scripts/install-runtime.sh installs them (cached). Runs under nice -n 5.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${LLM_ROUTER_CACHE:-$HOME/.cache/llm-router}"
target="${CARGO_TARGET_DIR:-$CACHE/target}"
export ROUTER_BIN="${ROUTER_BIN:-$target/release/llm-router}"
export NODE_BIN="${NODE_BIN:-$target/release/llm-node}"

case " $* " in
  *" -h "*|*" --help "*) exec python3 benches/routing_real.py --help ;;
esac
for bin in "$ROUTER_BIN" "$NODE_BIN"; do
  [ -x "$bin" ] || { echo "bench-routing: $bin not found: cargo build --release --bins, or set ROUTER_BIN / NODE_BIN" >&2; exit 1; }
done
if [ -z "${LLAMA_SERVER:-}" ] || [ -z "${LLM_MODEL_PATH:-}" ]; then
  eval "$(scripts/install-runtime.sh)"
  export LLAMA_SERVER LLM_MODEL_PATH
fi
exec nice -n 5 python3 benches/routing_real.py "$@"
