"""In-memory search state for one index version, persisted for fast cold starts.

A snapshot holds the chunk row ids (in row order), the dense index and the BM25 index of
one index version. It is rebuilt from SQLite when the version changes and saved under
``<index>/snapshots/v<version>/`` (written to a temporary directory, then renamed), so a
new process loads a few ``.npy`` files instead of decoding every chunk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..index.bm25 import Bm25Index
from ..index.dense import ExactIndex, HnswIndex
from ..index.store import Store


@dataclass
class Snapshot:
    version: int
    row_ids: np.ndarray
    dense: ExactIndex | HnswIndex
    bm25: Bm25Index

    def __len__(self) -> int:
        return len(self.row_ids)

    def rows_for(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Boolean row mask selecting the given chunk ids."""
        return np.isin(self.row_ids, chunk_ids, assume_unique=True)


def load_snapshot(
    store: Store,
    root: Path,
    version: int,
    dim: int,
    vector_dtype: str,
    use_hnsw: bool,
    threads: int,
) -> Snapshot:
    """The snapshot of ``version``: from disk if saved and valid, else built from the store.

    A saved snapshot is used only if it belongs to this very database (``index_id``), has
    the expected dimension and consistent array lengths; anything else is rebuilt.
    """
    index_id = store.get_meta("index_id") or ""
    saved = _load_saved(root / f"v{version}", index_id, dim, use_hnsw)
    if saved is not None:
        row_ids, dense, bm25 = saved
        return Snapshot(version, row_ids, dense, bm25)
    version, row_ids, matrix, tokens = store.load_index_arrays(dim, vector_dtype)
    bm25 = Bm25Index.build(tokens)
    dense = HnswIndex.build(matrix, threads) if use_hnsw else ExactIndex(matrix)
    snap = Snapshot(version, row_ids, dense, bm25)
    with contextlib.suppress(OSError):  # a read-only index still searches, just slower to start
        _save(snap, matrix, root, root / f"v{version}", index_id, dim)
    return snap


def _load_saved(
    directory: Path, index_id: str, dim: int, use_hnsw: bool
) -> tuple[np.ndarray, ExactIndex | HnswIndex, Bm25Index] | None:
    try:
        meta = json.loads((directory / "snapshot.json").read_text())
        if meta.get("index_id") != index_id or meta.get("dim") != dim:
            return None
        if use_hnsw and not meta.get("hnsw"):
            return None
        row_ids = np.load(directory / "row_ids.npy")
        matrix = np.load(directory / "vectors.npy", mmap_mode="r")
        bm25 = Bm25Index.load(directory / "bm25")
        if not (len(row_ids) == matrix.shape[0] == len(bm25)) or matrix.shape[1] != dim:
            return None
        if use_hnsw:
            return row_ids, HnswIndex.load(directory / "hnsw.bin", dim, len(row_ids), matrix), bm25
        return row_ids, ExactIndex(np.asarray(matrix)), bm25
    except Exception:  # missing or damaged: rebuilt from the database
        return None


def _save(
    snap: Snapshot, matrix: np.ndarray, root: Path, directory: Path, index_id: str, dim: int
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root, snap.version)
    if (directory / "snapshot.json").exists():
        return  # another process saved this version meanwhile; readers may be using it
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        np.save(tmp / "row_ids.npy", snap.row_ids)
        np.save(tmp / "vectors.npy", np.ascontiguousarray(matrix, dtype=np.float32))
        snap.bm25.save(tmp / "bm25")
        hnsw = isinstance(snap.dense, HnswIndex)
        if hnsw:
            snap.dense.save(tmp / "hnsw.bin")
        (tmp / "snapshot.json").write_text(
            json.dumps({"version": snap.version, "hnsw": hnsw, "index_id": index_id, "dim": dim})
        )
        if directory.exists():  # a damaged leftover of this version
            shutil.rmtree(directory, ignore_errors=True)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _sweep(root: Path, version: int) -> None:
    """Drop snapshots of older versions and temporary folders left by killed saves."""
    now = time.time()
    for entry in root.iterdir():
        name = entry.name
        old_version = name.startswith("v") and name[1:].isdigit() and int(name[1:]) < version
        stale_tmp = name.startswith(".tmp-") and now - entry.stat().st_mtime > 3600
        if old_version or stale_tmp:
            shutil.rmtree(entry, ignore_errors=True)
