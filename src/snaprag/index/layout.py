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
