"""SQLite store: sources, documents, chunks with compact vectors, and the index version.

One database file per index, in WAL mode so readers never block the writer. Every change
is a transaction that also increments ``meta.version``; caches and index snapshots are
keyed by that number, so nothing can outlive the data it was computed from.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexStateError
from .base import ChunkRow, IndexArrays, StoredChunk, source_candidates
from .migrate import CURRENT, check_schema, has_column, has_table, migrate
from .sqlite import Connections, may_not_write
from .vector_codec import decode_vectors, encode_vector

#: 2 added ``chunks.section`` (the heading path); older indexes are upgraded when opened
#: for writing (see :mod:`.migrate`) and read as they are when opened read-only
SCHEMA_VERSION = CURRENT
#: ``documents.doc_hash`` of a document whose chunks are still being written
PENDING = "pending:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    content_hash TEXT,            -- NULL while a source is only partly ingested
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    type TEXT NOT NULL,
    doc_hash TEXT NOT NULL,
    n_chars INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source_id);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    tokens TEXT NOT NULL,         -- BM25 terms, space separated
    vector BLOB NOT NULL,         -- float16, or int8 with a float32 scale in front
    section TEXT NOT NULL DEFAULT ''  -- heading path, "A > B" (schema 2)
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
"""


class Store:
    """The SQLite side of an index. Thread-safe: one connection per thread.

    Opened read-only when this process may not write the database or its directory (a
    read-only mount, another user's index): searching works, every write raises a
    read-only :class:`IndexStateError`. SQLite opens it with ``mode=ro``, or, when that is
    refused (a WAL database whose ``-shm`` file cannot be created), as ``immutable``.
    """

    def __init__(self, path: Path, read_only: bool | None = None) -> None:
        self.path = Path(path)
        self._write_lock = threading.Lock()
        #: opened without write access (see :class:`~snaprag.index.base.DocumentStore`)
        self.read_only = may_not_write(self.path) if read_only is None else read_only
        self._connections = Connections(self.path, self.read_only)
        conn = self._conn()
        if self.read_only:
            check_schema(self.path, self.get_meta("schema_version") or SCHEMA_VERSION)
        else:
            self._create_or_upgrade(conn)
        # an older index opened read-only has no section column: its chunks have none
        self._section_sql = "c.section" if has_column(conn, "chunks", "section") else "''"

    def _create_or_upgrade(self, conn: sqlite3.Connection) -> None:
        with conn:
            found = self.get_meta("schema_version") if has_table(conn, "meta") else None
            if found is not None:
                check_schema(self.path, found)
                migrate(conn, int(found))
            conn.executescript(_SCHEMA)
            if found is None:
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('version', '0')")
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('index_id', ?)", (uuid.uuid4().hex,)
                )

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        """Close every connection, of every thread (for shutdown: a thread still using
        the store gets a new connection on its next call)."""
        self._connections.close()

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, object]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                [(k, str(v)) for k, v in values.items()],
            )

    @property
    def version(self) -> int:
        return int(self.get_meta("version") or 0)

    @property
    def generation(self) -> str:
        """Changes with every write, unique across copies of the index (cache keys)."""
        generation, version = (
            self._conn()
            .execute(
                "SELECT (SELECT value FROM meta WHERE key='generation'), "
                "(SELECT value FROM meta WHERE key='version')"
            )
            .fetchone()
        )
        return f"{version}:{generation}"  # generation is None until the first write

    @contextmanager
    def transaction(self, bump: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction; with ``bump`` the index version increases with it."""
        if self.read_only:
            raise IndexStateError(
                f"the index {self.path.parent} is read-only for this process; it can be "
                "searched but not changed (write it as its owner, or ingest into another --index)"
            )
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                if bump:
                    conn.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='version'"
                    )
                    # a random id per version: two copies of one index that each change
                    # reach the same version number, never the same generation
                    conn.execute(
                        "INSERT INTO meta VALUES ('generation', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (uuid.uuid4().hex,),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # also after a failed COMMIT; not after a good one
                    conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ sources
    def source(self, path: str) -> tuple[int, str | None] | None:
        row = (
            self._conn()
            .execute("SELECT id, content_hash FROM sources WHERE path=?", (path,))
            .fetchone()
        )
        return None if row is None else (int(row[0]), row[1])

    def sources(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT path FROM sources ORDER BY path")]

    def upsert_source(
        self, conn: sqlite3.Connection, path: str, type_: str, size: int, mtime: float
    ) -> int:
        conn.execute(
            "INSERT INTO sources(path, type, content_hash, size, mtime, ingested_at) "
            "VALUES (?, ?, NULL, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "content_hash=NULL, type=excluded.type, size=excluded.size, mtime=excluded.mtime",
            (path, type_, size, mtime, time.time()),
        )
        return int(conn.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()[0])

    def finish_source(self, conn: sqlite3.Connection, source_id: int, content_hash: str) -> None:
        conn.execute(
            "UPDATE sources SET content_hash=?, ingested_at=? WHERE id=?",
            (content_hash, time.time(), source_id),
        )

    def delete_source(self, conn: sqlite3.Connection, path: str) -> int:
        """Delete a source with its documents and chunks; returns documents removed."""
        row = conn.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()
        if row is None:
            return 0
        n = conn.execute("SELECT COUNT(*) FROM documents WHERE source_id=?", row).fetchone()[0]
        conn.execute("DELETE FROM sources WHERE id=?", row)
        return int(n)

    def source_summaries(self) -> list[dict[str, Any]]:
        """One row per source, by path: ``path``, ``type``, ``documents``, ``pages``
        (distinct page numbers, None for a source without pages), ``chunks``, ``ingested_at`` (epoch
        seconds) and ``complete`` (False while an interrupted ingest left it partial)."""
        rows = self._conn().execute(
            "SELECT s.path, s.type, COUNT(DISTINCT d.id), COUNT(DISTINCT c.page), COUNT(c.id), "
            "s.ingested_at, s.content_hash IS NOT NULL FROM sources s "
            "LEFT JOIN documents d ON d.source_id = s.id "
            "LEFT JOIN chunks c ON c.document_id = d.id GROUP BY s.id ORDER BY s.path"
        )
        keys = ("path", "type", "documents", "pages", "chunks", "ingested_at", "complete")
        return [
            dict(zip(keys, (*r[:3], r[3] or None, r[4], float(r[5]), bool(r[6])), strict=True))
            for r in rows
        ]

    def delete(self, source_or_doc_id: str) -> dict[str, Any]:
        """Remove one source, or one document, in one transaction (a new version).

        ``source_or_doc_id`` is a source path as stored, a path that resolves to one
        (relative to the working directory, symlinks followed), or else a document id:
        that document alone goes (its source too when it was the last one; a document
        deleted from a source that holds several comes back only when the file changes).
        Returns ``{"deleted": "source" | "document", "source", "doc_id" (documents only),
        "documents", "chunks"}``; raises :class:`IndexStateError` when nothing matches.
        """
        wanted = str(source_or_doc_id)
        with self.transaction(bump=True) as conn:
            for path in source_candidates(wanted):
                row = conn.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()
                if row is not None:
                    documents, chunks = self._sizes(conn, "d.source_id=?", row[0])
                    conn.execute("DELETE FROM sources WHERE id=?", (row[0],))
                    return {
                        "deleted": "source",
                        "source": path,
                        "documents": documents,
                        "chunks": chunks,
                    }
            row = conn.execute(
                "SELECT d.id, s.id, s.path FROM documents d JOIN sources s ON s.id = d.source_id "
                "WHERE d.doc_id=?",
                (wanted,),
            ).fetchone()
            if row is None:
                raise IndexStateError(
                    f"nothing in {self.path.parent} matches {wanted!r}: give a source path "
                    "or a document id as listed by 'snaprag docs' (or a hit's doc_id)"
                )
            document_id, source_id, path = row
            documents, chunks = self._sizes(conn, "d.id=?", document_id)
            conn.execute("DELETE FROM documents WHERE id=?", (document_id,))
            left = conn.execute(
                "SELECT COUNT(*) FROM documents WHERE source_id=?", (source_id,)
            ).fetchone()[0]
            if not left:
                conn.execute("DELETE FROM sources WHERE id=?", (source_id,))
        return {
            "deleted": "document",
            "source": path,
            "doc_id": wanted,
            "documents": documents,
            "chunks": chunks,
        }

    @staticmethod
    def _sizes(conn: sqlite3.Connection, where: str, arg: int) -> tuple[int, int]:
        """Documents and chunks matching ``where`` (over ``documents d``)."""
        documents, chunks = conn.execute(
            "SELECT COUNT(DISTINCT d.id), COUNT(c.id) FROM documents d "
            f"LEFT JOIN chunks c ON c.document_id = d.id WHERE {where}",
            (arg,),
        ).fetchone()
        return int(documents), int(chunks)

    # ------------------------------------------------------------------ documents
    def document_hashes(self, source_id: int) -> dict[str, str]:
        """``{doc_id: document hash}`` of the source's complete documents."""
        rows = self._conn().execute(
            "SELECT doc_id, doc_hash FROM documents WHERE source_id=? AND doc_hash NOT LIKE ?",
            (source_id, PENDING + "%"),
        )
        return {r[0]: r[1] for r in rows}

    def document_owner(self, doc_id: str) -> str | None:
        row = (
            self._conn()
            .execute(
                "SELECT s.path FROM documents d JOIN sources s ON s.id=d.source_id "
                "WHERE d.doc_id=?",
                (doc_id,),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def replace_document(
        self,
        conn: sqlite3.Connection,
        source_id: int,
        doc_id: str,
        title: str,
        type_: str,
        doc_hash: str,
        n_chars: int,
        chunks: Iterable[StoredChunk],
        vector_dtype: str,
    ) -> None:
        """Write a whole document in one go (inside ``conn``), replacing its old version."""
        self.begin_document(conn, source_id, doc_id, title, type_, doc_hash, n_chars)
        self.append_chunks(conn, source_id, doc_id, chunks, vector_dtype)
        self.finish_document(conn, source_id, doc_id, doc_hash)

    def begin_document(
        self,
        conn: sqlite3.Connection,
        source_id: int,
        doc_id: str,
        title: str,
        type_: str,
        resume_key: str,
        n_chars: int,
    ) -> None:
        """Replace a document by an empty, pending one (chunks follow, maybe over several
        transactions); ``resume_key`` says which content its chunks will be of.

        Raises ``sqlite3.IntegrityError`` when another source has a document ``doc_id``.
        """
        conn.execute("DELETE FROM documents WHERE doc_id=? AND source_id=?", (doc_id, source_id))
        conn.execute(
            "INSERT INTO documents(source_id, doc_id, title, type, doc_hash, n_chars) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (source_id, doc_id, title, type_, PENDING + resume_key, n_chars),
        )

    def append_chunks(
        self,
        conn: sqlite3.Connection,
        source_id: int,
        doc_id: str,
        chunks: Iterable[StoredChunk],
        vector_dtype: str,
    ) -> None:
        """Add chunks to a document of the source (inside ``conn``)."""
        row = conn.execute(
            "SELECT id FROM documents WHERE doc_id=? AND source_id=?", (doc_id, source_id)
        ).fetchone()
        if row is None:
            raise IndexStateError(
                f"document {doc_id!r} was removed while it was being written; run the ingest again"
            )
        conn.executemany(
            "INSERT INTO chunks(document_id, seq, text, page, char_start, char_end, tokens, "
            "vector, section) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row[0],
                    c.seq,
                    c.text,
                    c.page,
                    c.char_start,
                    c.char_end,
                    " ".join(c.tokens),
                    encode_vector(c.vector, vector_dtype),
                    c.section,
                )
                for c in chunks
            ],
        )

    def finish_document(
        self, conn: sqlite3.Connection, source_id: int, doc_id: str, doc_hash: str
    ) -> None:
        """Mark a document complete: record its hash (in the transaction of its last chunk)."""
        conn.execute(
            "UPDATE documents SET doc_hash=? WHERE doc_id=? AND source_id=?",
            (doc_hash, doc_id, source_id),
        )

    def pending_documents(self, source_id: int) -> dict[str, tuple[str, int]]:
        """Documents of a source cut short by an interrupted run:
        ``{doc_id: (resume key, chunks stored)}``."""
        rows = self._conn().execute(
            "SELECT d.doc_id, d.doc_hash, COUNT(c.id) FROM documents d "
            "LEFT JOIN chunks c ON c.document_id = d.id "
            "WHERE d.source_id=? AND d.doc_hash LIKE ? GROUP BY d.id",
            (source_id, PENDING + "%"),
        )
        return {r[0]: (r[1][len(PENDING) :], int(r[2])) for r in rows}

    def delete_documents_except(
        self, conn: sqlite3.Connection, source_id: int, keep: Sequence[str]
    ) -> None:
        """Delete the source's documents whose ids are not in ``keep`` (inside ``conn``)."""
        conn.execute(
            "DELETE FROM documents WHERE source_id=? AND doc_id NOT IN "
            "(SELECT value FROM json_each(?))",
            (source_id, json.dumps(list(keep))),
        )

    def foreign_document(self, doc_ids: Sequence[str], source: str) -> tuple[str, str] | None:
        """The first of ``doc_ids`` indexed from another source, with that source's path."""
        row = (
            self._conn()
            .execute(
                "SELECT d.doc_id, s.path FROM documents d JOIN sources s ON s.id=d.source_id "
                "WHERE s.path != ? AND d.doc_id IN (SELECT value FROM json_each(?)) LIMIT 1",
                (source, json.dumps(list(doc_ids))),
            )
            .fetchone()
        )
        return None if row is None else (str(row[0]), str(row[1]))

    # ------------------------------------------------------------------ reading
    def read_index(self, dim: int, dtype: str) -> IndexArrays:
        """Version, generation, row ids, float32 vectors and BM25 terms of every chunk, in
        id order, read in one transaction (so they are exactly those of that generation)."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            version, generation = conn.execute(
                "SELECT (SELECT value FROM meta WHERE key='version'), "
                "(SELECT value FROM meta WHERE key='generation')"
            ).fetchone()
            rows = conn.execute("SELECT id, vector, tokens FROM chunks ORDER BY id").fetchall()
        finally:
            conn.execute("COMMIT")
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = decode_vectors([r[1] for r in rows], dim, dtype)
        tokens = [r[2].split() for r in rows]
        return IndexArrays(int(version), f"{version}:{generation}", ids, vectors, tokens)

    def chunk_rows(self, row_ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not len(row_ids):
            return {}
        marks = ",".join("?" * len(row_ids))
        rows = (
            self._conn()
            .execute(
                "SELECT c.id, d.doc_id, c.seq, c.text, c.page, d.title, d.type, s.path, "
                f"{self._section_sql} FROM chunks c JOIN documents d ON d.id=c.document_id "
                f"JOIN sources s ON s.id=d.source_id WHERE c.id IN ({marks})",
                [int(r) for r in row_ids],
            )
            .fetchall()
        )
        return {r[0]: ChunkRow(*r) for r in rows}

    def filtered_row_ids(self, source: str | None, type_: str | None) -> np.ndarray:
        """Chunk ids whose source path matches the glob ``source`` and whose type is ``type_``."""
        where, args = [], []
        if source:
            where.append("s.path GLOB ?")
            args.append(source if any(ch in source for ch in "*?[") else f"*{source}*")
        if type_:
            where.append("d.type = ?")
            args.append(type_)
        sql = (
            "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.document_id "
            "JOIN sources s ON s.id=d.source_id"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._conn().execute(sql + " ORDER BY c.id", args).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        return {
            "sources": conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0],
            "documents": conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            "chunks": conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
            "partial_sources": conn.execute(
                "SELECT COUNT(*) FROM sources WHERE content_hash IS NULL"
            ).fetchone()[0],
        }
