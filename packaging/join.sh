#!/bin/sh
# Makes this machine a node of an llm-router fleet. Served by the router at /join.sh:
#
#   curl -fsSL http://ROUTER:8080/join.sh | sh -s -- --token ENROLMENT_TOKEN [options]
#
# Options:
#   --token TOKEN   the router's enrolment token (or env LLM_NODE_ENROLLMENT_TOKEN). Sent in a
#                   header only, never in a URL or on a command line.
#   --models LIST   models to serve from the start, NAME=GGUF_PATH,... (else the router places
#                   models on the node and it pulls them)
#   --name NAME     the node's name in the fleet [default: this host's name; kept on later runs,
#                   so the node keeps its id]
#   --port PORT     port of the node API, on every interface [default: 8081]
#   --prefix DIR    install under DIR [default: /opt/llm-router as root, else ~/.local/llm-router]
#   --no-service    no systemd unit: start the node in the background (nohup); it will not start
#                   with the machine
#   --router URL    the router [default: the router that served this script]
#   --router-ca FILE  PEM root certificates for an https:// router with a private CA (also
#                   given to the node; fetch the script itself with curl --cacert FILE)
#
# Nothing is installed before the router has accepted the token, free disk space was checked,
# and every downloaded file matched the router's SHA256SUMS; files are moved into place only
# then (renames within the prefix). Running it again upgrades in place and keeps the node's name.
# Everything is in main(), called on the last line: a script cut short in transit runs nothing.
main() {
set -eu
umask 022

ROUTER_URL="${LLM_ROUTER_URL:-@ROUTER_URL@}"
TOKEN="${LLM_NODE_ENROLLMENT_TOKEN:-}"
MODELS=""
NAME=""
PORT=8081
PREFIX=""
ROUTER_CA=""
SERVICE=auto

say() { printf '[join] %s\n' "$*" >&2; }
die() {
  printf '[join] error: %s\n' "$*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --token) [ $# -ge 2 ] || die "--token needs a value"; TOKEN="$2"; shift 2 ;;
    --models) [ $# -ge 2 ] || die "--models needs a value"; MODELS="$2"; shift 2 ;;
    --name) [ $# -ge 2 ] || die "--name needs a value"; NAME="$2"; shift 2 ;;
    --port) [ $# -ge 2 ] || die "--port needs a value"; PORT="$2"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX="$2"; shift 2 ;;
    --router) [ $# -ge 2 ] || die "--router needs a value"; ROUTER_URL="$2"; shift 2 ;;
    --router-ca) [ $# -ge 2 ] || die "--router-ca needs a value"; ROUTER_CA="$2"; shift 2 ;;
    --no-service) SERVICE=no; shift ;;
    -h | --help) sed -n '2,23p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# --- inputs: each value ends up in an environment file, so only plain characters -------------
plain() { # plain VALUE EXTRA_CHARS: letters, digits and EXTRA_CHARS only
  case "$1" in *[!A-Za-z0-9$2]*) return 1 ;; esac
}
ROUTER_URL="${ROUTER_URL%/}"
case "$ROUTER_URL" in
  http://?* | https://?*) plain "${ROUTER_URL#*://}" '.:[]_-' || die "bad router URL: $ROUTER_URL" ;;
  *) die "no router URL: give --router http://ROUTER:8080 (this script was not served by a router)" ;;
esac
[ -n "$TOKEN" ] || die "no enrolment token: give --token TOKEN or set LLM_NODE_ENROLLMENT_TOKEN (admins read it with GET /api/auth/enrollment-token)"
plain "$TOKEN" '._~+/=-' || die "the enrolment token has characters a token never has"
[ -n "$NAME" ] && { plain "$NAME" '._-' || die "--name: letters, digits, '.', '_' and '-' only"; }
plain "$PORT" '' && [ -n "$PORT" ] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "--port: 1 to 65535"
[ -z "$MODELS" ] || plain "$MODELS" '._/=,:+-' || die "--models: NAME=PATH,... without spaces or quotes"

