"""``snaprag bench load``: a real load generator against a real ``snaprag serve``.

Each scenario starts its own server (``python -m snaprag.cli serve --port 0`` on
127.0.0.1) over a private copy of the index without its disk cache, so no scenario
answers from another's cache, and drives it with :mod:`.loadgen` in a separate process
(whose CPU time is reported: on a small machine the load generator is part of the budget).

Scenarios (``--scenarios``, comma-separated):

``cached``
    the same 8 queries over and over after a warm-up that fills the query cache; first,
    the HTTP floor: ``GET /healthz`` from one client (what any request costs at least).
``uncached``
    distinct queries (SciFact's queries, then its titles, shuffled; none asked twice on a
    server), at 1 client and at ``--clients`` clients, with micro-batching on (the
    default) and off (``SNAPRAG_SERVER_BATCH_MAX=1``), each phase on a fresh server: the
    ratio of the two throughputs, per setting, shows what micro-batching adds.
``batch``
    ``POST /v1/search/batch`` with 16 distinct queries per request.
``ask`` / ``chat``
    ``POST /v1/ask`` and ``POST /v1/chat/completions`` (non-stream), extractive answers.
``overload``
    one client alone first (the unloaded reference), then 5x the search lane's capacity
    (concurrency + queue, read from ``/v1/stats``) in clients, in three rounds: a shorter
    one that pays the one-time costs of that many connections, then the measured one, in
    which a refused client sends the same request again after the wait the server asked
    for (``retry-after-ms`` first, as the official OpenAI client reads it; at most 1 s),
    then a round of clients that read only ``Retry-After`` (whole seconds: the clients
    refused together come back together, each second). Reports the 429s, the p99 of
    admitted requests against the unloaded p99 in both, and the server's RSS before and
    after the measured round.

Every phase is bounded by ``--duration`` seconds and/or ``--requests`` requests (and, for
distinct queries, by the queries there are); in-flight requests are then awaited.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import QueryError, SnapragError
from .loadgen import spec_timeout
from .loadqueries import (
    ASK_K,
    CACHED_QUERIES,
    WARMUP,
    K,
    _ask,
    _batch,
    _chat,
    _search,
    query_pool,
)
from .loadreport import cache_check, evaluate_targets, status_classes
from .loadserver import Server, prepare_index
from .retrieval import machine as bench_machine

SCENARIOS = ("cached", "uncached", "batch", "ask", "chat", "overload")
BATCH_QUERIES = 16
FLOOR_REQUESTS = 200
UNLOADED_REQUESTS = 300  # the overload scenario's one-client reference
#: throughput phases: a queue deep enough for every client and no latency budget (they
#: measure work, not refusals)
DEEP_QUEUE = {"SNAPRAG_SERVER_QUEUE": "64", "SNAPRAG_SERVER_LATENCY_BUDGET": "0"}
OVERLOAD_FACTOR = 5
DEFAULT_DURATION_S = 10.0
#: a search answered from the cache reports no lexical search stage: a search response
#: whose timings hold this ran the pipeline (used to check that cached phases hit the
#: cache and uncached ones miss it)
SEARCHED = '"bm25":'
SEARCH_ROUTES = ("/v1/search", "/v1/search/batch")


class LoadBench:
    """One run: the index copy, the query pool, the bounds and the phases measured."""

    def __init__(
        self,
        index: Path,
        pool: list[str],
        clients: int,
        duration_s: float | None,
        requests: int | None,
        work: Path,
        progress: bool,
        workers: int = 1,
    ) -> None:
        self.index = index
        self.workers = workers
        self.warm = pool[-WARMUP:]  # never measured: warm-ups cannot pre-fill a measured query
        self.pool = pool[:-WARMUP]
        self.clients = clients
        self.duration_s = duration_s
        self.requests = requests
        self.work = work
        self.progress = progress
        self.phases: list[dict[str, Any]] = []
        self.servers: list[int] = []

    def say(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    def server(self, env: dict[str, str] | None = None, deep: bool = True) -> Server:
        """A fresh server over the index copy, its disk cache removed first. ``deep``: a
        queue for every client and no latency budget (throughput phases); else the
        server's default admission (the overload phase, which is about refusing)."""
        for leftover in self.index.glob("cache.db*"):
            leftover.unlink()
        env = {**(DEEP_QUEUE if deep else {}), **(env or {})}
        log = self.work / f"server-{len(self.servers)}.log"
        server = Server(self.index, env, log, self.workers)
        server.start()
        self.servers.append(server.pid)
        return server

    def phase(
        self,
        name: str,
        title: str,
        server: Server,
        requests: list[dict[str, Any]],
        *,
        clients: int,
        warmup: list[dict[str, Any]],
        distinct: bool,
        max_requests: int | None = None,
        duration_s: float | None = None,
        retry_429: str | float | None = None,
        queries_per_request: int = 1,
        **extra: Any,
    ) -> dict[str, Any]:
        """Drive ``server`` with the load generator; the phase's row of the report."""
        cap = max_requests if max_requests is not None else self.requests
        duration_s = duration_s if duration_s is not None else self.duration_s
        spec = {
            "host": server.host,
            "port": server.port,
            "requests": requests,
            "warmup": warmup,
            "clients": clients,
            "max_requests": cap,
            "duration_s": duration_s,
            "distinct": distinct,
            "retry_429": retry_429,
            "timeout_s": 60.0,
            "server_pid": server.pid,
            "marker": SEARCHED if requests[0]["path"] in SEARCH_ROUTES else None,
        }
        bound = f"{cap:,} requests" if cap else ""
        if duration_s:
            bound += (" or " if bound else "") + f"{duration_s:g} s"
        self.say(f"  {title}: {clients} client(s), up to {bound} ...")
        rss_before, cache_before = server.rss_mib(), server.cache_mib()
        result = _run_loadgen(spec)
        rss_after, cache_after = server.rss_mib(), server.cache_mib()
        status = result["status"]
        classes = status_classes(status, result["errors"])
        attempts = result["sent"]
        row = {
            "name": name,
            "title": title,
            "route": requests[0]["path"],
            "clients": clients,
            "requests": attempts,
            "completed": result["completed"],
            "req_per_s": result["req_per_s"],
            # answered with 2xx per second: what the scaling ratios compare (refusals are
            # quick, so counting them would reward a server for refusing)
            "ok_per_s": round(classes["2xx"] / result["wall_s"], 1) if result["wall_s"] else 0.0,
            "queries_per_s": round(result["req_per_s"] * queries_per_request, 1),
            "latency_ms": result["latency_ms"],
            "ok_latency_ms": result["ok_latency_ms"],
            "error_rate": round(1 - classes["2xx"] / attempts, 4) if attempts else 0.0,
            "status": classes,
            "status_codes": status,
            "connection_errors": result["errors"],
            "distinct": distinct,
            "distinct_used": result["distinct_used"] if distinct else None,
            # share of 2xx search answers that ran the search, not the cache (None: not a
            # search route); cached phases should be near 0, uncached ones exactly 1
            "searched_share": round(result["marked"] / classes["2xx"], 4)
            if spec["marker"] and classes["2xx"]
            else None,
            "ended": result["ended"],
            "wall_s": result["wall_s"],
            "loadgen": {"cpu_s": result["cpu_s"], "cores": result["cores"]},
            "server": {
                "pid": server.pid,
                "env": server.env,
                "cpu_s": result.get("server_cpu_s"),
                "cores": result.get("server_cores"),
                "rss_mib_before": rss_before,
                "rss_mib_after": rss_after,
                "cache_mib_before": cache_before,
                "cache_mib_after": cache_after,
            },
            **extra,
        }
        self.phases.append(row)
        lat = row["ok_latency_ms"] or {}
        self.say(
            f"    {attempts:,} requests in {row['wall_s']:.1f} s: {row['req_per_s']:,.0f} req/s, "
            f"p50 {lat.get('p50', float('nan')):.1f} ms, p99 {lat.get('p99', float('nan')):.1f} "
            f"ms, {classes['2xx']:,} ok, {attempts - classes['2xx']:,} not"
        )
        return row

    # ------------------------------------------------------------------ scenarios

    def cached(self) -> None:
        few = [_search(q) for q in self.pool[:CACHED_QUERIES]]
        health = {"method": "GET", "path": "/healthz", "body": None}
        with self.server() as server:
            # the floor under every route: one client, a route that does no work; a floor
            # of tens of ms means the transport stalls (e.g. Nagle against delayed ACKs)
            self.phase(
                "http-floor",
                "HTTP floor (GET /healthz)",
                server,
                [health],
                clients=1,
                warmup=[health],
                distinct=False,
                max_requests=min(FLOOR_REQUESTS, self.requests or FLOOR_REQUESTS),
            )
            self.phase(
                "cached",
                "cached search",
                server,
                few,
                clients=self.clients,
                warmup=few * 2,  # the first pass fills the cache, the second hits it
                distinct=False,
            )

    def uncached(self) -> None:
        queries = [_search(q) for q in self.pool]
        warm = [_search(q) for q in self.warm]
        for batching, env in (("on", {}), ("off", {"SNAPRAG_SERVER_BATCH_MAX": "1"})):
            for clients in (1, self.clients):
                with self.server(env) as server:  # fresh: no query was asked on it yet
                    self.phase(
                        f"uncached-{batching}-{clients}",
                        f"uncached search, batching {batching}",
                        server,
                        queries,
                        clients=clients,
                        warmup=warm,
                        distinct=True,
                        batching=batching,
                    )
        # the same load under the default admission (queue and latency budget): what the
        # budget costs in answers/s and refusals when the clients outnumber the cores
        with self.server(deep=False) as server:
            self.phase(
                f"uncached-default-{self.clients}",
                "uncached search, default admission",
                server,
                queries,
                clients=self.clients,
                warmup=warm,
                distinct=True,
                retry_429="retry-after",
                batching="on",
            )

    def batch(self) -> None:
        groups = [
            self.pool[i : i + BATCH_QUERIES]
            for i in range(0, len(self.pool) - BATCH_QUERIES + 1, BATCH_QUERIES)
        ]
        with self.server() as server:
            self.phase(
                "batch",
                f"batch search, {BATCH_QUERIES} q/request",
                server,
                [_batch(g) for g in groups],
                clients=self.clients,
                warmup=[_batch(self.warm)],
                distinct=True,
                queries_per_request=BATCH_QUERIES,
            )

    def answers(self, name: str, title: str, make: Callable[[str], dict[str, Any]]) -> None:
        with self.server() as server:
            self.phase(
                name,
                title,
                server,
                [make(q) for q in self.pool],
                clients=self.clients,
                warmup=[make(q) for q in self.warm],
                distinct=True,
            )

    def overload(self) -> dict[str, Any]:
        unloaded_n = min(UNLOADED_REQUESTS, self.requests or UNLOADED_REQUESTS)
        reference, rest = self.pool[:unloaded_n], self.pool[unloaded_n:]
        with self.server(deep=False) as server:
            unloaded = self.phase(
                "overload-unloaded",
                "overload: 1 client (reference)",
                server,
                [_search(q) for q in reference],
                clients=1,
                warmup=[_search(q) for q in self.warm],
                distinct=True,
                max_requests=unloaded_n,
            )
            lane = server.stats()["queues"]["search"]
            capacity = int(lane["concurrency"]) + int(lane["queue_limit"])
            before = lane["rejected"]
            overload = {
                "clients": OVERLOAD_FACTOR * capacity,
                "warmup": [],
                "distinct": True,
                "retry_429": "retry-after",
            }
            # a first, shorter round pays the one-time costs of hundreds of connections
            # (buffers, allocator arenas), so that the measured round shows growth, if any
            first = self.phase(
                "overload-first",
                f"overload: {OVERLOAD_FACTOR}x capacity, first round",
                server,
                [_search(q) for q in rest],
                duration_s=self.duration_s / 2 if self.duration_s else None,
                max_requests=max(1, self.requests // 2) if self.requests else None,
                **overload,
            )
            rest = rest[first["distinct_used"] :] or rest  # a tiny pool: repeats beat nothing
            loaded = self.phase(
                "overload",
                f"overload: {OVERLOAD_FACTOR}x capacity",
                server,
                [_search(q) for q in rest],
                **overload,
            )
            rest = rest[loaded["distinct_used"] :] or rest
            herd = self.phase(
                "overload-herd",
                f"overload: {OVERLOAD_FACTOR}x capacity, clients reading whole seconds",
                server,
                [_search(q) for q in rest],
                **{**overload, "retry_429": "retry-after-seconds"},
            )
            rejected = server.stats()["queues"]["search"]["rejected"] - before
        rounds = (first, loaded, herd)
        p99_unloaded = (unloaded["ok_latency_ms"] or {}).get("p99")
        p99_admitted = (loaded["ok_latency_ms"] or {}).get("p99")
        return {
            "capacity": capacity,
            "clients": OVERLOAD_FACTOR * capacity,
            "status_429": sum(r["status"]["429"] for r in rounds),
            "server_rejected": rejected,
            "not_429_errors": sum(
                v for r in rounds for k, v in r["status"].items() if k not in ("2xx", "429")
            ),
            "unloaded_p99_ms": p99_unloaded,
            "admitted_p99_ms": p99_admitted,
            "p99_ratio": round(p99_admitted / p99_unloaded, 2)
            if p99_unloaded and p99_admitted
            else None,
            # clients that read only Retry-After (whole seconds): refused together, they
            # come back together
            "herd_admitted_p99_ms": (herd["ok_latency_ms"] or {}).get("p99"),
            "herd_p99_ratio": round(herd["ok_latency_ms"]["p99"] / p99_unloaded, 2)
            if p99_unloaded and herd["ok_latency_ms"]
            else None,
            "herd_status_429": herd["status"]["429"],
            "rss_mib_unloaded": first["server"]["rss_mib_before"],
            "rss_mib_before": loaded["server"]["rss_mib_before"],
            "rss_mib_after": loaded["server"]["rss_mib_after"],
            # the in-memory query cache fills with the distinct queries by design (bounded by
            # cache_memory_mb): growth beyond it is what would be a leak
            "cache_mib_before": loaded["server"]["cache_mib_before"],
            "cache_mib_after": loaded["server"]["cache_mib_after"],
        }


def _run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one phase in a load generator process of its own; its JSON result."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "snaprag.bench.loadgen"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(json.dumps(spec), timeout=spec_timeout(spec))
    except BaseException:  # a timeout or Ctrl-C: the generator must not outlive the run
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-3:]
        raise SnapragError(
            f"the load generator failed (exit {proc.returncode}): {' / '.join(tail)}"
        )
    return json.loads(out)


