"""Quantized vector indexes for small machines: compact codes in memory, exact rescoring.

==========  =============================================================================
``int8``    one signed byte per dimension with one scale for the whole index (a quarter
            of float32); candidates by the inner product of the codes
``binary``  one bit per dimension, its sign (1/32 of float32); candidates by Hamming
            distance
==========  =============================================================================

A search scans every row's code for ``k * oversample`` candidates, then rescores them
from the float16 vectors (``vectors-f16.npy``), which a loaded snapshot memory-maps: only
the candidates' pages are read from disk, and they are shared between processes. Loaded
with ``positioned=True`` (the low-memory setting) the candidates' rows are read from the
file instead (:mod:`~snaprag.index.rowfile`), so the vectors stay in the page cache and
out of the process's resident memory; the codes, scanned whole by every query, stay
memory-mapped either way. The
rescored scores are the float32 cosines :class:`~snaprag.index.dense.ExactIndex` computes
over the same float16-stored vectors, so when the true top-k is among the candidates the
result is the exact one (measured agreement: docs/benchmarks.md, "Edge profile").

One scale for the whole index keeps the inner product of two int8 codes proportional to
the cosine (a per-row scale would reorder rows); it is taken from a high quantile of the
absolute values rather than the maximum, so one outlier does not squeeze every other
component into a few levels (the clipped outliers are rare and rescoring repairs them).

Files in a snapshot directory: ``codes.npy`` (int8 codes or packed bits),
``vectors-f16.npy``, ``quantized.json`` (kind and scale) and ``deleted.npy`` when rows were
deleted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..fs import atomic_write_text
from .base import RowFilter, RowScores
from .dense import DELETED, Tombstones, _load_deleted, _save_array
from .rowfile import SUPPORTED as _POSITIONED
from .rowfile import PositionedArray

CODES = "codes.npy"
HALF = "vectors-f16.npy"
META = "quantized.json"
_EMPTY: RowScores = (np.zeros(0, np.int64), np.zeros(0, np.float32))
#: rows of int8 codes widened to float32 at a time: a 1.5 MB buffer (384-d) instead of a
#: float32 copy of the whole matrix on every query
_BLOCK = 1024
#: the quantile of |component| mapped to 127 (measured on MiniLM SciFact vectors: the
#: maximum is ~3x this, and scaling by it left most components on a few int8 levels)
_INT8_QUANTILE = 0.9999


class QuantizedIndex(Tombstones):
    """Shared search logic; subclasses say how to encode rows and score codes."""

    kind: ClassVar[str] = ""
    #: a snapshot that built this index searches its saved files, memory-mapped
    memory_mapped: ClassVar[bool] = True
    #: ``load(..., positioned=True)`` reads the rescored rows by position
    positioned_rescoring: ClassVar[bool] = True
    #: candidates rescored per result wanted (see docs/benchmarks.md, "Edge profile")
    OVERSAMPLE: ClassVar[int] = 1
    #: and at least this many, so small k still gets a margin against code noise
    MIN_CANDIDATES: ClassVar[int] = 0

    def __init__(
        self,
        codes: np.ndarray,
        half: np.ndarray | PositionedArray,
        scale: float = 1.0,
        deleted: np.ndarray | None = None,
        oversample: int | None = None,
    ) -> None:
        if len(codes) != len(half):
            raise ValueError(f"{len(codes)} codes but {len(half)} float16 vectors")
        self.codes = codes
        #: float16 vectors, rows as the codes (memory-mapped once loaded from disk)
        self.half = half
        self.scale = float(scale)
        self.oversample = oversample or self.OVERSAMPLE
        self._keep_deleted(deleted)

    # ------------------------------------------------------------------ encoding
    @classmethod
    def encode(cls, matrix: np.ndarray, scale: float) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def fit_scale(cls, matrix: np.ndarray) -> float:
        return 1.0

    def _candidate_scores(self, queries: np.ndarray) -> np.ndarray:
        """Approximate scores (n_queries x rows), higher is better, float32."""
        raise NotImplementedError

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, matrix: np.ndarray, threads: int = 1) -> QuantizedIndex:
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"vectors must be a matrix, got shape {matrix.shape}")
        scale = cls.fit_scale(matrix)
        return cls(cls.encode(matrix, scale), matrix.astype(np.float16), scale)

    @classmethod
    def load(cls, directory: Path, dim: int, n: int, positioned: bool = False) -> QuantizedIndex:
        directory = Path(directory)
        meta = json.loads((directory / META).read_text())
        if meta.get("kind") != cls.kind:
            raise ValueError(f"snapshot holds {meta.get('kind')!r} codes, not {cls.kind!r}")
        codes = np.load(directory / CODES, mmap_mode="r")
        half = load_half(directory / HALF, positioned)
        if half.shape != (n, dim) or half.dtype != np.float16:
            raise ValueError(f"float16 vectors have shape {half.shape}, expected ({n}, {dim})")
        width = cls.code_width(dim)
        if codes.shape != (n, width):
            raise ValueError(f"codes have shape {codes.shape}, expected ({n}, {width})")
        return cls(codes, half, float(meta["scale"]), _load_deleted(directory, n))

    @classmethod
    def code_width(cls, dim: int) -> int:
        return dim

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _save_array(directory / CODES, self.codes)
        _save_array(directory / HALF, self.half)
        atomic_write_text(directory / META, json.dumps({"kind": self.kind, "scale": self.scale}))
        if self._deleted is not None:
            _save_array(directory / DELETED, self._deleted)

    # ------------------------------------------------------------------ contract
    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the codes (what a search reads from every row)."""
        return int(self.codes.nbytes)

    def add(self, vectors: np.ndarray) -> np.ndarray:
        start = len(self)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.half.shape[1])
        self.codes = np.concatenate([self.codes, self.encode(vectors, self.scale)])
        self.half = np.concatenate([self.half, vectors.astype(np.float16)])
        self._grow_deleted(len(vectors))
        return np.arange(start, len(self), dtype=np.int64)

    def search_many(
        self, queries: np.ndarray, k: int, filters: RowFilter | np.ndarray | None = None
    ) -> list[RowScores]:
        n = len(self)
        queries = np.asarray(queries, dtype=np.float32)
        if n == 0 or k <= 0:
            return [_EMPTY for _ in range(len(queries))]
        allowed = self._allowed(filters)
        n_cand = max(k * self.oversample, self.MIN_CANDIDATES, k)
        if allowed is not None and int(allowed.sum()) <= n_cand:
            # few rows pass the filter: rescore all of them, no scan needed
            rows = np.flatnonzero(allowed)
            return [self._rescore(q, rows, k) for q in queries]
        approx = self._candidate_scores(queries)
        if allowed is not None:
            approx[:, ~allowed] = -np.inf
        n_cand = min(n_cand, n)
        if n_cand < n:
            cand = np.argpartition(-approx, n_cand - 1, axis=1)[:, :n_cand]
        else:
            cand = np.broadcast_to(np.arange(n), (len(queries), n))
        out = []
        for q, rows, scores in zip(queries, cand, approx, strict=True):
            rows = rows[np.isfinite(scores[rows])]
            out.append(self._rescore(q, rows, k))
        return out

    def _rescore(self, query: np.ndarray, rows: np.ndarray, k: int) -> RowScores:
        """The ``k`` best of ``rows`` by float32 cosine over the float16 vectors; ties by
        lower row, as exact search."""
        if len(rows) == 0:
            return _EMPTY
        rows = np.sort(rows)  # ascending offsets read the memory-mapped file in order
        vectors = self.half[rows].astype(np.float32)
        scores = vectors @ query
        order = np.lexsort((rows, -scores))[:k]
        return rows[order].astype(np.int64), scores[order].astype(np.float32)


