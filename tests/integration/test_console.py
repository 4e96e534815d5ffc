"""The web console in a real headless browser, against a real ``snaprag serve``.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs it), driven by
Playwright, which ships its own driver and downloads nothing here. The server answers with
the ``echo`` generator pausing 20 ms per token, so an answer arrives token by token.
Every wait is bounded; nothing is asserted about how long anything took.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import sample_index, start, stop

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="the console tests drive Debian's chromium (apt-get install chromium; .ci/run does)",
)
ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "src" / "snaprag" / "serve" / "static" / "console"
WAIT_MS = 30_000  # the longest any single browser wait may take
#: the server raises the cache hit-rate alert after one evaluation below 50 %
ALERT_ENV = {
    "SNAPRAG_ALERT_CACHE_HIT_RATE": "0.5",
    "SNAPRAG_ALERT_FOR": "1",
    "SNAPRAG_ALERT_INTERVAL": "0.5",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_index(tmp_path_factory.mktemp("console") / "index")


@pytest.fixture(scope="module")
def server(index: Path) -> Iterator[str]:
    proc, url = start(index, "--llm", "echo:0.02", env=ALERT_ENV)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright drives chromium: pip install -e '.[test]'"
    )
    with sync_api.sync_playwright() as p:
        found = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield found
        found.close()


class Tab:
    """A page in a fresh browser context (its own sessionStorage) that records every
    console error and uncaught exception."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def wait(self, expression: str) -> None:
        self.page.wait_for_function(expression, timeout=WAIT_MS)

    def use_key(self, key: str) -> None:
        self.page.fill("#key", key)
        self.page.click("#key-form button[type=submit]")

    def error_text(self) -> str:
        self.page.wait_for_selector("#error:not([hidden])")
        return self.page.inner_text("#error")

    def close(self) -> None:
        self.context.close()


