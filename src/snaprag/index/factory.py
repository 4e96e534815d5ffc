"""Storage backends by name: the document store and the dense vector index.

==============  ==================================================================
store           ``sqlite``: one SQLite file per index directory (the default)
vector index    ``exact`` (one matrix product), ``hnsw`` (hnswlib graph), ``auto``
                (exact below ``hnsw_min_chunks`` chunks, HNSW above), ``int8`` and
                ``binary`` (quantized codes in memory, candidates rescored from float16
                vectors memory-mapped from disk: index/quantized.py), ``usearch`` (HNSW
                over int8 codes, rescored the same way; extra ``edge``)
==============  ==================================================================

Optional backends are imported only when named, and a missing dependency is an error
that names the extra to install.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, IndexStateError
from .base import DocumentStore, VectorIndexClass

STORES = ("sqlite",)
VECTOR_INDEXES = ("exact", "hnsw", "int8", "binary", "usearch")


def vector_index_class(name: str) -> VectorIndexClass:
    """The class of the vector index ``name`` (it builds with ``build(matrix, threads)``
    and loads with ``load(directory, dim, n)``)."""
    if name == "exact":
        from .dense import ExactIndex

        return ExactIndex
    if name == "hnsw":
        try:
            import hnswlib  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a core dependency today
            raise ConfigError("the hnsw vector index needs hnswlib: pip install hnswlib") from exc
        from .dense import HnswIndex

        return HnswIndex
    if name == "int8":
        from .quantized import Int8Index

        return Int8Index
    if name == "binary":
        from .quantized import BinaryIndex

        return BinaryIndex
    if name == "usearch":
        from .usearch_hnsw import UsearchIndex, _usearch

        _usearch()  # a missing extra fails here, naming it
        return UsearchIndex
    raise ConfigError(f"unknown vector index {name!r}; valid: {', '.join(VECTOR_INDEXES)}")


def memory_mapped(setting: str) -> bool:
    """Whether the backend ``setting`` searches its snapshot files memory-mapped (so an
    ingest should write the snapshot for the searching processes to map)."""
    if setting not in VECTOR_INDEXES:
        return False
    return bool(getattr(vector_index_class(setting), "memory_mapped", False))


def choose_vector_index(setting: str, chunks: int, hnsw_min_chunks: int) -> str:
    """Resolve ``auto`` by the number of chunks; other settings name themselves."""
    if setting == "auto":
        return "hnsw" if chunks >= hnsw_min_chunks else "exact"
    vector_index_class(setting)  # an unknown name fails here, with the valid ones
    return setting


def open_store(name: str, path: Path, create: bool) -> DocumentStore:
    """The document store ``name`` at ``path`` (an index directory's database file);
    ``create`` False: the index must exist already."""
    if name == "sqlite":
        from .store import Store

        if not create and not Path(path).exists():
            raise IndexStateError(f"no index database at {path}")
        return Store(path)
    raise ConfigError(f"unknown store {name!r}; valid: {', '.join(STORES)}")
