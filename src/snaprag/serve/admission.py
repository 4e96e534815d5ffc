"""Admission control: per-route lanes with bounded concurrency, a bounded queue, a
latency budget and a deadline.

A lane runs at most ``concurrency`` requests at once; up to ``queue`` more wait. One
beyond that is refused at once with ``429`` and a ``Retry-After`` computed from the
queue's depth and the lane's measured throughput; a request that waits or works past its
deadline gets ``504``. Answering overload early keeps the latency of admitted requests
bounded instead of letting every request slow down together.

A count alone cannot say how long an admitted request will take: 16 searches sharing
micro-batches on 2 cores take ten times as long as one. So a lane also refuses a request
whose expected time in the lane exceeds ``latency_budget`` times its unloaded latency.
The expectation is Little's law: the requests in the lane, this one included, over the
lane's throughput, measured as the mean gap between completions while the lane is busy
(the gap that opens a busy period counts from the arrival that started it). The unloaded
latency is a moving average over the requests that found the lane empty and had it
to themselves until they ended. A request to an
empty lane is never refused, so a wrong estimate cannot starve a lane.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .errors import HTTPError

#: requests that found the lane empty before the latency budget applies (a fresh lane
#: knows nothing of its unloaded latency)
UNLOADED_SAMPLES = 8
#: completions the lane's throughput is averaged over (a micro-batch ends many at once)
THROUGHPUT_WINDOW = 64

#: milliseconds the current request waited for its lane (a request's ``queue_wait`` stage)
QUEUE_WAIT_MS: ContextVar[float] = ContextVar("queue_wait_ms", default=0.0)


@dataclass
class LaneStats:
    admitted: int = 0
    rejected: int = 0
    timed_out: int = 0
    #: of ``rejected``: refused because the expected time in the lane was over budget
    over_budget: int = 0
    wait_ms_total: float = 0.0
    #: seconds per request, an exponential moving average of the lane's own work
    service_s: float = 0.05


class Lane:
    def __init__(
        self,
        name: str,
        concurrency: int,
        queue: int,
        timeout_s: float,
        latency_budget: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.name = name
        self.concurrency = max(1, concurrency)
        self.queue = max(0, queue)
        self.timeout_s = timeout_s
        self.latency_budget = latency_budget
        self._clock = clock
        self._slots = asyncio.Semaphore(self.concurrency)
        self._waiting = 0
        self._running = 0
        #: seconds in the lane of requests that found it empty (moving average)
        self._unloaded_s = 0.0
        self._unloaded_n = 0
        self._arrived = 0  # requests admitted so far (tells a request that ran alone)
        #: seconds between completions while busy (the last THROUGHPUT_WINDOW)
        self._gaps: deque[float] = deque(maxlen=THROUGHPUT_WINDOW)
        #: perf_counter of the last completion, or of the arrival that opened a busy period
        self._last_done = 0.0
        self.stats = LaneStats()
        #: called with (lane, "wait", seconds), (lane, "queue_full") or (lane, "deadline")
        self.listener: Callable[..., None] | None = None

    def _tell(self, what: str, value: float = 0.0) -> None:
        if self.listener is not None:
            self.listener(self.name, what, value)

    @property
    def running(self) -> int:
        return self._running

    @property
    def depth(self) -> int:
        return self._waiting

    @property
    def full(self) -> bool:
        """Whether a new request would be refused right now: every request counts from its
        arrival (a burst arriving at once must not all pass before any holds a slot)."""
        return self._waiting + self._running >= self.concurrency + self.queue

    @property
    def unloaded_s(self) -> float | None:
        """The lane's unloaded latency, once enough requests found it empty."""
        return self._unloaded_s if self._unloaded_n >= UNLOADED_SAMPLES else None

    def expected_s(self) -> float | None:
        """Seconds a request arriving now would spend in the lane (None: no estimate)."""
        if not self._gaps:
            return None
        ahead = self._waiting + self._running
        return (ahead + 1) * sum(self._gaps) / len(self._gaps)

    @property
    def over_budget(self) -> bool:
        """Whether a request arriving now would exceed the latency budget."""
        if not self.latency_budget or self._waiting + self._running == 0:
            return False
        unloaded, expected = self.unloaded_s, self.expected_s()
        if unloaded is None or expected is None:
            return False
        return expected > self.latency_budget * unloaded

    def refuse_if_full(self) -> None:
        """The 429 a full or over-budget lane answers (checked before a streamed response
        starts)."""
        if self.full:
            self.stats.rejected += 1
            self._tell("queue_full")
            raise HTTPError(
                429,
                "overloaded",
                f"the {self.name} queue is full ({self._waiting} waiting); retry later",
                {"Retry-After": str(self.retry_after())},
            )
        if self.over_budget:
            self.stats.rejected += 1
            self.stats.over_budget += 1
            self._tell("latency_budget")
            raise HTTPError(
                429,
                "overloaded",
                f"the {self.name} lane is at capacity ({self._waiting + self._running} in "
                f"progress; a new request would take over {self.latency_budget:g}x its "
                "unloaded latency); retry later",
                {"Retry-After": str(self.retry_after())},
            )

    def retry_after(self) -> int:
        """Seconds until the queue ahead has likely drained (at least 1)."""
        ahead = self._waiting + self._running
        return max(1, math.ceil(ahead * self.stats.service_s / self.concurrency))

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[float]:
        """Wait for a slot (or be refused); yields the deadline (``time.monotonic()``)."""
        self.refuse_if_full()
        deadline = time.monotonic() + self.timeout_s
        start = self._clock()
        alone = self._waiting + self._running == 0
        if alone:
            self._last_done = start  # a busy period opens: its first gap counts from here
        self._arrived += 1
        arrival = self._arrived
        self._waiting += 1  # before any await: the next arrival already sees this one
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.timeout_s)
        except TimeoutError:
            self.stats.timed_out += 1
            self._tell("deadline")
            raise HTTPError(
                504, "deadline", f"waited {self.timeout_s:g} s for a {self.name} slot"
            ) from None
        finally:
            self._waiting -= 1
        self.stats.admitted += 1
        waited = self._clock() - start
        self.stats.wait_ms_total += waited * 1000
        QUEUE_WAIT_MS.set(waited * 1000)
        self._tell("wait", waited)
        self._running += 1
        work = self._clock()
        try:
            yield deadline
        finally:
            self._running -= 1
            self._slots.release()
            done = self._clock()
            self.stats.service_s = 0.9 * self.stats.service_s + 0.1 * (done - work)
            self._gaps.append(done - self._last_done)
            self._last_done = done
            if alone and self._arrived == arrival:  # no other request shared its time
                took = done - start
                n = self._unloaded_n = self._unloaded_n + 1
                # a plain mean until there are enough samples, then a moving average
                self._unloaded_s += (took - self._unloaded_s) / min(n, 2 * UNLOADED_SAMPLES)

    def report(self) -> dict[str, float | int]:
        s = self.stats
        return {
            "concurrency": self.concurrency,
            "queue_limit": self.queue,
            "running": self._running,
            "waiting": self._waiting,
            "admitted": s.admitted,
            "rejected": s.rejected,
            "timed_out": s.timed_out,
            "over_budget": s.over_budget,
            "latency_budget": self.latency_budget,
            "unloaded_ms": _ms(self.unloaded_s),
            "expected_ms": _ms(self.expected_s()),
            "mean_wait_ms": round(s.wait_ms_total / s.admitted, 3) if s.admitted else 0.0,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


async def run_with_deadline(coro, deadline: float, what: str, cancel: bool = True):
    """Await ``coro`` until ``deadline`` (monotonic); past it: 504.

    ``cancel`` False, for work on a worker thread: the thread cannot be stopped, so the
    call is left to finish in the background, still holding its place in the thread
    limiter; cancelling it would free that place while the thread runs on, and timed-out
    requests could then pile up threads without bound.
    """
    left = max(0.001, deadline - time.monotonic())
    if cancel:
        try:
            return await asyncio.wait_for(coro, timeout=left)
        except TimeoutError:
            raise HTTPError(504, "deadline", f"{what} did not finish within its deadline") from None
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=left)
    if task in done:
        return task.result()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody waits for it
    raise HTTPError(504, "deadline", f"{what} did not finish within its deadline")
