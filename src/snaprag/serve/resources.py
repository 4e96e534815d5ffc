"""The process's CPU and memory, sampled twice a second, and the 503 above thresholds.

Above ``server_max_cpu`` (percent of the CPUs the process may use) or
``server_max_memory_mb`` (resident memory), new work is refused with ``503`` and a
``Retry-After``: shedding load early keeps the process alive and its admitted requests
fast; a host-level balancer or the client retries. Health checks, cache hits answered
from memory and requests already admitted are not refused.

Read from ``/proc`` (Linux) with ``resource`` as the fallback: no extra dependency.
"""

from __future__ import annotations

import os
import resource
import sys
import time

from .errors import HTTPError

#: seconds between samples: CPU percent is averaged over this window
INTERVAL_S = 0.5


def rss_mb() -> float:
    """Resident memory of this process, in MiB."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # not Linux: the peak is the best known
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class Resources:
    def __init__(self, max_cpu: float, max_memory_mb: float, cpus: int) -> None:
        self.max_cpu = max_cpu
        self.max_memory_mb = max_memory_mb
        self.cpus = max(1, cpus)
        self.cpu_percent = 0.0
        self.memory_mb = rss_mb()
        self.refused = 0
        self._last = (time.monotonic(), time.process_time())

    @property
    def limited(self) -> bool:
        return bool(self.max_cpu or self.max_memory_mb)

    def sample(self) -> None:
        """Update CPU (percent of the allowed CPUs since the last sample) and memory."""
        now, cpu = time.monotonic(), time.process_time()
        wall = now - self._last[0]
        if wall > 0:
            self.cpu_percent = 100.0 * (cpu - self._last[1]) / wall / self.cpus
        self._last = (now, cpu)
        self.memory_mb = rss_mb()

    def refuse_if_over(self) -> None:
        """503 while a threshold is exceeded (checked before new work is admitted)."""
        if self.max_memory_mb and self.memory_mb > self.max_memory_mb:
            what = f"memory {self.memory_mb:.0f} MiB is over {self.max_memory_mb:g} MiB"
        elif self.max_cpu and self.cpu_percent > self.max_cpu:
            what = f"CPU {self.cpu_percent:.0f} % is over {self.max_cpu:g} %"
        else:
            return
        self.refused += 1
        raise HTTPError(
            503, "overloaded", f"the server is over its limits ({what}); retry later",
            {"Retry-After": "1"},
        )  # fmt: skip

    def report(self) -> dict[str, float | int]:
        return {
            "cpu_percent": round(self.cpu_percent, 1),
            "memory_mb": round(self.memory_mb, 1),
            "max_cpu_percent": self.max_cpu,
            "max_memory_mb": self.max_memory_mb,
            "refused": self.refused,
        }
