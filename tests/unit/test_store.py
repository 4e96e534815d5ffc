"""Store: schema, versioning, transactions, documents and chunks, vector encodings, errors."""

from __future__ import annotations

import os
import sqlite3
import threading

import numpy as np
import pytest

from snaprag.errors import IndexStateError
from snaprag.index.store import (
    SCHEMA_VERSION,
    ChunkRow,
    Store,
    StoredChunk,
    decode_vectors,
    encode_vector,
)

DIM = 8


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunk(seq: int, text: str, vector: np.ndarray, page: int | None = None) -> StoredChunk:
    return StoredChunk(
        seq=seq,
        text=text,
        page=page,
        char_start=seq * 10,
        char_end=seq * 10 + len(text),
        tokens=text.lower().split(),
        vector=vector,
    )


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "index.db")
    yield s
    s.close()


def add_source(
    store: Store,
    path: str,
    docs: dict[str, list[str]],
    type_: str = "text",
    finish: bool = True,
    dtype: str = "float16",
    seed: int = 0,
) -> int:
    """Write one source with documents ``{doc_id: [chunk texts]}`` in one bumped transaction."""
    n = sum(len(t) for t in docs.values())
    vecs = iter(unit_vectors(max(n, 1), seed=seed))
    with store.transaction(bump=True) as conn:
        sid = store.upsert_source(conn, path, type_, size=100, mtime=1.5)
        for doc_id, texts in docs.items():
            store.replace_document(
                conn,
                sid,
                doc_id,
                title=f"title of {doc_id}",
                type_=type_,
                doc_hash=f"h-{doc_id}",
                n_chars=sum(map(len, texts)),
                chunks=[chunk(i, t, next(vecs), page=i + 1) for i, t in enumerate(texts)],
                vector_dtype=dtype,
            )
        if finish:
            store.finish_source(conn, sid, f"content-{path}")
    return sid


def chunk_texts(store: Store) -> list[str]:
    return [r[0] for r in store._conn().execute("SELECT text FROM chunks ORDER BY id")]


# --------------------------------------------------------------------------- schema


def test_schema_created(store):
    names = {
        r[0]
        for r in store._conn().execute("SELECT name FROM sqlite_master WHERE type IN ('table')")
    }
    assert {"meta", "sources", "documents", "chunks"} <= names
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert store.version == 0
    assert store.counts() == {"sources": 0, "documents": 0, "chunks": 0, "partial_sources": 0}
    assert store.sources() == []


def test_wal_mode_and_foreign_keys(store):
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopen_keeps_data_and_version(tmp_path):
    s = Store(tmp_path / "index.db")
    add_source(s, "a.txt", {"a": ["one", "two"]})
    s.set_meta({"model": "minilm"})
    s.close()
    s2 = Store(tmp_path / "index.db")
    assert s2.version == 1
    assert s2.get_meta("model") == "minilm"
    assert s2.counts()["chunks"] == 2
    s2.close()


def test_each_thread_gets_its_own_connection(store):
    add_source(store, "a.txt", {"a": ["x"]})
    seen = {}

    def worker():
        seen["conn"] = store._conn()
        seen["count"] = store.counts()["chunks"]
        store.close()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["count"] == 1
    assert seen["conn"] is not store._conn()


# --------------------------------------------------------------------------- versions


def test_version_bumps_only_with_bump(store):
    assert store.version == 0
    with store.transaction() as conn:
        store.upsert_source(conn, "a.txt", "text", 1, 1.0)
    assert store.version == 0
    store.set_meta({"k": "v"})
    assert store.version == 0
    with store.transaction(bump=True):
        pass
    assert store.version == 1
    with store.transaction(bump=True) as conn:
        store.upsert_source(conn, "b.txt", "text", 1, 1.0)
    assert store.version == 2


def test_set_meta_upserts(store):
    store.set_meta({"a": 1, "b": "x"})
    store.set_meta({"a": 2})
    assert store.get_meta("a") == "2"
    assert store.get_meta("b") == "x"
    assert store.get_meta("missing") is None


