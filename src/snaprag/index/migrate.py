"""Upgrades of an index's SQLite schema, one step per version, so old indexes keep opening.

Each step only adds (a column with a default); nothing is rewritten, so an upgrade takes
milliseconds whatever the index's size, and an index opened read-only is searched as it
is (the store reads what an older schema lacks as its default).

* 1 -> 2: ``chunks.section``, the heading path of each chunk (``''`` for chunks written
  before; the next ``snaprag ingest`` of their files fills it in, see
  :func:`snaprag.ingest.loaders.content_key`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import IndexStateError

#: the schema this code writes (``meta.schema_version``)
CURRENT = 2

_STEPS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE chunks ADD COLUMN section TEXT NOT NULL DEFAULT ''",),
}


def check_schema(path: Path, found: object) -> None:
    """Refuse an index written by a newer snaprag (or a damaged version number)."""
    try:
        version = int(str(found))
    except ValueError:
        version = -1
    if not 1 <= version <= CURRENT:
        raise IndexStateError(
            f"{path} uses index schema {found}, this snaprag reads {CURRENT} and older; "
            "upgrade snaprag, or re-ingest into a new index directory"
        )


def migrate(conn: sqlite3.Connection, found: int) -> None:
    """Bring the schema from ``found`` to :data:`CURRENT` in one write transaction.

    Safe against another process doing the same at once: the version is read again
    under the write lock, and a step already done is not repeated.
    """
    if found >= CURRENT:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row is not None else CURRENT
        while version < CURRENT:
            for sql in _STEPS[version]:
                conn.execute(sql)
            version += 1
        conn.execute(
            "UPDATE meta SET value=? WHERE key='schema_version'",
            (str(CURRENT),),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (False when the table does not exist)."""
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def has_table(conn: sqlite3.Connection, table: str) -> bool:
    """Whether the database has ``table`` yet (a new file has no tables)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone()
    return row is not None
