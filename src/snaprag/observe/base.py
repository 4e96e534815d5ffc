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

from typing import Protocol, runtime_checkable

from ..types import StageTimings


@runtime_checkable
class Telemetry(Protocol):
    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None: ...

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None: ...

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None: ...

    def error(self, operation: str, error: BaseException) -> None: ...
