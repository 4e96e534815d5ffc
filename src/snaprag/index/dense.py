"""Dense vector indexes: exact (one matrix product) and HNSW (hnswlib).

Both take many queries at once and return, per query, row positions and cosine scores
(vectors are L2-normalised, so the inner product is the cosine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SearchResult = tuple[np.ndarray, np.ndarray]


class ExactIndex:
    """Brute-force search over a contiguous float32 matrix: exact and, to ~10^5 rows, fast."""

    kind = "exact"

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def search_many(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> list[SearchResult]:
        n = len(self)
        if n == 0 or k <= 0:
            empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
            return [empty for _ in range(len(queries))]
        scores = queries.astype(np.float32, copy=False) @ self.matrix.T
        if mask is not None:
            scores[:, ~mask] = -np.inf
        k = min(k, n)
        if k < n:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n), (len(queries), n))
        top = np.take_along_axis(scores, part, axis=1)
        if k < n:
            part, top = _lowest_rows_on_ties(scores, part, top, k)
        order = np.lexsort((part, -top), axis=1) if top.size else part
        rows = np.take_along_axis(part, order, axis=1)
        vals = np.take_along_axis(top, order, axis=1)
        out: list[SearchResult] = []
        for r, v in zip(rows, vals, strict=True):
            keep = np.isfinite(v)
            out.append((r[keep].astype(np.int64), v[keep].astype(np.float32)))
        return out


def _lowest_rows_on_ties(
    scores: np.ndarray, part: np.ndarray, top: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where rows tie at the k-th score, keep the lowest row ids, as a full sort would.

    ``argpartition`` keeps an arbitrary subset of rows tied at the cut; this makes top-k a
    prefix of top-(k+1). Only queries with such a tie (rare with real scores) are redone.
    """
    kth = top.min(axis=1)
    tied_total = (scores == kth[:, None]).sum(axis=1)
    tied_kept = (top == kth[:, None]).sum(axis=1)
    for i in np.flatnonzero(tied_total > tied_kept):
        row = scores[i]
        above = np.flatnonzero(row > kth[i])
        equal = np.flatnonzero(row == kth[i])[: k - len(above)]
        part[i] = np.concatenate([above, equal])
        top[i] = row[part[i]]
    return part, top


class HnswIndex:
    """Approximate search with hnswlib, for indexes too large to scan per query."""

    kind = "hnsw"

    def __init__(self, index: object, n: int, matrix: np.ndarray | None = None) -> None:
        self.index = index
        self.n = n
        self._exact = ExactIndex(matrix) if matrix is not None else None

    def __len__(self) -> int:
        return self.n

    @classmethod
    def build(
        cls, matrix: np.ndarray, threads: int = 1, m: int = 16, ef_construction: int = 200
    ) -> HnswIndex:
        import hnswlib

        n, dim = matrix.shape
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=max(n, 1), M=m, ef_construction=ef_construction)
        index.set_num_threads(threads)
        if n:
            index.add_items(matrix, np.arange(n))
        index.set_ef(128)
        return cls(index, n, matrix)

    def save(self, path: Path) -> None:
        self.index.save_index(str(path))  # type: ignore[attr-defined]

    @classmethod
    def load(cls, path: Path, dim: int, n: int, matrix: np.ndarray | None = None) -> HnswIndex:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), max_elements=max(n, 1))
        index.set_ef(128)
        return cls(index, n, matrix)

    def search_many(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> list[SearchResult]:
        if mask is not None and self._exact is not None:
            # a filter can exclude most graph neighbours; scan the allowed rows exactly
            return self._exact.search_many(queries, k, mask)
        k = min(k, self.n)
        if k <= 0:
            empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
            return [empty for _ in range(len(queries))]
        self.index.set_ef(max(128, k))  # type: ignore[attr-defined]
        labels, dists = self.index.knn_query(queries, k=k)  # type: ignore[attr-defined]
        return [
            (lab.astype(np.int64), (1.0 - d).astype(np.float32))
            for lab, d in zip(labels, dists, strict=True)
        ]