class Int8Index(QuantizedIndex):
    """int8 codes, one scale per index; candidates by the codes' inner product."""

    kind = "int8"
    # SciFact, MiniLM, 300 queries: the top 100 of 2x100 int8 candidates matched exact
    # search's top 100 (docs/benchmarks.md, "Edge profile")
    OVERSAMPLE = 2
    MIN_CANDIDATES = 50

    @classmethod
    def fit_scale(cls, matrix: np.ndarray) -> float:
        if matrix.size == 0:
            return 1.0
        top = float(np.quantile(np.abs(matrix), _INT8_QUANTILE))
        return 127.0 / top if top > 0 else 1.0

    @classmethod
    def encode(cls, matrix: np.ndarray, scale: float) -> np.ndarray:
        return np.clip(np.rint(matrix * scale), -127, 127).astype(np.int8)

    def _candidate_scores(self, queries: np.ndarray) -> np.ndarray:
        # the query stays float: only the rows are quantized, so the query adds no error
        n = len(self)
        out = np.empty((len(queries), n), dtype=np.float32)
        buf = np.empty((min(_BLOCK, n), self.codes.shape[1]), dtype=np.float32)
        qt = np.ascontiguousarray(queries.T)
        for start in range(0, n, _BLOCK):
            block = self.codes[start : start + _BLOCK]
            part = buf[: len(block)]
            np.copyto(part, block, casting="unsafe")
            out[:, start : start + len(block)] = (part @ qt).T
        return out


class BinaryIndex(QuantizedIndex):
    """One bit per dimension (the sign); candidates by Hamming distance."""

    kind = "binary"
    # one bit keeps far less: SciFact, MiniLM needed ~10x candidates for the top 100 to
    # match exact search (docs/benchmarks.md, "Edge profile")
    OVERSAMPLE = 10
    MIN_CANDIDATES = 200

    @classmethod
    def code_width(cls, dim: int) -> int:
        return (dim + 7) // 8

    @classmethod
    def encode(cls, matrix: np.ndarray, scale: float) -> np.ndarray:
        return np.packbits(matrix > 0, axis=1)

    def _candidate_scores(self, queries: np.ndarray) -> np.ndarray:
        width = self.codes.shape[1]
        qbits = self.encode(queries, self.scale)
        words = np.uint64 if width % 8 == 0 else np.uint8  # 8 bytes at a time when it fits
        codes = np.ascontiguousarray(self.codes).view(words)
        out = np.empty((len(queries), len(self)), dtype=np.float32)
        for i, q in enumerate(qbits.view(words)):
            out[i] = -_popcount(codes ^ q).sum(axis=1, dtype=np.int32)
        return out


def load_half(path: Path, positioned: bool) -> np.ndarray | PositionedArray:
    """The float16 vectors of a snapshot: read by position when asked (and the platform
    can), memory-mapped otherwise."""
    if positioned and _POSITIONED:
        return PositionedArray(path)
    return np.load(path, mmap_mode="r")


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8)  # pragma: no cover - numpy 1.x
    return _BYTE_BITS[as_bytes].reshape(*words.shape, -1).sum(axis=-1)


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
