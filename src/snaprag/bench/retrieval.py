"""``snaprag bench retrieval``: ingest speed, query latency, batching gain, cold start.

Runs the exact pipeline of ``snaprag ingest`` + ``snaprag search`` on a BEIR collection:

* ingestion throughput (chunks embedded per second of embedding, and end to end);
* uncached single-query latency (embed query + hybrid search + fuse + fetch), p50/p95;
* the same queries in one batched ``search_many`` call, per query, and the ratio;
* the wall time of a cold ``snaprag search`` process (median of several runs);
* nDCG@10 / Recall@10 (documents ranked by their best chunk) as a sanity check.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Engine
from .datasets import load_queries
from .metrics import evaluate


def machine() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        memory = 0.0
    return {
        "cpus": cpus,
        "cpu": model or platform.processor() or platform.machine(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d"),
    }


def run(
    dataset: Path,
    split: str = "test",
    index: Path | None = None,
    k: int = 10,
    cold_runs: int = 5,
    **settings: Any,
) -> dict[str, Any]:
    own_index = index is None
    index = index or Path(tempfile.mkdtemp(prefix="snaprag-bench-"))
    settings.setdefault("cache", False)  # uncached latency: the query cache stays off
    try:
        engine = Engine.open(index, **settings)
        t = time.perf_counter()
        report = engine.ingest([dataset / "corpus.jsonl"])
        ingest_s = time.perf_counter() - t
        queries, qrels = load_queries(dataset, split)
        texts = [q for _, q in queries]
        engine.warm_up()
        engine.search_many(texts[:8], k=k)  # first-call allocations

        single = []
        single_stages: dict[str, float] = {}
        for q in texts:
            t = time.perf_counter()
            res = engine.search_many([q], k)
            single.append((time.perf_counter() - t) * 1000)
            for name, ms in res.timings.stages.items():
                single_stages[name] = single_stages.get(name, 0.0) + ms / len(texts)
        batched = []
        batch_stages: dict[str, float] = {}
        for _ in range(3):
            t = time.perf_counter()
            res = engine.search_many(texts, k)
            batched.append((time.perf_counter() - t) * 1000 / len(texts))
            if batched[-1] == min(batched):
                batch_stages = {n: ms / len(texts) for n, ms in res.timings.stages.items()}
        hits = engine.search_many(texts, k=100)
        run_ = {qid: [h.doc_id for h in hs] for (qid, _), hs in zip(queries, hits, strict=True)}
        quality = evaluate({q: qrels[q] for q, _ in queries}, run_)
        stats = engine.stats()
        engine.close()
        cold = cold_start(index, texts[0], cold_runs, settings.get("model"))
    finally:
        if own_index:
            shutil.rmtree(index, ignore_errors=True)
    per_query_single = float(np.mean(single))
    per_query_batched = min(batched)
    return {
        "dataset": dataset.name,
        "split": split,
        "queries": len(texts),
        "model": stats["model"],
        "chunks": stats["chunks"],
        "documents": stats["documents"],
        "index_bytes": stats["bytes"],
        "ingest_chunks_per_s_embedding": round(report.chunks_embedded / report.embed_seconds, 1)
        if report.embed_seconds
        else None,
        "ingest_chunks_per_s_end_to_end": round(report.chunks_embedded / ingest_s, 1),
        "single_ms": {
            "p50": _pct(single, 50),
            "p95": _pct(single, 95),
            "mean": round(per_query_single, 3),
        },
        "batched_ms_per_query": round(per_query_batched, 3),
        "batch_speedup": round(per_query_single / per_query_batched, 2),
        "stages_ms_per_query": {
            name: {
                "single": round(single_stages.get(name, 0.0), 3),
                "batched": round(batch_stages.get(name, 0.0), 3),
            }
            for name in single_stages
        },
        "cold_search_s": {
            "median": round(statistics.median(cold), 3),
            "runs": [round(c, 3) for c in cold],
        },
        **{k_: round(v, 4) for k_, v in quality.items()},
        "machine": machine(),
    }


def cold_start(index: Path, query: str, runs: int, model: str | None) -> list[float]:
    """Wall seconds of fresh ``snaprag search`` processes (model and snapshot cached)."""
    exe = shutil.which("snaprag")
    cmd = [exe] if exe else [sys.executable, "-m", "snaprag.cli"]
    cmd += ["search", query, "--index", str(index), "--json", "-k", "10"]
    env = {**os.environ, "SNAPRAG_CACHE": "0"}  # a cold process, not a cached answer
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        out.append(time.perf_counter() - t)
    return out


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"snaprag bench retrieval — {result['dataset']} ({result['split']}, "
        f"{result['queries']} queries, {result['model']})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("documents / chunks", f"{result['documents']:,} / {result['chunks']:,}"),
        ("ingest chunks/s (embedding)", str(result["ingest_chunks_per_s_embedding"])),
        ("ingest chunks/s (end to end)", str(result["ingest_chunks_per_s_end_to_end"])),
        (
            "single query p50 / p95 ms",
            f"{result['single_ms']['p50']} / {result['single_ms']['p95']}",
        ),
        ("batched ms per query", str(result["batched_ms_per_query"])),
        ("batch speed-up (single mean / batched)", f"{result['batch_speedup']}x"),
        ("cold `snaprag search` s (median)", str(result["cold_search_s"]["median"])),
        ("nDCG@10 / Recall@10", f"{result['ndcg@10']} / {result['recall@10']}"),
        ("index bytes", f"{result['index_bytes']:,}"),
    ]
    for r in rows:
        table.add_row(*r)
    for name, v in result.get("stages_ms_per_query", {}).items():
        table.add_row(
            f"  stage {name} ms/query (single / batched)", f"{v['single']} / {v['batched']}"
        )
    Console().print(table)
    m = result["machine"]
    Console().print(f"[dim]{m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, {m['date']}[/]")
