"""The cache contract: what the caching layer needs from a query cache.

:class:`~snaprag.cache.query_cache.QueryCache` is the implementation (L1 memory, L2 Redis,
L3 ``cache.db``, built from the config by :func:`~.factory.create_cache`); with ``cache_disk=False``
and no ``redis_url`` it is a purely in-memory cache, the one to use in tests. The layer
that uses it (:mod:`snaprag.cache.layer`) wraps a plain searcher and answerer, so the
engine itself holds no cache logic.

Thread-safety: every method may be called from many threads at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    #: the tiers: ``get_many(namespace, keys, record=True, where=None)`` / ``put_many``
    tiered: Any
    #: the semantic look-up (None when off)
    semantic: Any
    #: hit/miss counters per tier and namespace
    stats: Any

    def key(self, namespace: str, *parts: Any) -> str: ...

    def log_queries(
        self, kind: str, normalized: Sequence[str], params: tuple[Any, ...], texts: Sequence[str]
    ) -> None: ...

    def top_queries(self, n: int) -> list[dict[str, Any]]: ...

    def report(self) -> dict[str, Any]: ...

    def clear(self) -> dict[str, int | None]: ...

    def close(self) -> None: ...
