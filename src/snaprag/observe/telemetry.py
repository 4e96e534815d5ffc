"""The telemetry backends: the null default and a recorder for tests (contract: base.py)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from ..types import StageTimings


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


class CompositeTelemetry:
    """Hands every event to each of several telemetry objects; one that fails is skipped,
    never the request."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = list(parts)

    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        for part in self.parts:
            with contextlib.suppress(Exception):
                part.stage_timings(operation, timings, n)

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        for part in self.parts:
            with contextlib.suppress(Exception):
                part.cache_event(namespace, tier, hits, misses)

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        for part in self.parts:
            with contextlib.suppress(Exception):
                part.generator_metrics(generator, metrics)

    def error(self, operation: str, error: BaseException) -> None:
        for part in self.parts:
            with contextlib.suppress(Exception):
                part.error(operation, error)


class WindowTelemetry:
    """Feeds the rolling windows (:class:`~.windows.Windows`): stage durations as
    ``stage:OPERATION.STAGE`` series, cache look-ups as ``cache:NAMESPACE:TIER:hit|miss``
    counters (``cache:NAMESPACE:requests``: look-ups asked), LLM time to first token as
    ``llm:ttft``, errors as ``errors:OPERATION``."""

    def __init__(self, windows: Any) -> None:
        self.windows = windows

    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        from .prometheus import OPERATIONS, STAGES

        op = operation if operation in OPERATIONS else "other"
        self.windows.observe_many(
            [
                (f"stage:{op}.{stage if stage in STAGES else 'other'}", ms)
                for stage, ms in timings.stages.items()
            ]
        )

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        from .prometheus import NAMESPACES, TIERS

        ns = namespace if namespace in NAMESPACES else "other"
        if tier == "requests":
            self.windows.count(f"cache:{ns}:requests", hits)
            return
        tier = tier if tier in TIERS else "other"
        if hits:
            self.windows.count(f"cache:{ns}:{tier}:hit", hits)
        if misses:
            self.windows.count(f"cache:{ns}:{tier}:miss", misses)

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        if "ttft_ms" in metrics:
            self.windows.observe("llm:ttft", metrics["ttft_ms"])
        if metrics.get("tokens_per_s"):
            self.windows.gauge("llm_tokens_per_s", metrics["tokens_per_s"])

    def error(self, operation: str, error: BaseException) -> None:
        self.windows.count(f"errors:{operation if operation in ('search', 'ask') else 'other'}")
