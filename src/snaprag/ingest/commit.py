"""Stage three of ingestion: the one writer. One transaction per batch, each a new version.

Kill safety comes from what each transaction records:

* a source is marked partial (no content hash) in every transaction that writes to it and
  complete only in the one that writes its last batch, so an interrupted source is never
  skipped as unchanged;
* a document is stored under a pending marker until the transaction that writes its last
  chunk records its hash, so a half-written document is resumed after its last stored
  chunk (or rewritten), never skipped and never duplicated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..errors import LoaderError
from ..index.base import DocumentStore, StoredChunk
from .process import ChunkBatch, SourceInfo


class Committer:
    """Writes processed batches into a :class:`~snaprag.index.base.DocumentStore`."""

    def __init__(self, store: DocumentStore, vector_dtype: str) -> None:
        self.store = store
        self.vector_dtype = vector_dtype

    def check(self, info: SourceInfo) -> None:
        """Refuse a source before any of it is written when one of its document ids is
        already indexed from another source (a clash must not leave half a source)."""
        clash = self.store.foreign_document(info.doc_ids, info.source)
        if clash is not None:
            raise LoaderError(f"document id {clash[0]!r} is already indexed from {clash[1]}")

    def write(self, info: SourceInfo, batch: ChunkBatch) -> int:
        """Write one batch in one transaction (with a version bump); returns its chunks.

        The source's last batch also drops the documents it no longer has and records its
        content hash.
        """
        store = self.store
        with store.transaction(bump=True) as conn:
            source_id = store.upsert_source(conn, info.source, info.type, info.size, info.mtime)
            i = 0
            for part in batch.parts:
                rows = [
                    StoredChunk(
                        c.seq,
                        c.text,
                        c.page,
                        c.char_start,
                        c.char_end,
                        batch.terms[j],
                        batch.vectors[j],
                        c.section,
                    )
                    for j, c in enumerate(batch.chunks[i : i + part.n_chunks], start=i)
                ]
                i += part.n_chunks
                try:
                    if part.first:
                        store.begin_document(
                            conn,
                            source_id,
                            part.doc_id,
                            part.title,
                            part.type,
                            part.resume_key,
                            part.n_chars,
                        )
                    store.append_chunks(conn, source_id, part.doc_id, rows, self.vector_dtype)
                except sqlite3.IntegrityError as exc:  # another source took the id meanwhile
                    owner = store.document_owner(part.doc_id)
                    raise LoaderError(
                        f"document id {part.doc_id!r} is already indexed from {owner}"
                    ) from exc
                if part.last:
                    store.finish_document(conn, source_id, part.doc_id, part.doc_hash)
            if batch.last:
                store.delete_documents_except(conn, source_id, info.doc_ids)
                store.finish_source(conn, source_id, info.content_hash)
        return len(batch.chunks)

    def remove(self, sources: Sequence[str]) -> list[tuple[str, int]]:
        """Delete sources (with documents and chunks) in one transaction; returns
        ``(path, documents removed)`` for each."""
        if not sources:
            return []
        with self.store.transaction(bump=True) as conn:
            return [(s, self.store.delete_source(conn, s)) for s in sources]
