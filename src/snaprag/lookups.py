"""Answers from the query cache alone: a mixin of :class:`~snaprag.engine.Engine` for the
look-ups that search nothing, which a server makes before it queues a request (the
in-memory tier on its event loop; the slower tiers of concurrent requests gathered into
one call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .types import Filters, SearchHits

if TYPE_CHECKING:
    from .engine import Engine


class CacheLookups:
    def search_cached(
        self: Engine,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        memory_only: bool = False,
    ) -> SearchHits | None:
        """The hits of ``query`` if the query cache holds them, else None (nothing is
        searched, nothing is built). ``memory_only``: ask only the in-process tier (plus one
        read of the index generation, which WAL never makes wait on a writer): a server
        calls this on its event loop."""
        cached = getattr(self._searcher, "cached", None)  # only a CachedSearcher has it
        batch = cached([query], k, filters, mode, memory_only) if cached else None
        if batch is None:
            return None
        self.telemetry.stage_timings("search", batch.timings, 1)
        return SearchHits(batch[0], batch.timings)

    def search_cached_many(
        self: Engine,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
    ) -> list[SearchHits | None]:
        """Each query's hits (and the tier that answered it) if a cache tier holds them,
        else None, in one look-up per tier; nothing is searched. A server probes the slower
        tiers of concurrent requests together with this (from a worker thread: the first
        call builds the search parts)."""
        each = getattr(self.searcher, "cached_each", None)  # only a CachedSearcher has it
        found = each(list(queries), k, filters, mode) if each else [None] * len(queries)
        for hits in found:
            if hits is not None:
                self.telemetry.stage_timings("search", hits.timings, 1)
        return found
