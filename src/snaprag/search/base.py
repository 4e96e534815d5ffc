"""The search contracts: a searcher (query texts in, hits and timings out) and a reranker.

:class:`Searcher` is what the engine, the cache layer and (later) the server call; the
hybrid :class:`~snaprag.search.retriever.Retriever` is the implementation, and
:class:`~snaprag.cache.layer.CachedSearcher` wraps any searcher with the query cache.

:class:`Reranker` is an optional second stage over the first hits of a query; backends are
built by name in :mod:`snaprag.search.factory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..types import Filters, Hit, SearchBatch

MODES = ("hybrid", "dense", "bm25")


@runtime_checkable
class Searcher(Protocol):
    """Finds the best chunks for many queries at once.

    Thread-safe: many threads may search one instance; the first search (or
    :meth:`warm_up`) loads models and indexes exactly once.
    """

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
    ) -> SearchBatch:
        """One hit list per query (``k`` chunks at most), with the batch's stage timings."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors of the searcher's embedding model (the semantic cache uses them)."""
        ...

    def dense_blind_to(self, query: str) -> bool:
        """Whether the embedding model cannot read this query's language."""
        ...

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Reranker(Protocol):
    """A second stage that reorders the first ``top_n`` hits of a query.

    Cheap to construct; ``warm_up`` loads its model (safe to call twice); thread-safe.
    ``fingerprint`` names the model and settings (part of cache keys).
    """

    @property
    def fingerprint(self) -> str: ...

    def warm_up(self) -> None: ...

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int | None = None) -> list[Hit]: ...
