"""The telemetry backends: the null default and a recorder for tests (contract: base.py)."""

from __future__ import annotations

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
