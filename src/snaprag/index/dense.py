"""Dense vector indexes (:class:`~snaprag.index.base.VectorIndex`): exact and HNSW.

Both take many queries at once and return, per query, row positions and cosine scores
(vectors are L2-normalised, so the inner product is the cosine). Both save into and load
from a directory: ``vectors.npy`` (the float32 matrix; HNSW keeps it for filtered
searches, which scan the allowed rows exactly), ``hnsw.bin`` for the graph and
``deleted.npy`` when rows were deleted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fs import atomic_write
from .base import RowFilter, RowScores, mask_of

VECTORS = "vectors.npy"
GRAPH = "hnsw.bin"
DELETED = "deleted.npy"
_EMPTY: RowScores = (np.zeros(0, np.int64), np.zeros(0, np.float32))


def _save_array(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.save(fh, np.ascontiguousarray(array)))


class Tombstones:
    """Deleted rows of an in-memory vector index, as a boolean mask (None while none is):
    the count of live rows, growth with added rows, deletes, and the rows a search may
    return. The index gives ``__len__`` and calls :meth:`_keep_deleted` when built."""

    _deleted: np.ndarray | None

    def __len__(self) -> int:  # pragma: no cover - every index defines it
        raise NotImplementedError

    def _keep_deleted(self, deleted: np.ndarray | None) -> None:
        #: True for deleted rows (None: none deleted)
        self._deleted = deleted if deleted is not None and deleted.any() else None

    def count(self) -> int:
        return len(self) - (int(self._deleted.sum()) if self._deleted is not None else 0)

    def _grow_deleted(self, added: int) -> None:
        if self._deleted is not None:
            self._deleted = np.concatenate([self._deleted, np.zeros(added, bool)])

    def delete(self, rows: np.ndarray) -> None:
        if self._deleted is None:
            self._deleted = np.zeros(len(self), bool)
        self._deleted[np.asarray(rows, dtype=np.int64)] = True

    def _allowed(self, filters: RowFilter | np.ndarray | None) -> np.ndarray | None:
        mask = mask_of(filters)
        if self._deleted is None:
            return mask
        alive = ~self._deleted
        return alive if mask is None else alive & mask


class ExactIndex(Tombstones):
    """Brute-force search over a contiguous float32 matrix: exact and, to ~10^5 rows, fast."""

    kind = "exact"

    def __init__(self, matrix: np.ndarray, deleted: np.ndarray | None = None) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._keep_deleted(deleted)

    @classmethod
    def build(cls, matrix: np.ndarray, threads: int = 1) -> ExactIndex:
        return cls(matrix)

    @classmethod
    def load(cls, directory: Path, dim: int, n: int) -> ExactIndex:
        matrix = np.load(Path(directory) / VECTORS, mmap_mode="r")
        _check_shape(matrix, dim, n)
        return cls(np.asarray(matrix), _load_deleted(directory, n))

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def add(self, vectors: np.ndarray) -> np.ndarray:
        start = len(self)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.matrix.shape[1])
        self.matrix = np.ascontiguousarray(np.vstack([self.matrix, vectors]))
        self._grow_deleted(len(vectors))
        return np.arange(start, len(self), dtype=np.int64)

    def is_deleted(self, row: int) -> bool:
        return self._deleted is not None and bool(self._deleted[row])

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _save_array(directory / VECTORS, self.matrix)
        if self._deleted is not None:
            _save_array(directory / DELETED, self._deleted)

    def search_many(
        self, queries: np.ndarray, k: int, filters: RowFilter | np.ndarray | None = None
    ) -> list[RowScores]:
        n = len(self)
        if n == 0 or k <= 0:
            return [_EMPTY for _ in range(len(queries))]
        scores = queries.astype(np.float32, copy=False) @ self.matrix.T
        allowed = self._allowed(filters)
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
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
        out: list[RowScores] = []
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
    """Approximate search with hnswlib, for indexes too large to scan per query.

    Filtered searches scan the allowed rows exactly: a filter can exclude most of a
    node's graph neighbours, and HNSW's recall collapses with it.
    """

    kind = "hnsw"
    M = 16
    EF_CONSTRUCTION = 200
    EF_SEARCH = 128

    def __init__(self, index: object, exact: ExactIndex) -> None:
        self.index = index
        self._exact = exact

    @classmethod
    def build(cls, matrix: np.ndarray, threads: int = 1) -> HnswIndex:
        import hnswlib

        n, dim = matrix.shape
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=max(n, 1), M=cls.M, ef_construction=cls.EF_CONSTRUCTION)
        index.set_num_threads(threads)
        if n:
            index.add_items(matrix, np.arange(n))
        index.set_ef(cls.EF_SEARCH)
        return cls(index, ExactIndex(matrix))

    @classmethod
    def load(cls, directory: Path, dim: int, n: int) -> HnswIndex:
        import hnswlib

        exact = ExactIndex.load(directory, dim, n)
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(Path(directory) / GRAPH), max_elements=max(n, 1))
        if index.get_current_count() != n:
            raise ValueError(f"HNSW graph holds {index.get_current_count()} rows, not {n}")
        index.set_ef(cls.EF_SEARCH)
        return cls(index, exact)

    def __len__(self) -> int:
        return len(self._exact)

    def count(self) -> int:
        return self._exact.count()

    def add(self, vectors: np.ndarray) -> np.ndarray:
        rows = self._exact.add(vectors)
        index = self.index
        needed = len(self._exact)
        if needed > index.get_max_elements():  # type: ignore[attr-defined]
            index.resize_index(max(needed, 2 * index.get_max_elements()))  # type: ignore[attr-defined]
        index.add_items(np.asarray(vectors, np.float32), rows)  # type: ignore[attr-defined]
        return rows

    def delete(self, rows: np.ndarray) -> None:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        fresh = [int(r) for r in rows if not self._exact.is_deleted(int(r))]
        self._exact.delete(rows)
        for row in fresh:  # hnswlib refuses to delete a row twice; deleting is idempotent here
            self.index.mark_deleted(row)  # type: ignore[attr-defined]

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self._exact.save(directory)
        tmp = directory / f".{GRAPH}.tmp"
        self.index.save_index(str(tmp))  # type: ignore[attr-defined]
        tmp.replace(directory / GRAPH)

    def search_many(
        self, queries: np.ndarray, k: int, filters: RowFilter | np.ndarray | None = None
    ) -> list[RowScores]:
        if mask_of(filters) is not None:
            return self._exact.search_many(queries, k, filters)
        k = min(k, self.count())
        if k <= 0:
            return [_EMPTY for _ in range(len(queries))]
        self.index.set_ef(max(self.EF_SEARCH, k))  # type: ignore[attr-defined]
        labels, dists = self.index.knn_query(queries, k=k)  # type: ignore[attr-defined]
        return [
            (lab.astype(np.int64), (1.0 - d).astype(np.float32))
            for lab, d in zip(labels, dists, strict=True)
        ]


def _check_shape(matrix: np.ndarray, dim: int, n: int) -> None:
    if matrix.ndim != 2 or matrix.shape != (n, dim):
        raise ValueError(f"vectors have shape {matrix.shape}, expected ({n}, {dim})")


def _load_deleted(directory: Path, n: int) -> np.ndarray | None:
    path = Path(directory) / DELETED
    if not path.exists():
        return None
    deleted = np.load(path)
    if deleted.shape != (n,):
        raise ValueError(f"deleted rows mask has shape {deleted.shape}, expected ({n},)")
    return deleted.astype(bool)
