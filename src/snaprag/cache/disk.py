"""L3: a persistent cache in SQLite, next to the index (``<index>/cache.db``).

The same file keeps the query log (for ``snaprag cache warm``) and the cumulative hit and
miss counters (for ``snaprag cache stats``), so they survive restarts.

A damaged file (SQLite says "malformed" or "not a database") is moved aside and a new one
started, whenever the damage shows: when the file is opened, or later, at any read or
write, in this process or after another one damaged or replaced it. Every statement runs
through :meth:`CacheDB.run`, which does this once per damaged file (the first thread or
process to meet the damage moves it; the others find the new file), logs a warning that
names both files, and runs the statement again on the new, empty file. One damaged copy is
kept, the newest, for a post-mortem. A cache can always be rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger(__name__)
#: seconds between checks that the cache file was not replaced by another process
REPLACED_CHECK_S = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT NOT NULL UNIQUE,
    value BLOB NOT NULL,
    expires REAL NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);  -- rowid order is write order: REPLACE moves a rewritten entry to the end
CREATE TABLE IF NOT EXISTS stats (
    tier TEXT NOT NULL,
    namespace TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tier, namespace)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS semantic (
    scope TEXT NOT NULL,
    query TEXT NOT NULL,
    key TEXT NOT NULL,
    vector BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (scope, query)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS querylog (
    kind TEXT NOT NULL,
    query TEXT NOT NULL,
    params TEXT NOT NULL,
    text TEXT NOT NULL,
    count INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (kind, query, params)
) WITHOUT ROWID;
"""

T = TypeVar("T")

# SQLite result codes (the primary code, the low byte) of a damaged file
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLite error says that the file is damaged (not busy, locked or full)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    message = str(exc)
    return "malformed" in message or "not a database" in message


