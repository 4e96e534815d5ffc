"""The engine's administration: counts, sources, deletes and the query cache's upkeep.

A mixin of :class:`~snaprag.engine.Engine`, apart so that the facade's file holds the
lifecycle, ingest and search paths; every method here uses only the engine's public
parts (``store``, ``cache``, ``searcher``, ``answerer``, ``config``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .index import layout

if TYPE_CHECKING:
    from .cache.base import Cache
    from .engine import Engine


class EngineAdmin:
    def stats(self: Engine) -> dict[str, Any]:
        """Counts, size on disk, model and vector format of the index."""
        return layout.index_stats(self.store, self.config.index_dir, self.model_name)

    def documents(self: Engine) -> list[dict[str, Any]]:
        """Indexed sources: ``path``, ``type``, ``documents``, ``pages``, ``chunks``,
        ``ingested_at`` (epoch seconds), ``complete`` (False while partly ingested)."""
        return self.store.source_summaries()

    def delete(self: Engine, source_or_doc_id: str) -> dict[str, Any]:
        """Remove one source (by path) or one document (by id); the index version moves
        on, so cached results that included it become unreachable at once."""
        store = self.store
        # not in the middle of an ingest writing that source
        with layout.ingest_lock(self.config.index_dir):
            return store.delete(source_or_doc_id)

    def _require_cache(self: Engine) -> Cache:
        self.require_index()
        cache = self.cache
        if cache is None:
            raise ConfigError("the query cache is off (cache=False / SNAPRAG_CACHE=0)")
        return cache

    def cache_report(self: Engine) -> dict[str, Any]:
        """Hits and misses per tier and namespace, entries and bytes."""
        return self._require_cache().report()

    def cache_clear(self: Engine) -> dict[str, int | None]:
        """Drop every cached entry; per tier the entries removed (None: unreachable)."""
        return self._require_cache().clear()

    def warm_cache(self: Engine, top: int = 100) -> list[dict[str, Any]]:
        """Run the ``top`` most frequent logged queries so that their results are cached.

        Returns the warmed queries (``kind``, ``text``, ``count``, ``params``), most frequent
        first. Warming is not counted in the query log.
        """
        from .cache.layer import warm

        cache = self._require_cache()
        return warm(cache, self.searcher, self.answerer, top)
