#!/usr/bin/env bash
# Screenshot of the server's API page (/docs) in headless Chromium, for the README:
#   scripts/screenshot_server.sh [INDEX]   -> docs/img/server-docs.png
set -euo pipefail
cd "$(dirname "$0")/.."
index="${1:-$(mktemp -d)/index}"
[ -e "$index/snaprag.db" ] || snaprag ingest samples --index "$index" >/dev/null
out=$(mktemp)
snaprag serve --index "$index" --port 0 >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 200); do grep -q '^serving ' "$out" && break; sleep 0.1; done
url=$(sed -n 's/^serving //p' "$out")
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --virtual-time-budget=8000 --window-size=1280,1600 \
  --hide-scrollbars --screenshot=docs/img/server-docs.png "$url/docs"