def test_rollback_on_exception_keeps_data_and_version(store):
    add_source(store, "a.txt", {"a": ["kept"]})
    before = (store.version, store.counts(), chunk_texts(store))
    with pytest.raises(RuntimeError, match="boom"), store.transaction(bump=True) as conn:
        store.delete_source(conn, "a.txt")
        sid = store.upsert_source(conn, "b.txt", "text", 1, 1.0)
        store.replace_document(conn, sid, "b", "t", "text", "h", 1, [], "float16")
        raise RuntimeError("boom")
    assert (store.version, store.counts(), chunk_texts(store)) == before
    assert store.sources() == ["a.txt"]
    # the store is still usable afterwards
    with store.transaction(bump=True):
        pass
    assert store.version == before[0] + 1


def test_rollback_on_sql_error(store):
    add_source(store, "a.txt", {"a": ["kept"]})
    version = store.version
    with pytest.raises(sqlite3.IntegrityError), store.transaction(bump=True) as conn:
        conn.execute("INSERT INTO meta VALUES ('version', '99')")  # duplicate key
    assert store.version == version


# --------------------------------------------------------------------------- documents


def test_replace_document_replaces_only_that_doc(store):
    sid = add_source(store, "a.txt", {"d1": ["one", "two", "three"], "d2": ["other"]})
    add_source(store, "b.txt", {"d3": ["elsewhere"]})
    with store.transaction(bump=True) as conn:
        store.replace_document(
            conn,
            sid,
            "d1",
            "new title",
            "text",
            "h-new",
            5,
            [chunk(0, "fresh", unit_vectors(1)[0])],
            "float16",
        )
    assert sorted(chunk_texts(store)) == ["elsewhere", "fresh", "other"]
    assert store.document_hashes(sid) == {"d1": "h-new", "d2": "h-d2"}
    assert store.counts() == {"sources": 2, "documents": 3, "chunks": 3, "partial_sources": 0}


def test_document_owned_by_other_source_raises_and_is_kept(store):
    add_source(store, "a.txt", {"shared": ["owned by a"]})
    version = store.version
    with pytest.raises(sqlite3.IntegrityError), store.transaction(bump=True) as conn:
        sid_b = store.upsert_source(conn, "b.txt", "text", 1, 1.0)
        store.replace_document(conn, sid_b, "shared", "t", "text", "h", 1, [], "float16")
    assert store.document_owner("shared") == "a.txt"
    assert chunk_texts(store) == ["owned by a"]
    assert store.version == version
    assert store.sources() == ["a.txt"]  # b.txt was rolled back with the failed write


def test_document_owner_and_hashes(store):
    sid = add_source(store, "dir/a.txt", {"x": ["1"], "y": ["2"]})
    assert store.document_owner("x") == "dir/a.txt"
    assert store.document_owner("nope") is None
    assert store.document_hashes(sid) == {"x": "h-x", "y": "h-y"}
    assert store.document_hashes(sid + 100) == {}


def test_delete_documents_except(store):
    sid = add_source(store, "a.txt", {"x": ["1", "2"], "y": ["3"], "z": ["4"]})
    other = add_source(store, "b.txt", {"w": ["5"]})
    with store.transaction(bump=True) as conn:
        store.delete_documents_except(conn, sid, ["y", "not-there"])
    assert chunk_texts(store) == ["3", "5"]
    assert store.counts()["documents"] == 2
    assert store.document_hashes(other) == {"w": "h-w"}


def test_foreign_document(store):
    add_source(store, "a.txt", {"x": ["1"]})
    assert store.foreign_document(["q", "x"], "b.txt") == ("x", "a.txt")
    assert store.foreign_document(["x"], "a.txt") is None
    assert store.foreign_document([], "b.txt") is None


# --------------------------------------------------------------------------- sources


def test_delete_source_cascades(store):
    add_source(store, "a.txt", {"a1": ["1", "2"], "a2": ["3"]})
    add_source(store, "b.txt", {"b1": ["4"]})
    with store.transaction(bump=True) as conn:
        assert store.delete_source(conn, "a.txt") == 2
        assert store.delete_source(conn, "missing.txt") == 0
    assert store.sources() == ["b.txt"]
    assert chunk_texts(store) == ["4"]
    assert store.counts() == {"sources": 1, "documents": 1, "chunks": 1, "partial_sources": 0}
    assert store.document_owner("a1") is None


