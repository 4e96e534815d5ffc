"""What lives in an index directory, and who owns each file.

::

    <index>/
      snaprag.db      the document store (index/store.py): documents, chunks, vectors,
                      BM25 terms, the version and generation
      snapshots/      search snapshots per version (search/snapshot.py)
      cache.db        the query cache's disk tier, query log, counters (cache/disk.py)
      ingest.lock     one writer per index at a time (ingest_lock below)
      jobs.db         upload jobs of ``snaprag serve --index`` (serve/jobs.py)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndexBusyError, IndexStateError

DB_NAME = "snaprag.db"
CACHE_DB = "cache.db"
SNAPSHOTS = "snapshots"
INGEST_LOCK = "ingest.lock"

#: index directories whose ingest lock this thread holds: taking it again inside is a no-op
#: (the server's job runner holds it while it checks the collection, then ingests)
_held = threading.local()


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
        "read_only": bool(store.read_only),
    }


@contextlib.contextmanager
def ingest_lock(index_dir: Path) -> Iterator[None]:
    """One writer (ingest, delete) per index at a time, across threads and processes;
    searches are never blocked by it. Taken before anything is written, so a refused
    writer (:class:`IndexBusyError`) changes nothing. Re-entrant within one thread."""
    key = os.path.abspath(index_dir)
    held: set[str] = _held.__dict__.setdefault("dirs", set())
    if key in held:
        yield
        return
    path = index_dir / INGEST_LOCK
    try:
        fh = open(path, "a+")  # noqa: SIM115 - held for the whole ingest
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise IndexStateError(
            f"the index {index_dir} is read-only for this user; it can be searched but not "
            "changed (ingest as its owner, or into another --index)"
        ) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"another 'snaprag ingest' is running on {index_dir}; "
                "wait for it to finish (searches keep working meanwhile)"
            ) from None
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_model(store: Any, wanted: str | None, index_dir: Path) -> None:
    """A non-empty index keeps the model it was built with: ``wanted`` (None: whatever
    it was built with) must be it."""
    built_with = store.get_meta("model")
    if built_with is None or wanted is None or wanted == built_with:
        return
    if store.counts()["chunks"]:
        raise ConfigError(
            f"index {index_dir} was built with model {built_with!r}, not "
            f"{wanted!r}; search it with --model {built_with} or ingest into a new --index"
        )


def check_second_model(store: Any, second: str | None, index_dir: Path) -> None:
    """The quality profile (``second`` set) needs the second model's vectors in every chunk:
    an index whose chunks were made without them cannot be searched or extended with it."""
    from ..embed.pair import with_second_model

    built_with = store.get_meta("model")
    if not second or built_with is None or with_second_model(built_with, second) == built_with:
        return
    if store.counts()["chunks"]:
        raise ConfigError(
            f"index {index_dir} was built with model {built_with!r} only; the quality profile "
            f"also needs {with_second_model(built_with, second)!r} vectors of every chunk: "
            "ingest into a new --index with --profile quality, or search this one without it"
        )
