"""The incremental ingest job: discover files, skip unchanged ones, index the rest.

Guarantees:

* one bad source never stops the run and never touches what is stored: it is reported
  with a one-line reason and the run goes on;
* work is committed in transactions of whole documents; a killed process loses at most
  the batch in flight, and running the job again resumes (documents whose content hash is
  already stored are not embedded again, so nothing is duplicated);
* a source is marked complete (its content hash recorded) only in the transaction that
  removes its stale documents, so a half-ingested source is never skipped as unchanged.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LoaderError, SnapragError
from ..index.store import Store, StoredChunk
from ..index.tokenize import indexed_text, tokenize_many
from ..types import Chunk, Document
from .chunking import Chunker
from .loaders import SUPPORTED_SUFFIXES, load_source

ADDED, UPDATED, UNCHANGED, FAILED, IGNORED, REMOVED = (
    "added",
    "updated",
    "unchanged",
    "failed",
    "ignored",
    "removed",
)
COMMIT_CHUNKS = 512  # chunks per transaction inside one large source


@dataclass
class SourceResult:
    path: str
    status: str
    reason: str = ""
    documents: int = 0
    chunks: int = 0


@dataclass
class IngestReport:
    results: list[SourceResult] = field(default_factory=list)
    seconds: float = 0.0
    chunks_embedded: int = 0
    embed_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.count(ADDED),
            "updated": self.count(UPDATED),
            "unchanged": self.count(UNCHANGED),
            "removed": self.count(REMOVED),
            "failed": self.count(FAILED),
            "ignored": self.count(IGNORED),
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "chunks_per_s": round(self.chunks_embedded / self.embed_seconds, 1)
            if self.embed_seconds
            else None,
            "sources": [r.__dict__ for r in self.results if r.status != UNCHANGED],
        }


#: progress callback: (event, data) with events "discovered" (total), "source" (result),
#: "chunks" (number just embedded)
Progress = Callable[[str, object], None]


def discover(paths: Sequence[Path], skip: Sequence[Path] = ()) -> Iterator[tuple[Path, bool]]:
    """Yield ``(file, explicit)``: files named directly and files under directories.

    Hidden files and directories (``.git``, the index itself...) are not walked.
    """
    skip_resolved = {p.resolve() for p in skip}
    for root in paths:
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(
                    d
                    for d in dirnames
                    if not d.startswith(".") and (Path(dirpath) / d).resolve() not in skip_resolved
                )
                for name in sorted(filenames):
                    if not name.startswith("."):
                        yield Path(dirpath) / name, False
        else:
            yield root, True


class IngestJob:
    def __init__(
        self,
        store: Store,
        embedder,
        chunker: Chunker,
        vector_dtype: str,
        max_file_bytes: int,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.vector_dtype = vector_dtype
        self.max_file_bytes = max_file_bytes
        self.progress = progress or (lambda event, data: None)
        self.report = IngestReport()

    def run(
        self, paths: Sequence[Path], prune: bool = False, skip: Sequence[Path] = ()
    ) -> IngestReport:
        start = time.perf_counter()
        files = list(discover(paths, skip))
        self.progress("discovered", len(files))
        seen: set[str] = set()
        for path, explicit in files:
            result = self._one(path, explicit)
            if result.status != FAILED or path.exists():
                seen.add(str(path.resolve()))
            self.report.results.append(result)
            self.progress("source", result)
        if prune:
            self._prune(paths, seen)
        self.report.seconds = time.perf_counter() - start
        return self.report

    # ------------------------------------------------------------------ one source
    def _one(self, path: Path, explicit: bool) -> SourceResult:
        source = str(path.resolve())
        try:
            source.encode("utf-8")
        except UnicodeEncodeError:
            return SourceResult(
                source.encode("utf-8", "replace").decode(),
                FAILED,
                "file name is not valid UTF-8; rename it (e.g. convmv -f cp949 -t utf-8)",
            )
        if not path.exists():
            return SourceResult(source, FAILED, "no such file or directory")
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            status = FAILED if explicit else IGNORED
            supported = ", ".join(SUPPORTED_SUFFIXES)
            return SourceResult(
                source,
                status,
                f"unsupported file type '{path.suffix or path.name}' (supported: {supported})",
            )
        # hash before parsing: unchanged sources cost one read, not a PDF parse
        stored = self.store.source(source)
        try:
            small = path.stat().st_size <= self.max_file_bytes
            if stored is not None and small and _file_hash(path) == stored[1]:
                return SourceResult(source, UNCHANGED)
        except OSError as exc:
            return SourceResult(source, FAILED, f"cannot read file: {exc.strerror or exc}")
        try:
            docs, data = load_source(path, self.max_file_bytes)
        except LoaderError as exc:
            return SourceResult(source, FAILED, str(exc))
        content_hash = hashlib.sha256(data).hexdigest()
        if stored is not None and stored[1] == content_hash:
            return SourceResult(source, UNCHANGED)
        try:
            n_docs, n_chunks = self._index(path, source, docs, data, content_hash)
        except SnapragError as exc:
            return SourceResult(source, FAILED, str(exc))
        except OSError as exc:  # the file went away or became unreadable meanwhile
            return SourceResult(source, FAILED, f"cannot read file: {exc.strerror or exc}")
        return SourceResult(source, ADDED if stored is None else UPDATED, "", n_docs, n_chunks)

    def _index(
        self, path: Path, source: str, docs: list[Document], data: bytes, content_hash: str
    ) -> tuple[int, int]:
        ids = [d.doc_id for d in docs]
        if len(set(ids)) != len(ids):
            raise LoaderError("duplicate document ids inside the source")
        # all ids at once, before any work: a clash must not leave a half-written source
        clash = self.store.foreign_document(ids, source)
        if clash is not None:
            raise LoaderError(f"document id {clash[0]!r} is already indexed from {clash[1]}")
        meta = (source, docs[0].type, len(data), path.stat().st_mtime)
        stored = self.store.source(source)
        known = self.store.document_hashes(stored[0]) if stored else {}
        todo = [(d, _doc_hash(d)) for d in docs]
        todo = [(d, h) for d, h in todo if known.get(d.doc_id) != h]
        n_chunks = 0
        batch: list[tuple[Document, str, list[Chunk]]] = []
        pending = 0
        for doc, h in todo:
            chunks = self.chunker.chunk(doc)
            batch.append((doc, h, chunks))
            pending += len(chunks)
            if pending >= COMMIT_CHUNKS:
                n_chunks += self._write(meta, batch)
                batch, pending = [], 0
        n_chunks += self._write(meta, batch, ids, content_hash)
        return len(docs), n_chunks

    def _write(
        self,
        meta: tuple[str, str, int, float],
        batch: list[tuple[Document, str, list[Chunk]]],
        final_ids: list[str] | None = None,
        content_hash: str | None = None,
    ) -> int:
        """Embed a batch, then write it in one transaction.

        Embedding happens before the write lock is taken, so other writers wait only for
        the inserts. The source is marked partial in the same transaction as its first
        documents (a batch that fails leaves it exactly as it was); the final batch also
        drops the documents the source no longer has and records its content hash.
        """
        chunks = [c for _, _, cs in batch for c in cs]
        texts = [indexed_text(c.title, c.text) for c in chunks]
        vectors = np.zeros((0, 0), np.float32)
        tokens: list[list[str]] = []
        if chunks:
            t = time.perf_counter()
            vectors = self.embedder.embed_passages(texts)
            self.report.embed_seconds += time.perf_counter() - t
            self.report.chunks_embedded += len(chunks)
            tokens = tokenize_many(texts)
        with self.store.transaction(bump=True) as conn:
            source_id = self.store.upsert_source(conn, *meta)
            i = 0
            for doc, h, cs in batch:
                stored = []
                for c in cs:
                    stored.append(
                        StoredChunk(
                            c.seq, c.text, c.page, c.char_start, c.char_end, tokens[i], vectors[i]
                        )
                    )
                    i += 1
                try:
                    self.store.replace_document(
                        conn,
                        source_id,
                        doc.doc_id,
                        doc.title,
                        doc.type,
                        h,
                        len(doc.text),
                        stored,
                        self.vector_dtype,
                    )
                except sqlite3.IntegrityError as exc:
                    owner = self.store.document_owner(doc.doc_id)
                    raise LoaderError(
                        f"document id {doc.doc_id!r} is already indexed from {owner}"
                    ) from exc
            if final_ids is not None and content_hash is not None:
                self.store.delete_documents_except(conn, source_id, final_ids)
                self.store.finish_source(conn, source_id, content_hash)
        if chunks:
            self.progress("chunks", len(chunks))
        return len(chunks)

    # ------------------------------------------------------------------ prune
    def _prune(self, roots: Sequence[Path], seen: set[str]) -> None:
        """Remove indexed sources under ``roots`` whose files are really gone.

        A root that does not exist (an unmounted drive, a typo) prunes nothing, and a source
        is removed only when its own path no longer exists, so files added by someone else
        meanwhile, or in folders this run could not read, are kept.
        """
        prefixes = [str(r.resolve()) for r in roots if r.exists()]
        doomed = []
        for s in self.store.sources():
            if s in seen or not any(
                s == p or s.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes
            ):
                continue
            try:
                os.lstat(s)
            except FileNotFoundError:
                doomed.append(s)
            except OSError:
                continue
        if not doomed:
            return
        with self.store.transaction(bump=True) as conn:
            for s in doomed:
                n = self.store.delete_source(conn, s)
                result = SourceResult(s, REMOVED, "source no longer exists", n)
                self.report.results.append(result)
                self.progress("source", result)


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _doc_hash(doc: Document) -> str:
    h = hashlib.sha1(doc.title.encode("utf-8", "surrogatepass"))
    for s in doc.sections:
        h.update(b"\x00" + str(s.page).encode() + b"\x00" + s.text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