def test_partial_sources_until_finished(store):
    with store.transaction(bump=True) as conn:
        sid = store.upsert_source(conn, "a.txt", "text", 10, 2.0)
    assert store.source("a.txt") == (sid, None)
    assert store.counts()["partial_sources"] == 1
    with store.transaction(bump=True) as conn:
        store.finish_source(conn, sid, "abc")
    assert store.source("a.txt") == (sid, "abc")
    assert store.counts()["partial_sources"] == 0
    # re-ingesting the same path keeps its id and marks it partial again
    with store.transaction(bump=True) as conn:
        assert store.upsert_source(conn, "a.txt", "pdf", 20, 3.0) == sid
    assert store.source("a.txt") == (sid, None)
    assert store.counts() == {"sources": 1, "documents": 0, "chunks": 0, "partial_sources": 1}
    assert store.source("other.txt") is None


def test_sources_sorted(store):
    for p in ["c.txt", "a.txt", "b/z.md"]:
        add_source(store, p, {})
    assert store.sources() == ["a.txt", "b/z.md", "c.txt"]


def test_source_summaries(store):
    import time

    before = time.time()
    add_source(store, "/d/a.pdf", {"a1": ["1", "2", "3"]}, type_="pdf")  # pages 1, 2, 3
    add_source(store, "/d/b.jsonl", {"b1": ["4"], "b2": ["5"]}, type_="jsonl")
    with store.transaction(bump=True) as conn:  # a text source: no page numbers
        sid = store.upsert_source(conn, "/d/c.txt", "txt", 5, 1.0)
        store.replace_document(
            conn, sid, "c1", "c", "txt", "h", 3, [chunk(0, "six", unit_vectors(1)[0])], "float16"
        )
    add_source(store, "/d/empty.md", {}, finish=False)
    got = {s["path"]: s for s in store.source_summaries()}
    assert list(got) == ["/d/a.pdf", "/d/b.jsonl", "/d/c.txt", "/d/empty.md"]
    assert got["/d/a.pdf"] == {
        "path": "/d/a.pdf",
        "type": "pdf",
        "documents": 1,
        "pages": 3,
        "chunks": 3,
        "ingested_at": got["/d/a.pdf"]["ingested_at"],
        "complete": True,
    }
    assert isinstance(got["/d/a.pdf"]["ingested_at"], float)
    assert before - 1 <= got["/d/a.pdf"]["ingested_at"] <= time.time() + 1
    b = got["/d/b.jsonl"]
    assert (b["documents"], b["chunks"], b["pages"]) == (2, 2, 1)  # both on page 1
    assert got["/d/c.txt"]["pages"] is None and got["/d/c.txt"]["chunks"] == 1
    e = got["/d/empty.md"]
    assert (e["documents"], e["chunks"], e["pages"], e["complete"]) == (0, 0, None, False)


def test_delete_by_path_relative_path_or_document_id(store, tmp_path, monkeypatch):
    a, b, c = (str(tmp_path / n) for n in ("a.txt", "b.jsonl", "c.txt"))
    add_source(store, a, {"a1": ["1", "2"]})
    add_source(store, b, {"b1": ["3"], "b2": ["4"]})
    add_source(store, c, {"c1": ["5"]})
    version = store.version
    assert store.delete(a) == {"deleted": "source", "source": a, "documents": 1, "chunks": 2}
    assert store.version == version + 1
    monkeypatch.chdir(tmp_path)
    assert store.delete("./c.txt")["source"] == c  # resolved from the working directory
    got = store.delete("b2")  # a document id removes that document only
    assert got == {
        "deleted": "document",
        "source": b,
        "doc_id": "b2",
        "documents": 1,
        "chunks": 1,
    }
    assert store.sources() == [b] and chunk_texts(store) == ["3"]
    assert store.delete("b1")["deleted"] == "document"  # its last document: the source goes
    assert store.sources() == [] and chunk_texts(store) == []
    assert store.version == version + 4


