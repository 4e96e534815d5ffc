"""`snaprag bench load` end to end: real `snaprag serve` processes over a tiny index built
with the real model, driven by the real load generator with a handful of requests.

Only the shape of the report and the accounting are checked (every request answered and
counted, no 5xx, no server left running); timings depend on the machine and are never
asserted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from snaprag import Engine

TOPICS = {
    "bike": ("Frame warranty", "The steel frame is covered by a two-year warranty."),
    "desk": ("Standing desk", "Hold the down button for five seconds to reset the desk."),
    "tea": ("Green tea", "Brew green tea at 80 degrees for two minutes."),
    "sleep": ("Sleep hygiene", "A dark, cool room and a fixed bedtime help people sleep."),
    "bread": ("Sourdough bread", "A sourdough starter needs flour and water every day."),
    "rain": ("Monsoon rain", "The monsoon brings most of the year's rain in three months."),
    "bees": ("Honey bees", "Honey bees dance to tell each other where flowers are."),
    "moon": ("Lunar phases", "The moon's phases repeat every twenty-nine and a half days."),
}
QUESTIONS = [
    "how long is the frame warranty",
    "reset the standing desk",
    "green tea temperature",
    "how to sleep better",
    "feeding a sourdough starter",
    "when does the monsoon come",
    "why do bees dance",
    "how long is a lunar cycle",
    "steel bike frame defects",
    "desk button hold",
    "brewing time for tea",
    "bedroom temperature for sleep",
    "flour and water",
    "rainy season months",
    "where are the flowers",
    "full moon again",
]
SCENARIOS = {"cached", "uncached", "batch", "ask", "chat", "overload"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A BEIR folder (8 documents with titles, 16 queries) and its index."""
    root = tmp_path_factory.mktemp("load")
    dataset = root / "tiny"
    dataset.mkdir()
    with (dataset / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc_id, (title, text) in TOPICS.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (dataset / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for n, text in enumerate(QUESTIONS):
            fh.write(json.dumps({"_id": f"q{n}", "text": text}) + "\n")
    index = root / "index"
    with Engine.open(index) as engine:
        assert engine.ingest([dataset / "corpus.jsonl"]).ok
    return dataset, index


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_bench_load_end_to_end(tiny: tuple[Path, Path], run_cli, tmp_path: Path) -> None:
    dataset, index = tiny
    out = tmp_path / "load.json"
    res = run_cli(
        "bench", "load", "--dataset", dataset, "--index", index, "--clients", "4",
        "--requests", "6", "--duration", "20", "--out", out, "--json",
        timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    result = res.json()
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert result["benchmark"] == "load" and set(result["settings"]["scenarios"]) == SCENARIOS
    phases = {p["name"]: p for p in result["phases"]}
    assert set(phases) == {
        "http-floor",
        "cached",
        "uncached-on-1",
        "uncached-on-4",
        "uncached-off-1",
        "uncached-off-4",
        "uncached-default-4",
        "batch",
        "ask",
        "chat",
        "overload-unloaded",
        "overload-first",
        "overload",
        "overload-herd",
    }
    for name, p in phases.items():
        classes = p["status"]
        # every attempt is accounted for, once, and the server answered each of them
        assert p["requests"] > 0, name
        assert sum(classes.values()) == p["requests"], (name, classes)
        assert classes["connection"] == 0 and classes["other"] == 0, (name, classes)
        assert not any(code.startswith("5") for code in p["status_codes"]), (name, classes)
        if not name.startswith(("overload", "uncached-default")):
            assert classes["2xx"] == p["requests"] and p["error_rate"] == 0.0, name
        assert p["requests"] <= 6, name  # --requests bounds every phase
        assert set(p["ok_latency_ms"]) == {"p50", "p95", "p99", "mean", "max"}, name
        assert p["loadgen"]["cpu_s"] >= 0 and p["loadgen"]["cores"] >= 0
        assert p["server"]["rss_mib_before"] > 0
    # the cached phase was served by the cache, and no distinct query hit it
    assert phases["cached"]["searched_share"] == 0.0
    assert result["cache_check"] == {"cached_hit_share": 1.0, "uncached_searched_min": 1.0}
    assert phases["ask"]["searched_share"] is None  # answers carry no search timings
    assert phases["uncached-off-1"]["server"]["env"]["SNAPRAG_SERVER_BATCH_MAX"] == "1"
    assert "SNAPRAG_SERVER_BATCH_MAX" not in phases["uncached-on-4"]["server"]["env"]
    assert phases["batch"]["queries_per_s"] == pytest.approx(
        phases["batch"]["req_per_s"] * result["settings"]["batch_queries"], rel=0.01
    )
    overload = result["overload"]
    assert overload["clients"] == 5 * overload["capacity"]
    assert overload["not_429_errors"] == 0
    # what the clients saw as 429 is what the server counted as rejected
    assert overload["status_429"] == overload["server_rejected"]
    assert overload["herd_p99_ratio"] is None or overload["herd_p99_ratio"] > 0
    assert set(result["uncached_scaling"]) == {"on", "off"}
    assert {t["target"] for t in result["targets"]} >= {"cached_rps", "overload_rss"}
    assert all(isinstance(t["pass"], bool) for t in result["targets"])
    # one server per scenario phase group, and none outlives the command
    assert len(result["server_pids"]) == 10
    assert all(_gone(pid) for pid in result["server_pids"])


def test_bench_load_report_and_bad_options(tiny: tuple[Path, Path], run_cli) -> None:
    dataset, index = tiny
    res = run_cli(
        "bench", "load", "--dataset", dataset, "--index", index, "--clients", "2",
        "--requests", "5", "--scenarios", "cached",
        env={"COLUMNS": "200"},
        timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "cached search" in res.stdout and "targets" in res.stdout
    assert "HTTP floor" in res.stdout
    assert "cached search: 2 client(s)" in res.err_flat  # progress goes to stderr
    bad = run_cli("bench", "load", "--dataset", dataset, "--scenarios", "cached,warp")
    assert bad.returncode == 2 and "warp" in bad.stderr and "uncached" in bad.stderr
    missing = run_cli("bench", "load", "--dataset", dataset, "--index", dataset)
    assert missing.returncode == 2 and "snaprag ingest" in missing.err_flat
