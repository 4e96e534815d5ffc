"""The Milvus document store: sources, documents and chunks in Milvus collections, with
the index version and generation kept there too, so every host sees a change at once.

Milvus has no multi-row transactions. ``transaction(bump=True)`` applies each write as it
is made and, when the block ends (also when it fails after writing), updates the BM25
statistics and then moves the version and generation on. Readers that look at the
generation (every cache lookup) therefore never reuse a result from before a change; a
batch cut short leaves its rows, which the ingest's resume marks (pending documents,
partial sources) finish or replace on the next run, exactly as after a crash.

Writers on one host are serialised by the ingest lock and ``_write_lock``; writers on two
hosts at the same moment may race on the document frequencies of shared terms (see
``docs/milvus.md``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import IndexStateError, LoaderError
from ..base import ChunkRow, IndexArrays, StoredChunk, source_candidates
from ..vector_codec import decode_vectors, encode_vector
from . import schema
from .bm25 import doc_weights, term_counts
from .names import index_name, is_local, new_chunk_ids, source_id
from .query import PENDING, MilvusReader, quote

_ROW_FIELDS = ["id", "doc_id", "seq", "text", "page", "source_id", "section", "type"]


@dataclass
class _Tx:
    """What a write block changed: BM25 statistics to apply when it ends."""

    docs: int = 0
    length: int = 0
    df: Counter[int] = field(default_factory=Counter)
    wrote: bool = False
    #: read once per block: the BM25 corpus size and length before it
    base: tuple[int, int] | None = None
    #: rows this block wrote, so that it does not read them back (source paths by id,
    #: document rows by id)
    paths: dict[int, str] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: writes gathered into one call each (sent before any read of them, and at the end)
    unsent_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsent_chunks: list[dict[str, Any]] = field(default_factory=list)


class MilvusStore(MilvusReader):
    """A :class:`~snaprag.index.base.DocumentStore` in Milvus (thread-safe).

    ``uri`` is a server (``http://HOST:19530``) or a Milvus Lite ``.db`` file; the index's
    collections are named after ``index_dir`` (see :mod:`.names`). ``create`` False: the
    index must exist in Milvus already.
    """

    read_only = False

    def __init__(
        self, uri: str, index_dir: Path, token: str = "", prefix: str = "snaprag_", create=True
    ) -> None:
        client = schema.connect(uri, token)
        name = index_name(prefix, index_dir)
        super().__init__(client, name)
        self.uri = uri
        self.local = is_local(uri)
        #: where messages say the index is (the local directory of caches and uploads)
        self.path = Path(index_dir) / "milvus"
        self._write_lock = threading.Lock()
        self._dim: int | None = None  # of the chunks collection, once it exists
        if not schema.exists(client, name):
            if not create:
                raise IndexStateError(
                    f"no index {name!r} in Milvus at {uri}: run 'snaprag ingest PATH' first "
                    "(with the same milvus_uri, milvus_prefix and index directory name)"
                )
            schema.create(client, name)
            client.upsert(
                self._col("meta"),
                [
                    self._meta_row("schema_version", "1"),
                    self._meta_row("version", "0"),
                    self._meta_row("index_id", uuid.uuid4().hex),
                ],
            )

    @staticmethod
    def _meta_row(key: str, value: object) -> dict[str, Any]:
        return {"key": key, "value": str(value), "pad": schema.PAD}

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ meta
    def set_meta(self, values: dict[str, object]) -> None:
        dim = values.get("dim")
        if dim is not None and schema.chunks_dim(self.client, self.name) not in (None, int(dim)):
            if self.counts()["chunks"]:
                raise IndexStateError(
                    f"index {self.name!r} holds {schema.chunks_dim(self.client, self.name)}-d "
                    f"vectors, not {dim}-d; ingest into another index"
                )
            self.client.drop_collection(self._col("chunks"))  # empty: made again below
            self._loaded.discard(self._col("chunks"))
            self._dim = None
        if dim is not None and schema.chunks_dim(self.client, self.name) is None:
            schema.create_chunks(self.client, self.name, int(dim), self.local)
        self.client.upsert(self._col("meta"), [self._meta_row(k, v) for k, v in values.items()])

    @contextmanager
    def transaction(self, bump: bool = False) -> Iterator[_Tx]:
        """A write block; with ``bump`` (or when anything was written) the version and
        generation move on when it ends, after the BM25 statistics are updated."""
        with self._write_lock:
            tx = _Tx()
            try:
                yield tx
            finally:
                if bump or tx.wrote:
                    self._commit(tx)

    def _send(self, tx: _Tx) -> None:
        """Write the block's gathered document rows and chunks (before anything reads them)."""
        if tx.unsent_documents:
            self.client.upsert(self._col("documents"), list(tx.unsent_documents.values()))
            tx.unsent_documents.clear()
        if tx.unsent_chunks:
            self.client.insert(self._col("chunks"), tx.unsent_chunks)
            tx.unsent_chunks = []

    def _commit(self, tx: _Tx) -> None:
        self._send(tx)
        meta = self._metas(["version", "bm25_docs", "bm25_length"])
        docs = int(meta.get("bm25_docs") or 0) + tx.docs
        length = int(meta.get("bm25_length") or 0) + tx.length
        self._apply_df(tx.df)
        self.client.upsert(
            self._col("meta"),
            [
                self._meta_row("bm25_docs", docs),
                self._meta_row("bm25_length", length),
            ],
        )
        self._reweight(length / docs if docs else 0.0)
        if self.local and tx.wrote and self._has_chunks():
            # Milvus Lite searches its unsealed rows by rebuilding their indexes on every
            # search; sealing them after a write keeps searches fast (a server seals itself)
            self.client.flush(self._col("chunks"))
        # last: once the generation moves, everything it stands for is in place
        self.client.upsert(
            self._col("meta"),
            [
                self._meta_row("version", int(meta.get("version") or 0) + 1),
                self._meta_row("generation", uuid.uuid4().hex),
            ],
        )

    def _apply_df(self, delta: Counter[int]) -> None:
        changed = [t for t, d in delta.items() if d]
        for start in range(0, len(changed), 4096):
            part = changed[start : start + 4096]
            found = {
                int(r["tid"]): int(r["df"])
                for r in self.client.get(self._col("terms"), ids=part, output_fields=["df"])
            }
            rows, gone = [], []
            for tid in part:
                df = found.get(tid, 0) + delta[tid]
                if df > 0:
                    rows.append({"tid": tid, "df": df, "pad": schema.PAD})
                else:
                    gone.append(tid)
            if rows:
                self.client.upsert(self._col("terms"), rows)
            if gone:
                self.client.delete(self._col("terms"), ids=gone)

    def _reweight(self, avgdl: float) -> None:
        """Weight again the chunks whose BM25 weights were made with another mean length."""
        from .bm25 import AVGDL_TOLERANCE

        if avgdl <= 0 or not self._has_chunks():
            return
        lo, hi = avgdl * (1 - AVGDL_TOLERANCE), avgdl * (1 + AVGDL_TOLERANCE)
        fields = [*_ROW_FIELDS, "char_start", "char_end", "tokens", "vector"]
        stale = self.scan("chunks", f"avgdl < {lo!r} or avgdl > {hi!r}", fields)
        for start in range(0, len(stale), 1024):
            rows = stale[start : start + 1024]
            for r in rows:
                tokens = r["tokens"].split()
                r["avgdl"] = avgdl
                r["sparse"] = doc_weights(tokens, avgdl) or {0: 0.0}
                r["vector"] = [float(x) for x in r["vector"]]
            self.client.upsert(self._col("chunks"), rows)

    # ------------------------------------------------------------------ sources
    def upsert_source(self, tx: _Tx, path: str, type_: str, size: int, mtime: float) -> int:
        tx.wrote = True
        old = self._source_row(path)
        row = {
            "path": path,
            "id": source_id(path),
            "type": type_,
            "content_hash": "",
            "size": int(size),
            "mtime": float(mtime),
            "ingested_at": old["ingested_at"] if old else time.time(),
            "pad": schema.PAD,
        }
        self.client.upsert(self._col("sources"), [row])
        tx.paths[row["id"]] = path
        return row["id"]

    def finish_source(self, tx: _Tx, source_id: int, content_hash: str) -> None:
        tx.wrote = True
        rows = self.scan("sources", f"id == {int(source_id)}", ["*"])
        for row in rows:
            row.update(content_hash=content_hash, ingested_at=time.time(), pad=schema.PAD)
            self.client.upsert(self._col("sources"), [row])

    def delete_source(self, tx: _Tx, path: str) -> int:
        """Delete a source with its documents and chunks; returns documents removed."""
        self._send(tx)
        row = self._source_row(path)
        if row is None:
            return 0
        tx.wrote = True
        docs = self.scan("documents", f"source_id == {int(row['id'])}", ["doc_id"])
        self._delete_chunks(tx, f"source_id == {int(row['id'])}")
        if docs:
            self.client.delete(self._col("documents"), ids=[d["doc_id"] for d in docs])
        self.client.delete(self._col("sources"), ids=[path])
        return len(docs)

    def delete(self, source_or_doc_id: str) -> dict[str, Any]:
        """Remove one source (by path, as stored or resolving to one) or one document (by
        id), as one change (a new version); see :meth:`snaprag.index.store.Store.delete`."""
        wanted = str(source_or_doc_id)
        with self.transaction(bump=True) as tx:
            for path in source_candidates(wanted):
                row = self._source_row(path)
                if row is not None:
                    chunks = self.count("chunks", f"source_id == {int(row['id'])}")
                    documents = self.delete_source(tx, path)
                    return {
                        "deleted": "source",
                        "source": path,
                        "documents": documents,
                        "chunks": chunks,
                    }
            doc = self._document_row(wanted)
            if doc is None:
                raise IndexStateError(
                    f"nothing in {self.path.parent} matches {wanted!r}: give a source path "
                    "or a document id as listed by 'snaprag docs' (or a hit's doc_id)"
                )
            chunks = self._delete_document(tx, wanted)
            if not self.count("documents", f"source_id == {int(doc['source_id'])}"):
                self.client.delete(self._col("sources"), ids=[doc["source"]])
        return {
            "deleted": "document",
            "source": doc["source"],
            "doc_id": wanted,
            "documents": 1,
            "chunks": chunks,
        }

    # ------------------------------------------------------------------ documents
    def begin_document(
        self,
        tx: _Tx,
        source_id: int,
        doc_id: str,
        title: str,
        type_: str,
        resume_key: str,
        n_chars: int,
    ) -> None:
        """Replace a document by an empty, pending one (its chunks follow)."""
        old = tx.documents.get(doc_id) or self._document_row(doc_id)
        if old is not None and int(old["source_id"]) != int(source_id):
            raise LoaderError(f"document id {doc_id!r} is already indexed from {old['source']}")
        tx.wrote = True
        if old is not None:
            self._delete_document(tx, doc_id)
        if int(source_id) not in tx.paths:
            found = self.scan("sources", f"id == {int(source_id)}", ["path"])
            tx.paths[int(source_id)] = found[0]["path"] if found else ""
        row = {
            "doc_id": doc_id,
            "source_id": int(source_id),
            "source": tx.paths[int(source_id)],
            "title": schema.fit(title, schema.NAME_BYTES),
            "type": type_,
            "doc_hash": PENDING + resume_key,
            "n_chars": int(n_chars),
            "pad": schema.PAD,
        }
        tx.unsent_documents[doc_id] = tx.documents[doc_id] = row

    def append_chunks(
        self,
        tx: _Tx,
        source_id: int,
        doc_id: str,
        chunks: Iterable[StoredChunk],
        vector_dtype: str,
    ) -> None:
        """Add chunks to a document of the source, with their BM25 weights."""
        doc = tx.documents.get(doc_id) or self._document_row(doc_id)
        if doc is None or int(doc["source_id"]) != int(source_id):
            raise IndexStateError(
                f"document {doc_id!r} was removed while it was being written; run the ingest again"
            )
        chunks = list(chunks)
        if not chunks:
            return
        tx.wrote = True
        dim = len(chunks[0].vector)
        if self._dim is None:
            self._dim = schema.chunks_dim(self.client, self.name)
        if self._dim is None:
            schema.create_chunks(self.client, self.name, dim, self.local)
            self._dim = dim
        # the vectors as the embedded store keeps them (float16 or int8), so both score alike
        vectors = decode_vectors([encode_vector(c.vector, vector_dtype) for c in chunks], dim,
                                 vector_dtype)  # fmt: skip
        if tx.base is None:
            meta = self._metas(["bm25_docs", "bm25_length"])
            tx.base = (int(meta.get("bm25_docs") or 0), int(meta.get("bm25_length") or 0))
        docs = tx.base[0] + tx.docs + len(chunks)
        length = tx.base[1] + tx.length + sum(len(c.tokens) for c in chunks)
        avgdl = length / docs if docs else 0.0
        rows = []
        for cid, c, vector in zip(new_chunk_ids(len(chunks)), chunks, vectors, strict=True):
            rows.append(
                {
                    "id": cid,
                    "doc_id": doc_id,
                    "source_id": int(source_id),
                    "type": doc["type"],
                    "seq": int(c.seq),
                    "text": schema.fit(c.text, schema.TEXT_BYTES),
                    "page": -1 if c.page is None else int(c.page),
                    "char_start": int(c.char_start),
                    "char_end": int(c.char_end),
                    "section": schema.fit(c.section, schema.NAME_BYTES),
                    "tokens": schema.fit(" ".join(c.tokens), schema.TEXT_BYTES),
                    "avgdl": avgdl,
                    "vector": vector.tolist(),
                    # Milvus refuses an empty sparse row: a zero weight matches nothing
                    "sparse": doc_weights(c.tokens, avgdl) or {0: 0.0},
                }
            )
            tx.df.update(term_counts(c.tokens))
        tx.docs += len(rows)
        tx.length += sum(len(c.tokens) for c in chunks)
        tx.unsent_chunks.extend(rows)
        if len(tx.unsent_chunks) >= 1024:
            self._send(tx)

    def finish_document(self, tx: _Tx, source_id: int, doc_id: str, doc_hash: str) -> None:
        """Mark a document complete: record its hash."""
        doc = tx.documents.get(doc_id) or self._document_row(doc_id)
        if doc is None or int(doc["source_id"]) != int(source_id):
            return
        tx.wrote = True
        doc.update(doc_hash=doc_hash, pad=schema.PAD)
        tx.unsent_documents[doc_id] = tx.documents[doc_id] = doc

    def delete_documents_except(self, tx: _Tx, source_id: int, keep: Sequence[str]) -> None:
        self._send(tx)
        kept = set(keep)
        for doc in self.scan("documents", f"source_id == {int(source_id)}", ["doc_id"]):
            if doc["doc_id"] not in kept:
                tx.wrote = True
                self._delete_document(tx, doc["doc_id"])

    def _delete_document(self, tx: _Tx, doc_id: str) -> int:
        """Delete a document and its chunks; returns its chunks."""
        n = self._delete_chunks(tx, f"doc_id == {quote(doc_id)}")
        self.client.delete(self._col("documents"), ids=[doc_id])
        tx.documents.pop(doc_id, None)
        return n

    def _delete_chunks(self, tx: _Tx, expr: str) -> int:
        """Delete the chunks matching ``expr``, taking their terms out of the statistics."""
        self._send(tx)
        if not self._has_chunks():
            return 0
        rows = self.scan("chunks", expr, ["id", "tokens"])
        for r in rows:
            tokens = r["tokens"].split()
            tx.df.subtract(term_counts(tokens))
            tx.length -= len(tokens)
        tx.docs -= len(rows)
        for start in range(0, len(rows), 4096):
            ids = [r["id"] for r in rows[start : start + 4096]]
            self.client.delete(self._col("chunks"), ids=ids)
        return len(rows)

    # ------------------------------------------------------------------ reading
    def read_index(self, dim: int, dtype: str) -> IndexArrays:
        """Every chunk's id, vector and terms in id order, with the generation they belong
        to (read again until no write landed during the read)."""
        for _ in range(5):
            before = self.generation
            rows = self.scan("chunks", "", ["id", "vector", "tokens"]) if self._has_chunks() else []
            if self.generation == before:
                break
        rows.sort(key=lambda r: r["id"])
        ids = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(-1, dim)
        tokens = [r["tokens"].split() for r in rows]
        return IndexArrays(int(before.split(":")[0]), before, ids, vectors, tokens)

    def chunk_rows(self, row_ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not len(row_ids) or not self._has_chunks():
            return {}
        rows = self.client.get(
            self._col("chunks"), ids=[int(r) for r in row_ids], output_fields=_ROW_FIELDS
        )
        docs = self._documents({r["doc_id"] for r in rows})
        out = {}
        for r in rows:
            doc = docs.get(r["doc_id"])
            if doc is None:  # its document went meanwhile
                continue
            page = None if r["page"] < 0 else int(r["page"])
            out[int(r["id"])] = ChunkRow(
                int(r["id"]), r["doc_id"], int(r["seq"]), r["text"], page, doc["title"],
                doc["type"], doc["source"], r["section"],
            )  # fmt: skip
        return out

    # ------------------------------------------------------------------ searching
    def search_indexes(self) -> tuple[Any, Any, int]:
        """Dense and BM25 indexes searching in Milvus, and the chunk count (see
        :class:`~snaprag.index.base.SearchingStore`)."""
        from .search import search_indexes

        return search_indexes(self)