for tool in curl tar df awk mktemp; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing on this machine"
done
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | awk '{print $1}'; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | awk '{print $1}'; }
else
  die "neither sha256sum nor shasum is installed"
fi

ROOT=no
[ "$(id -u)" = 0 ] && ROOT=yes
if [ "$SERVICE" = auto ]; then
  if [ "$ROOT" = yes ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    SERVICE=yes
  else
    SERVICE=no
  fi
fi
if [ -z "$PREFIX" ]; then
  if [ "$ROOT" = yes ]; then PREFIX=/opt/llm-router; else PREFIX="${HOME:?HOME is not set}/.local/llm-router"; fi
fi
case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
plain "$PREFIX" '/._-' || die "--prefix: a path of letters, digits, '/', '.', '_' and '-'"
[ -z "$ROUTER_CA" ] || [ -r "$ROUTER_CA" ] || die "--router-ca: cannot read $ROUTER_CA"
if [ "$SERVICE" = yes ]; then
  CONF=/etc/llm-router/node.env
  STATE=/var/lib/llm-node
else
  CONF="$PREFIX/etc/node.env"
  STATE="$PREFIX/var"
fi

# --- the router: token check and manifest (nothing is written yet) --------------------------
# The token goes to curl on its standard input (`-H @-`): not in the process list, not in a URL.
api() { # api PATH [curl args...]: GET $ROUTER_URL/api/bundle/PATH with the token
  path="$1"
  shift
  [ -z "$ROUTER_CA" ] || set -- --cacert "$ROUTER_CA" "$@"
  printf 'Authorization: Bearer %s\n' "$TOKEN" |
    curl -sS --connect-timeout 10 --max-time 600 -H @- "$@" "$ROUTER_URL/api/bundle/$path"
}

say "router: $ROUTER_URL"
rc=0
manifest_answer="$(api SHA256SUMS -w '\n%{http_code}' 2>/dev/null)" || rc=$?
case "$rc" in
  0) ;;
  35 | 51 | 58 | 60 | 77 | 83 | 90 | 91) die "the router's TLS certificate is not trusted here (give its CA with --router-ca FILE). Nothing was installed." ;;
  *) die "cannot reach the router at $ROUTER_URL (is it running, listening on an address this machine can reach (--listen 0.0.0.0:8080), and is its port open?). Nothing was installed." ;;
esac
status="$(printf '%s\n' "$manifest_answer" | tail -n 1)"
MANIFEST="$(printf '%s\n' "$manifest_answer" | sed '$d')"
case "$status" in
  200) ;;
  401) die "the router refused the enrolment token (check --token; admins read it with GET /api/auth/enrollment-token). Nothing was installed." ;;
  404) die "the router at $ROUTER_URL has no bundle to install (start it with --bundle-dir; scripts/package.sh makes one). Nothing was installed." ;;
  *) die "the router answered HTTP $status to GET /api/bundle/SHA256SUMS. Nothing was installed." ;;
esac

expected() { # expected NAME: the digest the manifest lists for NAME
  printf '%s\n' "$MANIFEST" | awk -v n="$1" '{f=$2; sub(/^\*/, "", f)} f == n && length($1) == 64 {print $1; exit}'
}
NODE_SHA="$(expected llm-node)"
RUNTIME_SHA="$(expected runtime.tar.gz)"
[ -n "$NODE_SHA" ] && [ -n "$RUNTIME_SHA" ] || die "the router's SHA256SUMS lists no llm-node or runtime.tar.gz. Nothing was installed."

size_of() { # size_of NAME: Content-Length of the bundle file, 0 when unknown
  api "$1" -I 2>/dev/null | tr -d '\r' | awk 'tolower($1) == "content-length:" {print $2; exit}' | grep -E '^[0-9]+$' || echo 0
}
NODE_BYTES="$(size_of llm-node)"
RUNTIME_BYTES="$(size_of runtime.tar.gz)"

