"""In-memory search state for one index version, persisted for fast cold starts.

A snapshot holds the chunk row ids (in row order), the dense :class:`VectorIndex` and the
BM25 :class:`LexicalIndex` of one index version. It is rebuilt from the store when the
version changes and saved under ``<index>/snapshots/v<version>/`` (written to a temporary
directory, then renamed), so a new process loads a few ``.npy`` files instead of decoding
every chunk.

A saved snapshot is trusted only after it is verified: it must belong to this very
database and its current contents (``index_id`` and the store's **generation**, which
changes with every write and differs between two histories that reach the same version
number, e.g. after a database was restored from a backup), have the expected dimension,
kind and row count (for a pair of models, the same split), and every file must load.
A damaged or stale one is rebuilt and written again, so the next process loads it fast again.

An index built with two models (the quality profile, :mod:`snaprag.embed.pair`) stores one
pair vector per chunk; its snapshot splits them into two vector indexes of the same rows:
``dense`` (the first model, saved where a single model's is) and ``second`` (saved under
``second/``), so a query costs one more matrix product, not re-embedding candidates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.pair import split_vectors
from ..errors import IndexStateError
from ..index.base import LexicalIndex, RowFilter, SearchingStore, VectorIndex
from ..index.bm25 import Bm25Index
from ..index.factory import vector_index_class
from ..types import Filters

log = logging.getLogger(__name__)

META = "snapshot.json"
SECOND = "second"  # the second model's vector index, of an index built with two
_MASKS_KEPT = 64  # filtered searches keep their row masks (they cost one SQL query each)


@dataclass
class Snapshot:
    version: int
    row_ids: np.ndarray
    dense: VectorIndex
    bm25: LexicalIndex
    #: the second model's vectors of the same rows (an index built with a pair of models)
    second: VectorIndex | None = None
    _masks: OrderedDict[Filters, RowFilter] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.row_ids)

    def chunk_ids(self, rows: np.ndarray) -> np.ndarray:
        """The chunk ids of row positions."""
        return self.row_ids[rows]

    def rows_for(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Boolean row mask selecting the given chunk ids."""
        return np.isin(self.row_ids, chunk_ids, assume_unique=True)

    def row_filter(self, filters: Filters | None, store: Any) -> RowFilter | None:
        """``filters`` as a row mask of this snapshot (cached per filter)."""
        if not filters:
            return None
        with self._lock:
            found = self._masks.get(filters)
            if found is not None:
                self._masks.move_to_end(filters)
                return found
        mask = self.rows_for(store.filtered_row_ids(filters.source, filters.type))
        row_filter = RowFilter(filters, mask)
        with self._lock:
            self._masks[filters] = row_filter
            while len(self._masks) > _MASKS_KEPT:
                self._masks.popitem(last=False)
        return row_filter


@dataclass
class LiveSnapshot:
    """The search state of a store that searches where its data lives
    (:class:`~snaprag.index.base.SearchingStore`, e.g. Milvus): nothing is loaded, rows are
    chunk ids, and filters go to the indexes as :class:`RowFilter` without a mask."""

    version: int
    dense: VectorIndex
    bm25: LexicalIndex
    size: int
    second: VectorIndex | None = None

    def __len__(self) -> int:
        return self.size

    def chunk_ids(self, rows: np.ndarray) -> np.ndarray:
        return rows

    def row_filter(self, filters: Filters | None, store: Any) -> RowFilter | None:
        return RowFilter(filters, None) if filters else None


def live_snapshot(store: SearchingStore, version: int) -> LiveSnapshot:
    dense, lexical, size = store.search_indexes()
    return LiveSnapshot(version, dense, lexical, size)


def load_snapshot(
    store: Any,
    root: Path,
    version: int,
    dim: int,
    vector_dtype: str,
    kind: str,
    threads: int,
    positioned: bool = False,
    parts: tuple[int, int] | None = None,
) -> Snapshot:
    """The snapshot of ``version``: from disk if saved and valid, else built from the store
    (and saved, unless the index is read-only). ``parts``: the two models' dimensions of an
    index built with a pair of models (their sum is ``dim``).

    ``positioned`` (the low-memory setting): what a query reads only a little of, the BM25
    postings of its terms and the float16 vectors of its rescored candidates, is read from
    the saved files by position rather than memory-mapped, so it stays in the page cache
    instead of the process's resident memory (:mod:`snaprag.index.rowfile`)."""
    index_id = store.get_meta("index_id") or ""
    directory = root / f"v{version}"
    saved = _load_saved(
        directory, index_id, store.generation, dim, kind, positioned=positioned, parts=parts
    )
    if saved is not None:
        return saved
    arrays = store.read_index(dim, vector_dtype)
    arrays_generation = arrays.generation
    bm25 = Bm25Index.build(arrays.tokens)
    cls = vector_index_class(kind)
    second = None
    if parts is None:
        dense = cls.build(arrays.vectors, threads)
    else:
        first_vectors, second_vectors = split_vectors(arrays.vectors, parts)
        dense, second = cls.build(first_vectors, threads), cls.build(second_vectors, threads)
        del first_vectors, second_vectors
    snap = Snapshot(arrays.version, arrays.row_ids, dense, bm25, second)
    del arrays  # the decoded float32 vectors and token lists: gone before any reload
    if not store.read_only:
        try:
            _save(snap, root, index_id, arrays_generation, dim, parts)
        except OSError as exc:  # a full disk: search on, the next process rebuilds
            log.warning("could not save the search snapshot under %s: %s", root, exc)
        else:
            if getattr(dense, "memory_mapped", False):
                # search the saved files, memory-mapped, instead of the copies built here
                saved = root / f"v{snap.version}"
                mapped = _load_saved(
                    saved,
                    index_id,
                    arrays_generation,
                    dim,
                    kind,
                    positioned=positioned,
                    parts=parts,
                )
                if mapped is not None:
                    return mapped
    return snap


