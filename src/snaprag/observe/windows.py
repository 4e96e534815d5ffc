"""Rolling latency percentiles and counters over 1 min / 15 min / 24 h, kept on disk.

Every duration lands in a fixed log-scale histogram (:data:`EDGES_MS`, 5 % wide buckets
from 10 µs to 2 min, kept sparse: a minute of one route touches a few dozen buckets), so
percentiles of any window come from summed counts, and merging processes or minutes is
exact. Memory holds 10-second slots for the
last 15 minutes and minute slots for 24 hours; completed minutes are written to a small
SQLite file (``telemetry.db``) by :class:`~.history.History`, so a report after a restart
still sees earlier traffic.

Series names are ``route:/v1/search``, ``stage:search.embed``, ``llm:ttft`` ...; counters
``cache:memory:hit``, ``rejected:search`` ...; gauges ``cpu_percent``, ``memory_mb``.
Names come from fixed sets (routes, stages, tiers): never query text.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: bucket upper edges in ms: 0.01 ms .. 120 s, log-spaced (ratio ~1.05 per bucket)
EDGES_MS = np.geomspace(0.01, 120_000.0, 330)
NBUCKETS = len(EDGES_MS) + 1
_EDGES = EDGES_MS.tolist()
SLOT_S = 10
WINDOWS = {"1m": 60, "15m": 900, "24h": 86_400}
#: slowest queries kept per minute
SLOWEST = 10


@dataclass
class Slot:
    """What happened in one time slot (10 s in memory, a minute on disk)."""

    hists: dict[str, dict[int, int]] = field(default_factory=dict)  # bucket -> count
    sums: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, list[float]] = field(default_factory=dict)  # [sum, n, max]
    #: (ms, route, text, tenant): the slowest requests (tenant "" without API keys)
    slow: list[tuple[float, str, str, str]] = field(default_factory=list)

    def observe(self, series: str, ms: float, error: bool = False, n: int = 1) -> None:
        """``n`` requests that each took ``ms`` (a micro-batch's queries share its stages)."""
        hist = self.hists.get(series)
        if hist is None:
            hist = self.hists[series] = {}
        bucket = bisect_left(_EDGES, ms)  # a list: ~5x faster than numpy for one value
        hist[bucket] = hist.get(bucket, 0) + n
        self.sums[series] = self.sums.get(series, 0.0) + ms * n
        if error:
            self.errors[series] = self.errors.get(series, 0) + 1

    def merge(self, other: Slot) -> None:
        for name, hist in other.hists.items():
            mine = self.hists.setdefault(name, {})
            for bucket, n in hist.items():
                mine[bucket] = mine.get(bucket, 0) + n
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        for name, n in other.errors.items():
            self.errors[name] = self.errors.get(name, 0) + n
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0.0) + value
        for name, (total, n, peak) in other.gauges.items():
            g = self.gauges.setdefault(name, [0.0, 0, peak])
            g[0] += total
            g[1] += n
            g[2] = max(g[2], peak)
        self.slow = sorted(self.slow + other.slow, reverse=True)[:SLOWEST]


def dense(hist: dict[int, int]) -> np.ndarray:
    out = np.zeros(NBUCKETS, dtype=np.int64)
    if hist:
        out[list(hist)] = list(hist.values())
    return out


def percentile(hist: np.ndarray, q: float) -> float:
    """The ``q`` quantile (0..1) of a dense histogram, in ms (the bucket's upper edge)."""
    total = int(hist.sum())
    if not total:
        return 0.0
    i = int(np.searchsorted(np.cumsum(hist), q * total, side="left"))
    return float(EDGES_MS[min(i, len(EDGES_MS) - 1)])


def summarize(slot: Slot, seconds: float) -> dict[str, Any]:
    """Throughput, percentiles, counters and gauges of ``slot`` covering ``seconds``."""
    series: dict[str, dict[str, float]] = {}
    for name, sparse in sorted(slot.hists.items()):
        hist = dense(sparse)
        n = int(hist.sum())
        series[name] = {
            "count": n,
            "per_s": round(n / seconds, 3) if seconds else 0.0,
            "errors": slot.errors.get(name, 0),
            "mean_ms": round(slot.sums.get(name, 0.0) / n, 3) if n else 0.0,
            "p50_ms": round(percentile(hist, 0.50), 3),
            "p95_ms": round(percentile(hist, 0.95), 3),
            "p99_ms": round(percentile(hist, 0.99), 3),
        }
    gauges = {
        name: {"mean": round(total / n, 3) if n else 0.0, "max": round(peak, 3)}
        for name, (total, n, peak) in sorted(slot.gauges.items())
    }
    return {
        "seconds": seconds,
        "series": series,
        "counters": {k: round(v, 3) for k, v in sorted(slot.counters.items())},
        "gauges": gauges,
        "slowest": [
            {"ms": round(ms, 3), "route": r, "query": q, "tenant": t} for ms, r, q, t in slot.slow
        ],
    }


