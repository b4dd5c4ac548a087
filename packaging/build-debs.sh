#!/usr/bin/env bash
# Builds llm-router_VERSION_ARCH.deb and llm-node_VERSION_ARCH.deb from a bundle directory made by
# scripts/package.sh (which calls this):
#
#   packaging/build-debs.sh BUNDLE_DIR OUT_DIR
#
# llm-node: /usr/bin/llm-node, the runtime in /usr/lib/llm-router/runtime/bin/, the unit
#   llm-node.service (not enabled: set the router and the token in /etc/llm-router/node.env, then
#   `systemctl enable --now llm-node`), user llm-node, state in /var/lib/llm-node.
# llm-router: /usr/bin/llm-router, the join bundle in /usr/share/llm-router/bundle (served at
#   /join.sh), the unit llm-router.service (enabled and started), user llm-router, settings in
#   /etc/llm-router/router.env, state in /var/lib/llm-router.
set -euo pipefail
bundle="$(cd "$1" && pwd)"
out="$(cd "$2" && pwd)"
version="$(sed -n 's/^version=//p' "$bundle/VERSION")"
commit="$(sed -n 's/^commit=//p' "$bundle/VERSION")"
arch="$(dpkg --print-architecture)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# control NAME DESCRIPTION DEPENDS: DEBIAN/control of package NAME in $work/NAME
control() {
  mkdir -p "$work/$1/DEBIAN"
  cat >"$work/$1/DEBIAN/control" <<CONTROL
Package: $1
Version: $version
Architecture: $arch
Maintainer: llm-router developers <llm-router@localhost>
Depends: $3
Section: net
Priority: optional
Description: $2
 Built from commit $commit.
CONTROL
}

# scripts NAME USER ENABLE: maintainer scripts creating USER and (ENABLE=yes) starting the unit
scripts() {
  cat >"$work/$1/DEBIAN/postinst" <<POSTINST
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
  id $2 >/dev/null 2>&1 || adduser --system --group --home /var/lib/$1 --no-create-home $2
  chgrp $2 /etc/llm-router/$3 && chmod 640 /etc/llm-router/$3
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$4" = yes ]; then
      systemctl enable $1.service
      systemctl restart $1.service
    elif systemctl is-active --quiet $1.service; then
      systemctl restart $1.service
    fi
  fi
fi
POSTINST
  cat >"$work/$1/DEBIAN/prerm" <<PRERM
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
  systemctl disable --now $1.service || true
fi
PRERM
  chmod 755 "$work/$1/DEBIAN/postinst" "$work/$1/DEBIAN/prerm"
  echo "/etc/llm-router/$3" >"$work/$1/DEBIAN/conffiles"
}

# --- llm-node ----------------------------------------------------------------------------------
n="$work/llm-node"
control llm-node "llm-router's node agent: serves local llama-server runtimes to an llm-router" \
  "adduser, libc6, libgcc-s1, libstdc++6, libgomp1"
install -D -m 755 "$bundle/llm-node" "$n/usr/bin/llm-node"
mkdir -p "$n/usr/lib/llm-router/runtime"
tar -xzf "$bundle/runtime.tar.gz" -C "$n/usr/lib/llm-router/runtime"
mkdir -p "$n/lib/systemd/system" "$n/etc/llm-router"
sed -e 's#@PREFIX@#/usr#g' -e 's#@CONF@#/etc/llm-router/node.env#g' "$bundle/llm-node.service" \
  >"$n/lib/systemd/system/llm-node.service"
cat >"$n/etc/llm-router/node.env" <<'ENV'
# Settings of the llm-node service (LLM_NODE_*, see llm-node --help). Set the router's URL and
# its enrolment token, then: systemctl enable --now llm-node
LLM_NODE_ROUTER_URL=http://ROUTER:8080
LLM_NODE_ENROLLMENT_TOKEN=
LLM_NODE_HOST=0.0.0.0
LLM_NODE_PORT=8081
LLM_NODE_LLAMA_SERVER=/usr/lib/llm-router/runtime/bin/llama-server
LLM_NODE_MODELS_DIR=/var/lib/llm-node/models
LLM_NODE_LOG_DIR=/var/lib/llm-node/logs
ENV
scripts llm-node llm-node node.env no

# --- llm-router --------------------------------------------------------------------------------
r="$work/llm-router"
control llm-router "One OpenAI- and Ollama-compatible endpoint for a fleet of llm-node machines" \
  "adduser, libc6, libgcc-s1"
install -D -m 755 "$bundle/llm-router" "$r/usr/bin/llm-router"
mkdir -p "$r/usr/share/llm-router/bundle" "$r/lib/systemd/system" "$r/etc/llm-router"
awk '{f = $2; sub(/^\*/, "", f); print f}' "$bundle/SHA256SUMS" |
  while read -r f; do cp -p "$bundle/$f" "$r/usr/share/llm-router/bundle/$f"; done
cp -p "$bundle/SHA256SUMS" "$r/usr/share/llm-router/bundle/"
sed -e 's#@PREFIX@#/usr#g' -e 's#@BUNDLE@#/usr/share/llm-router/bundle#g' \
  "$bundle/llm-router.service" >"$r/lib/systemd/system/llm-router.service"
cat >"$r/etc/llm-router/router.env" <<'ENV'
# Settings of the llm-router service (LLM_ROUTER_*, see llm-router --help); they override the
# unit's defaults. The first start prints the admin password and the enrolment token once:
#   journalctl -u llm-router
LLM_ROUTER_LISTEN=0.0.0.0:8080
ENV
scripts llm-router llm-router router.env yes

for pkg in llm-node llm-router; do
  # gzip at level 1: the debug binaries are large and these are built often by the tests.
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$work/$pkg" "$out/${pkg}_${version}_${arch}.deb" >&2
done
echo "$out/llm-node_${version}_${arch}.deb"
echo "$out/llm-router_${version}_${arch}.deb"
