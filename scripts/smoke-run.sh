#!/usr/bin/env bash
# Checks README command 1 as a user would: starts scripts/run.sh, runs the curl example it prints,
# checks the answer, stops it with SIGTERM and checks nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

export LLM_ROUTER_PORT="${LLM_ROUTER_PORT:-18080}" LLM_NODE_PORT="${LLM_NODE_PORT:-18081}"
out="$(mktemp)"
scripts/run.sh >"$out" 2>&1 &
run_pid=$!
# On any failure too: stop the router and the node (run.sh stops them on SIGTERM).
trap 'kill -TERM "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null; rm -f "$out"' EXIT

for _ in $(seq 1 1800); do
  grep -q '^curl ' "$out" && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$out"; echo "smoke: run.sh exited early" >&2; exit 1; }
  sleep 0.2
done
example="$(grep '^curl ' "$out" | head -n 1)"
[ -n "$example" ] || { cat "$out"; echo "smoke: run.sh printed no curl example" >&2; exit 1; }
echo "smoke: running the printed example: $example"
answer="$(eval "$example")"
echo "smoke: answer: $answer"
python3 - "$answer" <<'PY'
import json, sys
body = json.loads(sys.argv[1])
assert body["object"] == "chat.completion", body
assert body["choices"][0]["message"]["role"] == "assistant", body
assert body["usage"]["completion_tokens"] > 0, body
PY

router="http://127.0.0.1:$LLM_ROUTER_PORT"
status="$(curl -s -o /dev/null -w '%{http_code}' "$router/v1/models")"
[ "$status" = 401 ] || { echo "smoke: /v1/models without a key answered $status, not 401" >&2; exit 1; }
status="$(curl -s -o /dev/null -w '%{http_code}' "$router/api/agents")"
[ "$status" = 401 ] || { echo "smoke: /api/agents without a session answered $status, not 401" >&2; exit 1; }
echo "smoke: without credentials: 401 on /v1/models and /api/agents"
dashboard="$(grep -o 'http://[^ ]*/dashboard' "$out" | head -n 1)"
# The whole page first: `grep -q` stops reading at its match, and curl writing into the closed pipe
# would fail the pipeline (pipefail) on a page larger than the pipe's buffer.
page="$(curl -fsS "$dashboard")" || { echo "smoke: $dashboard did not answer" >&2; exit 1; }
grep -q '<html' <<<"$page" || { echo "smoke: $dashboard is not the dashboard page" >&2; exit 1; }
echo "smoke: the printed dashboard URL serves the page"

kill -TERM "$run_pid"
wait "$run_pid" || true
sleep 0.5
if pgrep -f "llm-node --router-url http://127.0.0.1:$LLM_ROUTER_PORT" >/dev/null ||
   pgrep -f "llm-router --listen 127.0.0.1:$LLM_ROUTER_PORT" >/dev/null; then
  echo "smoke: processes left behind after SIGTERM" >&2
  exit 1
fi
echo "smoke: README command 1 works"
