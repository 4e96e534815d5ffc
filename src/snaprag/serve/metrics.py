"""What a server measures about itself: Prometheus metrics, rolling windows on disk,
alerts and recommendations, fed by the request guard, the lanes and the engines.

Labels are route templates, lanes, stages, tiers and error codes (fixed sets); collection
names label only the index gauges, at most :data:`MAX_COLLECTION_LABELS` of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from .. import __version__
from ..cache.normalize import normalize_query
from ..config import Config
from ..observe.advice import recommend
from ..observe.alerts import Alerts, rules_from_config
from ..observe.history import History
from ..observe.otel import OtelTelemetry
from ..observe.prometheus import LATENCY_BUCKETS, PrometheusTelemetry
from ..observe.telemetry import CompositeTelemetry, WindowTelemetry
from ..observe.windows import Windows, retrieval_hits, summarize
from ..system import cpu_seconds
from ..types import StageTimings

log = logging.getLogger("snaprag.serve")

#: short route names (windows, alerts, reports) of the API's work routes
ROUTE_NAMES = {
    "/v1/search": "search",
    "/v1/search/batch": "batch",
    "/v1/ask": "ask",
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/documents": "documents",
}
MAX_COLLECTION_LABELS = 100
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
#: recent distinct queries remembered to count repeats (for the cache advice)
SEEN = 50_000
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Observer:
    def __init__(self, config: Config, folder: Path | None) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        r = self.registry
        self.pipeline = PrometheusTelemetry(r)
        self.windows = Windows()
        self.history = History(folder) if folder is not None else None
        self.telemetry = CompositeTelemetry([self.pipeline, WindowTelemetry(self.windows)])
        #: traces (extra ``otel``) when ``otel_endpoint`` is set: built in the serving
        #: process (with --workers, in each worker), never before a fork
        self.otel = OtelTelemetry.from_config(config)
        #: with --workers N, every worker's metrics live in files in this folder, and the
        #: worker a scrape reaches answers for all of them
        self.shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        #: collectors of values read at scrape time (not kept in the shared files)
        self.collectors: list[Any] = [
            WorkersProcessCollector(self.shared) if self.shared else ProcessCollector(registry=None)
        ]
        Gauge(
            "snaprag_build_info", "snaprag version", ["version"], registry=r,
            multiprocess_mode="max",
        ).labels(__version__).set(1)  # fmt: skip
        labels = ["route", "method", "status"]
        self.requests = Counter("snaprag_http_requests", "HTTP requests", labels, registry=r)
        self.durations = Histogram(
            "snaprag_http_request_duration_seconds",
            "HTTP request duration, streamed responses until their last byte",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "snaprag_http_requests_in_flight", "HTTP requests being served", registry=r,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.http_errors = Counter(
            "snaprag_http_errors", "Error responses by code", ["route", "code"], registry=r
        )
        self.queue_wait = Histogram(
            "snaprag_queue_wait_seconds",
            "Time admitted requests waited for a slot",
            ["lane"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "snaprag_queue_rejections",
            "Requests refused or timed out by admission control",
            ["lane", "reason"],
            registry=r,
        )
        self.batch_sizes = Histogram(
            "snaprag_batch_size",
            "Queries per search micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.alerts = Alerts(
            rules_from_config(config, sorted(set(ROUTE_NAMES.values()))),
            config.alert_for,
            config.alert_webhook,
        )
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self.folder = folder
        self.live: dict[str, float] = {}
        self._scrape = threading.Lock()

    # ------------------------------------------------------------------ events
    def request(self, path: str | None, method: str, status: int, seconds: float) -> None:
        route = path or "other"
        method = method if method in METHODS else "other"  # the client's word: bounded
        self.requests.labels(route, method, str(status)).inc()
        self.durations.labels(route, method, str(status)).observe(seconds)
        name = ROUTE_NAMES.get(route)
        if name is not None and method != "GET":
            self.windows.observe(f"route:{name}", seconds * 1000, error=status >= 500)
            if status in (429, 503):
                self.windows.count(f"rejected:{name}")

    def error(self, path: str | None, code: str) -> None:
        self.http_errors.labels(path or "other", code).inc()

    def lane_event(self, lane: str, what: str, value: float = 0.0) -> None:
        if what == "wait":
            self.queue_wait.labels(lane).observe(value)
        else:
            self.rejections.labels(lane, what).inc()

    def stages(self, operation: str, timings: StageTimings, names: tuple[str, ...]) -> None:
        """Stages the server adds to the engine's (queue and batch waits)."""
        part = StageTimings({n: timings.stages[n] for n in names if n in timings.stages})
        self.telemetry.stage_timings(operation, part)

    def batch(self, size: int) -> None:
        self.batch_sizes.observe(size)

    def query(self, route: str, text: str, ms: float, tenant: str | None = None) -> None:
        """A finished query: counted as repeated or not, kept if among the slowest."""
        # a digest, not the text: 50,000 long queries would otherwise pin hundreds of MB
        norm = hashlib.blake2b(normalize_query(text).encode(), digest_size=8).digest()
        if norm in self._seen:
            self._seen.move_to_end(norm)
            self.windows.count("queries:repeated")
        else:
            self._seen[norm] = None
            if len(self._seen) > SEEN:
                self._seen.popitem(last=False)
        self.windows.count("queries:total")
        self.windows.slow(route, ms, text, tenant=tenant or "")

    # ------------------------------------------------------------------ periodic
    def sample(self, live: dict[str, float]) -> None:
        for name, value in live.items():
            self.windows.gauge(name, value)
        self.live = live

    def live_gauges(self, resources: Any, queues: int) -> dict[str, float]:
        out = {
            "cpu_percent": resources.cpu_percent,
            "memory_mb": resources.memory_mb,
            "queue_length": float(queues),
            "open_files": float(_open_files()),
        }
        total = _memory_total_mb()
        if total:
            out["memory_total_mb"] = total
        if self.folder is not None:
            out["disk_free_mb"] = shutil.disk_usage(self.folder).free / 2**20
        return out

    def evaluate(self) -> list[dict[str, Any]]:
        return self.alerts.evaluate(self.summary("1m"))

    def flush(self, final: bool = False) -> None:
        if self.history is None:
            return
        minutes = self.windows.take_unsaved(final=final)
        try:
            self.history.write(minutes)
        except (OSError, sqlite3.Error) as exc:  # a read-only or full disk: serve on
            log.warning("could not record traffic history in %s: %s", self.history.path, exc)

    # ------------------------------------------------------------------ reading
    def summary(self, window: str = "1m") -> dict[str, Any]:
        out = self.windows.summary(window)
        out["live"] = dict(self.live)
        out["settings"] = {"server_batch_max": self.config.server_batch_max}
        return out

    def report(self, window: str = "1m") -> dict[str, Any]:
        out = self.summary(window)
        out["window"] = window
        out["alerts"] = self.alerts.report()["active"]
        out["recommendations"] = recommend(out)
        out["timeline"] = self.timeline()
        return out

    def timeline(self) -> dict[str, Any]:
        """Per 10-second slot of the last 15 minutes: requests/s and p95 per route, cache
        hit rate, rejections, CPU and memory (the dashboard's charts)."""
        slots = self.windows.timeline()
        now = time.time()
        out: dict[str, Any] = {"t": [start for start, _ in slots], "routes": {}}
        keys = sorted({k for _, s in slots for k in s.hists if k.startswith("route:")})
        # the newest slot is still filling: its rates are over the seconds it has lasted
        spans = [min(10.0, max(1.0, now - start)) for start, _ in slots]
        summaries = [summarize(s, span) for (_, s), span in zip(slots, spans, strict=True)]
        for key in keys:
            rows = [summary["series"].get(key) for summary in summaries]
            out["routes"][key[6:]] = {
                "per_s": [r["per_s"] if r else 0 for r in rows],
                "p50_ms": [r["p50_ms"] if r else None for r in rows],
                "p95_ms": [r["p95_ms"] if r else None for r in rows],
                "p99_ms": [r["p99_ms"] if r else None for r in rows],
            }
        hit, rejected, cpu, memory = [], [], [], []
        for _, s in slots:
            c = s.counters
            looks = c.get("cache:retrieval:requests", 0)
            hits = retrieval_hits(c)
            hit.append(round(hits / looks, 4) if looks else None)
            rejected.append(sum(v for k, v in c.items() if k.startswith("rejected:")))
            g = s.gauges
            cpu.append(_mean(g.get("cpu_percent")))
            memory.append(_mean(g.get("memory_mb")))
        out.update(hit_rate=hit, rejected=rejected, cpu_percent=cpu, memory_mb=memory)
        return out

    def metrics(self, collections: set[str] | None = None) -> bytes:
        """The Prometheus text; ``collections``: the only collections whose index gauges
        show (a tenant's admin sees its own tenant's, never another's names)."""
        with self._scrape:
            for collector in self.collectors:
                if isinstance(collector, StateCollector):
                    collector.only = collections
            return self._metrics()

    def _metrics(self) -> bytes:
        if self.shared:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, self.shared)
        else:
            registry = self.registry
        text = generate_latest(registry)
        extra = CollectorRegistry()
        for collector in self.collectors:
            extra.register(collector)
        return text + generate_latest(extra)

    def engine_telemetry(self, collection: str) -> CompositeTelemetry:
        """What one collection's engine reports to: metrics, windows, and traces that
        carry the collection's name."""
        otel = self.otel.for_collection(collection) if self.otel is not None else None
        return CompositeTelemetry([self.telemetry, otel])

    def close(self) -> None:
        self.flush(final=True)
        if self.otel is not None:
            self.otel.close()
        self.alerts.close()


