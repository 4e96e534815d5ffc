"""An index written before heading paths (schema 1) keeps opening: upgraded in place when
it can be written, read as it is when it cannot."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from snaprag.errors import IndexStateError
from snaprag.index.store import SCHEMA_VERSION, Store, StoredChunk
from snaprag.index.vector_codec import encode_vector

# the schema as snaprag 1 wrote it
_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    content_hash TEXT, size INTEGER NOT NULL, mtime REAL NOT NULL, ingested_at REAL NOT NULL);
CREATE TABLE documents (id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    doc_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, type TEXT NOT NULL,
    doc_hash TEXT NOT NULL, n_chars INTEGER NOT NULL);
CREATE TABLE chunks (id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, text TEXT NOT NULL, page INTEGER, char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL, tokens TEXT NOT NULL, vector BLOB NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('version', '3'), ('index_id', 'old');
INSERT INTO sources VALUES (1, '/docs/manual.pdf', 'pdf', 'abc', 10, 1.0, 1.0);
INSERT INTO documents VALUES (1, 1, 'd1', 'Manual', 'pdf', 'h1', 100);
"""


def old_index(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_1)
    vector = encode_vector(np.ones(4, np.float32) / 2, "float16")
    conn.execute(
        "INSERT INTO chunks VALUES (1, 1, 0, 'Old text.', 2, 0, 9, 'old text', ?)", (vector,)
    )
    conn.commit()
    conn.close()
    return path


def test_schema_1_is_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    store = Store(old_index(tmp_path / "snaprag.db"))
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "2"
        assert store.version == 3  # the data is untouched
        row = store.chunk_rows([1])[1]
        assert (row.text, row.page, row.section) == ("Old text.", 2, "")
        with store.transaction(bump=True) as conn:
            store.append_chunks(
                conn,
                1,
                "d1",
                [StoredChunk(1, "New.", 3, 10, 14, ["new"], np.ones(4, np.float32) / 2, "A > B")],
                "float16",
            )
        assert store.chunk_rows([2])[2].section == "A > B"
    finally:
        store.close()
    Store(tmp_path / "snaprag.db").close()  # opening it again is a no-op


def test_schema_1_opened_read_only_is_searched_as_it_is(tmp_path: Path) -> None:
    path = old_index(tmp_path / "snaprag.db")
    store = Store(path, read_only=True)
    try:
        assert store.get_meta("schema_version") == "1"
        assert store.chunk_rows([1])[1].section == ""
        assert store.read_index(4, "float16").tokens == [["old", "text"]]
    finally:
        store.close()


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = old_index(tmp_path / "snaprag.db")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value='9' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(IndexStateError, match="upgrade snaprag"):
        Store(path)
