"""What a running server holds: its collections, its lanes and its worker threads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
from fastapi.responses import JSONResponse

from ..config import Config, parse_lanes
from ..engine import Engine
from ..errors import GenerationError
from ..generate.factory import generation_slots
from ..search.query import check_query
from ..system import usable_cpus
from ..types import Answer, AnswerEvent, Filters, SearchHits, StageTimings
from .admission import QUEUE_WAIT_MS, Lane, run_with_deadline
from .auth import KeyStore
from .batcher import MicroBatcher
from .collections import Collections
from .jobs import Jobs
from .metrics import Observer
from .resources import Resources
from .streaming import Producers, events_from_thread

T = TypeVar("T")
#: uploads waiting for the ingest thread by default
INGEST_QUEUE = 16
#: single searches admitted per worker slot when micro-batching
SEARCHES_PER_SLOT = 8
#: most cache probes of concurrent searches looked up in one call
PROBES_PER_CALL = 256
ROUTES = ("search", "ask", "chat", "embed")


class State:
    def __init__(self, config: Config, collections: Collections, observer: Observer) -> None:
        self.config = config
        self.collections = collections
        self.observer = observer
        cpus = config.server_concurrency or usable_cpus()
        # CPU work runs on worker threads, never on the event loop; ONNX Runtime and NumPy
        # release the GIL, so threads up to the CPUs (plus one for I/O waits) are useful
        self.limiter = anyio.CapacityLimiter(cpus + 1)
        # a local GGUF model writes llm_parallel answers at once: more would only queue
        # inside llama.cpp, unbounded; here they queue (bounded) or get 429
        slots = generation_slots(config)
        batch = config.server_batch_max
        concurrency = {
            # single searches in flight: a few per worker slot share each micro-batch
            # (batches beyond that gain little per query and only add waiting)
            "search": cpus * min(batch, SEARCHES_PER_SLOT),
            "ask": min(cpus, slots) if slots else cpus,
            "chat": min(cpus, slots) if slots else cpus,
        }
        overrides = parse_lanes(config.server_lanes)
        self.lanes = {}
        for name in ROUTES:
            works = concurrency.get(name, cpus)
            queue = config.server_queue or works
            works, queue = overrides.get(name, (works, queue))
            self.lanes[name] = Lane(
                name, works, queue, config.server_timeout, config.server_latency_budget
            )
        #: uploads waiting for the ingest thread (one writer); more get 429
        self.ingest_queue = overrides.get("ingest", (1, INGEST_QUEUE))[1]
        for lane in self.lanes.values():
            lane.listener = observer.lane_event
        # one search batch per collection and parameters at a time, split over the CPUs;
        # the probes of the slower cache tiers are gathered the same way (one look-up per
        # tier for the requests waiting; their misses then reach the batcher together)
        wait = config.server_batch_wait_ms
        self.batcher = MicroBatcher(self.run, cpus, batch, wait, split=cpus)
        self.batcher.on_batch = observer.batch
        self.prober = MicroBatcher(
            self.run, cpus, PROBES_PER_CALL, 0.0, "search_cached_many", stage="probe_wait"
        )
        self.resources = Resources(config.server_max_cpu, config.server_max_memory_mb, cpus)
        self.producers = Producers()
        self.ready = False
        self.jobs = Jobs(collections.jobs_path)  # shared by every worker process
        #: API keys (only with --data: a folder of collections has tenants)
        self.keys = KeyStore(collections.data) if collections.data is not None else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread (the event loop never blocks)."""
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=self.limiter)

    def admit(self, lane: str, units: int = 1, budget: bool = True) -> Any:
        """The route's admission (503 over a CPU or memory threshold, 429 when its queue
        is full or, ``budget``, over its latency budget, 504 past the deadline) of a
        request of ``units`` (queries or texts); yields the deadline."""
        self._refuse_if_over(lane)
        return self.lanes[lane].admit(units, budget)

    def refuse(self, lane: str) -> None:
        """The 503 or 429 a request would get now (checked before a stream's 200)."""
        self._refuse_if_over(lane)
        self.lanes[lane].refuse_if_full()

    def _refuse_if_over(self, lane: str) -> None:
        try:
            self.resources.refuse_if_over()
        except Exception:
            self.observer.lane_event(lane, "overloaded")
            raise

    async def work(self, lane: str, fn: Callable[..., T], *args: Any, units: int = 1) -> T:
        """``fn(*args)`` admitted by the route's lane and bounded by its deadline."""
        async with self.admit(lane, units) as deadline:
            return await run_with_deadline(self.run(fn, *args), deadline, lane, cancel=False)

    def events(self, make: Callable[[], Any]) -> Any:
        """The answer events of ``make()`` from a worker thread, as they are generated."""
        return events_from_thread(make, self.limiter, self.producers)

    async def stream(
        self, lane: str, make: Callable[[], Any], question: str, tenant: str | None = None
    ) -> AsyncIterator[AnswerEvent]:
        """A streamed answer's events, admitted by ``lane`` and bounded by its deadline:
        past it, a 504 (the route sends it as an ``error`` event) and the generation stops
        at its next token."""
        started = time.perf_counter()
        # the route checked the budget before its 200 (refuse): not again in between
        async with self.admit(lane, budget=False) as deadline:
            events = self.events(make).__aiter__()
            try:
                while True:
                    try:
                        event = await run_with_deadline(events.__anext__(), deadline, lane)
                    except StopAsyncIteration:
                        return
                    if event.kind == "done" and event.answer is not None:
                        event.answer.timings.stages["queue_wait"] = QUEUE_WAIT_MS.get()
                        self.observer.stages(lane, event.answer.timings, ("queue_wait",))
                        ms = (time.perf_counter() - started) * 1000
                        self.observer.query(lane, question, ms, tenant)
                    yield event
            finally:
                await events.aclose()  # the producer stops at its next event

    async def answer(
        self,
        lane: str,
        engine: Engine,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        tenant: str | None = None,
    ) -> Answer:
        """One whole answer, admitted by ``lane``; past the deadline the generation stops
        (504) instead of running on for nobody."""

        async def collect() -> Answer:
            async for event in self.events(lambda: engine.ask_events(question, k, filters)):
                if event.kind == "error" and event.error is not None:
                    raise event.error
                if event.kind == "done" and event.answer is not None:
                    return event.answer
            raise GenerationError("the answer ended without a result", "generation_failed")

        started = time.perf_counter()
        async with self.admit(lane) as deadline:
            answer = await run_with_deadline(collect(), deadline, lane)
        answer.timings.stages["queue_wait"] = QUEUE_WAIT_MS.get()
        self.observer.stages("ask", answer.timings, ("queue_wait",))
        self.observer.query(lane, question, (time.perf_counter() - started) * 1000, tenant)
        return answer

    async def search_one(
        self,
        engine: Engine,
        query: str,
        k: int,
        filters: Filters | None,
        mode: str,
        tenant: str | None = None,
    ) -> SearchHits:
        """One query's hits: from the in-memory cache on the event loop (no queue, no
        thread), else from the slower cache tiers, else searched in a micro-batch with
        concurrent requests like it."""
        check_query(query, self.config.max_query_chars)  # one bad query fails alone
        started = time.perf_counter()
        hits = engine.search_cached(query, k, filters, mode, memory_only=True)
        if hits is None:
            hits = await self._search_uncached(engine, query, k, filters, mode)
            hits.timings.stages["queue_wait"] = QUEUE_WAIT_MS.get()
            server_stages = ("queue_wait", "probe_wait", "probe", "batch_wait")
            self.observer.stages("search", hits.timings, server_stages)
        self.observer.query("search", query, (time.perf_counter() - started) * 1000, tenant)
        return hits

    async def _search_uncached(
        self, engine: Engine, query: str, k: int, filters: Filters | None, mode: str
    ) -> SearchHits:
        async with self.admit("search") as deadline:
            cache = engine.cache if engine.config.cache else None
            probe_ms = 0.0
            if cache is not None and cache.tiered.tiers:  # Redis or disk: not on the loop
                started = time.perf_counter()
                probe = self.prober.search(engine, query, k, filters, mode)
                hits = await run_with_deadline(probe, deadline, "search")
                if hits is not None:
                    return hits
                probe_ms = (time.perf_counter() - started) * 1000
            if self.config.server_batch_max <= 1:
                alone = self.run(engine.search, query, k, filters, mode)
                return await run_with_deadline(alone, deadline, "search", cancel=False)
            found = await run_with_deadline(
                self.batcher.search(engine, query, k, filters, mode), deadline, "search"
            )
            assert found is not None  # only a probe answers None
            if probe_ms:  # the miss's look-up in the slower tiers, waiting included
                found.timings.stages = {"probe": probe_ms, **found.timings.stages}
            return found

    def queues(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: lane.report() for name, lane in self.lanes.items()}
        out["search"]["batching"] = {
            "max_batch": self.batcher.max_batch,
            "wait_ms": self.batcher.wait_s * 1000,
            "waiting": self.batcher.waiting,
            **self.batcher.stats.report(),
        }
        out["search"]["cache_probes"] = self.prober.stats.report()
        out["ask"]["generating"] = self.producers.running
        out["ingest"] = {
            "pending_jobs": self.jobs.pending(),
            "queue_limit": self.ingest_queue,
            "nice": self.jobs.priority(),
        }
        out["resources"] = self.resources.report()
        return out


def server_timing(timings: StageTimings | dict[str, float]) -> str:
    """The standard ``Server-Timing`` header (browsers' developer tools show it); the
    cache look-up names the tier that answered (``cache;desc="memory";dur=...``)."""
    stages = timings.stages if isinstance(timings, StageTimings) else timings
    tier = timings.cache_tier if isinstance(timings, StageTimings) else None
    parts = []
    for name, ms in stages.items():
        desc = f';desc="{tier}"' if name == "cache" and tier else ""
        parts.append(f"{name}{desc};dur={ms:.3f}")
    return ", ".join(parts)


def timed_json(data: dict[str, Any], timings: StageTimings | dict[str, float]) -> JSONResponse:
    """A JSON response carrying its stage timings as a ``Server-Timing`` header too."""
    return JSONResponse(data, headers={"Server-Timing": server_timing(timings)})