# --- disk: the downloads, the unpacked runtime (about 3x its archive) and a margin -------------
existing="$PREFIX"
while [ ! -d "$existing" ]; do existing="$(dirname "$existing")"; done
need_kib=$(((NODE_BYTES + 4 * RUNTIME_BYTES) / 1024 + 16384))
free_kib="$(df -Pk "$existing" | awk 'NR == 2 {print $4}')"
[ -n "$free_kib" ] || die "cannot read the free space of $existing"
if [ "$free_kib" -lt "$need_kib" ]; then
  die "not enough disk space in $existing: $((need_kib / 1024)) MiB needed, $((free_kib / 1024)) MiB free. Nothing was installed."
fi

# --- download and check, in a temporary directory inside the prefix ---------------------------
mkdir -p "$PREFIX" || die "cannot create $PREFIX"
TMP="$(mktemp -d "$PREFIX/.join.XXXXXX")" || die "cannot write in $PREFIX"
trap 'rm -rf "$TMP"' EXIT
trap 'rm -rf "$TMP"; exit 130' INT TERM

download() { # download NAME DIGEST
  rc=0
  api "$1" -f -o "$TMP/$1" || rc=$?
  case "$rc" in
    0) ;;
    23) die "the disk filled up while downloading $1 into $PREFIX (curl could not write it). Nothing was installed." ;;
    *) die "downloading $1 from $ROUTER_URL failed (curl exit $rc). Nothing was installed." ;;
  esac
  got="$(sha256 "$TMP/$1")"
  [ "$got" = "$2" ] || die "checksum mismatch for $1: the router's SHA256SUMS says $2, the download is $got. Nothing was installed."
}
say "downloading llm-node ($((NODE_BYTES / 1048576)) MiB) and the runtime ($((RUNTIME_BYTES / 1048576)) MiB)"
download llm-node "$NODE_SHA"
download runtime.tar.gz "$RUNTIME_SHA"
mkdir "$TMP/runtime"
tar -xzf "$TMP/runtime.tar.gz" -C "$TMP/runtime" ||
  die "cannot unpack the runtime (disk full?). Nothing was installed."
[ -f "$TMP/runtime/bin/llama-server" ] || die "the runtime archive has no bin/llama-server. Nothing was installed."
chmod 755 "$TMP/llm-node" "$TMP/runtime/bin/llama-server"
NODE_VERSION="$("$TMP/llm-node" --version 2>/dev/null)" ||
  die "the downloaded llm-node does not run on this machine. Nothing was installed."
say "checked: $NODE_VERSION and the runtime match the router's SHA256SUMS"

# --- the node's name: kept from an earlier install (the router keys its id on it) -------------
if [ -z "$NAME" ] && [ -f "$CONF" ]; then
  NAME="$(awk -F= '$1 == "LLM_NODE_NAME" {print $2; exit}' "$CONF")"
fi
[ -n "$NAME" ] || NAME="$(uname -n | tr -c 'A-Za-z0-9._\n-' '-')"
if [ -n "$ROUTER_CA" ]; then
  cp "$ROUTER_CA" "$TMP/router-ca.pem" || die "cannot read $ROUTER_CA"
elif [ -f "$CONF" ]; then
  ROUTER_CA_KEPT="$(awk -F= '$1 == "LLM_NODE_ROUTER_CA" {print $2; exit}' "$CONF")"
fi
if [ -z "$MODELS" ] && [ -f "$CONF" ]; then
  MODELS="$(awk -F= '$1 == "LLM_NODE_MODELS" {sub(/^[^=]*=/, ""); print; exit}' "$CONF")"
fi

# --- install: renames within the prefix ---------------------------------------------------------
RUNTIME_DIR="$PREFIX/runtimes/$(printf '%s' "$RUNTIME_SHA" | cut -c1-16)"
mkdir -p "$PREFIX/bin" "$PREFIX/runtimes" "$(dirname "$CONF")" "$STATE"
if [ ! -f "$RUNTIME_DIR/bin/llama-server" ]; then
  rm -rf "$RUNTIME_DIR"
  mv "$TMP/runtime" "$RUNTIME_DIR"
