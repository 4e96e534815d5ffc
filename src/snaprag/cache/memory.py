"""L1: an in-process LRU with a TTL per entry and a bound in bytes and in entries."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

# per-entry bookkeeping on top of the value's encoded size (key, tuple, dict slot)
ENTRY_OVERHEAD = 120


class MemoryCache:
    """Thread-safe LRU of decoded values; sizes are the values' encoded byte lengths."""

    name = "memory"

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_entries: int = 100_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[Any, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[2] <= time.monotonic():
                self._drop(key)
                return None
            self._data.move_to_end(key)
            return item[0]

    def ttl_left(self, key: str) -> float:
        item = self._data.get(key)
        return 0.0 if item is None else max(0.0, item[2] - time.monotonic())

    def put(self, key: str, value: Any, size: int, ttl: float) -> None:
        cost = size + len(key) + ENTRY_OVERHEAD
        if ttl <= 0 or cost > self.max_bytes:
            return
        with self._lock:
            if key in self._data:
                self._drop(key)
            self._data[key] = (value, cost, time.monotonic() + ttl)
            self._bytes += cost
            while self._bytes > self.max_bytes or len(self._data) > self.max_entries:
                oldest = next(iter(self._data))
                self._drop(oldest)
                self.evictions += 1

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._data:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        _, cost, _ = self._data.pop(key)
        self._bytes -= cost

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)
