"""Admission lanes: a burst that arrives all at once is held to concurrency + queue."""

from __future__ import annotations

import asyncio
from collections import Counter

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
