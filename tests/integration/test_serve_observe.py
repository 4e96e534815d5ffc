"""What a real server measures, over real HTTP: Prometheus text that promtool accepts,
an alert POSTed to a real local webhook that fires and then clears, and a report from
the recorded history after the server has stopped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from serving import sample_index, start, stop


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_index(tmp_path_factory.mktemp("observe") / "index")


class Receiver:
    """A real HTTP server on loopback that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                events.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, state: str, attempts: int = 100) -> dict:
        for _ in range(attempts):  # bounded
            found = [e for e in self.events if e["state"] == state]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no {state!r} alert arrived: {self.events}")


def test_metrics_pass_promtool_and_carry_every_family(index: Path) -> None:
    proc, url = start(index, "--llm", "echo")
    try:
        with httpx.Client(timeout=30) as c:
            for q in ("frame warranty", "reset the desk", "frame warranty"):
                res = c.post(f"{url}/v1/search", json={"query": q})
                assert res.status_code == 200
            # the repeated query: answered by the memory tier, which the response names
            assert res.json()["cache_tier"] == "memory"
            assert 'cache;desc="memory";dur=' in res.headers["server-timing"]
            assert c.post(f"{url}/v1/ask", json={"question": "frame warranty?"}).status_code == 200
            assert c.post(f"{url}/v1/search", json={"query": ""}).status_code == 422
            text = c.get(f"{url}/metrics").text
        for family in (
            "snaprag_http_requests_total", "snaprag_http_request_duration_seconds_bucket",
            "snaprag_http_requests_in_flight", "snaprag_http_errors_total",
            "snaprag_stage_duration_seconds_bucket", "snaprag_cache_requests_total",
            "snaprag_queue_depth", "snaprag_queue_wait_seconds_bucket", "snaprag_batch_size",
            "snaprag_index_chunks", "snaprag_index_version", "snaprag_build_info",
            "process_resident_memory_bytes", "process_open_fds",
        ):  # fmt: skip
            assert family in text, family
        assert 'route="/v1/search"' in text and "frame warranty" not in text  # no query text
        assert re.search(r'^snaprag_index_bytes\{collection="default"\} [1-9]', text, re.M)
        assert 'snaprag_http_errors_total{code="bad_query",route="/v1/search"} 1.0' in text
        if shutil.which("promtool") is None:
            pytest.skip("promtool is not installed (Debian package 'prometheus')")
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    finally:
        stop(proc)


def test_an_alert_fires_to_a_webhook_and_clears_when_it_recovers(index: Path) -> None:
    receiver = Receiver()
    env = {
        "SNAPRAG_ALERT_CACHE_HIT_RATE": "0.5",  # fires while fewer than half are hits
        "SNAPRAG_ALERT_FOR": "1",
        "SNAPRAG_ALERT_INTERVAL": "0.5",
        "SNAPRAG_ALERT_WEBHOOK": receiver.url,
    }
    proc, url = start(index, env=env)
    try:
        with httpx.Client(timeout=30) as c:
            for i in range(25):  # distinct queries: all misses
                c.post(f"{url}/v1/search", json={"query": f"frame warranty part {i}"})
            fired = receiver.wait_for("firing")
            assert fired["alert"] == "cache_hit_rate" and fired["value"] < 0.5
            active = c.get(f"{url}/v1/alerts").json()["active"]
            assert [a["alert"] for a in active] == ["cache_hit_rate"]
            for _ in range(150):  # the same query again and again: hits
                c.post(f"{url}/v1/search", json={"query": "frame warranty part 1"})
            resolved = receiver.wait_for("resolved")
            assert resolved["alert"] == "cache_hit_rate" and resolved["value"] >= 0.55
            assert c.get(f"{url}/v1/alerts").json()["active"] == []
    finally:
        stop(proc)
        receiver.server.shutdown()


def test_report_after_a_restart_shows_the_earlier_traffic(index: Path) -> None:
    proc, url = start(index, "--llm", "echo")
    try:
        with httpx.Client(timeout=30) as c:
            for i in range(12):
                c.post(f"{url}/v1/search", json={"query": f"desk height {i % 4}"})
            c.post(f"{url}/v1/ask", json={"question": "How long is the frame warranty?"})
            live = c.get(f"{url}/v1/metrics/summary", params={"window": "15m"}).json()
        assert live["series"]["route:search"]["count"] == 12
        assert live["timeline"]["routes"]["search"]["per_s"]
    finally:
        stop(proc)  # the server records the unfinished minute as it stops
    out = subprocess.run(
        [sys.executable, "-m", "snaprag.cli", "report", "--index", str(index), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["routes"]["search"]["count"] >= 12 and report["routes"]["ask"]["count"] >= 1
    stages = {row["stage"] for row in report["stages"]["search"]}
    assert {"embed", "bm25", "dense", "queue_wait"} <= stages
    assert report["slowest"] and report["cache"]["retrieval:memory"]["hits"] >= 8
    table = subprocess.run(
        [sys.executable, "-m", "snaprag.cli", "report", "--index", str(index)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert table.returncode == 0 and "where the time goes" in table.stdout
