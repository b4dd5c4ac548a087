#!/usr/bin/env bash
# Installs what the dashboard's browser tests (tests/browser/) need:
#   - Chromium from Debian (/usr/bin/chromium), the browser the tests drive headless
#   - the npm packages of tests/browser (playwright-core only), with `npm ci`, into a cache directory
#
# Idempotent: a second run checks what is there and returns in a second (npm ci runs again only
# when tests/browser/package-lock.json changed).
# Cache: $LLM_ROUTER_CACHE, default ~/.cache/llm-router. Prints nothing but progress on stderr
# and, at the end, `export` lines on stdout (for `eval`): CHROMIUM and NODE_PATH.
set -euo pipefail

CACHE="${LLM_ROUTER_CACHE:-$HOME/.cache/llm-router}"
CHROMIUM_BIN=/usr/bin/chromium
SRC="$(cd "$(dirname "$0")/../tests/browser" && pwd)"
DEST="$CACHE/browser"

case "${1:-}" in
  "") ;;
  -h|--help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    echo "usage: $0"
    exit 0 ;;
  *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

log() { printf '[install-browser] %s\n' "$*" >&2; }

# --- Chromium (Debian package) ----------------------------------------------
if [ ! -x "$CHROMIUM_BIN" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  apt_install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2; }
  log "installing Debian package chromium"
  if ! apt_install; then
    log "apt-get install failed; updating the package lists and trying again"
    $sudo apt-get update -qq >&2
    apt_install
  fi
  [ -x "$CHROMIUM_BIN" ] || { log "$CHROMIUM_BIN missing after installing chromium"; exit 1; }
fi

# --- npm packages --------------------------------------------------------------
if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian packages nodejs and npm"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2 ||
    { $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2; }
fi
mkdir -p "$DEST"
want="$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -d' ' -f1)"
stamp="$DEST/.installed-sha256"
if [ ! -d "$DEST/node_modules/playwright-core" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing tests/browser npm packages into $DEST"
  cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
  rm -f "$stamp"
  (cd "$DEST" && npm ci --no-audit --no-fund --loglevel=error >&2)
  printf '%s\n' "$want" >"$stamp"
fi

echo "export CHROMIUM=$CHROMIUM_BIN"
echo "export NODE_PATH=$DEST/node_modules"