def test_delete_of_nothing_raises_and_changes_nothing(store):
    add_source(store, "/d/a.txt", {"a1": ["1"]})
    version = store.version
    for wanted in ("/d/zzz.txt", "nope", "bad\x00name"):
        with pytest.raises(IndexStateError, match="snaprag docs") as err:
            store.delete(wanted)
        assert repr(wanted) in str(err.value)
    assert store.version == version and store.sources() == ["/d/a.txt"]


def test_documents_written_over_several_transactions(store):
    v = unit_vectors(5)
    with store.transaction(bump=True) as conn:
        sid = store.upsert_source(conn, "a.txt", "txt", 10, 1.0)
        store.replace_document(
            conn, sid, "done", "t", "txt", "h-done", 3, [chunk(0, "x", v[0])], "float16"
        )
        store.begin_document(conn, sid, "big", "t", "txt", "key1", 30)
        store.append_chunks(conn, sid, "big", [chunk(0, "a", v[1]), chunk(1, "b", v[2])], "float16")
    assert store.document_hashes(sid) == {"done": "h-done"}  # pending ones are not complete
    assert store.pending_documents(sid) == {"big": ("key1", 2)}
    with store.transaction(bump=True) as conn:
        store.append_chunks(conn, sid, "big", [chunk(2, "c", v[3])], "float16")
        store.finish_document(conn, sid, "big", "h-big")
    assert store.pending_documents(sid) == {}
    assert store.document_hashes(sid) == {"done": "h-done", "big": "h-big"}
    assert chunk_texts(store) == ["x", "a", "b", "c"]
    with store.transaction(bump=True) as conn:  # beginning again drops what was there
        store.begin_document(conn, sid, "big", "t", "txt", "key2", 30)
    assert store.pending_documents(sid) == {"big": ("key2", 0)}
    assert chunk_texts(store) == ["x"]
    with pytest.raises(IndexStateError, match="removed"), store.transaction() as conn:
        store.append_chunks(conn, sid, "gone", [chunk(0, "y", v[4])], "float16")


# --------------------------------------------------------------------------- vectors


def test_float16_round_trip():
    v = unit_vectors(50, 32, seed=3)
    blobs = [encode_vector(x, "float16") for x in v]
    assert all(len(b) == 32 * 2 for b in blobs)
    out = decode_vectors(blobs, 32, "float16")
    assert out.dtype == np.float32 and out.shape == (50, 32)
    np.testing.assert_array_equal(out, v.astype(np.float16).astype(np.float32))


def test_int8_round_trip_is_close():
    v = unit_vectors(200, 384, seed=4)
    blobs = [encode_vector(x, "int8") for x in v]
    assert all(len(b) == 4 + 384 for b in blobs)
    out = decode_vectors(blobs, 384, "int8")
    assert out.dtype == np.float32 and out.shape == (200, 384)
    cos = np.sum(out * v, axis=1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(v, axis=1))
    assert cos.min() > 0.999
    # the largest component is represented exactly up to float32 rounding
    idx = np.abs(v).argmax(axis=1)
    np.testing.assert_allclose(
        out[np.arange(200), idx], v[np.arange(200), idx], rtol=1e-6, atol=1e-7
    )


def test_int8_zero_vector():
    z = np.zeros(DIM, np.float32)
    out = decode_vectors([encode_vector(z, "int8")], DIM, "int8")
    np.testing.assert_array_equal(out, np.zeros((1, DIM), np.float32))


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_decode_empty(dtype):
    out = decode_vectors([], DIM, dtype)
    assert out.shape == (0, DIM) and out.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_load_index_arrays_in_id_order(store, dtype):
    add_source(store, "a.txt", {"a": ["Alpha one", "alpha two"]}, dtype=dtype, seed=1)
    add_source(store, "b.txt", {"b": ["beta"]}, dtype=dtype, seed=2)
    a = store.read_index(DIM, dtype)
    ids, vectors, tokens = a.row_ids, a.vectors, a.tokens
    assert ids.dtype == np.int64
    assert ids.tolist() == sorted(ids.tolist()) and len(ids) == 3
    assert tokens == [["alpha", "one"], ["alpha", "two"], ["beta"]]
    expected = np.vstack([unit_vectors(2, seed=1), unit_vectors(1, seed=2)])
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=1e-2)