def test_pages_and_their_assets_ship_in_the_package(server: str) -> None:
    """Both pages and everything they load come from the server (no CDN), and every file
    of the console is named by the package data, so a wheel carries it."""
    for path, script in (("/", "ask.js"), ("/dashboard", "dashboard.js")):
        page = httpx.get(f"{server}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"/static/console/{script}" in page.text
    for name in ("dashboard.html", "ask.html", "common.js", "ask.js", "dashboard.js"):
        assert "http://" not in (CONSOLE / name).read_text()
        assert "https://" not in (CONSOLE / name).read_text()
    for asset in ("uplot/uPlot.iife.min.js", "uplot/uPlot.min.css", "uplot/LICENSE", "common.js"):
        assert httpx.get(f"{server}/static/console/{asset}").status_code == 200, asset
    assert "/dashboard" not in httpx.get(f"{server}/openapi.json").json()["paths"]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["snaprag"]
    package = ROOT / "src" / "snaprag"
    for file in CONSOLE.rglob("*"):
        if file.is_file():
            name = file.relative_to(package).as_posix()
            assert any(_glob_matches(name, g) for g in globs), f"{name} not in package-data"


def _glob_matches(name: str, glob: str) -> bool:
    """As setuptools reads package-data globs: ``*`` stays within one folder."""
    parts, pattern = name.split("/"), glob.split("/")
    return len(parts) == len(pattern) and all(map(fnmatch.fnmatchcase, parts, pattern))


@needs_chromium
def test_dashboard_draws_live_charts_and_shows_an_alert(server: str, browser) -> None:
    tab = Tab(browser)
    try:
        tab.page.goto(f"{server}/dashboard")
        tab.wait("window.dashboard && window.dashboard.polls >= 1")
        with httpx.Client(timeout=60) as client:
            # distinct questions: every search misses the cache, so the hit-rate alert fires
            for i in range(25):
                query = f"how do I adjust the desk height, question {i}"
                assert client.post(f"{server}/v1/search", json={"query": query}).status_code == 200
            ask = client.post(f"{server}/v1/ask", json={"question": "frame warranty length?"})
            assert ask.status_code == 200, ask.text
        tab.wait(
            """(() => {
              const d = window.dashboard.data;
              const sum = (s) => (s || []).reduce((a, v) => a + (v || 0), 0);
              const t = d["chart-throughput"], p = d["chart-latency-search"];
              return t && t.slice(1).some((s) => sum(s) > 0) && p && sum(p[2]) > 0
                && window.dashboard.summary.series["route:ask"];
            })()"""
        )
        for chart in ("throughput", "latency-search", "latency-ask", "hit-rate", "resources"):
            assert tab.page.locator(f"#chart-{chart} canvas").count() == 1, chart
        tab.page.wait_for_selector('#alerts [data-alert="cache_hit_rate"]')
        assert "below the threshold 0.5" in tab.page.inner_text("#alerts")
        assert "embed" in tab.page.inner_text('#stages table[data-operation="search"]')
        assert "retrieval · memory" in tab.page.inner_text("#cache")
        assert "search" in tab.page.inner_text("#routes")
        assert "search" in tab.page.inner_text("#queues")
        queues = tab.js("window.dashboard.data['chart-queues']")
        assert len(queues) > 1 and len(queues[0]) >= 1  # this page's own samples
        assert tab.page.is_hidden("#error")
        assert tab.errors == []
    finally:
        tab.close()


@needs_chromium
def test_ask_page_streams_an_answer_with_citations_hits_and_timings(server: str, browser) -> None:
    tab = Tab(browser)
    try:
        tab.page.goto(f"{server}/")
        tab.wait("window.askPage.collections !== null")
        assert tab.js("askPage.collections") == ["default"]
        tab.page.fill("#question", "How long is the warranty on the frame?")
        tab.page.click("#ask")
        tab.wait("askPage.done !== null || askPage.error !== null")
        state = tab.js("({done: askPage.done, tokens: askPage.tokens, reads: askPage.tokenChunks})")
        done = state["done"]
        assert done is not None, tab.js("askPage.error")
        # the tokens came in many network reads (streamed, not buffered to the end)
        assert state["tokens"] > 5 and state["reads"] > 1, state
        assert tab.page.inner_text("#answer") == done["answer"]
        assert tab.page.locator("#answer a.cite").count() >= 1
        citations = tab.page.inner_text("#citations")
        assert "warranty-and-service.pdf" in citations and "page 1" in citations
        assert tab.page.locator("#hits .hit").count() == 5
        timings = tab.page.inner_text("#timings")
        assert "decode" in timings and "retrieve" in timings and "total" in timings
        assert "first token after" in tab.page.inner_text("#metrics")

        tab.page.fill("#question", "reset the control box")
        tab.page.click("#search")
        tab.wait("askPage.runs === 2 && askPage.hits.length > 0")
        assert tab.page.inner_text("#answer") == ""  # a search has no answer
        tab.page.wait_for_selector("#timings tr")
        assert tab.errors == []

        # an API error is a message on the page, not a blank one
        tab.page.fill("#question", "word " * 2000)
        tab.page.click("#ask")
        assert "over the limit of 8,192" in tab.error_text()
        assert tab.page.is_visible("#ask-form")
    finally:
        tab.close()


def _key(data: Path, tenant: str, scopes: str) -> str:
    cli = [sys.executable, "-m", "snaprag.cli", "keys", "create", "--data", str(data)]
    res = subprocess.run(
        [*cli, "--tenant", tenant, "--scopes", scopes, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["key"]


@needs_chromium
def test_keys_read_key_asks_admin_key_watches_wrong_key_is_told(tmp_path: Path, browser) -> None:
    data = tmp_path / "data"
    data.mkdir()
    admin = _key(data, "acme", "read,write,admin")
    reader = _key(data, "acme", "read")
    other = _key(data, "globex", "read,write")
    proc, url = start(data, "--llm", "echo:0.02", flag="--data")
    tab = Tab(browser)
    try:
        with httpx.Client(timeout=60) as client:
            for key, name in ((admin, "acme"), (other, "globex")):
                made = client.post(
                    f"{url}/v1/collections", json={"name": name}, headers=_bearer(key)
                )
                assert made.status_code == 201, made.text
            files = [("files", ("codes.txt", b"The launch code is tangerine.\n", "text/plain"))]
            form = {"collection": "acme"}
            upload = client.post(
                f"{url}/v1/documents", files=files, data=form, headers=_bearer(admin)
            )
            assert upload.status_code == 202, upload.text
            _wait_for_job(client, url, upload.json()["job_id"], admin)

        tab.page.goto(f"{url}/")
        assert "Enter an API key" in tab.error_text()
        tab.use_key("snr_nope_wrong")
        tab.page.wait_for_function("document.querySelector('#error').innerText.includes('revoked')")
        assert tab.js("askPage.collections") == []

        tab.use_key(reader)
        tab.wait("(askPage.collections || []).length > 0")
        assert tab.js("askPage.collections") == ["acme"]  # not the other tenant's
        assert tab.page.is_hidden("#error")
        tab.page.fill("#question", "What is the launch code?")
        tab.page.click("#ask")
        tab.wait("askPage.done !== null || askPage.error !== null")
        assert tab.js("askPage.error") is None
        assert "tangerine" in tab.page.inner_text("#answer")
        assert "codes.txt" in tab.page.inner_text("#citations")

        # the key stays for this tab: the dashboard uses it, and a read key may not watch
        tab.page.goto(f"{url}/dashboard")
        assert "admin" in tab.error_text()
        assert tab.page.inner_text("#key-state") == "key set for this tab"
        tab.use_key(admin)
        tab.wait("window.dashboard.polls >= 1 && window.dashboard.error === null")
        tab.page.wait_for_selector("#chart-throughput canvas")
        assert tab.page.is_hidden("#error")
        tab.use_key("snr_nope_wrong")
        tab.page.wait_for_function("document.querySelector('#error').innerText.includes('revoked')")
        assert tab.js("window.dashboard.summary") is None  # what the admin key saw is gone
        assert tab.page.locator("#chart-throughput canvas").count() == 0

        # the other tenant, in another tab, sees only its own collection
        theirs = Tab(browser)
        try:
            theirs.page.goto(f"{url}/")
            theirs.use_key(other)
            theirs.wait("(askPage.collections || []).length > 0")
            assert theirs.js("askPage.collections") == ["globex"]
        finally:
            theirs.close()
    finally:
        tab.close()
        stop(proc)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait_for_job(client: httpx.Client, url: str, job_id: str, key: str) -> None:
    for _ in range(600):  # bounded: 60 s
        job = client.get(f"{url}/v1/jobs/{job_id}", headers=_bearer(key)).json()
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["state"] == "done", job
