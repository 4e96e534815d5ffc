"""L3: a persistent cache in SQLite, next to the index (``<index>/cache.db``).

The same file keeps the query log (for ``snaprag cache warm``) and the cumulative hit and
miss counters (for ``snaprag cache stats``), so they survive restarts. A damaged file is
moved aside and a new one started: a cache can always be rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

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

# SQLite errors that mean "not now" (locked, busy, disk full) rather than a damaged file
_TRANSIENT = (sqlite3.OperationalError,)


class CacheDB:
    """The SQLite file behind L3, the query log and the persisted counters."""

    def __init__(self, path: Path, busy_timeout_ms: int = 200) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        for attempt in range(4):
            try:
                self._init()
                return
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, _TRANSIENT) and "malformed" not in str(exc):
                    if attempt == 3:
                        raise  # still busy: the caller goes on without L3 for now
                    self.close()
                    time.sleep(0.1 * (attempt + 1))  # another process creating it
                    continue
                self._move_aside(exc)
                self._init()
                return

    def _init(self) -> None:
        with self.conn() as conn:
            conn.executescript(_SCHEMA)
            conn.execute("SELECT count(*) FROM entries").fetchone()

    def _move_aside(self, exc: BaseException) -> None:
        self.close()
        broken = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        log.warning("cache file %s is damaged (%s); moved to %s", self.path, exc, broken)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.replace(Path(str(broken) + suffix))
        # keep the newest damaged copy for a post-mortem, not one per incident
        older = sorted(self.path.parent.glob(f"{self.path.name}.damaged-*"))
        for old in older:
            if not old.name.startswith(broken.name):
                with contextlib.suppress(OSError):
                    old.unlink()

    @contextlib.contextmanager
    def conn(self) -> Iterator[sqlite3.Connection]:
        """The one connection of this process, held by one thread at a time; a block of
        statements in ``with db.conn() as conn:`` commits together (or rolls back)."""
        with self._lock:
            if self._conn is None:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout_ms / 1000, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._conn = conn
            with self._conn:
                yield self._conn

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
        with self.conn() as conn:
            conn.executemany(
                "INSERT INTO stats VALUES (?, ?, ?, ?) ON CONFLICT(tier, namespace) DO UPDATE "
                "SET hits = hits + excluded.hits, misses = misses + excluded.misses",
                rows,
            )

    def read_stats(self) -> dict[tuple[str, str], list[int]]:
        with self.conn() as conn:
            rows = conn.execute("SELECT tier, namespace, hits, misses FROM stats").fetchall()
        return {(t, ns): [int(h), int(m)] for t, ns, h, m in rows}

    def reset_stats(self) -> None:
        with self.conn() as conn:
            conn.execute("DELETE FROM stats")

    # ------------------------------------------------------------------ semantic cache
    def add_semantic(self, scope: str, query: str, key: str, vector: Any, keep_scopes: int) -> None:
        """One cached query's vector; scopes beyond the ``keep_scopes`` newest are dropped
        (a scope ends with every index write, so old ones can never match again)."""
        blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        with self.conn() as conn:
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

    def semantic_entries(self, scope: str, limit: int) -> list[tuple[str, str, bytes]]:
        with self.conn() as conn:
            rows = conn.execute(
                "SELECT query, key, vector FROM semantic WHERE scope = ? "
                "ORDER BY created DESC LIMIT ?",
                (scope, limit),
            ).fetchall()
        return [(q, k, bytes(v)) for q, k, v in reversed(rows)]

    # ------------------------------------------------------------------ query log
    def log_queries(
        self, rows: Iterable[tuple[str, str, str, str, int, float]], keep: int = 50_000
    ) -> None:
        """Add counts; beyond ``keep`` distinct queries the rarest (then oldest) go."""
        with self.conn() as conn:
            conn.executemany(
                "INSERT INTO querylog VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(kind, query, params) DO UPDATE "
                "SET count = count + excluded.count, last = max(last, excluded.last)",
                list(rows),
            )
            n = conn.execute("SELECT count(*) FROM querylog").fetchone()[0]
            if n > keep * 1.1:  # trim in steps, not on every flush
                conn.execute(
                    "DELETE FROM querylog WHERE (kind, query, params) IN (SELECT kind, query, "
                    "params FROM querylog ORDER BY count ASC, last ASC LIMIT ?)",
                    (n - keep,),
                )

    def top_queries(self, n: int, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT kind, query, params, text, count FROM querylog"
        args: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        sql += " ORDER BY count DESC, last DESC LIMIT ?"
        with self.conn() as conn:
            rows = conn.execute(sql, (*args, n)).fetchall()
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
        found: dict[str, bytes] = {}
        try:
            with self.db.conn() as conn:
                for start in range(0, len(keys), 500):
                    part = list(keys[start : start + 500])
                    marks = ",".join("?" * len(part))
                    rows = conn.execute(
                        f"SELECT key, value, expires FROM entries WHERE key IN ({marks})", part
                    )
                    found.update({k: bytes(v) for k, v, exp in rows if exp > now})
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
            with self.db.conn() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, expires, size, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
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
        try:
            with self.db.conn() as conn:
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
        except sqlite3.Error as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 1000 == 0:
            log.warning("disk cache %s: %s (%d errors)", self.db.path, exc, self.errors)

    def delete(self, keys: Sequence[str]) -> None:
        try:
            with self.db.conn() as conn:
                conn.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])
        except sqlite3.Error as exc:
            self._failed(exc)

    def clear(self) -> int:
        with self.db.conn() as conn:
            n = conn.execute("DELETE FROM entries").rowcount
        self._bytes = 0
        return int(n)

    def info(self) -> dict[str, Any]:
        with self.db.conn() as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM entries WHERE expires > ?",
                (time.time(),),
            ).fetchone()
        return {"entries": int(row[0]), "bytes": int(row[1]), "path": str(self.db.path)}
