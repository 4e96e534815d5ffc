"""The telemetry seam: the pipeline reports what happened; exporters decide what to keep.

The engine, the cache layer and the answer pipeline call a :class:`Telemetry` object;
the default (:class:`NullTelemetry`) does nothing, so measuring costs nothing unless an
exporter (Prometheus metrics, rolling percentiles, a log) is plugged in with
``Engine(config, telemetry=...)``. Implementations must be thread-safe and fast (they run
on the request path) and must never raise: a failing exporter must not fail a search.

Events:

* ``stage_timings(operation, timings, n)``: a finished ``search`` (``n`` queries of one
  batch) or ``ask`` with its :class:`~snaprag.types.StageTimings`;
* ``cache_event(namespace, tier, hits, misses)``: look-ups of one tier (``memory``,
  ``redis``, ``disk``, ``semantic``) for a namespace (``retrieval``, ``answer``,
  ``embedding``);
* ``generator_metrics(generator, metrics)``: an answer's metrics (``ttft_ms``,
  ``tokens_per_s``, ``prompt_tokens``, ``completion_tokens`` ...);
* ``error(operation, error)``: an operation that failed, with its error.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from ..types import StageTimings


@runtime_checkable
class Telemetry(Protocol):
    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None: ...

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None: ...

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None: ...

    def error(self, operation: str, error: BaseException) -> None: ...


class NullTelemetry:
    """Receives everything, keeps nothing (the default)."""

    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        pass

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        pass

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        pass

    def error(self, operation: str, error: BaseException) -> None:
        pass


class RecordingTelemetry:
    """Keeps every event in lists, for tests (yours and snaprag's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.timings: list[tuple[str, dict[str, float], str | None, int]] = []
        self.cache: list[tuple[str, str, int, int]] = []
        self.generators: list[tuple[str, dict[str, float]]] = []
        self.errors: list[tuple[str, BaseException]] = []

    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        with self._lock:
            self.timings.append((operation, dict(timings.stages), timings.cache_tier, n))

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        with self._lock:
            self.cache.append((namespace, tier, hits, misses))

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        with self._lock:
            self.generators.append((generator, dict(metrics)))

    def error(self, operation: str, error: BaseException) -> None:
        with self._lock:
            self.errors.append((operation, error))

    def operations(self) -> list[str]:
        with self._lock:
            return [t[0] for t in self.timings]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "timings": len(self.timings),
                "cache": len(self.cache),
                "generators": len(self.generators),
                "errors": len(self.errors),
            }