def test_load_index_arrays_empty(store):
    a = store.read_index(DIM, "float16")
    ids, vectors, tokens = a.row_ids, a.vectors, a.tokens
    assert ids.shape == (0,) and vectors.shape == (0, DIM) and tokens == []


# --------------------------------------------------------------------------- reading


def test_chunk_rows_join(store):
    add_source(store, "docs/a.txt", {"a": ["first", "second"]})
    add_source(store, "docs/b.pdf", {"b": ["third"]}, type_="pdf")
    ids = store.read_index(DIM, "float16").row_ids
    rows = store.chunk_rows(np.asarray(ids))
    assert set(rows) == set(ids.tolist())
    r = rows[int(ids[1])]
    assert r == ChunkRow(
        row_id=int(ids[1]),
        doc_id="a",
        seq=1,
        text="second",
        page=2,
        title="title of a",
        type="text",
        source="docs/a.txt",
    )
    assert rows[int(ids[2])].type == "pdf" and rows[int(ids[2])].source == "docs/b.pdf"
    assert store.chunk_rows([]) == {}
    assert store.chunk_rows([10_000]) == {}
    assert set(store.chunk_rows([int(ids[0]), 10_000])) == {int(ids[0])}


def test_filtered_row_ids(store):
    add_source(store, "docs/guide.md", {"g": ["1", "2"]}, type_="markdown")
    add_source(store, "docs/report.pdf", {"r": ["3"]}, type_="pdf")
    add_source(store, "notes/todo.txt", {"t": ["4", "5"]}, type_="text")
    ids = store.read_index(DIM, "float16").row_ids
    g1, g2, r, t1, t2 = ids.tolist()

    def f(source=None, type_=None):
        out = store.filtered_row_ids(source, type_)
        assert out.dtype == np.int64
        return out.tolist()

    assert f() == [g1, g2, r, t1, t2]
    assert f("docs/*") == [g1, g2, r]  # glob
    assert f("*.pdf") == [r]
    assert f("docs/[gr]*.md") == [g1, g2]
    assert f("report") == [r]  # plain text: substring
    assert f("o") == [g1, g2, r, t1, t2]
    assert f("Report") == []  # case-sensitive
    assert f(type_="text") == [t1, t2]
    assert f("docs", "pdf") == [r]
    assert f("docs", "text") == []
    assert f(type_="nothing") == []


def test_counts(store):
    add_source(store, "a.txt", {"a": ["1", "2"], "b": ["3"]})
    add_source(store, "b.txt", {"c": ["4"]}, finish=False)
    assert store.counts() == {"sources": 2, "documents": 3, "chunks": 4, "partial_sources": 1}


# --------------------------------------------------------------------------- bad files


def test_other_schema_version_raises(tmp_path):
    path = tmp_path / "index.db"
    s = Store(path)
    s.set_meta({"schema_version": SCHEMA_VERSION + 1})
    s.close()
    with pytest.raises(IndexStateError) as info:
        Store(path)
    message = str(info.value)
    assert str(path) in message
    assert f"schema {SCHEMA_VERSION + 1}" in message
    assert str(SCHEMA_VERSION) in message
    assert "re-ingest" in message


@pytest.mark.parametrize("size", [100, 4096, 65536])
def test_random_bytes_file_raises_index_error(tmp_path, size):
    path = tmp_path / "index.db"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    with pytest.raises(IndexStateError, match="cannot open index database"):
        Store(path)


def test_text_file_raises_index_error(tmp_path):
    path = tmp_path / "index.db"
    path.write_text("definitely not a database\n" * 100)
    with pytest.raises(IndexStateError, match="move the index directory away"):
        Store(path)


def test_damaged_pages_raise_index_error(tmp_path):
    path = tmp_path / "index.db"
    s = Store(path)
    add_source(s, "a.txt", {"a": ["x"] * 20})
    s._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    data = bytearray(path.read_bytes())
    data[100:] = np.random.default_rng(0).bytes(len(data) - 100)  # keep only the header
    path.write_bytes(bytes(data))
    with pytest.raises(IndexStateError):
        Store(path)


def test_missing_directory_raises_index_error(tmp_path):
    with pytest.raises(IndexStateError):
        Store(tmp_path / "does" / "not" / "exist" / "index.db")