class WorkersProcessCollector:
    """CPU, resident memory and open files of every worker together (``process_*``
    names), read from ``/proc`` for the processes that have written metrics."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        #: CPU seconds last seen per worker, and of the workers gone since: a counter must
        #: never go down when a worker dies (Prometheus would read a reset)
        self._seen_cpu: dict[int, float] = {}
        self._gone_cpu = 0.0

    def _pids(self) -> set[int]:
        pids = set()
        for name in os.listdir(self.folder):
            stem = name.rsplit(".", 1)[0]
            tail = stem.rsplit("_", 1)[-1]
            if tail.isdigit():
                pids.add(int(tail))
        return pids

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        rss = fds = 0.0
        page = os.sysconf("SC_PAGE_SIZE")
        alive: dict[int, float] = {}
        for pid in self._pids():
            cpu = cpu_seconds(pid)
            if cpu is None:  # gone meanwhile
                continue
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    rss += int(f.read().split()[1]) * page
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except (OSError, ValueError, IndexError):  # gone meanwhile
                continue
            alive[pid] = cpu
        for pid, last in self._seen_cpu.items():
            if pid not in alive:
                self._gone_cpu += last
        self._seen_cpu = alive
        cpu = self._gone_cpu + sum(alive.values())
        yield CounterMetricFamily(
            "process_cpu_seconds", "CPU time of all server processes", value=cpu
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory of all server processes", value=rss
        )
        yield GaugeMetricFamily("process_open_fds", "Open files of all server processes", value=fds)


class StateCollector:
    """Gauges read at scrape time: queue depths and index sizes per collection."""

    def __init__(self, state: Any) -> None:
        self.state = state
        #: set per scrape: the collections whose gauges show (None: all)
        self.only: set[str] | None = None
        self._index: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})

    def collect(self):
        depth = GaugeMetricFamily("snaprag_queue_depth", "Requests waiting", labels=["lane"])
        running = GaugeMetricFamily("snaprag_queue_running", "Requests worked on", labels=["lane"])
        for name, lane in self.state.lanes.items():
            depth.add_metric([name], lane.depth)
            running.add_metric([name], lane.running)
        depth.add_metric(["ingest"], self.state.jobs.pending())
        yield depth
        yield running
        families = {
            key: GaugeMetricFamily(f"snaprag_index_{key}", help_, labels=["collection"])
            for key, help_ in (
                ("chunks", "Chunks in the index"),
                ("documents", "Documents in the index"),
                ("bytes", "Bytes on disk of the index"),
                ("version", "Index version (changes with every write)"),
            )
        }
        for name, stats in self._index_stats().items():
            if self.only is not None and name not in self.only:
                continue
            for key, family in families.items():
                value = stats.get(key)
                if isinstance(value, (int, float)):
                    family.add_metric([name], float(value))
        yield from families.values()

    def _index_stats(self) -> dict[str, dict[str, Any]]:
        """Per collection (at most MAX_COLLECTION_LABELS), refreshed every 30 s at most:
        sizing a big index directory on every scrape would cost more than it tells."""
        at, cached = self._index
        if time.monotonic() - at < 30:
            return cached
        out = {}
        for name, engine in list(self.state.collections.engines.items())[:MAX_COLLECTION_LABELS]:
            try:
                out[name] = engine.stats()
            except Exception:  # an empty or broken collection: no gauges for it
                continue
        self._index = (time.monotonic(), out)
        return out


def _mean(gauge: list[float] | None) -> float | None:
    return round(gauge[0] / gauge[1], 1) if gauge and gauge[1] else None


def _open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _memory_total_mb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0
