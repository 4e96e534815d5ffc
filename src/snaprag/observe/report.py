"""A performance report from the recorded history (``snaprag report``): throughput and
latency percentiles per route, where the time goes per stage, cache hit rates per tier,
errors and refusals, the slowest queries, and recommendations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .advice import recommend
from .history import History
from .windows import stage_breakdown, summarize


def cache_rates(counters: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per namespace and tier: hits, misses and hit rate."""
    out: dict[str, dict[str, float]] = {}
    for key, value in counters.items():
        parts = key.split(":")
        if parts[0] != "cache" or len(parts) != 4:
            continue
        _, namespace, tier, result = parts
        row = out.setdefault(f"{namespace}:{tier}", {"hits": 0.0, "misses": 0.0})
        row["hits" if result == "hit" else "misses"] += value
    for row in out.values():
        total = row["hits"] + row["misses"]
        row["hit_rate"] = round(row["hits"] / total, 4) if total else 0.0
    return dict(sorted(out.items()))


def build_report(folder: Path, hours: float, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    history = History(folder)
    slot, seconds, _ = history.read(now - hours * 3600, now)
    summary = summarize(slot, seconds or 1.0)
    routes = {k[6:]: v for k, v in summary["series"].items() if k.startswith("route:")}
    counters = summary["counters"]
    return {
        "file": str(history.path),
        "hours": hours,
        "minutes_with_traffic": int(seconds // 60),
        "routes": routes,
        "stages": {op: stage_breakdown(summary["series"], op) for op in ("search", "ask")},
        "cache": cache_rates(counters),
        "refused": {k[9:]: v for k, v in counters.items() if k.startswith("rejected:")},
        "errors": {k: v["errors"] for k, v in routes.items() if v["errors"]},
        "gauges": summary["gauges"],
        "slowest": summary["slowest"],
        "recommendations": recommend(summary),
    }
