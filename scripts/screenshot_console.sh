#!/usr/bin/env bash
# Screenshots of the web console in headless Chromium, for the README:
#   scripts/screenshot_console.sh [INDEX]
#   -> docs/img/console-dashboard.png (after a minute of mixed traffic, an alert firing)
#   -> docs/img/console-ask.png       (an answer streamed in, with citations, hits, timings)
# Needs Debian's chromium and Playwright (pip install -e '.[test]'); about 90 s.
set -euo pipefail
cd "$(dirname "$0")/.."
index="${1:-$(mktemp -d)/index}"
[ -e "$index/snaprag.db" ] || snaprag ingest samples --index "$index" >/dev/null
out=$(mktemp)
# a low hit-rate threshold, so the dashboard shows an alert and the cache advice
SNAPRAG_ALERT_CACHE_HIT_RATE=0.6 SNAPRAG_ALERT_FOR=1 SNAPRAG_ALERT_INTERVAL=1 \
  snaprag serve --index "$index" --port 0 --llm echo:0.02 >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 300); do grep -q '^serving ' "$out" && break; sleep 0.1; done
url=$(sed -n 's/^serving //p' "$out")
[ -n "$url" ] || { cat "$out" >&2; exit 1; }

python3 - "$url" <<'PY'
import sys
import time

import httpx
from playwright.sync_api import sync_playwright

url = sys.argv[1]
topics = ["frame warranty", "reset the control box", "desk height range", "error code E01",
          "serial number", "shipping of parts", "보증 기간", "cable tray", "motor noise"]
with httpx.Client(timeout=60) as client:
    # 70 s of searches, a third of them repeats (cache hits), and an answer now and then
    end, i = time.monotonic() + 70, 0
    while time.monotonic() < end:
        query = topics[i % len(topics)] if i % 3 == 0 else f"{topics[i % len(topics)]} {i}"
        client.post(f"{url}/v1/search", json={"query": query})
        if i % 15 == 0:
            client.post(f"{url}/v1/ask", json={"question": f"{topics[i % len(topics)]} {i}?"})
        i += 1
        time.sleep(0.15)

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}/dashboard")
    page.wait_for_function("window.dashboard.polls >= 2", timeout=30_000)
    page.screenshot(path="docs/img/console-dashboard.png", full_page=True)
    page.goto(f"{url}/?k=3&q=" + "How long is the warranty on the frame, and how do I claim it?")
    page.wait_for_function("window.askPage.done !== null", timeout=30_000)
    page.screenshot(path="docs/img/console-ask.png", full_page=True)
    browser.close()
PY
echo "wrote docs/img/console-dashboard.png docs/img/console-ask.png"