fi
mv -f "$TMP/llm-node" "$PREFIX/bin/llm-node"

{
  echo "# Written by join.sh; running join.sh again rewrites it (keeping LLM_NODE_NAME)."
  echo "LLM_NODE_ROUTER_URL=$ROUTER_URL"
  echo "LLM_NODE_ENROLLMENT_TOKEN=$TOKEN"
  echo "LLM_NODE_NAME=$NAME"
  echo "LLM_NODE_HOST=0.0.0.0"
  echo "LLM_NODE_PORT=$PORT"
  echo "LLM_NODE_LLAMA_SERVER=$RUNTIME_DIR/bin/llama-server"
  if [ -n "$ROUTER_CA" ]; then
    echo "LLM_NODE_ROUTER_CA=$(dirname "$CONF")/router-ca.pem"
  elif [ -n "${ROUTER_CA_KEPT:-}" ]; then
    echo "LLM_NODE_ROUTER_CA=$ROUTER_CA_KEPT"
  fi
  echo "LLM_NODE_MODELS_DIR=$STATE/models"
  echo "LLM_NODE_RUNTIMES_DIR=$STATE/runtimes"
  echo "LLM_NODE_LOG_DIR=$STATE/logs"
  [ -z "$MODELS" ] || echo "LLM_NODE_MODELS=$MODELS"
} >"$TMP/node.env"
chmod 600 "$TMP/node.env"
[ -z "$ROUTER_CA" ] || mv -f "$TMP/router-ca.pem" "$(dirname "$CONF")/router-ca.pem"
mv -f "$TMP/node.env" "$CONF"
say "installed $PREFIX/bin/llm-node, the runtime in $RUNTIME_DIR, the configuration in $CONF"

# The unit, rendered for this prefix (also kept next to the configuration when not installed).
if api llm-node.service -f -o "$TMP/llm-node.service" 2>/dev/null &&
  [ "$(sha256 "$TMP/llm-node.service")" = "$(expected llm-node.service)" ]; then
  sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@CONF@#$CONF#g" "$TMP/llm-node.service" >"$TMP/unit"
  mv -f "$TMP/unit" "$(dirname "$CONF")/llm-node.service"
elif [ "$SERVICE" = yes ]; then
  die "cannot fetch llm-node.service from the router (or its checksum does not match)"
fi

# --- start ------------------------------------------------------------------------------------
if [ "$SERVICE" = yes ]; then
  id llm-node >/dev/null 2>&1 ||
    useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin llm-node ||
    die "cannot create the llm-node user"
  chgrp llm-node "$CONF" && chmod 640 "$CONF"
  cp "$(dirname "$CONF")/llm-node.service" /etc/systemd/system/llm-node.service
  systemctl daemon-reload
  systemctl enable llm-node.service >/dev/null 2>&1
  systemctl restart llm-node.service
  say "started the llm-node service (systemctl status llm-node; journalctl -u llm-node)"
else
  PIDFILE="$STATE/llm-node.pid"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    old="$(cat "$PIDFILE")"
    say "stopping the running node (pid $old) to upgrade it"
    kill -TERM "$old" 2>/dev/null || true
    i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$old" 2>/dev/null && die "the running node (pid $old) did not stop"
  fi
  (
    set -a
    . "$CONF"
    set +a
    cd "$STATE"
    exec nohup "$PREFIX/bin/llm-node" </dev/null >>"$STATE/llm-node.out" 2>&1
  ) &
  echo $! >"$PIDFILE"
  say "started llm-node in the background (pid $!, no systemd service: it will not start with the machine); its output goes to $STATE/llm-node.out"
fi

# --- wait until it answers ---------------------------------------------------------------------
i=0
until curl -fsS --max-time 2 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 150 ] || die "the node does not answer on port $PORT after 30 s (see its log in $STATE/logs)"
  sleep 0.2
done
say "node '$NAME' is running; it registers with $ROUTER_URL and appears in the fleet (GET /api/agents)"
}

main "$@"