def run(
    dataset: Path,
    index: Path | None = None,
    clients: int = 16,
    duration_s: float | None = None,
    requests: int | None = None,
    scenarios: tuple[str, ...] = SCENARIOS,
    progress: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Run the scenarios; the report as a JSON-ready dict."""
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise QueryError(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if clients < 2:
        raise QueryError(
            f"--clients must be at least 2 (1 client is always measured), got {clients}"
        )
    if duration_s is None and requests is None:
        duration_s = DEFAULT_DURATION_S
    dataset = dataset.resolve()
    pool = query_pool(dataset)
    machine = bench_machine()  # the load average before this run adds its own
    with tempfile.TemporaryDirectory(prefix="snaprag-bench-load-") as tmp:
        work = Path(tmp)
        source = prepare_index(dataset, index, progress)
        copy = work / "index"
        # a private copy: the servers write their query cache next to the index
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("cache.db*", "ingest.lock"))
        bench = LoadBench(copy, pool, clients, duration_s, requests, work, progress, workers)
        started = time.perf_counter()
        overload = None
        for name in scenarios:
            if name == "ask":
                bench.answers("ask", "ask, extractive", _ask)
            elif name == "chat":
                bench.answers("chat", "chat, extractive", _chat)
            elif name == "overload":
                overload = bench.overload()
            else:
                getattr(bench, name)()
    phases = {p["name"]: p for p in bench.phases}
    ratios: dict[str, float | None] = {}
    for batching in ("on", "off"):
        one = phases.get(f"uncached-{batching}-1")
        many = phases.get(f"uncached-{batching}-{clients}")
        ratios[batching] = (
            round(many["ok_per_s"] / one["ok_per_s"], 2)
            if one and many and one["ok_per_s"]
            else None
        )
    return {
        "benchmark": "load",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "dataset": dataset.name,
        "index": str(index or source),
        "settings": {
            "clients": clients,
            "duration_s": duration_s,
            "requests": requests,
            "k": K,
            "ask_k": ASK_K,
            "batch_queries": BATCH_QUERIES,
            "distinct_queries": len(bench.pool),
            "scenarios": list(scenarios),
        },
        "seconds": round(time.perf_counter() - started, 1),
        "phases": bench.phases,
        "uncached_scaling": ratios,
        "overload": overload,
        "cache_check": cache_check(bench.phases),
        "loadgen_cores_max": max((p["loadgen"]["cores"] for p in bench.phases), default=0.0),
        "server_pids": bench.servers,
        "targets": evaluate_targets(phases, ratios, overload),
    }


def print_report(result: dict[str, Any]) -> None:
    from .loadreport import print_report as show

    show(result)
