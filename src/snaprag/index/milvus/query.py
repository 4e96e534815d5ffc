"""The reading side of the Milvus store: metadata, the version, sources and documents.

Reads are single Milvus calls by primary key where they can be (the version and generation
of every cache lookup: one ``get`` of two rows); listings page through a collection.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .names import collection

PENDING = "pending:"
#: most rows one query returns in Milvus; longer listings page with an iterator
_QUERY_LIMIT = 16384


class _NoMvccWarning(logging.Filter):
    """Milvus Lite cannot tell pymilvus's iterator a timestamp; pymilvus then warns once
    per listing that it uses its own, which is right for us (reads are Strong)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus").addFilter(_NoMvccWarning())


def quote(value: str) -> str:
    """``value`` as a Milvus expression string literal."""
    return json.dumps(value, ensure_ascii=False)


class MilvusReader:
    """Reads of an index's collections (the store's reading half; thread-safe)."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self._loaded: set[str] = set()

    def _col(self, role: str) -> str:
        target = collection(self.name, role)
        # a collection made by another process is released here until loaded
        if target not in self._loaded and self.client.has_collection(target):
            self.client.load_collection(target)
            self._loaded.add(target)
        return target

    def _has_chunks(self) -> bool:
        if collection(self.name, "chunks") in self._loaded:
            return True
        return bool(self.client.has_collection(self._col("chunks")))

    def scan(self, role: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row of ``role`` matching ``expr`` (all rows: ``""``)."""
        col = self._col(role)
        rows = self.client.query(col, filter=expr, output_fields=fields, limit=_QUERY_LIMIT)
        if len(rows) < _QUERY_LIMIT:
            return [dict(r) for r in rows]
        out: list[dict[str, Any]] = []
        it = self.client.query_iterator(col, batch_size=4096, filter=expr, output_fields=fields)
        try:
            while batch := it.next():
                out.extend(dict(r) for r in batch)
        finally:
            it.close()
        return out

    def count(self, role: str, expr: str = "") -> int:
        if role == "chunks" and not self._has_chunks():
            return 0
        rows = self.client.query(self._col(role), filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # ------------------------------------------------------------------ meta
    def _metas(self, keys: Sequence[str]) -> dict[str, str]:
        rows = self.client.get(self._col("meta"), ids=list(keys), output_fields=["value"])
        return {r["key"]: r["value"] for r in rows}

    def get_meta(self, key: str) -> str | None:
        return self._metas([key]).get(key)

    @property
    def version(self) -> int:
        return int(self._metas(["version"]).get("version") or 0)

    @property
    def generation(self) -> str:
        """``version:random-id``, read from Milvus on every call (one ``get``), so a change
        made through any host is seen at once."""
        meta = self._metas(["version", "generation"])
        return f"{meta.get('version', '0')}:{meta.get('generation')}"

    def counts(self) -> dict[str, int]:
        return {
            "sources": self.count("sources"),
            "documents": self.count("documents"),
            "chunks": self.count("chunks"),
            "partial_sources": self.count("sources", 'content_hash == ""'),
        }

    # ------------------------------------------------------------------ sources
    def _source_row(self, path: str) -> dict[str, Any] | None:
        rows = self.client.get(self._col("sources"), ids=[path], output_fields=["*"])
        return dict(rows[0]) if rows else None

    def source(self, path: str) -> tuple[int, str | None] | None:
        row = self._source_row(path)
        return None if row is None else (int(row["id"]), row["content_hash"] or None)

    def sources(self) -> list[str]:
        return sorted(r["path"] for r in self.scan("sources", "", ["path"]))

    def source_summaries(self) -> list[dict[str, Any]]:
        """One row per source, by path (see :meth:`snaprag.index.store.Store.source_summaries`)."""
        docs: dict[int, int] = defaultdict(int)
        for d in self.scan("documents", "", ["source_id"]):
            docs[int(d["source_id"])] += 1
        chunks: dict[int, int] = defaultdict(int)
        pages: dict[int, set[int]] = defaultdict(set)
        if self._has_chunks():
            for c in self.scan("chunks", "", ["source_id", "page"]):
                chunks[int(c["source_id"])] += 1
                if c["page"] >= 0:
                    pages[int(c["source_id"])].add(int(c["page"]))
        out = []
        for s in sorted(self.scan("sources", "", ["*"]), key=lambda r: r["path"]):
            sid = int(s["id"])
            out.append(
                {
                    "path": s["path"],
                    "type": s["type"],
                    "documents": docs[sid],
                    "pages": len(pages[sid]) or None,
                    "chunks": chunks[sid],
                    "ingested_at": float(s["ingested_at"]),
                    "complete": bool(s["content_hash"]),
                }
            )
        return out

    # ------------------------------------------------------------------ documents
    def _document_row(self, doc_id: str) -> dict[str, Any] | None:
        rows = self.client.get(self._col("documents"), ids=[doc_id], output_fields=["*"])
        return dict(rows[0]) if rows else None

    def _documents(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(doc_ids)
        if not ids:
            return {}
        rows = self.client.get(
            self._col("documents"), ids=ids, output_fields=["source", "title", "type", "source_id"]
        )
        return {r["doc_id"]: dict(r) for r in rows}

    def document_hashes(self, source_id: int) -> dict[str, str]:
        rows = self.scan("documents", f"source_id == {int(source_id)}", ["doc_hash"])
        return {r["doc_id"]: r["doc_hash"] for r in rows if not r["doc_hash"].startswith(PENDING)}

    def pending_documents(self, source_id: int) -> dict[str, tuple[str, int]]:
        rows = self.scan("documents", f"source_id == {int(source_id)}", ["doc_hash"])
        return {
            r["doc_id"]: (
                r["doc_hash"][len(PENDING) :],
                self.count("chunks", f"doc_id == {quote(r['doc_id'])}"),
            )
            for r in rows
            if r["doc_hash"].startswith(PENDING)
        }

    def foreign_document(self, doc_ids: Sequence[str], source: str) -> tuple[str, str] | None:
        wanted = list(doc_ids)
        for start in range(0, len(wanted), 4096):
            found = self._documents(wanted[start : start + 4096])
            for doc_id in wanted[start : start + 4096]:
                doc = found.get(doc_id)
                if doc is not None and doc["source"] != source:
                    return doc_id, doc["source"]
        return None

    def document_owner(self, doc_id: str) -> str | None:
        doc = self._document_row(doc_id)
        return None if doc is None else str(doc["source"])

    # ------------------------------------------------------------------ filters
    def filter_expression(self, source: str | None, type_: str | None) -> str | None:
        """:class:`~snaprag.types.Filters` as a Milvus expression over chunks (None: no
        filter). The source glob is matched here, as SQLite's GLOB matches it (a pattern
        without ``*?[`` matches anywhere in the path), against the source paths, so paths
        with ``%`` or ``_`` need no escaping in Milvus's LIKE."""
        parts = []
        if source:
            pattern = source if any(ch in source for ch in "*?[") else f"*{source}*"
            ids = [
                int(r["id"])
                for r in self.scan("sources", "", ["id"])
                if fnmatch.fnmatchcase(r["path"], pattern)
            ]
            parts.append(f"source_id in {ids}" if ids else "id < 0")  # "id < 0": nothing
        if type_:
            parts.append(f"type == {quote(type_)}")
        return " and ".join(parts) or None

    def filtered_row_ids(self, source: str | None, type_: str | None) -> np.ndarray:
        if not self._has_chunks():
            return np.zeros(0, dtype=np.int64)
        expr = self.filter_expression(source, type_) or ""
        ids = sorted(int(r["id"]) for r in self.scan("chunks", expr, ["id"]))
        return np.asarray(ids, dtype=np.int64)