class Windows:
    """The live recorder: thread-safe, cheap on the request path (a lock, a bisect)."""

    def __init__(self, now: float | None = None) -> None:
        self._lock = threading.Lock()
        self._slots: OrderedDict[int, Slot] = OrderedDict()  # slot start (s) -> Slot
        self._minutes: OrderedDict[int, Slot] = OrderedDict()  # minute start (s) -> Slot
        self._unsaved: list[tuple[int, Slot]] = []
        self._done: set[int] = set()  # minutes handed to take_unsaved
        self._folded = 0  # slots before this time are in their minutes already
        self.started = time.time() if now is None else now

    def _slot(self, now: float) -> Slot:
        start = int(now) // SLOT_S * SLOT_S
        slot = self._slots.get(start)
        if slot is None:
            slot = self._slots[start] = Slot()
            self._roll(start)
        return slot

    def _roll(self, current: int) -> None:
        """Fold 10-second slots older than the current minute into minutes; drop old ones."""
        minute_now = current // 60 * 60
        for start in list(self._slots):
            if self._folded <= start < minute_now:  # each slot once, when its minute ends
                self._minutes.setdefault(start // 60 * 60, Slot()).merge(self._slots[start])
            if start < current - WINDOWS["15m"]:
                del self._slots[start]
        self._folded = max(self._folded, minute_now)
        for minute in [m for m in self._minutes if m < minute_now and m not in self._done]:
            self._done.add(minute)
            self._unsaved.append((minute, self._minutes[minute]))
        while self._minutes and next(iter(self._minutes)) < current - WINDOWS["24h"]:
            self._done.discard(self._minutes.popitem(last=False)[0])

    def observe(self, series: str, ms: float, error: bool = False, now: float | None = None):
        with self._lock:
            self._slot(time.time() if now is None else now).observe(series, ms, error)

    def observe_many(
        self, items: list[tuple[str, float]], now: float | None = None, n: int = 1
    ) -> None:
        """Several durations under one lock (a request's stages; ``n``: of each of the
        ``n`` queries of a batch)."""
        with self._lock:
            slot = self._slot(time.time() if now is None else now)
            for series, ms in items:
                slot.observe(series, ms, n=n)

    def count(self, name: str, n: float = 1, now: float | None = None) -> None:
        with self._lock:
            counters = self._slot(time.time() if now is None else now).counters
            counters[name] = counters.get(name, 0.0) + n

    def gauge(self, name: str, value: float, now: float | None = None) -> None:
        with self._lock:
            gauges = self._slot(time.time() if now is None else now).gauges
            g = gauges.setdefault(name, [0.0, 0, value])
            g[0] += value
            g[1] += 1
            g[2] = max(g[2], value)

    def slow(
        self, route: str, ms: float, query: str, now: float | None = None, tenant: str = ""
    ) -> None:
        with self._lock:
            slot = self._slot(time.time() if now is None else now)
            if len(slot.slow) < SLOWEST or ms > slot.slow[-1][0]:
                entry = (ms, route, query[:200], tenant)
                slot.slow = sorted([*slot.slow, entry], reverse=True)
                del slot.slow[SLOWEST:]

    def window(self, name: str, now: float | None = None) -> tuple[Slot, float]:
        """Everything of the last ``1m``/``15m``/``24h`` merged into one slot, and the
        seconds the merged slots really cover (whole slots: a little more than the window,
        so rates are divided by this, not by the window's length)."""
        seconds = WINDOWS[name]
        now = time.time() if now is None else now
        out = Slot()
        with self._lock:
            self._slot(now)
            if seconds <= WINDOWS["15m"]:
                first = int(now - seconds) // SLOT_S * SLOT_S
                for start, slot in self._slots.items():
                    if start >= first:
                        out.merge(slot)
            else:
                current = int(now) // 60 * 60
                first = int(now - seconds) // 60 * 60
                for minute, slot in self._minutes.items():
                    if minute >= first:
                        out.merge(slot)
                for start, slot in self._slots.items():  # the current, unfinished minute
                    if start >= current:
                        out.merge(slot)
        covered = now - max(first, self.started)
        return out, max(float(SLOT_S), covered)

    def summary(self, name: str, now: float | None = None) -> dict[str, Any]:
        slot, seconds = self.window(name, now)
        return summarize(slot, seconds)

    def timeline(self, now: float | None = None) -> list[tuple[int, Slot]]:
        """The 10-second slots of the last 15 minutes, oldest first (for charts)."""
        with self._lock:
            self._slot(time.time() if now is None else now)
            return list(self._slots.items())

    def take_unsaved(self, now: float | None = None, final: bool = False) -> list[tuple[int, Slot]]:
        """Completed minutes not yet written to disk; ``final`` (the process is stopping):
        the current, unfinished minute too."""
        now = time.time() if now is None else now
        with self._lock:
            self._slot(now)
            out, self._unsaved = self._unsaved, []
            if final:
                minute = int(now) // 60 * 60
                current = Slot()
                for start, slot in self._slots.items():
                    if start >= minute:
                        current.merge(slot)
                if current.hists or current.counters:
                    out.append((minute, current))
        return out


def retrieval_hits(counters: dict[str, float]) -> float:
    """Search look-ups answered by any cache tier (counters of a window or a slot)."""
    return sum(
        v for k, v in counters.items() if k.startswith("cache:retrieval:") and k.endswith(":hit")
    )


#: stages that contain others: left out of shares, which would count those twice
WHOLE_STAGES = (".total", ".retrieve")


def stage_breakdown(series: dict[str, dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    """The stages of ``operation`` in a summary's series with their share of its time,
    largest first."""
    prefix = f"stage:{operation}."
    rows = [
        {"stage": k[len(prefix) :], **v}
        for k, v in series.items()
        if k.startswith(prefix) and not k.endswith(WHOLE_STAGES)
    ]
    whole = sum(r["mean_ms"] * r["count"] for r in rows)
    for r in rows:
        r["share"] = round(r["mean_ms"] * r["count"] / whole, 4) if whole else 0.0
    return sorted(rows, key=lambda r: -r["share"])
