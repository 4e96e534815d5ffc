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
    """The snapshot of ``version``: from disk if saved, else built from the store and saved."""
    directory = root / f"v{version}"
    kind = "hnsw" if use_hnsw else "exact"
    meta_path = directory / "snapshot.json"
    if meta_path.exists():
        with contextlib.suppress(Exception):  # a damaged snapshot is rebuilt below
            meta = json.loads(meta_path.read_text())
            row_ids = np.load(directory / "row_ids.npy")
            matrix = np.load(directory / "vectors.npy", mmap_mode="r")
            bm25 = Bm25Index.load(directory / "bm25")
            if kind == "hnsw" and meta.get("hnsw"):
                dense = HnswIndex.load(directory / "hnsw.bin", dim, len(row_ids), matrix)
                return Snapshot(version, row_ids, dense, bm25)
            if kind == "exact":
                return Snapshot(version, row_ids, ExactIndex(np.asarray(matrix)), bm25)
    row_ids, matrix, tokens = store.load_index_arrays(dim, vector_dtype)
    bm25 = Bm25Index.build(tokens)
    dense = HnswIndex.build(matrix, threads) if use_hnsw else ExactIndex(matrix)
    snap = Snapshot(version, row_ids, dense, bm25)
    with contextlib.suppress(OSError):  # a read-only index still searches, just slower to start
        _save(snap, matrix, root, directory)
    return snap


def _save(snap: Snapshot, matrix: np.ndarray, root: Path, directory: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        np.save(tmp / "row_ids.npy", snap.row_ids)
        np.save(tmp / "vectors.npy", np.ascontiguousarray(matrix, dtype=np.float32))
        snap.bm25.save(tmp / "bm25")
        hnsw = isinstance(snap.dense, HnswIndex)
        if hnsw:
            snap.dense.save(tmp / "hnsw.bin")
        (tmp / "snapshot.json").write_text(json.dumps({"version": snap.version, "hnsw": hnsw}))
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in root.iterdir():  # older versions can never be served again
        if old.name.startswith("v") and old != directory:
            shutil.rmtree(old, ignore_errors=True)
