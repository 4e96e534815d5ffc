"""Memory -> Redis -> disk, read-through with promotion and write-through.

Values are kept decoded in L1 (a hit costs a dictionary lookup) and encoded in L2 and L3
behind an 8-byte expiry time, so an entry promoted from a slower tier keeps the TTL it
was written with instead of starting a new one.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .codec import CodecError, decode_sized, encode_sized
from .memory import MemoryCache

NAMESPACES = ("embedding", "retrieval", "answer")
#: the pseudo-tier that counts look-ups (requests) per namespace, for the overall hit rate
REQUESTS = "requests"
_EXPIRES = struct.Struct("<d")


class BytesTier(Protocol):
    name: str

    def get_many(self, keys: Sequence[str]) -> list[bytes | None] | None: ...

    def put_many(self, items: Sequence[tuple[str, bytes, float]]) -> None: ...

    def delete(self, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class Codec:
    """How a namespace's objects become JSON/arrays (``dump``) and back (``load``)."""

    dump: Callable[[Any], Any] = lambda obj: obj
    load: Callable[[Any], Any] = lambda data: data


class CacheStats:
    """Hits and misses per tier and namespace; thread-safe."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._unflushed: dict[tuple[str, str], list[int]] = {}
        self._lock = threading.Lock()
        #: called with (namespace, tier, hits, misses) after each record (telemetry)
        self.listener: Callable[[str, str, int, int], None] | None = None

    def record(self, tier: str, namespace: str, hits: int, misses: int) -> None:
        if not hits and not misses:
            return
        key = (tier, namespace)
        with self._lock:
            for table in (self._counts, self._unflushed):
                row = table.setdefault(key, [0, 0])
                row[0] += hits
                row[1] += misses
        if self.listener is not None:
            self.listener(namespace, tier, hits, misses)

    def restore_unflushed(self, deltas: dict[tuple[str, str], list[int]]) -> None:
        """Give back counts that could not be written, to be written next time."""
        with self._lock:
            for key, (hits, misses) in deltas.items():
                row = self._unflushed.setdefault(key, [0, 0])
                row[0] += hits
                row[1] += misses

    def take_unflushed(self) -> dict[tuple[str, str], list[int]]:
        with self._lock:
            out, self._unflushed = self._unflushed, {}
        return out

    def snapshot(self) -> dict[tuple[str, str], list[int]]:
        with self._lock:
            return {k: list(v) for k, v in self._counts.items()}

    @staticmethod
    def hit_rates(counts: dict[tuple[str, str], list[int]]) -> dict[str, float]:
        """Per namespace: requests served by any tier (or the semantic cache) / requests."""
        requests: dict[str, int] = {}
        served: dict[str, int] = {}
        for (tier, ns), (hits, _) in counts.items():
            if tier == REQUESTS:
                requests[ns] = requests.get(ns, 0) + hits
            else:
                served[ns] = served.get(ns, 0) + hits
        return {ns: round(min(served.get(ns, 0) / n, 1.0), 4) for ns, n in requests.items() if n}

    @staticmethod
    def table(counts: dict[tuple[str, str], list[int]]) -> list[dict[str, Any]]:
        """Rows ``tier, namespace, hits, misses, hit_rate`` in tier order."""
        order = {"memory": 0, "redis": 1, "disk": 2, "semantic": 3}
        rows = []
        for (tier, ns), (hits, misses) in sorted(
            counts.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])
        ):
            if tier == REQUESTS:
                continue
            total = hits + misses
            rows.append(
                {
                    "tier": tier,
                    "namespace": ns,
                    "hits": hits,
                    "misses": misses,
                    "hit_rate": round(hits / total, 4) if total else 0.0,
                }
            )
        return rows


class TieredCache:
    """L1 (optional) -> L2 (optional) -> L3 (optional), one TTL per namespace."""

    def __init__(
        self,
        memory: MemoryCache | None,
        tiers: Sequence[BytesTier],
        ttls: dict[str, float],
        codecs: dict[str, Codec] | None = None,
        stats: CacheStats | None = None,
    ) -> None:
        self.memory = memory
        self.tiers = list(tiers)
        self.ttls = ttls
        self.codecs = codecs or {}
        self.stats = stats or CacheStats()

    @property
    def tier_names(self) -> list[str]:
        return (["memory"] if self.memory is not None else []) + [t.name for t in self.tiers]

    def get(self, namespace: str, key: str) -> Any | None:
        return self.get_many(namespace, [key])[0]

    def get_many(
        self,
        namespace: str,
        keys: Sequence[str],
        record: bool = True,
        where: list[str | None] | None = None,
    ) -> list[Any | None]:
        """Values (or None) for ``keys``. Every call counts as ``len(keys)`` requests of
        the namespace (tier ``requests``), and per tier its hits and misses; ``record``
        False counts nothing (a second look-up on behalf of the same request). ``where``,
        when given, receives per key the name of the tier that answered (None: a miss)."""
        if where is not None:
            where[:] = [None] * len(keys)
        stats = self.stats if record else CacheStats()
        if record and keys:
            stats.record(REQUESTS, namespace, len(keys), 0)
        out: list[Any | None] = [None] * len(keys)
        missing = list(range(len(keys)))
        codec = self.codecs.get(namespace, Codec())
        if self.memory is not None:
            still = []
            for i in missing:
                value = self.memory.get(keys[i])
                if value is None:
                    still.append(i)
                else:
                    out[i] = value
                    if where is not None:
                        where[i] = "memory"
            stats.record("memory", namespace, len(missing) - len(still), len(still))
            missing = still
        now = time.time()
        for level, tier in enumerate(self.tiers):
            if not missing:
                break
            raws = tier.get_many([keys[i] for i in missing])
            if raws is None:  # the tier could not be asked (Redis down): no hit, no miss
                continue
            still = []
            damaged = []
            for i, raw in zip(missing, raws, strict=True):
                if raw is None:
                    still.append(i)
                    continue
                try:
                    expires = _EXPIRES.unpack_from(raw)[0]
                    decoded, memory = decode_sized(raw[_EXPIRES.size :])
                    value = codec.load(decoded)
                except (CodecError, struct.error, TypeError, KeyError, ValueError):
                    damaged.append(keys[i])
                    still.append(i)
                    continue
                ttl = expires - now
                if ttl <= 0:
                    still.append(i)
                    continue
                out[i] = value
                if where is not None:
                    where[i] = tier.name
                self._promote(level, keys[i], value, raw, ttl, memory)
            if damaged:
                tier.delete(damaged)
            stats.record(tier.name, namespace, len(missing) - len(still), len(still))
            missing = still
        return out

    def _promote(
        self, level: int, key: str, value: Any, raw: bytes, ttl: float, memory: int
    ) -> None:
        if self.memory is not None:
            self.memory.put(key, value, memory, ttl)
        for faster in self.tiers[:level]:
            faster.put_many([(key, raw, ttl)])

    def put(self, namespace: str, key: str, value: Any) -> None:
        self.put_many(namespace, [(key, value)])

    def put_many(self, namespace: str, items: Sequence[tuple[str, Any]]) -> None:
        ttl = self.ttls.get(namespace, 3600.0)
        if ttl <= 0 or not items:
            return
        codec = self.codecs.get(namespace, Codec())
        header = _EXPIRES.pack(time.time() + ttl)
        encoded = []
        for key, value in items:
            data, memory = encode_sized(codec.dump(value))
            if self.memory is not None:
                self.memory.put(key, value, memory, ttl)
            encoded.append((key, header + data, ttl))
        for tier in self.tiers:
            tier.put_many(encoded)

    def delete(self, keys: Sequence[str]) -> None:
        if self.memory is not None:
            for key in keys:
                self.memory.delete(key)
        for tier in self.tiers:
            tier.delete(keys)
