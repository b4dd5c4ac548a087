#!/usr/bin/env bash
# Builds the release bundle: what the router serves to joining machines (--bundle-dir) and what
# an operator unpacks to install the router.
#
#   scripts/package.sh [--profile release|debug] [--out DIR] [--bin-dir DIR] [--no-archive]
#                      [--no-deb]
#
# --bin-dir takes llm-router and llm-node already built in DIR instead of running cargo (the
# tests do this); --no-archive makes the directory only; --no-deb skips the .deb packages.
# Makes DIR/llm-router-VERSION-ARCH/ (default DIR: dist) and the same as a .tar.gz next to it:
#   llm-router, llm-node     the binaries (built with cargo; --version names this commit)
#   runtime.tar.gz           llama-server and its shared libraries (bin/), from
#                            scripts/install-runtime.sh's cache (or $LLAMA_SERVER)
#   llm-router.service, llm-node.service   systemd units (@PREFIX@, @CONF@, @BUNDLE@ filled in at install)
#   join.sh                  the join script the router serves at GET /join.sh
#   install.sh               installs the router from the unpacked bundle
#   VERSION                  version, commit, architecture, llama-server version
#   SHA256SUMS               sha256sum of every file above (what join.sh and install.sh check)
# and, next to it, llm-router_VERSION_ARCH.deb and llm-node_VERSION_ARCH.deb
# (packaging/build-debs.sh says what they hold).
# Prints the bundle directory on stdout.
set -euo pipefail

profile=release
out=dist
bin_dir=""
archive=yes
deb=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --no-archive) archive=no; shift ;;
    --no-deb) deb=no; shift ;;
    -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$profile" in release | debug) ;; *) echo "--profile: release or debug" >&2; exit 2 ;; esac
log() { printf '[package] %s\n' "$*" >&2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
version="$(awk -F'"' '/^\[workspace.package\]/ {w = 1} w && /^version *=/ {print $2; exit}' Cargo.toml)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then
  commit="$commit-dirty"
fi
arch="$(uname -m)"
name="llm-router-$version-$arch"
[ "$profile" = release ] || name="$name-debug"

if [ -n "$bin_dir" ]; then
  target="$bin_dir"
  commit="$("$target/llm-node" --version | sed -n 's/.*(commit \(.*\))$/\1/p')"
else
  # The exact commit for --version (build.rs reads it).
  export LLM_ROUTER_COMMIT="$commit"
  log "building llm-router and llm-node ($profile, commit $commit)"
  cargo_args=(build --locked -p llm-router -p llm-node --bins)
  [ "$profile" = release ] && cargo_args+=(--release)
  cargo "${cargo_args[@]}" >&2
  target="${CARGO_TARGET_DIR:-$root/target}/$profile"
fi

llama_server="${LLAMA_SERVER:-}"
if [ -z "$llama_server" ]; then
  eval "$(scripts/install-runtime.sh)"
  llama_server="$LLAMA_SERVER"
fi
runtime_bin="$(dirname "$(readlink -f "$llama_server")")"
[ -x "$runtime_bin/llama-server" ] || { log "no llama-server in $runtime_bin"; exit 1; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d "$out/.stage.XXXXXX")"
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT
install -m 755 "$target/llm-router" "$target/llm-node" "$stage/"
# Without debug information: what a joining machine downloads (a debug llm-node is 140 MB, 30 stripped).
strip --strip-debug "$stage/llm-router" "$stage/llm-node"
# bin/llama-server and its libraries (symlinks kept), whatever the cache directory is called.
tar -C "$(dirname "$runtime_bin")" --transform "s,^$(basename "$runtime_bin"),bin," \
  --exclude .gitkeep --owner=0 --group=0 -czf "$stage/runtime.tar.gz" "$(basename "$runtime_bin")"
install -m 644 packaging/systemd/llm-router.service packaging/systemd/llm-node.service "$stage/"
install -m 755 packaging/join.sh packaging/install.sh "$stage/"
{
  echo "version=$version"
  echo "commit=$commit"
  echo "arch=$arch"
  echo "profile=$profile"
  echo "llama_server=$("$runtime_bin/llama-server" --version 2>&1 | awk '/^version/ {print $2; exit}')"
} >"$stage/VERSION"
(cd "$stage" && sha256sum llm-router llm-node runtime.tar.gz llm-router.service llm-node.service \
  join.sh install.sh VERSION >SHA256SUMS)

rm -rf "${out:?}/$name"
mv "$stage" "$out/$name"
trap - EXIT
log "bundle: $out/$name ($(du -sh "$out/$name" | cut -f1))"
if [ "$archive" = yes ]; then
  tar -C "$out" -czf "$out/$name.tar.gz.part" "$name"
  mv -f "$out/$name.tar.gz.part" "$out/$name.tar.gz"
  (cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
  log "archive: $out/$name.tar.gz"
fi
if [ "$deb" = yes ]; then
  packaging/build-debs.sh "$out/$name" "$out" | while read -r pkg; do log "package: $pkg"; done
fi
echo "$out/$name"
