"""The search side of the Milvus store: dense and BM25 search run in Milvus.

Both implement the index contracts (:class:`~snaprag.index.base.VectorIndex`,
:class:`~snaprag.index.base.LexicalIndex`) over **chunk ids**: a hit's "row" is its chunk id,
so nothing is loaded into this process. Filters arrive as a
:class:`~snaprag.index.base.RowFilter` whose :class:`~snaprag.types.Filters` are turned into
a Milvus expression (once per filter and index version).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import IndexStateError
from ..base import RowFilter, RowScores, mask_of
from .bm25 import query_weights
from .names import term_id

#: Milvus returns at most this many hits per query
MAX_K = 16384
_NOTHING: RowScores = (np.zeros(0, np.int64), np.zeros(0, np.float32))


class _Expressions:
    """Filter expressions of one index version (the source glob is resolved once)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self._cache: OrderedDict[Any, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, filters: RowFilter | np.ndarray | None) -> str | None:
        if filters is None:
            return None
        if not isinstance(filters, RowFilter):
            raise IndexStateError(
                "the Milvus indexes take Filters (a RowFilter), not a row mask: their rows "
                "are chunk ids, not positions"
            )
        f = filters.filters
        with self._lock:
            if f in self._cache:
                return self._cache[f]
        expr = self.reader.filter_expression(f.source, f.type)
        with self._lock:
            self._cache[f] = expr
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return expr


def _results(hits: Any) -> list[RowScores]:
    out = []
    for per_query in hits:
        ids = np.fromiter((h["id"] for h in per_query), dtype=np.int64, count=len(per_query))
        scores = np.fromiter(
            (h["distance"] for h in per_query), dtype=np.float32, count=len(per_query)
        )
        out.append((ids, scores))
    return out


class MilvusVectorIndex:
    """Nearest chunks by inner product, searched in Milvus (rows are chunk ids)."""

    kind = "milvus"

    def __init__(self, reader: Any, n: int, expressions: _Expressions) -> None:
        self.reader = reader
        self._n = n
        self._expressions = expressions

    def count(self) -> int:
        return self._n

    def add(self, vectors: np.ndarray) -> np.ndarray:
        raise IndexStateError("chunks reach Milvus through the store (append_chunks)")

    def delete(self, rows: np.ndarray) -> None:
        raise IndexStateError("chunks leave Milvus through the store (delete)")

    def save(self, directory: Path) -> None:
        """Nothing to save: the index lives in Milvus."""

    def search_many(
        self, queries: np.ndarray, k: int, filters: RowFilter | None = None
    ) -> list[RowScores]:
        if not len(queries) or not self._n:
            return [_NOTHING] * len(queries)
        hits = self.reader.client.search(
            self.reader._col("chunks"),
            data=np.asarray(queries, dtype=np.float32).tolist(),
            anns_field="vector",
            limit=min(k, MAX_K),
            filter=self._expressions.of(filters) or "",
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        return _results(hits)


class MilvusLexicalIndex:
    """BM25 searched in Milvus over the chunks' sparse weights (see :mod:`.bm25`)."""

    def __init__(self, reader: Any, n: int, expressions: _Expressions) -> None:
        self.reader = reader
        self._n = n
        self._expressions = expressions

    def __len__(self) -> int:
        return self._n

    def save(self, directory: Path | str) -> None:
        """Nothing to save: the index lives in Milvus."""

    def search_many(
        self,
        queries: Sequence[Sequence[str]],
        k: int,
        filter_mask: RowFilter | np.ndarray | None = None,
    ) -> list[RowScores]:
        results = [_NOTHING] * len(queries)
        if not self._n or not queries:
            return results
        if mask_of(filter_mask) is not None and not isinstance(filter_mask, RowFilter):
            self._expressions.of(filter_mask)  # raises: a bare mask means nothing here
        reader = self.reader
        tids = sorted({term_id(t) for q in queries for t in q})
        dfs = {
            int(r["tid"]): int(r["df"])
            for r in reader.client.get(reader._col("terms"), ids=tids, output_fields=["df"])
        } if tids else {}  # fmt: skip
        n_docs = int(reader.get_meta("bm25_docs") or 0)
        vectors = [query_weights(q, n_docs, dfs) for q in queries]
        todo = [i for i, v in enumerate(vectors) if v]
        if not todo:
            return results
        hits = reader.client.search(
            reader._col("chunks"),
            data=[vectors[i] for i in todo],
            anns_field="sparse",
            limit=min(k, MAX_K),
            filter=self._expressions.of(filter_mask) or "",
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        for i, (ids, scores) in zip(todo, _results(hits), strict=True):
            keep = scores > 0
            order = np.lexsort((ids[keep], -scores[keep]))  # best first, ties by lower id
            results[i] = (ids[keep][order], scores[keep][order])
        return results


def search_indexes(reader: Any) -> tuple[MilvusVectorIndex, MilvusLexicalIndex, int]:
    """The dense and BM25 indexes of the store's current version, and its chunk count."""
    n = reader.count("chunks")
    expressions = _Expressions(reader)
    return (
        MilvusVectorIndex(reader, n, expressions),
        MilvusLexicalIndex(reader, n, expressions),
        n,
    )
