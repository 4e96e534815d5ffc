"""The server's micro-batcher over a fake engine: idle requests start at once, concurrent
ones share batches, every caller gets its own query's hits, bad batches fail only their
callers, and requests past their deadline are dropped from the batch."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from snaprag.serve.batcher import MicroBatcher
from snaprag.types import Filters, Hit, SearchBatch, SearchHits, StageTimings


class FakeEngine:
    def __init__(self, delay: float = 0.02, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def search_many(self, queries, k, filters, mode) -> SearchBatch:
        with self.lock:
            self.calls.append(list(queries))
        time.sleep(self.delay)  # a worker thread, as in the server
        if self.fail_on in queries:
            raise ValueError("broken batch")
        hits = [[Hit(f"{q}#{i}", q, q, None, 1.0 / (i + 1), q) for i in range(k)] for q in queries]
        timings = StageTimings()
        timings.add("embed", 1.0)
        return SearchBatch(hits, timings)


async def _run(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def batcher(**kw: Any) -> MicroBatcher:
    return MicroBatcher(
        _run, kw.pop("capacity", 1), kw.pop("max_batch", 32), kw.pop("wait_ms", 0), **kw
    )


def test_an_idle_request_starts_at_once_alone() -> None:
    async def main() -> None:
        b, engine = batcher(), FakeEngine(delay=0)
        hits = await b.search(engine, "alpha", 2, None, "hybrid")  # type: ignore[arg-type]
        assert [h.doc_id for h in hits] == ["alpha", "alpha"]
        assert engine.calls == [["alpha"]]
        assert "batch_wait" in hits.timings.stages and "embed" in hits.timings.stages

    asyncio.run(main())


def test_concurrent_requests_share_batches_and_get_their_own_hits() -> None:
    async def main() -> None:
        b, engine = batcher(capacity=1, max_batch=8), FakeEngine()
        queries = [f"q{i}" for i in range(20)]
        results = await asyncio.gather(
            *(b.search(engine, q, 3, None, "hybrid") for q in queries)  # type: ignore[arg-type]
        )
        for q, hits in zip(queries, results, strict=True):
            assert {h.doc_id for h in hits} == {q}
        sizes = [len(c) for c in engine.calls]
        assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) < 20
        assert b.stats.queries == 20 and b.stats.largest == 8

    asyncio.run(main())


def test_different_parameters_are_never_mixed() -> None:
    async def main() -> None:
        b, engine = batcher(capacity=1), FakeEngine()
        pdf = Filters(type="pdf")
        calls = [
            b.search(engine, "a", 3, None, "hybrid"),  # type: ignore[arg-type]
            b.search(engine, "b", 5, None, "hybrid"),  # type: ignore[arg-type]
            b.search(engine, "c", 3, pdf, "hybrid"),  # type: ignore[arg-type]
            b.search(engine, "d", 3, None, "bm25"),  # type: ignore[arg-type]
            b.search(engine, "e", 3, None, "hybrid"),  # type: ignore[arg-type]
        ]
        results = await asyncio.gather(*calls)
        assert [len(r) for r in results] == [3, 5, 3, 3, 3]
        shared = [sorted(c) for c in engine.calls if len(c) > 1]
        assert shared in ([], [["a", "e"]])  # only the two with equal parameters may share
        assert not b._pending and not b._engines  # nothing kept once answered

    asyncio.run(main())


def test_a_failing_batch_fails_its_callers_and_the_next_batch_runs() -> None:
    async def main() -> None:
        b, engine = batcher(capacity=1), FakeEngine(fail_on="bad")
        first = asyncio.ensure_future(b.search(engine, "bad", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="broken batch"):
            await first
        hits = await b.search(engine, "good", 1, None, "hybrid")  # type: ignore[arg-type]
        assert hits[0].doc_id == "good"

    asyncio.run(main())


def test_requests_gone_past_their_deadline_are_not_searched() -> None:
    async def main() -> None:
        b, engine = batcher(capacity=1), FakeEngine(delay=0.1)
        first = asyncio.ensure_future(b.search(engine, "first", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)  # the first batch is running: the next ones queue
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.search(engine, "late", 1, None, "hybrid"), 0.02)  # type: ignore[arg-type]
        kept = await b.search(engine, "kept", 1, None, "hybrid")  # type: ignore[arg-type]
        await first
        assert kept[0].doc_id == "kept"
        assert ["late"] not in engine.calls and all("late" not in c for c in engine.calls)

    asyncio.run(main())


def test_under_load_a_small_batch_waits_for_company_but_not_when_idle() -> None:
    async def main() -> None:
        b, engine = batcher(capacity=2, wait_ms=50), FakeEngine(delay=0.1)
        await b.search(engine, "alone", 1, None, "hybrid")  # type: ignore[arg-type]
        assert b.stats.batches == 1
        running = asyncio.ensure_future(b.search(engine, "long", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        pair = [
            asyncio.ensure_future(b.search(engine, q, 1, None, "hybrid"))  # type: ignore[arg-type]
            for q in ("x", "y")
        ]
        await asyncio.sleep(0.005)
        third = asyncio.ensure_future(b.search(engine, "z", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.gather(running, third, *pair)
        assert ["x", "y", "z"] in [sorted(c) for c in engine.calls]  # held open, then shared

    asyncio.run(main())


def test_a_batch_runs_as_parts_side_by_side_and_each_caller_gets_its_own_hits() -> None:
    """One batch at a time, split over the CPUs: the parts run at once on their own
    threads (they overlap in time), and no request is lost or answered twice."""

    class Timed(FakeEngine):
        def __init__(self) -> None:
            super().__init__(delay=0.05)
            self.spans: list[tuple[float, float, int]] = []

        def search_many(self, queries, k, filters, mode) -> SearchBatch:
            t = time.perf_counter()
            out = super().search_many(queries, k, filters, mode)
            self.spans.append((t, time.perf_counter(), len(queries)))
            return out

    async def main() -> None:
        b, engine = batcher(capacity=2, split=2), Timed()
        first = asyncio.ensure_future(b.search(engine, "first", 2, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)  # running: the next nine gather behind it
        queries = [f"q{i}" for i in range(9)]
        results = await asyncio.gather(
            *(b.search(engine, q, 2, None, "hybrid") for q in queries)  # type: ignore[arg-type]
        )
        await first
        for q, hits in zip(queries, results, strict=True):
            assert {h.doc_id for h in hits} == {q}
        assert b.stats.batches == 2 and b.stats.largest == 9  # one batch of nine ...
        later = sorted(engine.spans[1:])
        assert sorted(n for _, _, n in later) == [4, 5]  # ... run as two parts
        assert later[1][0] < later[0][1]  # at the same time
        assert sorted(q for c in engine.calls[1:] for q in c) == sorted(queries)

    asyncio.run(main())


def test_a_small_batch_is_not_split() -> None:
    async def main() -> None:
        b, engine = batcher(capacity=4, split=4), FakeEngine(delay=0.05)
        first = asyncio.ensure_future(b.search(engine, "first", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        await asyncio.gather(*(b.search(engine, q, 1, None, "hybrid") for q in "abc"))  # type: ignore[arg-type]
        await first
        assert sorted(len(c) for c in engine.calls) == [1, 3]  # 3 < 2 parts of two

    asyncio.run(main())


def test_probes_are_gathered_and_a_miss_is_none() -> None:
    """The probe batcher calls ``search_cached_many``: one look-up for the probes waiting,
    each caller gets its own hits, or None where its query is not cached."""

    class Cache:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def search_cached_many(self, queries, k, filters, mode):
            self.calls.append(list(queries))
            time.sleep(0.02)
            timings = StageTimings()
            timings.add("cache", 0.1)
            return [
                SearchHits([Hit(q, q, q, None, 1.0, q)], timings) if q.startswith("hit") else None
                for q in queries
            ]

    async def main() -> None:
        b, engine = batcher(capacity=1, call="search_cached_many"), Cache()
        queries = ["hit-a", "miss-b", "hit-c", "miss-d", "hit-e"]
        results = await asyncio.gather(
            *(b.search(engine, q, 1, None, "hybrid") for q in queries)  # type: ignore[arg-type]
        )
        for q, got in zip(queries, results, strict=True):
            if q.startswith("hit"):
                assert got is not None and got[0].doc_id == q
                assert "cache" in got.timings.stages and "batch_wait" in got.timings.stages
            else:
                assert got is None
        assert len(engine.calls) == 2 and engine.calls[1] == queries[1:]  # gathered

    asyncio.run(main())


def test_other_collections_run_beside_a_batch_but_one_key_runs_one_batch_at_a_time() -> None:
    """Parts are the capacity: a second collection (or other parameters) runs beside a
    running batch, while the same key's next batch waits for its last one and then takes
    everything that arrived meanwhile."""

    async def main() -> None:
        b = batcher(capacity=2, split=2)
        first, second = FakeEngine(delay=0.3), FakeEngine(delay=0.02)
        running = asyncio.ensure_future(b.search(first, "a1", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        other = await b.search(second, "b1", 1, None, "hybrid")  # type: ignore[arg-type]
        assert not running.done()  # b1 was answered while a1 still ran: it did not wait
        assert other[0].doc_id == "b1"
        same = [
            asyncio.ensure_future(b.search(first, q, 1, None, "hybrid"))  # type: ignore[arg-type]
            for q in ("a2", "a3")
        ]
        await asyncio.gather(running, *same)
        assert first.calls == [["a1"], ["a2", "a3"]]  # held until a1 was done, then together

    asyncio.run(main())


def test_a_failure_handing_out_results_fails_every_caller_of_the_part() -> None:
    class Short(FakeEngine):
        def search_many(self, queries, k, filters, mode) -> SearchBatch:
            out = super().search_many(queries, k, filters, mode)
            return SearchBatch(list(out)[:-1], out.timings)  # one result short

    async def main() -> None:
        b, engine = batcher(capacity=1), Short(delay=0.05)
        first = asyncio.ensure_future(b.search(engine, "first", 1, None, "hybrid"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        pair = [b.search(engine, q, 1, None, "hybrid") for q in ("x", "y")]  # type: ignore[arg-type]
        # every caller is answered (its hits, or the error), none is left waiting
        results = await asyncio.wait_for(asyncio.gather(*pair, return_exceptions=True), 2)
        assert any(isinstance(r, ValueError) for r in results), results
        with pytest.raises(ValueError):
            await first
        assert b._busy == 0 and not b._active  # the capacity came back

    asyncio.run(main())
