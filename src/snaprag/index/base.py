"""The storage contracts: where documents and chunks live, and the indexes that search them.

Three roles, each a Protocol that a backend implements (one file per backend, picked by
name in :mod:`snaprag.index.factory`):

* :class:`DocumentStore`: sources, documents, chunks (text, page, offsets, BM25 terms,
  vectors) and the index's metadata, with a **version** that increases in the same
  transaction as every change and a **generation** (version plus a random id) that cache
  keys carry, so nothing computed from old data is ever served. The embedded default is
  SQLite (:class:`snaprag.index.store.Store`).
* :class:`VectorIndex`: nearest neighbours of many query vectors at once over row
  positions ``0..count-1`` (exact matrix product, HNSW).
* :class:`LexicalIndex`: BM25 over the same rows (:class:`snaprag.index.bm25.Bm25Index`).

Common rules: constructors are cheap; heavy state loads lazily; searching is read-only
and thread-safe (many threads may search one instance); writes are the caller's to
serialise (one ingest writer per index). Filters travel as one typed
:class:`~snaprag.types.Filters` object; the in-memory indexes receive it already
translated into a boolean row mask (:class:`RowFilter`), a database backend translates
it into its own expression.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..types import Filters

#: per query: row positions (int64) and scores (float32), best first
RowScores = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """What a search hit needs to know about a chunk."""

    row_id: int
    doc_id: str
    seq: int
    text: str
    page: int | None
    title: str
    type: str
    source: str
    section: str = ""


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk ready to be written: text, BM25 terms and its embedding."""

    seq: int
    text: str
    page: int | None
    char_start: int
    char_end: int
    tokens: list[str]
    vector: np.ndarray
    section: str = ""  # the heading path (``A > B``)


@dataclass(frozen=True)
class IndexArrays:
    """Everything the in-memory indexes are built from, as of one generation."""

    version: int
    generation: str
    row_ids: np.ndarray
    vectors: np.ndarray
    tokens: list[list[str]]


