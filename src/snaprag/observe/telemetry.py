"""The telemetry backends: the null default, a recorder for tests, and a fan-out to several
(contract: base.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..types import StageTimings
from .base import Telemetry

log = logging.getLogger(__name__)


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
    """Sends every event to each of several telemetry objects (Prometheus metrics and
    OpenTelemetry traces, say), in order.

    One that raises is logged (a warning the first time, then at debug level) and the
    others still get the event: the composite itself never raises. Nested composites are
    flattened and ``None`` or :class:`NullTelemetry` parts dropped::

        CompositeTelemetry([prometheus, OtelTelemetry.from_config(config)])
    """

    def __init__(self, parts: Iterable[Telemetry | None] = ()) -> None:
        flat: list[Telemetry] = []
        for part in parts:
            if isinstance(part, CompositeTelemetry):
                flat.extend(part.parts)
            elif part is not None and not isinstance(part, NullTelemetry):
                flat.append(part)
        self.parts: list[Telemetry] = flat
        self._warned: set[tuple[int, str]] = set()

    def __iter__(self) -> Iterator[Telemetry]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        for part in self.parts:
            try:
                part.stage_timings(operation, timings, n)
            except Exception:
                self._failed(part, "stage_timings")

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        for part in self.parts:
            try:
                part.cache_event(namespace, tier, hits, misses)
            except Exception:
                self._failed(part, "cache_event")

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        for part in self.parts:
            try:
                # a copy each: one part changing it must not change what the next one sees
                part.generator_metrics(generator, dict(metrics))
            except Exception:
                self._failed(part, "generator_metrics")

    def error(self, operation: str, error: BaseException) -> None:
        for part in self.parts:
            try:
                part.error(operation, error)
            except Exception:
                self._failed(part, "error")

    def close(self) -> None:
        """Close the parts that can be closed (exporters flush on close)."""
        for part in self.parts:
            close = getattr(part, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    self._failed(part, "close")

    def _failed(self, part: Telemetry, event: str) -> None:
        try:
            key = (id(part), event)
            first = key not in self._warned
            self._warned.add(key)
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "telemetry %s failed in %s; the event was dropped for it",
                type(part).__name__,
                event,
                exc_info=True,
            )
        except Exception:  # logging itself failed (a closed stream at exit): drop it
            pass


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
        # per query: each query of a micro-batch waited through the batch's stages
        self.windows.observe_many(
            [
                (f"stage:{op}.{stage if stage in STAGES else 'other'}", ms)
                for stage, ms in timings.stages.items()
            ],
            n=max(1, n),
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
