"""What a running server holds: its collections, its lanes and its worker threads."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi.responses import JSONResponse

from ..config import Config
from .admission import Lane, run_with_deadline
from .auth import KeyStore
from .collections import Collections
from .jobs import Jobs

T = TypeVar("T")
ROUTES = ("search", "ask", "chat", "embed")


class State:
    def __init__(self, config: Config, collections: Collections) -> None:
        self.config = config
        self.collections = collections
        cpus = config.server_concurrency or _cpus()
        # CPU work runs on worker threads, never on the event loop; ONNX Runtime and NumPy
        # release the GIL, so threads up to the CPUs (plus one for I/O waits) are useful
        self.limiter = anyio.CapacityLimiter(cpus + 1)
        self.lanes = {
            name: Lane(name, cpus, config.server_queue, config.server_timeout) for name in ROUTES
        }
        self.ready = False
        self.jobs = Jobs()
        #: API keys (only with --data: a folder of collections has tenants)
        self.keys = KeyStore(collections.data) if collections.data is not None else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread (the event loop never blocks)."""
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=self.limiter)

    async def work(self, lane: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` admitted by the route's lane and bounded by its deadline."""
        async with self.lanes[lane].admit() as deadline:
            return await run_with_deadline(self.run(fn, *args), deadline, lane)

    def queues(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: lane.report() for name, lane in self.lanes.items()}
        out["ingest"] = {"pending_jobs": self.jobs.pending()}
        return out


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def server_timing(timings: dict[str, float]) -> str:
    """The standard ``Server-Timing`` header (browsers' developer tools show it)."""
    return ", ".join(f"{name};dur={ms:.3f}" for name, ms in timings.items())


def timed_json(data: dict[str, Any], timings: dict[str, float]) -> JSONResponse:
    """A JSON response carrying its stage timings as a ``Server-Timing`` header too."""
    return JSONResponse(data, headers={"Server-Timing": server_timing(timings)})
