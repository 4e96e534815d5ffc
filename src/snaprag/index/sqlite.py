"""SQLite connections of one database file: one per thread, opened read-only when this
process may not write the file or its directory, all closed together.

A read-only database is opened with ``mode=ro``; when SQLite refuses that (a WAL database
whose ``-shm`` file cannot be created next to it) and the file sits on a read-only mount,
where nobody can be writing it, it is read as ``immutable``. For another user's index on
a writable disk that is refused instead: an immutable reader would not see its writes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from ..errors import IndexStateError


def may_not_write(path: Path) -> bool:
    """Whether this process may not write the database file or create files next to it."""
    directory = path.parent
    if path.exists() and not os.access(path, os.W_OK):
        return True
    return directory.exists() and not os.access(directory, os.W_OK | os.X_OK)


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class Connections:
    """One connection per thread to ``path``; thread-safe."""

    def __init__(self, path: Path, read_only: bool) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._epoch = 0
        self._immutable = False

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "epoch", -1) != self._epoch:
            conn = None  # closed by close() from another thread: open a new one
        if conn is None:
            try:
                conn = self._open_read_only() if self.read_only else self._open()
            except sqlite3.DatabaseError as exc:
                if self.read_only:
                    raise IndexStateError(
                        f"cannot open the read-only index database {self.path}: {exc}"
                    ) from exc
                raise IndexStateError(
                    f"cannot open index database {self.path}: {exc}; if the file is damaged, "
                    "move the index directory away and ingest again"
                ) from exc
            self._local.conn = conn
            self._local.epoch = self._epoch
            with self._lock:
                self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        base = self.path.resolve().as_uri()
        if not self._immutable:
            conn = sqlite3.connect(f"{base}?mode=ro", uri=True, timeout=30, check_same_thread=False)
            try:
                conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
                return conn
            except sqlite3.OperationalError as exc:  # WAL without a writable dir for -shm
                conn.close()
                if not _read_only_mount(self.path):
                    raise IndexStateError(
                        f"the index {self.path.parent} is read-only for this user and "
                        "SQLite cannot read its write-ahead log without creating a file "
                        f"next to it ({exc}); search it as its owner, or copy it"
                    ) from exc
                self._immutable = True
        # on a read-only mount nobody can be writing it: read the file as it is
        return sqlite3.connect(
            f"{base}?mode=ro&immutable=1", uri=True, timeout=30, check_same_thread=False
        )

    def close(self) -> None:
        """Close every thread's connection; each thread opens a new one when next used."""
        with self._lock:
            conns, self._all = self._all, []
            self._epoch += 1
        for conn in conns:
            conn.close()
        self._local.conn = None
