"""Admission control: per-route lanes with bounded concurrency, a bounded queue, a
latency budget and a deadline.

A lane runs at most ``concurrency`` requests at once; up to ``queue`` more wait. One
beyond that is refused at once with ``429`` and a ``Retry-After`` computed from the
queue's depth and the lane's measured throughput; a request that waits or works past its
deadline gets ``504``. Answering overload early keeps the latency of admitted requests
bounded instead of letting every request slow down together.

A lane also refuses, under sustained overload, the requests whose expected time in it
exceeds ``latency_budget`` times its unloaded latency (:mod:`.budget`). A refusal carries
``Retry-After`` in whole seconds and ``retry-after-ms``, the same wait spread at random
over 0.5..1.5 of it: clients refused together (a burst) do not all come back together.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .budget import LatencyBudget
from .errors import HTTPError

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
        self._clock = clock
        self._slots = asyncio.Semaphore(self.concurrency)
        self._waiting = 0
        self._running = 0
        #: units of work in the lane (a request of many queries counts each)
        self._units = 0
        self._arrived = 0  # requests admitted so far (tells a request that ran alone)
        self.budget = LatencyBudget(latency_budget)
        self.stats = LaneStats()
        #: called with (lane, "wait", seconds) or (lane, REASON), REASON one of
        #: "queue_full", "latency_budget" (429s) and "deadline" (504)
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

    def _over_budget(self, units: int) -> bool:
        return self.budget.refuses(self._clock(), self._units, units)

    def refuse_if_full(self, units: int = 1, budget: bool = True) -> None:
        """The 429 a full or (``budget``) over-budget lane answers to a request of
        ``units`` (checked before a streamed response starts)."""
        if self.full:
            self.stats.rejected += 1
            self._tell("queue_full")
            raise HTTPError(
                429,
                "overloaded",
                f"the {self.name} queue is full ({self._waiting} waiting); retry later",
                self._retry_headers(),
            )
        if budget and self._over_budget(units):
            self.stats.rejected += 1
            self.stats.over_budget += 1
            self._tell("latency_budget")
            expected = self.budget.expected_s(self._units, units) or 0.0
            limit = self.budget.limit_s or 0.0
            raise HTTPError(
                429,
                "overloaded",
                f"the {self.name} lane is over its latency budget: a request now would take "
                f"about {expected * 1000:.0f} ms, the budget is {limit * 1000:.0f} ms "
                f"({self.budget.factor:g}x the unloaded latency); retry later",
                self._retry_headers(),
            )

    def _retry_headers(self) -> dict[str, str]:
        seconds = self.retry_after()
        spread = seconds * 1000 * random.uniform(0.5, 1.5)
        return {"Retry-After": str(seconds), "retry-after-ms": str(round(spread))}

    def retry_after(self) -> int:
        """Seconds until the queue ahead has likely drained (at least 1)."""
        ahead = self._waiting + self._running
        return max(1, math.ceil(ahead * self.stats.service_s / self.concurrency))

    @asynccontextmanager
    async def admit(self, units: int = 1, budget: bool = True) -> AsyncIterator[float]:
        """Wait for a slot (or be refused); yields the deadline (``time.monotonic()``).

        ``units``: the work the request brings (queries or texts), for the latency
        budget; ``budget`` False: the caller already checked it (a stream, whose 200 is
        sent before it is admitted, must not be refused by the budget in between).
        """
        self.refuse_if_full(units, budget)
        deadline = time.monotonic() + self.timeout_s
        start = self._clock()
        alone = self._waiting + self._running == 0
        if alone:
            self.budget.opened(start)  # a busy period opens: its first gap counts from here
        self._arrived += 1
        arrival = self._arrived
        self._waiting += 1  # before any await: the next arrival already sees this one
        self._units += units
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.timeout_s)
        except TimeoutError:
            self._units -= units
            self.stats.timed_out += 1
            self._tell("deadline")
            raise HTTPError(
                504, "deadline", f"waited {self.timeout_s:g} s for a {self.name} slot"
            ) from None
        except BaseException:
            self._units -= units
            raise
        finally:
            self._waiting -= 1
        self.stats.admitted += 1
        waited = self._clock() - start
        self.stats.wait_ms_total += waited * 1000
        QUEUE_WAIT_MS.set(waited * 1000)
        self._tell("wait", waited)
        self._running += 1
        work = self._clock()
        ok = False
        try:
            yield deadline
            ok = True
        finally:
            self._running -= 1
            self._units -= units
            self._slots.release()
            done = self._clock()
            self.stats.service_s = 0.9 * self.stats.service_s + 0.1 * (done - work)
            # alone: no other request shared its time in the lane
            self.budget.completed(done, done - start, units, ok, alone and self._arrived == arrival)

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
            **self.budget.report(self._units),
            "mean_wait_ms": round(s.wait_ms_total / s.admitted, 3) if s.admitted else 0.0,
        }


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
