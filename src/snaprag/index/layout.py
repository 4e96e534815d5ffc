"""What lives in an index directory, and who owns each file.

::

    <index>/
      snaprag.db      the document store (index/store.py): documents, chunks, vectors,
                      BM25 terms, the version and generation
      snapshots/      search snapshots per version (search/snapshot.py)
      cache.db        the query cache's disk tier, query log, counters (cache/disk.py)
      ingest.lock     one ingest per index at a time (engine.py)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

DB_NAME = "snaprag.db"
CACHE_DB = "cache.db"
SNAPSHOTS = "snapshots"
INGEST_LOCK = "ingest.lock"


def directory_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (files replaced meanwhile are skipped)."""
    size = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
    return size


def writable(directory: Path) -> bool:
    """Whether this process may create and change files in ``directory``."""
    return os.access(directory, os.W_OK | os.X_OK)


def index_stats(store: Any, index_dir: Path, model: str) -> dict[str, Any]:
    """What ``snaprag stats`` shows: counts, bytes on disk, model, vector format."""
    from ..embed.models import PRESETS

    counts = store.counts()
    model = store.get_meta("model") or model
    return {
        "index": str(index_dir.resolve()),
        "version": store.version,
        "sources": counts["sources"],
        "documents": counts["documents"],
        "chunks": counts["chunks"],
        "partial_sources": counts["partial_sources"],
        "bytes": directory_bytes(index_dir),
        "model": model,
        "model_description": PRESETS[model].description if model in PRESETS else model,
        "dim": int(store.get_meta("dim") or 0),
        "vector_dtype": store.get_meta("vector_dtype"),
        "quantization": store.get_meta("quantization"),
        "chunk_tokens": int(store.get_meta("chunk_tokens") or 0),
        "read_only": bool(getattr(store, "read_only", False)),
    }