class CacheDB:
    """The SQLite file behind L3, the query log and the persisted counters."""

    def __init__(self, path: Path, busy_timeout_ms: int = 200) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._inode: int | None = None  # of the file the connection opened
        self._checked = float("-inf")  # when the path's inode was last compared (monotonic)
        self._lock = threading.RLock()
        #: how many damaged files this object moved aside (or found replaced)
        self.recoveries = 0
        for attempt in range(4):
            try:
                self._init()
                return
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and not is_damage(exc):
                    if attempt == 3:
                        raise  # still busy: the caller goes on without L3 for now
                    self.close()
                    time.sleep(0.1 * (attempt + 1))  # another process creating it
                    continue
                self._recover(exc, self.recoveries)
                self._init()
                return

    def _init(self) -> None:
        with self.conn() as conn:
            conn.execute("SELECT count(*) FROM entries").fetchone()

    def run(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """``action(conn)`` in one transaction; if the file turns out damaged, it is moved
        aside and ``action`` runs again on a new, empty file (see the module notes)."""
        seen = self.recoveries
        try:
            with self.conn() as conn:
                return action(conn)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._recover(exc, seen)
        with self.conn() as conn:
            return action(conn)

    def verify(self) -> None:
        """Read the whole file (``PRAGMA quick_check``, linear in its size); a damaged one
        is moved aside like any other. For maintenance commands, not for every request."""

        def check(conn: sqlite3.Connection) -> None:
            problems = conn.execute("PRAGMA quick_check(1)").fetchall()
            if problems != [("ok",)]:
                first = " ".join(str(problems[0][0]).split())  # one line for the log
                raise sqlite3.DatabaseError(f"database disk image is malformed: {first}")

        self.run(check)

    def _recover(self, exc: BaseException, seen: int) -> None:
        """Move the damaged file aside and start a new one, unless that already happened
        since ``seen`` (another thread) or the file is no longer the one this process
        opened (another process moved it)."""
        with self._lock:
            if self.recoveries != seen:
                return
            self.recoveries += 1
            opened, self._inode = self._inode, None
            self.close()
            try:
                current = os.stat(self.path).st_ino
            except OSError:
                current = None
            if opened is not None and current != opened:
                log.warning(
                    "cache file %s was damaged (%s) and has been replaced; using the new file",
                    self.path,
                    exc,
                )
            elif current is not None:
                self._move_aside(exc)
            self._init()

    def _move_aside(self, exc: BaseException) -> None:
        broken = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.replace(Path(str(broken) + suffix))
        log.warning(
            "cache file %s is damaged (%s): moved aside to %s; going on with an empty cache",
            self.path,
            exc,
            broken,
        )
        # keep the newest damaged copy for a post-mortem, not one per incident
        older = sorted(self.path.parent.glob(f"{self.path.name}.damaged-*"))
        for old in older:
            if not old.name.startswith(broken.name):
                with contextlib.suppress(OSError):
                    old.unlink()

    @contextlib.contextmanager
    def conn(self) -> Iterator[sqlite3.Connection]:
        """The one connection of this process, held by one thread at a time; a block of
        statements in ``with db.conn() as conn:`` commits together (or rolls back).

        If another process moved the file aside (or removed it) since this one opened it,
        a new connection opens the file now at the path: writes must not go on into a
        file nobody reads. Damage is not handled here: :meth:`run` does that.
        """
        with self._lock:
            if self._conn is not None and self._replaced():
                self.close()
            if self._conn is None:
                self._conn = self._connect()
            with self._conn:
                yield self._conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._inode = os.stat(self.path).st_ino
            self._checked = time.monotonic()
        except BaseException:
            conn.close()
            raise
        return conn

    def _replaced(self) -> bool:
        """Whether the path now names another file, checked at most every
        ``REPLACED_CHECK_S``: a ``stat`` per statement cost ~0.4 ms of each uncached search
        (four statements), and entries written meanwhile only land in a file nobody reads."""
        now = time.monotonic()
        if now - self._checked < REPLACED_CHECK_S:
            return False
        self._checked = now
        try:
            return os.stat(self.path).st_ino != self._inode
        except OSError:
            return True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------ counters
    def add_stats(self, deltas: dict[tuple[str, str], list[int]]) -> None:
        rows = [(t, ns, h, m) for (t, ns), (h, m) in deltas.items() if h or m]
        if not rows:
            return
        self.run(
            lambda conn: conn.executemany(
                "INSERT INTO stats VALUES (?, ?, ?, ?) ON CONFLICT(tier, namespace) DO UPDATE "
                "SET hits = hits + excluded.hits, misses = misses + excluded.misses",
                rows,
            )
        )

    def read_stats(self) -> dict[tuple[str, str], list[int]]:
        rows = self.run(
            lambda conn: conn.execute("SELECT tier, namespace, hits, misses FROM stats").fetchall()
        )
        return {(t, ns): [int(h), int(m)] for t, ns, h, m in rows}

    def reset_stats(self) -> None:
        self.run(lambda conn: conn.execute("DELETE FROM stats"))

    # ------------------------------------------------------------------ semantic cache
    def add_semantic(self, scope: str, query: str, key: str, vector: Any, keep_scopes: int) -> None:
        """One cached query's vector; scopes beyond the ``keep_scopes`` newest are dropped
        (a scope ends with every index write, so old ones can never match again)."""
        blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()

        def add(conn: sqlite3.Connection) -> None:
            new_scope = (
                conn.execute("SELECT 1 FROM semantic WHERE scope = ? LIMIT 1", (scope,)).fetchone()
                is None
            )
            conn.execute(
                "INSERT OR IGNORE INTO semantic VALUES (?, ?, ?, ?, ?)",
                (scope, query, key, blob, time.time()),
            )
            if new_scope:
                conn.execute(
                    "DELETE FROM semantic WHERE scope NOT IN (SELECT scope FROM semantic "
                    "GROUP BY scope ORDER BY max(created) DESC LIMIT ?)",
                    (keep_scopes,),
                )

        self.run(add)

    def semantic_entries(self, scope: str, limit: int) -> list[tuple[str, str, bytes]]:
        rows = self.run(
            lambda conn: conn.execute(
                "SELECT query, key, vector FROM semantic WHERE scope = ? "
                "ORDER BY created DESC LIMIT ?",
                (scope, limit),
            ).fetchall()
        )
        return [(q, k, bytes(v)) for q, k, v in reversed(rows)]

    # ------------------------------------------------------------------ query log
    def log_queries(
        self, rows: Iterable[tuple[str, str, str, str, int, float]], keep: int = 50_000
    ) -> None:
        """Add counts; beyond ``keep`` distinct queries the rarest (then oldest) go."""
        rows = list(rows)

        def add(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO querylog VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(kind, query, params) DO UPDATE "
                "SET count = count + excluded.count, last = max(last, excluded.last)",
                rows,
            )
            n = conn.execute("SELECT count(*) FROM querylog").fetchone()[0]
            if n > keep * 1.1:  # trim in steps, not on every flush
                conn.execute(
                    "DELETE FROM querylog WHERE (kind, query, params) IN (SELECT kind, query, "
                    "params FROM querylog ORDER BY count ASC, last ASC LIMIT ?)",
                    (n - keep,),
                )

        self.run(add)

    def top_queries(self, n: int, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT kind, query, params, text, count FROM querylog"
        args: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        sql += " ORDER BY count DESC, last DESC LIMIT ?"
        rows = self.run(lambda conn: conn.execute(sql, (*args, n)).fetchall())
        return [
            {"kind": k, "query": q, "params": json.loads(p), "text": t, "count": int(c)}
            for k, q, p, t, c in rows
        ]


class DiskCache:
    """L3 entries in :class:`CacheDB`, bounded in bytes (oldest entries go first)."""

    name = "disk"

    def __init__(self, db: CacheDB, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.db = db
        self.max_bytes = max_bytes
        self.errors = 0
        self._bytes: int | None = None
        self._puts = 0
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        now = time.time()

        def read(conn: sqlite3.Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    f"SELECT key, value, expires FROM entries WHERE key IN ({marks})", part
                )
                found.update({k: bytes(v) for k, v, exp in rows if exp > now})
            return found

        try:
            found = self.db.run(read)
        except sqlite3.Error as exc:
            self._failed(exc)
            return [None] * len(keys)
        return [found.get(k) for k in keys]

    def put_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        if not items:
            return
        now = time.time()
        rows = [(k, v, now + ttl, len(v) + len(k), now) for k, v, ttl in items]
        try:
            self.db.run(
                lambda conn: conn.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, expires, size, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            )
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        with self._lock:
            self._puts += len(rows)
            if self._bytes is not None:
                self._bytes += sum(r[3] for r in rows)
            if self._bytes is None or self._bytes > self.max_bytes or self._puts >= 1000:
                self._puts = 0
                self._bytes = self._shrink()

    def _shrink(self) -> int | None:
        """Drop expired entries, then the oldest until 90 % of the bound; the new total."""

        def shrink(conn: sqlite3.Connection) -> int:
            total = conn.execute("SELECT coalesce(sum(size), 0) FROM entries").fetchone()[0]
            if total <= self.max_bytes:
                return int(total)
            conn.execute("DELETE FROM entries WHERE expires <= ?", (time.time(),))
            total = conn.execute("SELECT coalesce(sum(size), 0) FROM entries").fetchone()[0]
            target = int(self.max_bytes * 0.9)
            last = None
            for rowid, size in conn.execute("SELECT rowid, size FROM entries ORDER BY rowid"):
                if total <= target:
                    break
                total -= size
                last = rowid
            if last is not None:
                conn.execute("DELETE FROM entries WHERE rowid <= ?", (last,))
            return int(total)

        try:
            return self.db.run(shrink)
        except sqlite3.Error as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 1000 == 0:
            log.warning("disk cache %s: %s (%d errors)", self.db.path, exc, self.errors)

    def delete(self, keys: Sequence[str]) -> None:
        try:
            self.db.run(
                lambda conn: conn.executemany(
                    "DELETE FROM entries WHERE key = ?", [(k,) for k in keys]
                )
            )
        except sqlite3.Error as exc:
            self._failed(exc)

    def clear(self) -> int:
        """Entries removed (none from a damaged file: it is moved aside instead)."""
        n = self.db.run(lambda conn: conn.execute("DELETE FROM entries").rowcount)
        self._bytes = 0
        return int(n)

    def info(self) -> dict[str, Any]:
        row = self.db.run(
            lambda conn: conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM entries WHERE expires > ?",
                (time.time(),),
            ).fetchone()
        )
        return {"entries": int(row[0]), "bytes": int(row[1]), "path": str(self.db.path)}
