"""A circuit breaker: after repeated failures, stop calling a slow or dead backend for a
while, then let one trial call through; a success closes the circuit again."""

from __future__ import annotations

import threading
import time


class CircuitBreaker:
    """``closed`` -> (``failures`` in a row) -> ``open`` for ``cooldown`` s -> ``half-open``."""

    def __init__(self, failures: int = 3, cooldown: float = 5.0) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()
        self.trips = 0

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if time.monotonic() - self._opened_at >= self.cooldown:
            return "half-open"
        return "open"

    @property
    def remaining(self) -> float:
        """Seconds until the next trial call (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (time.monotonic() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may be tried now (in half-open state, one caller at a time)."""
        if self._opened_at is None:
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if time.monotonic() - self._opened_at < self.cooldown or self._trial:
                return False
            self._trial = True
            return True

    def success(self) -> None:
        if self._failures or self._opened_at is not None:
            with self._lock:
                self._failures = 0
                self._opened_at = None
                self._trial = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial or self._failures >= self.threshold:
                if self._opened_at is None or self._trial:
                    self.trips += 1
                self._opened_at = time.monotonic()
                self._trial = False