def _load_saved(
    directory: Path,
    index_id: str,
    generation: str,
    dim: int,
    kind: str,
    positioned: bool = False,
    parts: tuple[int, int] | None = None,
) -> Snapshot | None:
    meta_path = directory / META
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if not _matches(meta, index_id, generation, dim, kind, parts):
            return None  # another history, model or backend: rebuilt and written over
        row_ids = np.load(directory / "row_ids.npy", mmap_mode="r")
        n = len(row_ids)
        bm25 = Bm25Index.load(directory / "bm25", positioned=positioned)
        if len(bm25) != n:
            raise ValueError(f"BM25 index has {len(bm25)} rows, not {n}")
        cls: Any = vector_index_class(kind)

        def load(where: Path, width: int) -> Any:
            if positioned and getattr(cls, "positioned_rescoring", False):
                return cls.load(where, width, n, positioned=True)
            # exact and HNSW scan or walk their vectors whole: mapped is the better fit
            return cls.load(where, width, n)

        if parts is None:
            return Snapshot(int(meta["version"]), row_ids, load(directory, dim), bm25)
        dense = load(directory, parts[0])
        second = load(directory / SECOND, parts[1])
        return Snapshot(int(meta["version"]), row_ids, dense, bm25, second)
    except (ValueError, EOFError, KeyError, TypeError, FileNotFoundError, IndexStateError) as exc:
        # a file deleted, truncated or garbled: rebuild it and write it again
        log.warning("search snapshot %s is damaged (%s); rebuilding it", directory, exc)
        with contextlib.suppress(OSError):
            _quarantine(directory)
        return None
    except OSError as exc:  # EMFILE, EIO...: not the snapshot's fault; leave it in place
        log.warning("could not read search snapshot %s (%s); rebuilding in memory", directory, exc)
        return None


def _matches(
    meta: dict,
    index_id: str,
    generation: str,
    dim: int,
    kind: str,
    parts: tuple[int, int] | None = None,
) -> bool:
    return (
        meta.get("parts") == (list(parts) if parts else None)
        and meta.get("index_id") == index_id
        and meta.get("generation") == generation
        and meta.get("dim") == dim
        and meta.get("kind", "hnsw" if meta.get("hnsw") else "exact") == kind
    )


def _quarantine(directory: Path) -> None:
    """Move a damaged snapshot out of the way (readers may still map its files)."""
    target = directory.with_name(f".tmp-damaged-{directory.name}-{os.getpid()}")
    os.replace(directory, target)


def _save(
    snap: Snapshot,
    root: Path,
    index_id: str,
    generation: str,
    dim: int,
    parts: tuple[int, int] | None = None,
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root, snap.version)
    directory = root / f"v{snap.version}"
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads((directory / META).read_text())
        if _matches(meta, index_id, generation, dim, snap.dense.kind, parts):
            return  # another process saved this very state meanwhile; readers may use it
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        np.save(tmp / "row_ids.npy", snap.row_ids)
        snap.dense.save(tmp)
        if snap.second is not None:
            snap.second.save(tmp / SECOND)
        snap.bm25.save(tmp / "bm25")
        meta = {
            "version": snap.version,
            "hnsw": snap.dense.kind == "hnsw",
            "kind": snap.dense.kind,
            "index_id": index_id,
            "generation": generation,
            "dim": dim,
        }
        if parts:
            meta["parts"] = list(parts)
        (tmp / META).write_text(json.dumps(meta))
        if directory.exists():  # a damaged or stale leftover of this version
            with contextlib.suppress(OSError):
                _quarantine(directory)  # moved, not deleted: readers may map its files
        try:
            os.replace(tmp, directory)
        except OSError:  # another process put its copy there first: use either
            if not (directory / META).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _sweep(root: Path, version: int) -> None:
    """Drop snapshots of older versions and temporary folders left by killed saves."""
    now = time.time()
    for entry in root.iterdir():
        name = entry.name
        old_version = name.startswith("v") and name[1:].isdigit() and int(name[1:]) < version
        try:  # damaged copies go at once; a save in progress gets an hour
            stale_tmp = name.startswith(".tmp-damaged-") or (
                name.startswith(".tmp-") and now - entry.stat().st_mtime > 3600
            )
        except OSError:
            continue
        if old_version or stale_tmp:
            shutil.rmtree(entry, ignore_errors=True)
