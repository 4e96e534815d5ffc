"""Dynamic micro-batching of single searches (and of their cache probes).

Concurrent ``POST /v1/search`` requests for one collection and the same parameters (k,
mode, filters) are gathered and searched in one ``Engine.search_many`` call: one snapshot,
one BM25 batch, one dense matrix product, one SQLite fetch and one thread hop for the lot.
The same gathering probes the slower cache tiers (Redis, disk) of concurrent requests in
one ``Engine.search_cached_many`` call: one look-up per tier instead of one per request,
and the misses reach the search batcher together.

* Idle server: a request starts at once (no timer wait).
* Under load (a batch already running): a batch may wait up to ``wait_ms`` for more
  requests, and starts as soon as it holds ``max_batch`` of them or a worker is free.
* At most ``capacity`` parts run at once (the CPUs), and one batch per key (collection
  and parameters): a key's next batch takes every request that arrived while its last
  one ran. A batch of at least ``2 * MIN_PART`` runs as up to ``split`` parts side by
  side, each whole on its own worker thread; batches of other keys use the parts left.
* A request's hits are the same batched or alone: query vectors do not depend on their
  batch (see ``OnnxEmbedder.embed_queries``), and each query is scored independently.

Cache hits never reach the batcher (the route answers them first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import Engine
from ..types import Filters, SearchBatch, SearchHits, StageTimings

Run = Callable[..., Awaitable[Any]]


@dataclass
class _Request:
    query: str
    future: asyncio.Future[SearchHits | None]
    queued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    batches: int = 0
    queries: int = 0
    largest: int = 0
    #: batch size -> how many batches had it (bounded: sizes are 1..max_batch)
    sizes: dict[int, int] = field(default_factory=dict)

    def add(self, size: int) -> None:
        self.batches += 1
        self.queries += size
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1

    def report(self) -> dict[str, Any]:
        mean = self.queries / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "queries": self.queries,
            "mean_size": round(mean, 3),
            "largest": self.largest,
            "sizes": {str(k): v for k, v in sorted(self.sizes.items())},
        }


Key = tuple[int, int, str, Any]
#: fewest requests in one part of a split batch
MIN_PART = 2


class MicroBatcher:
    """Gathers single calls into batched ``Engine`` calls.

    ``call`` names the method: ``search_many``, or ``search_cached_many`` (the probes of
    the slower cache tiers), whose entries may be None. ``capacity``: parts running at
    once over all keys (the CPUs); ``split``: most parts one batch runs as. ``stage``: the
    timing that reports a request's wait here.
    """

    def __init__(
        self,
        run: Run,
        capacity: int,
        max_batch: int,
        wait_ms: float,
        call: str = "search_many",
        split: int = 1,
        stage: str = "batch_wait",
    ) -> None:
        self._run = run
        self.call = call
        self.capacity = max(1, capacity)
        self.split = max(1, min(split, self.capacity))
        self.stage = stage
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0.0, wait_ms) / 1000
        self._pending: dict[Key, list[_Request]] = {}
        self._engines: dict[Key, tuple[Engine, int, Filters | None, str]] = {}
        self._busy = 0  # parts running
        self._active: set[Key] = set()  # keys with a batch running
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self.stats = BatchStats()
        #: called with each batch's size (metrics)
        self.on_batch: Callable[[int], None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(v) for v in self._pending.values())

    async def search(
        self, engine: Engine, query: str, k: int, filters: Filters | None, mode: str
    ) -> SearchHits | None:
        """The hits of ``query``, searched (or looked up) together with concurrent requests
        like it; None only from a probe that found nothing."""
        key: Key = (id(engine), k, mode, filters.key if filters else None)
        loop = asyncio.get_running_loop()
        request = _Request(query, loop.create_future())
        self._pending.setdefault(key, []).append(request)
        self._engines[key] = (engine, k, filters, mode)
        self._schedule()
        return await request.future

    def _schedule(self) -> None:
        """Start batches while parts are free, one batch per key at a time; under load,
        hold a small batch for up to ``wait_s`` so that requests arriving meanwhile share
        it. A key's next batch starts only once its last one is done, and then takes every
        request that arrived meanwhile: were a key's batches started whenever a part came
        free, the first request to arrive would take it alone, and a few clients would
        cycle alone beside one large batch (16 clients: 1,666 of 2,086 batches held one)."""
        while self._busy < self.capacity:
            ready = [key for key in self._pending if key not in self._active]
            if not ready:
                return
            key = min(ready, key=lambda k: self._pending[k][0].queued)
            requests = self._pending[key]
            held = time.perf_counter() - requests[0].queued
            if self._busy and len(requests) < self.max_batch and held < self.wait_s:
                if self._timer is None:
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(self.wait_s - held, self._on_timer)
                return
            batch, rest = requests[: self.max_batch], requests[self.max_batch :]
            what = self._engines[key]
            if rest:
                self._pending[key] = rest
            else:  # keys hold request parameters: never keep one without requests
                del self._pending[key], self._engines[key]
            live = [r for r in batch if not r.future.done()]  # gone past their deadline
            if not live:
                continue
            parts = min(self.split, self.capacity - self._busy, len(live) // MIN_PART) or 1
            self._busy += parts
            self._active.add(key)
            task = asyncio.ensure_future(self._dispatch(key, what, live, parts))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    def _on_timer(self) -> None:
        self._timer = None
        self._schedule()

    async def _dispatch(
        self,
        key: Key,
        what: tuple[Engine, int, Filters | None, str],
        requests: list[_Request],
        n: int,
    ) -> None:
        """One batch as ``n`` parts side by side, each whole (embed, score, fetch) on its
        own worker thread."""
        started = time.perf_counter()
        self.stats.add(len(requests))
        if self.on_batch is not None:
            self.on_batch(len(requests))
        try:
            parts = [requests[i::n] for i in range(n)]
            await asyncio.gather(
                *(self._run_part(what, part, started) for part in parts),
                return_exceptions=True,  # each part has answered its own callers
            )
        finally:
            self._active.discard(key)
            self._schedule()

    async def _run_part(
        self,
        what: tuple[Engine, int, Filters | None, str],
        requests: list[_Request],
        started: float,
    ) -> None:
        engine, k, filters, mode = what
        try:
            queries = [r.query for r in requests]
            batch = await self._run(getattr(engine, self.call), queries, k, filters, mode)
            shared = batch.timings if isinstance(batch, SearchBatch) else None
            for r, hits in zip(requests, batch, strict=True):
                if r.future.done():
                    continue
                if hits is None:  # a probe's miss
                    r.future.set_result(None)
                    continue
                source = shared if shared is not None else hits.timings
                timings = StageTimings(dict(source.stages), source.cache_tier)
                timings.stages = {self.stage: (started - r.queued) * 1000, **timings.stages}
                r.future.set_result(SearchHits(hits, timings))
        except BaseException as exc:
            # whatever failed (the call, or handing out its results), no caller is left
            # waiting for an answer that will not come
            for r in requests:
                if not r.future.done():
                    if isinstance(exc, Exception):
                        r.future.set_exception(exc)
                    else:
                        r.future.cancel()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._busy -= 1
            self._schedule()
