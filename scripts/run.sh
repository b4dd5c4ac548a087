#!/usr/bin/env bash
# Runs the main job on this machine: installs llama-server and the Gemma 3 270M model if missing,
# builds llm-router and llm-node (release), starts the router on 127.0.0.1:8080 and one node serving
# the model, then prints the URL and a curl example. Ctrl-C (or SIGTERM) stops everything.
#
# Environment: LLM_ROUTER_PORT (default 8080), LLM_NODE_PORT (default 8081),
# LLM_ROUTER_CACHE (default ~/.cache/llm-router), CARGO_TARGET_DIR (default $LLM_ROUTER_CACHE/target).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${LLM_ROUTER_CACHE:-$HOME/.cache/llm-router}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
ROUTER_PORT="${LLM_ROUTER_PORT:-8080}"
NODE_PORT="${LLM_NODE_PORT:-8081}"
MODEL=gemma3-270m

log() { printf '[run] %s\n' "$*" >&2; }

eval "$(scripts/install-runtime.sh)"
log "building llm-router and llm-node (release)"
cargo build --release --bins --quiet
bin="$CARGO_TARGET_DIR/release"

pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    log "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

router_url="http://127.0.0.1:$ROUTER_PORT"
"$bin/llm-router" --listen "127.0.0.1:$ROUTER_PORT" &
pids+=($!)
"$bin/llm-node" --router-url "$router_url" --port "$NODE_PORT" \
  --models "$MODEL=$LLM_MODEL_PATH" --llama-server "$LLAMA_SERVER" --chat-template gemma &
pids+=($!)

log "waiting for the node to load $MODEL"
for _ in $(seq 1 600); do
  if curl -fsS "$router_url/v1/models" 2>/dev/null | grep -q "\"$MODEL\""; then
    ready=1
    break
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { log "a process exited during start-up"; exit 1; }
  done
  sleep 0.2
done
[ "${ready:-0}" = 1 ] || { log "the model did not become ready in 120 s"; exit 1; }

cat <<MSG

llm-router is running at $router_url  (one llm-node on 127.0.0.1:$NODE_PORT serving $MODEL)
Fleet: $router_url/api/agents    Models: $router_url/v1/models
Try:
curl -sS $router_url/v1/chat/completions -H 'Content-Type: application/json' -d '{"model":"$MODEL","messages":[{"role":"user","content":"Say hello"}],"max_tokens":32}'
curl -sS $router_url/v1/completions -H 'Content-Type: application/json' -d '{"model":"$MODEL","prompt":"The capital of France is","max_tokens":16,"temperature":0}'
(The model is Gemma 3 270M base: plain completions read well, chat answers are weak.)

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
log "a process exited; shutting down"
