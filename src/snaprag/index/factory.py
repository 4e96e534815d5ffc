"""Storage backends by name: the document store and the dense vector index.

==============  ==================================================================
store           ``sqlite``: one SQLite file per index directory (the default);
                ``milvus``: collections in a Milvus server or Milvus Lite file
                (``milvus_uri``; extra ``milvus``), searched there
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

from typing import TYPE_CHECKING

from ..errors import ConfigError, IndexStateError
from .base import DocumentStore, VectorIndexClass
from .layout import DB_NAME

if TYPE_CHECKING:
    from ..config import Config

STORES = ("sqlite", "milvus")
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


def open_store(config: Config, create: bool) -> DocumentStore:
    """The document store of ``config`` (``store``, ``index_dir``, ``milvus_*``); ``create``
    False: the index must exist already (else an :class:`IndexStateError` that says how to
    make it). The index directory is made when needed: it holds the local caches."""
    if config.store == "sqlite":
        from .store import Store

        path = config.index_dir / DB_NAME
        if not path.exists():
            if not create:
                raise IndexStateError(
                    f"no index at {config.index_dir}: run 'snaprag ingest PATH' "
                    "first (or pass --index DIR / set SNAPRAG_INDEX)"
                )
            config.index_dir.mkdir(parents=True, exist_ok=True)
        return Store(path)
    if config.store == "milvus":
        from .milvus.store import MilvusStore

        store = MilvusStore(
            config.milvus_uri, config.index_dir, config.milvus_token, config.milvus_prefix, create
        )
        config.index_dir.mkdir(parents=True, exist_ok=True)
        return store
    raise ConfigError(f"unknown store {config.store!r}; valid: {', '.join(STORES)}")


def store_exists(config: Config) -> bool:
    """Whether the index of ``config`` exists (for Milvus: asks the server)."""
    if config.store == "milvus":
        from .milvus import schema
        from .milvus.names import index_name

        client = schema.connect(config.milvus_uri, config.milvus_token)
        try:
            return schema.exists(client, index_name(config.milvus_prefix, config.index_dir))
        finally:
            client.close()
    return (config.index_dir / DB_NAME).exists()
