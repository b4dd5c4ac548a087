#!/usr/bin/env bash
# Runs the main job on this machine: installs llama-server and the Gemma 3 270M model if missing,
# builds llm-router and llm-node (release), starts the router on 127.0.0.1:8080 and one node serving
# the model, then prints the URL, the admin password, an API key and curl examples that use it.
# Ctrl-C (or SIGTERM) stops everything.
#
# The router's state (SQLite database, admin password, enrolment token, the demo API key, both
# programs' JSON-lines logs) lives in $LLM_ROUTER_CACHE/run/, so a second run keeps its history
# and credentials.
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
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# Reads (creating it once) a secret kept in the state directory.
kept_secret() {
  [ -s "$STATE/$1" ] || (umask 077 && secret >"$STATE/$1")
  cat "$STATE/$1"
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

STATE="$CACHE/run"
mkdir -p "$STATE" && chmod 700 "$STATE"
ADMIN_PASSWORD="$(kept_secret admin-password)"
ENROLLMENT_TOKEN="$(kept_secret enrollment-token)"

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
LLM_ROUTER_ADMIN_PASSWORD="$ADMIN_PASSWORD" LLM_ROUTER_ENROLLMENT_TOKEN="$ENROLLMENT_TOKEN" \
  "$bin/llm-router" --listen "127.0.0.1:$ROUTER_PORT" --database-url "sqlite://$STATE/router.db" \
  --log-dir "$STATE/logs" &
pids+=($!)
LLM_NODE_ENROLLMENT_TOKEN="$ENROLLMENT_TOKEN" LLM_NODE_LOG_DIR="$STATE/node-logs" \
  "$bin/llm-node" --router-url "$router_url" --port "$NODE_PORT" \
  --models "$MODEL=$LLM_MODEL_PATH" --llama-server "$LLAMA_SERVER" --chat-template gemma &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "$router_url/health" >/dev/null 2>&1 && break
  sleep 0.1
done
session="$(curl -fsS "$router_url/api/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" | json_field token)" ||
  { log "cannot log in as admin (was $STATE/router.db made with another password?)"; exit 1; }
# The demo API key: reused while it works, else a new one (the old one is revoked).
API_KEY="$(cat "$STATE/api-key" 2>/dev/null || true)"
if [ -z "$API_KEY" ] || ! curl -fsS -o /dev/null -H "Authorization: Bearer $API_KEY" "$router_url/v1/models"; then
  API_KEY="$(curl -fsS "$router_url/api/keys" -H "Authorization: Bearer $session" \
    -H 'Content-Type: application/json' -d '{"name":"scripts/run.sh"}' | json_field key)"
  (umask 077 && printf '%s' "$API_KEY" >"$STATE/api-key")
fi
curl -fsS -o /dev/null -X POST "$router_url/api/auth/logout" -H "Authorization: Bearer $session" || true

log "waiting for the node to load $MODEL"
for _ in $(seq 1 600); do
  if curl -fsS -H "Authorization: Bearer $API_KEY" "$router_url/v1/models" 2>/dev/null | grep -q "\"$MODEL\""; then
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
Dashboard:    $router_url/dashboard
Admin login:  admin / $ADMIN_PASSWORD     (dashboard, or POST $router_url/api/auth/login)
API key:      $API_KEY
Enrolment token for more nodes: $ENROLLMENT_TOKEN     (all kept in $STATE/)
Try:
curl -sS $router_url/v1/chat/completions -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' -d '{"model":"$MODEL","messages":[{"role":"user","content":"Say hello"}],"max_tokens":32}'
curl -sS $router_url/v1/completions -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' -d '{"model":"$MODEL","prompt":"The capital of France is","max_tokens":16,"temperature":0}'
(The model is Gemma 3 270M base: plain completions read well, chat answers are weak.)

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
log "a process exited; shutting down"
