"""Admission lanes: a burst that arrives all at once is held to concurrency + queue."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from snaprag.serve.admission import Lane
from snaprag.serve.errors import HTTPError


def test_a_simultaneous_burst_is_held_to_concurrency_plus_queue() -> None:
    async def main() -> Counter:
        lane = Lane("ask", concurrency=2, queue=2, timeout_s=30)
        release = asyncio.Event()

        async def request() -> str:
            try:
                async with lane.admit():
                    await release.wait()
                return "ok"
            except HTTPError as exc:
                return str(exc.status)

        tasks = [asyncio.ensure_future(request()) for _ in range(40)]
        await asyncio.sleep(0.05)  # every request has arrived; two hold their slots
        assert lane.running == 2 and lane.depth == 2
        release.set()
        return Counter(await asyncio.gather(*tasks))

    outcome = asyncio.run(main())
    assert outcome == {"ok": 4, "429": 36}


def test_a_refused_request_is_told_when_to_retry() -> None:
    async def main() -> HTTPError:
        lane = Lane("search", concurrency=1, queue=0, timeout_s=30)
        async with lane.admit():
            try:
                async with lane.admit():
                    raise AssertionError("admitted beyond the lane")
            except HTTPError as exc:
                return exc
        raise AssertionError("not refused")

    refused = asyncio.run(main())
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1


def test_work_past_its_deadline_keeps_its_thread_slot_until_it_ends() -> None:
    """A 504 cannot stop a worker thread: the thread keeps its place in the limiter until
    it ends, so timed-out requests cannot pile up threads beyond the limit."""
    import threading
    import time

    import anyio

    from snaprag.serve.admission import run_with_deadline

    async def main() -> tuple[int, int]:
        limiter = anyio.CapacityLimiter(2)
        running = 0
        peak = 0
        lock = threading.Lock()

        def work() -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.2)
            with lock:
                running -= 1

        refused = 0
        loop = asyncio.get_running_loop()
        for _ in range(6):  # each call times out long before its thread ends
            call = anyio.to_thread.run_sync(work, limiter=limiter)
            try:
                await run_with_deadline(call, loop.time() + 0.01, "test", cancel=False)
            except HTTPError as exc:
                assert exc.status == 504
                refused += 1
        while limiter.borrowed_tokens:  # bounded by the sleeps above
            await asyncio.sleep(0.05)
        return refused, peak

    refused, peak = asyncio.run(main())
    assert refused == 6 and peak <= 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _solo_requests(lane: Lane, clock: FakeClock, n: int, seconds: float) -> None:
    """``n`` requests one after another, each ``seconds`` long, on an empty lane."""

    async def main() -> None:
        for _ in range(n):
            async with lane.admit():
                clock.now += seconds
            clock.now += 1.0  # idle between them: the lane empties

    asyncio.run(main())


def _arrivals(lane: Lane, n: int) -> Counter:
    """``n`` requests arriving together that hold the lane (none finishes)."""

    async def main() -> Counter:
        hold = asyncio.Event()

        async def request() -> str:
            try:
                async with lane.admit():
                    await hold.wait()
                return "ok"
            except HTTPError as exc:
                return f"{exc.status} {'budget' if 'capacity' in exc.message else 'full'}"

        tasks = [asyncio.ensure_future(request()) for _ in range(n)]
        await asyncio.sleep(0.01)
        hold.set()
        return Counter(await asyncio.gather(*tasks))

    return asyncio.run(main())


def test_a_request_over_the_latency_budget_is_refused_before_the_queue_is_full() -> None:
    clock = FakeClock()
    lane = Lane("search", concurrency=16, queue=16, timeout_s=30, latency_budget=3, clock=clock)
    _solo_requests(lane, clock, 8, 0.010)
    assert lane.unloaded_s == pytest.approx(0.010)
    # one request at a time, 10 ms each: the third in the lane expects 30 ms (admitted),
    # a fourth would expect 40 ms, over 3 x 10 ms
    outcome = _arrivals(lane, 10)
    assert outcome == {"ok": 3, "429 budget": 7}
    assert lane.stats.over_budget == 7 and lane.stats.rejected == 7
    report = lane.report()
    assert report["over_budget"] == 7 and report["latency_budget"] == 3
    # the three admitted shared the lane: none of them counts as unloaded
    assert report["unloaded_ms"] == pytest.approx(10.0)


def test_the_budget_follows_the_measured_throughput() -> None:
    """Twice the throughput (requests finishing 5 ms apart while busy) admits twice as
    many at the same budget."""
    clock = FakeClock()
    lane = Lane("search", concurrency=16, queue=16, timeout_s=30, latency_budget=3, clock=clock)
    _solo_requests(lane, clock, 8, 0.010)

    async def busy() -> None:  # 64 completions 5 ms apart while the lane stays busy
        hold = asyncio.Event()

        async def keep() -> None:
            async with lane.admit():
                await hold.wait()

        keeper = asyncio.ensure_future(keep())
        await asyncio.sleep(0)
        for _ in range(64):
            async with lane.admit():
                clock.now += 0.005
        hold.set()
        await keeper

    asyncio.run(busy())
    assert abs(lane.expected_s() - 0.005) < 0.001  # the lane is empty: one request's worth
    outcome = _arrivals(lane, 10)
    assert outcome["ok"] == 6  # 6 x 5 ms = 30 ms = 3 x 10 ms


def test_without_a_budget_or_an_estimate_only_the_queue_bounds_the_lane() -> None:
    clock = FakeClock()
    off = Lane("search", concurrency=2, queue=2, timeout_s=30, latency_budget=0, clock=clock)
    _solo_requests(off, clock, 8, 0.010)
    assert _arrivals(off, 10) == {"ok": 4, "429 full": 6}
    fresh = Lane("search", concurrency=2, queue=2, timeout_s=30, latency_budget=3, clock=clock)
    _solo_requests(fresh, clock, 7, 0.010)  # one sample short of an unloaded latency
    assert fresh.unloaded_s is None
    assert _arrivals(fresh, 10) == {"ok": 4, "429 full": 6}


def test_a_request_to_an_empty_lane_is_never_refused() -> None:
    clock = FakeClock()
    lane = Lane("ask", concurrency=4, queue=4, timeout_s=30, latency_budget=1, clock=clock)
    _solo_requests(lane, clock, 8, 0.010)
    lane._gaps.extend([10.0] * 64)  # an estimate far over any budget
    assert _arrivals(lane, 3) == {"ok": 1, "429 budget": 2}
