#!/usr/bin/env bash
# Takes the README's screenshots of the status page: runs `leazzard demo` (a simulated Proxmox
# cluster, loopback only) and photographs http://127.0.0.1:PORT/ with headless Chromium, at
# desktop and phone width. Writes docs/status-page.png and docs/status-page-phone.png.
# Needs chromium (Debian: apt-get install chromium fonts-dejavu-core).
set -euo pipefail
cd "$(dirname "$0")/.."

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "screenshot.sh: chromium is needed (Debian/Ubuntu: apt-get install chromium)" >&2
  exit 1
fi

cargo build --quiet
http_port=${HTTP_PORT:-19153}
dns_port=${DNS_PORT:-15353}
work=$(mktemp -d)
HTTP_LISTEN=127.0.0.1:$http_port DNS_LISTEN=127.0.0.1:$dns_port DATA_DIR=$work/data \
  target/debug/leazzard demo >"$work/demo.log" 2>&1 &
demo=$!
cleanup() { kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do
  if curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null || { cat "$work/demo.log" >&2; exit 1; }
# A few queries, so the page is not all zeros.
dig @127.0.0.1 -p "$dns_port" web1.lab +short >/dev/null 2>&1 || true

shoot() { # file width height
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$work/profile-$2" --virtual-time-budget=2000 \
    --window-size="$2,$3" --screenshot="$1" "http://127.0.0.1:$http_port/" 2>/dev/null
  echo "wrote $1"
}
mkdir -p docs
shoot docs/status-page.png 1280 1000
shoot docs/status-page-phone.png 390 1500