@runtime_checkable
class DocumentStore(Protocol):
    """Documents, chunks and metadata of one index, with its version and generation.

    Thread-safety: every method may be called from any thread; writes are serialised
    inside the store (one transaction at a time) and readers never block on them.

    Reading (search): ``version``, ``generation``, ``get_meta``, ``counts``,
    ``read_index``, ``chunk_rows``, ``filtered_row_ids``, ``source_summaries``.
    Writing (the ingest's commit stage, one writer): every change happens inside
    ``transaction(bump=True)``, whose handle ``tx`` is passed back to the write methods;
    a document may span several transactions (``begin_document`` marks it pending,
    ``append_chunks`` adds to it, ``finish_document`` records its hash), so a killed
    ingest resumes after its last committed chunk. A read-only store raises
    :class:`~snaprag.errors.IndexStateError` from ``transaction``.
    """

    path: Path

    @property
    def version(self) -> int:
        """Increases with every committed change (a batch, a delete, a prune)."""
        ...

    @property
    def generation(self) -> str:
        """``version:random-id``: differs between two copies of an index changed apart."""
        ...

    @property
    def read_only(self) -> bool:
        """True when the store was opened without write access (searching still works)."""
        ...

    # ---- reading
    def get_meta(self, key: str) -> str | None: ...

    def counts(self) -> dict[str, int]:
        """``sources``, ``documents``, ``chunks``, ``partial_sources``."""
        ...

    def read_index(self, dim: int, dtype: str) -> IndexArrays:
        """Row ids, float32 vectors and BM25 terms of every chunk with the version and
        generation they belong to, read in one transaction."""
        ...

    def chunk_rows(self, row_ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Chunk rows by row id; missing ids are left out."""
        ...

    def filtered_row_ids(self, source: str | None, type_: str | None) -> np.ndarray:
        """Row ids (sorted) of the chunks that :class:`~snaprag.types.Filters` allows."""
        ...

    def sources(self) -> list[str]: ...

    def source(self, path: str) -> tuple[int, str | None] | None:
        """``(source id, content hash)`` of an indexed source (hash None while partial)."""
        ...

    def source_summaries(self) -> list[dict[str, Any]]: ...

    def document_hashes(self, source_id: int) -> dict[str, str]: ...

    def pending_documents(self, source_id: int) -> dict[str, tuple[str, int]]: ...

    def foreign_document(self, doc_ids: Sequence[str], source: str) -> tuple[str, str] | None: ...

    def document_owner(self, doc_id: str) -> str | None: ...

    # ---- writing
    def set_meta(self, values: dict[str, object]) -> None: ...

    def transaction(self, bump: bool = False) -> AbstractContextManager[Any]: ...

    def upsert_source(self, tx: Any, path: str, type_: str, size: int, mtime: float) -> int: ...

    def begin_document(
        self,
        tx: Any,
        source_id: int,
        doc_id: str,
        title: str,
        type_: str,
        resume_key: str,
        n_chars: int,
    ) -> None: ...

    def append_chunks(
        self,
        tx: Any,
        source_id: int,
        doc_id: str,
        chunks: Iterable[StoredChunk],
        vector_dtype: str,
    ) -> None: ...

    def finish_document(self, tx: Any, source_id: int, doc_id: str, doc_hash: str) -> None: ...

    def delete_documents_except(self, tx: Any, source_id: int, keep: Sequence[str]) -> None: ...

    def finish_source(self, tx: Any, source_id: int, content_hash: str) -> None: ...

    def delete_source(self, tx: Any, path: str) -> int: ...

    def delete(self, source_or_doc_id: str) -> dict[str, Any]:
        """Remove one source (by path) or one document (by id), in one transaction."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SearchingStore(Protocol):
    """A :class:`DocumentStore` that searches where its data lives (Milvus): nothing is
    loaded into the process; its indexes' rows are chunk ids and filters reach them as
    :class:`RowFilter` objects whose ``filters`` the backend translates (``mask`` None)."""

    def search_indexes(self) -> tuple[VectorIndex, LexicalIndex, int]:
        """The dense and lexical indexes of the current version, and its chunk count."""
        ...


class VectorIndexClass(Protocol):
    """How a vector index backend is built and loaded (what the factory returns)."""

    def build(self, vectors: np.ndarray, threads: int = 1) -> VectorIndex: ...

    def load(self, directory: Path, dim: int, n: int) -> VectorIndex: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest neighbours by inner product (vectors are L2-normalised: cosine)."""

    #: the factory name of the backend (``exact``, ``hnsw``)
    kind: str

    def count(self) -> int:
        """Rows that can be returned (added minus deleted)."""
        ...

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append rows; returns their positions."""
        ...

    def delete(self, rows: np.ndarray) -> None:
        """Never return these row positions again."""
        ...

    def search_many(
        self, queries: np.ndarray, k: int, filters: RowFilter | None = None
    ) -> list[RowScores]:
        """The ``k`` best rows per query, best first; ties broken by lower row."""
        ...

    def save(self, directory: Path) -> None: ...


@runtime_checkable
class LexicalIndex(Protocol):
    """BM25 over token lists; rows are the positions given to ``build``."""

    def __len__(self) -> int: ...

    def search_many(
        self,
        queries: Sequence[Sequence[str]],
        k: int,
        filter_mask: np.ndarray | RowFilter | None = None,
    ) -> list[RowScores]: ...

    def save(self, directory: Path | str) -> None: ...


class RowFilter:
    """:class:`~snaprag.types.Filters` translated for in-memory indexes: a row mask.

    Built by the snapshot that owns the row order; ``mask`` is a boolean array with one
    entry per row (True: may be returned), or None for a store that searches itself
    (:class:`SearchingStore`), which reads ``filters``.
    """

    __slots__ = ("filters", "mask")

    def __init__(self, filters: Filters, mask: np.ndarray | None) -> None:
        self.filters = filters
        self.mask = mask


def source_candidates(source_or_doc_id: str) -> list[str]:
    """The source paths a delete's argument may name: as given, and as it resolves
    (relative to the working directory, symlinks followed) when that differs."""
    wanted = str(source_or_doc_id)
    try:
        resolved = os.path.realpath(wanted)
    except (OSError, ValueError):  # a NUL byte cannot name a file
        return [wanted]
    return [wanted, resolved] if resolved and resolved != wanted else [wanted]


def mask_of(filters: RowFilter | np.ndarray | None) -> np.ndarray | None:
    """The boolean row mask of a :class:`RowFilter` (a bare mask is accepted as is)."""
    if filters is None or isinstance(filters, np.ndarray):
        return filters
    return filters.mask
