#!/bin/sh
# Installs the router from this bundle (unpacked from llm-router-VERSION-ARCH.tar.gz):
#
#   sudo ./install.sh [--prefix /opt/llm-router] [--no-service]
#
# Checks every file against SHA256SUMS, copies the binaries to PREFIX/bin and this bundle to
# PREFIX/bundle (the router serves it to joining machines: GET /join.sh), writes
# /etc/llm-router/router.env when there is none (listen on 0.0.0.0:8080), and installs and starts
# the llm-router systemd unit (user llm-router, state in /var/lib/llm-router). Machines then join
# with:  curl -fsSL http://ROUTER:8080/join.sh | sh -s -- --token ENROLMENT_TOKEN
set -eu
PREFIX=/opt/llm-router
SERVICE=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --no-service) SERVICE=no; shift ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
say() { printf '[install] %s\n' "$*" >&2; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
sha256sum --check --quiet SHA256SUMS || die "files of this bundle do not match SHA256SUMS"
[ "$SERVICE" = no ] || [ "$(id -u)" = 0 ] || die "run as root (or with --no-service)"

mkdir -p "$PREFIX/bin" "$PREFIX/bundle"
for bin in llm-router llm-node; do
  install -m 755 "$bin" "$PREFIX/bin/.$bin.new"
  mv -f "$PREFIX/bin/.$bin.new" "$PREFIX/bin/$bin"
done
# The bundle the router serves: every file of the manifest, and the manifest last.
STAGE="$(mktemp -d "$PREFIX/.bundle.XXXXXX")"
awk '{f=$2; sub(/^\*/, "", f); print f}' SHA256SUMS | while read -r f; do cp "$f" "$STAGE/$f"; done
cp SHA256SUMS "$STAGE/SHA256SUMS"
rm -rf "$PREFIX/bundle.old"
mv "$PREFIX/bundle" "$PREFIX/bundle.old"
mv "$STAGE" "$PREFIX/bundle"
rm -rf "$PREFIX/bundle.old"
say "installed $("$PREFIX/bin/llm-router" --version) in $PREFIX"

if [ "$SERVICE" = no ]; then
  say "start it with: $PREFIX/bin/llm-router --listen 0.0.0.0:8080 --bundle-dir $PREFIX/bundle"
  exit 0
fi
id llm-router >/dev/null 2>&1 ||
  useradd --system --home-dir /var/lib/llm-router --no-create-home --shell /usr/sbin/nologin llm-router
mkdir -p /etc/llm-router
if [ ! -f /etc/llm-router/router.env ]; then
  {
    echo "# LLM_ROUTER_* settings of the llm-router service (see llm-router --help)."
    echo "LLM_ROUTER_LISTEN=0.0.0.0:8080"
  } >/etc/llm-router/router.env
  chgrp llm-router /etc/llm-router/router.env
  chmod 640 /etc/llm-router/router.env
fi
sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@BUNDLE@#$PREFIX/bundle#g" llm-router.service >/etc/systemd/system/llm-router.service
systemctl daemon-reload
systemctl enable --now llm-router.service
systemctl restart llm-router.service
say "started llm-router (systemctl status llm-router). Its first start prints the admin password"
say "and the enrolment token once: journalctl -u llm-router | grep -iE 'password|enrol'"
