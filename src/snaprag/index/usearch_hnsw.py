"""HNSW over int8 codes with usearch (extra ``edge``), rescored from float16 on disk.

For indexes too large to scan on a small machine (10^6 rows: float32 vectors alone are
1.5 GB at 384-d). The graph stores the :class:`~snaprag.index.quantized.Int8Index` codes
(one scale per index, so the codes' inner product orders rows like the cosine); a query is
quantized with the same scale, the graph gives ``k * oversample`` candidates and those are
rescored from the float16 vectors, memory-mapped (or read by position: ``load(...,
positioned=True)``, as :class:`~snaprag.index.quantized.QuantizedIndex`). A loaded index
is a memory-mapped view of ``usearch.bin`` (``Index.restore(view=True)``): opening costs
no copy and the pages are shared between processes.

Like :class:`~snaprag.index.dense.HnswIndex`, a filtered search scans the allowed rows
exactly instead of walking a graph whose neighbours the filter may mostly exclude.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from ..fs import atomic_write_text
from .base import RowFilter, RowScores, mask_of
from .dense import DELETED, Tombstones, _load_deleted, _save_array
from .quantized import HALF, Int8Index, load_half
from .rowfile import PositionedArray

GRAPH = "usearch.bin"
META = "usearch.json"
_EMPTY: RowScores = (np.zeros(0, np.int64), np.zeros(0, np.float32))
#: rows rescored at a time by a filtered (exact) search
_BLOCK = 65536


def _usearch() -> Any:
    # ONNX Runtime first: importing onnxruntime after usearch 2.26 crashes the process
    # (a segmentation fault while onnxruntime loads), and a search opens its snapshot,
    # with this index, before its query encoder
    with contextlib.suppress(ImportError):  # a process that never embeds: nothing to order
        import onnxruntime  # noqa: F401
    try:
        from usearch import index
    except ImportError as exc:
        raise ConfigError(
            "the usearch vector index needs usearch: pip install 'snaprag[edge]'"
        ) from exc
    return index


class UsearchIndex(Tombstones):
    """usearch HNSW graph over int8 codes, candidates rescored from float16 vectors."""

    kind = "usearch"
    memory_mapped: ClassVar[bool] = True
    positioned_rescoring: ClassVar[bool] = True
    #: graph degree, construction and search breadth (docs/benchmarks.md, "Edge profile":
    #: 1M clustered 384-d vectors, recall@10 against exact float32 search)
    #: 1M vectors: breadth 64 recall .86, 128 .94, 192 .97 (p50 0.8 ms on one busy core)
    CONNECTIVITY: ClassVar[int] = 16
    EXPANSION_ADD: ClassVar[int] = 128
    EXPANSION_SEARCH: ClassVar[int] = 192
    OVERSAMPLE: ClassVar[int] = 3

    def __init__(
        self,
        graph: Any,
        half: np.ndarray | PositionedArray,
        scale: float,
        deleted: np.ndarray | None = None,
    ) -> None:
        self.graph = graph
        self.half = half
        self.scale = float(scale)
        self.oversample = self.OVERSAMPLE
        self._keep_deleted(deleted)

    @classmethod
    def new_graph(cls, dim: int) -> Any:
        return _usearch().Index(
            ndim=dim,
            metric=_usearch().MetricKind.IP,
            dtype="i8",
            connectivity=cls.CONNECTIVITY,
            expansion_add=cls.EXPANSION_ADD,
            expansion_search=cls.EXPANSION_SEARCH,
        )

    @classmethod
    def build(
        cls,
        matrix: np.ndarray,
        threads: int = 1,
        progress: Callable[[int, int], None] | None = None,
        batch: int = 20_000,
    ) -> UsearchIndex:
        """Build over ``matrix`` (float32 rows); ``progress(done, total)`` after each batch
        of ``batch`` rows (a million rows take minutes)."""
        matrix = np.asarray(matrix, dtype=np.float32)
        n, dim = matrix.shape
        scale = Int8Index.fit_scale(matrix)
        graph = cls.new_graph(dim)
        for start in range(0, n, batch):
            part = matrix[start : start + batch]
            keys = np.arange(start, start + len(part), dtype=np.uint64)
            graph.add(keys, Int8Index.encode(part, scale), threads=max(threads, 1))
            if progress is not None:
                progress(start + len(part), n)
        return cls(graph, matrix.astype(np.float16), scale)

    @classmethod
    def load(cls, directory: Path, dim: int, n: int, positioned: bool = False) -> UsearchIndex:
        directory = Path(directory)
        meta = json.loads((directory / META).read_text())
        half = load_half(directory / HALF, positioned)
        if half.shape != (n, dim) or half.dtype != np.float16:
            raise ValueError(f"float16 vectors have shape {half.shape}, expected ({n}, {dim})")
        graph = _usearch().Index.restore(str(directory / GRAPH), view=True)
        if graph is None or len(graph) != n or graph.ndim != dim:
            raise ValueError(f"usearch graph does not hold {n} rows of {dim} dimensions")
        graph.expansion_search = cls.EXPANSION_SEARCH  # not kept in the file
        return cls(graph, half, float(meta["scale"]), _load_deleted(directory, n))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{GRAPH}.tmp"
        self.graph.save(str(tmp))
        tmp.replace(directory / GRAPH)
        _save_array(directory / HALF, self.half)
        atomic_write_text(directory / META, json.dumps({"kind": self.kind, "scale": self.scale}))
        if self._deleted is not None:
            _save_array(directory / DELETED, self._deleted)

    def __len__(self) -> int:
        return int(self.half.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes the graph holds (codes and links), as usearch reports them."""
        return int(self.graph.memory_usage)

    def add(self, vectors: np.ndarray) -> np.ndarray:
        start = len(self)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.half.shape[1])
        rows = np.arange(start, start + len(vectors), dtype=np.int64)
        self.graph.add(rows.astype(np.uint64), Int8Index.encode(vectors, self.scale))
        self.half = np.concatenate([self.half, vectors.astype(np.float16)])
        self._grow_deleted(len(vectors))
        return rows

    # deleted rows stay in the graph (a memory-mapped view cannot change); results skip
    # them (Tombstones.delete)

    def search_many(
        self, queries: np.ndarray, k: int, filters: RowFilter | np.ndarray | None = None
    ) -> list[RowScores]:
        queries = np.asarray(queries, dtype=np.float32)
        k = min(k, self.count())
        if k <= 0:
            return [_EMPTY for _ in range(len(queries))]
        mask = mask_of(filters)
        if mask is not None:
            return [self._scan(q, k, mask) for q in queries]
        # deleted rows come back from the graph too: ask for enough to drop them
        n_cand = min(len(self), k * self.oversample + (len(self) - self.count()))
        codes = Int8Index.encode(queries, self.scale)
        found = self.graph.search(codes, n_cand, threads=1)
        if hasattr(found, "counts"):  # BatchMatches: rows padded past each query's count
            keys, counts = np.atleast_2d(found.keys), np.atleast_1d(found.counts)
        else:  # one query gives a Matches of exactly what was found
            keys, counts = np.atleast_2d(found.keys), np.array([len(found.keys)])
        out = []
        for q, row_keys, count in zip(queries, keys, counts, strict=True):
            rows = row_keys[: int(count)].astype(np.int64)
            if self._deleted is not None:
                rows = rows[~self._deleted[rows]]
            out.append(self._rescore(q, rows, k))
        return out

    def _rescore(self, query: np.ndarray, rows: np.ndarray, k: int) -> RowScores:
        if len(rows) == 0:
            return _EMPTY
        rows = np.sort(rows)
        scores = self.half[rows].astype(np.float32) @ query
        order = np.lexsort((rows, -scores))[:k]
        return rows[order], scores[order].astype(np.float32)

    def _scan(self, query: np.ndarray, k: int, mask: np.ndarray) -> RowScores:
        allowed = self._allowed(mask)
        best_rows, best_scores = _EMPTY
        for start in range(0, len(self), _BLOCK):
            rows = np.flatnonzero(allowed[start : start + _BLOCK]) + start
            if len(rows):
                rows_k, scores_k = self._rescore(query, rows, k)
                best_rows = np.concatenate([best_rows, rows_k])
                best_scores = np.concatenate([best_scores, scores_k])
        order = np.lexsort((best_rows, -best_scores))[:k]
        return best_rows[order], best_scores[order]
