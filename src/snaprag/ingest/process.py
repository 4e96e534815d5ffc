"""Stage two of ingestion: load, chunk, embed and tokenize one source. No database access.

Everything here is picklable -- the :class:`~snaprag.ingest.plan.WorkItem` going in, the
:class:`Processor` (chunker settings + embedder) and the results coming out -- so a process
pool or a distributed engine can run :func:`process_all` while one writer commits.

Chunks leave in batches of at most ``batch_chunks``, embedded one batch at a time, so a
huge document never holds all its vectors, terms and tokenizer encodings at once; a
document larger than a batch spans several. A document cut short by an interrupted run is
resumed after its last stored chunk when its resume key (content hash + chunking settings +
model) still matches.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embed.base import Embedder
from ..errors import LoaderError
from ..index.heading_terms import with_section_terms
from ..index.tokenize import indexed_text, tokenize_many
from ..types import Chunk, Document
from .chunking import CHUNKER_VERSION, MIN_CHUNK_TOKENS, Chunker
from .files import check_regular
from .loaders import content_key, load_source
from .plan import WorkItem

COMMIT_CHUNKS = 512  # chunks per batch, hence per transaction
_COUNT_SLICE = 1024  # sentences per tokenizer call while chunking: bounds encodings in memory


@dataclass(frozen=True, slots=True)
class Processor:
    """How to turn a source into chunks and vectors: chunker settings and the embedder.

    Picklable when its embedder is; the chunker is built where the work runs.
    """

    embedder: Embedder
    max_tokens: int = 256
    overlap: int = 32
    max_file_bytes: int = 200 * 1024 * 1024
    batch_chunks: int = COMMIT_CHUNKS

    def chunker(self) -> Chunker:
        # a scrap merged into a full chunk may take it a little past max_tokens, never
        # past what the embedding model reads
        window = getattr(self.embedder, "max_tokens", self.max_tokens) - 16
        return Chunker(
            self.count_tokens,
            self.embedder.token_offsets,
            self.max_tokens,
            self.overlap,
            merge_limit=min(self.max_tokens + MIN_CHUNK_TOKENS, window),
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts, a slice at a time: one paragraph of a huge file can hold a million
        sentences, and a tokenizer's encodings of all of them take gigabytes."""
        counts: list[int] = []
        for start in range(0, len(texts), _COUNT_SLICE):
            counts.extend(self.embedder.count_tokens(texts[start : start + _COUNT_SLICE]))
        return counts

    def resume_key(self, doc_hash: str) -> str:
        """Chunks stored under this key are exactly those this processor would make again."""
        model = getattr(self.embedder, "name", type(self.embedder).__name__)
        return hashlib.sha1(
            f"{doc_hash}\x00{self.max_tokens}\x00{self.overlap}\x00{model}\x00"
            f"{CHUNKER_VERSION}".encode()
        ).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the index records about a loaded source."""

    source: str
    type: str
    size: int
    mtime: float
    content_hash: str
    doc_ids: tuple[str, ...]  # every document of the source, in order


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """The chunks of one document that travel in one batch."""

    doc_id: str
    title: str
    type: str
    n_chars: int
    doc_hash: str
    resume_key: str
    n_chunks: int  # how many of the batch's chunks (in order) are this document's
    first: bool  # (re)create the document: nothing of this content is stored yet
    last: bool  # its final chunk is in this batch: the document is complete after it


@dataclass(slots=True)
class ChunkBatch:
    """Chunks with their float32 vectors and BM25 terms: one transaction's worth."""

    parts: list[DocumentPart]
    chunks: list[Chunk]
    vectors: np.ndarray
    terms: list[list[str]]
    last: bool = False  # the source's final batch: it also completes the source
    embed_seconds: float = 0.0


@dataclass(slots=True)
class Processed:
    """A loaded source: its record and its batches (lazy here; a list after process_all)."""

    info: SourceInfo
    batches: Iterable[ChunkBatch] = field(default_factory=list)


@dataclass(slots=True)
class ChunkPack:
    """Chunks of one transaction before embedding: what :func:`embed_pack` turns into a
    :class:`ChunkBatch`. A runner may embed the packs of one source on several workers."""

    parts: list[DocumentPart]
    chunks: list[Chunk]
    last: bool = False  # the source's final batch


def load(item: WorkItem, processor: Processor) -> tuple[SourceInfo, list[Document]]:
    """Read ``item`` into its record and documents.

    Raises :class:`~snaprag.errors.LoaderError` (unreadable, bad content, duplicate ids).
    """
    check_regular(item.path)  # never hand a FIFO to a loader: opening it would block
    docs, data = load_source(Path(item.path), processor.max_file_bytes)
    info = SourceInfo(
        source=item.source,
        type=docs[0].type,
        size=len(data),
        mtime=os.stat(item.path).st_mtime,
        content_hash=content_key(hashlib.sha256(data).hexdigest(), item.path),
        doc_ids=tuple(d.doc_id for d in docs),
    )
    del data  # the documents hold the text; the raw bytes are not needed any more
    if len(set(info.doc_ids)) != len(info.doc_ids):
        raise LoaderError("duplicate document ids inside the source")
    return info, docs


def process(item: WorkItem, processor: Processor) -> Processed:
    """Load ``item`` now; chunk and embed lazily, one batch per iteration of ``batches``.

    Raises :class:`~snaprag.errors.LoaderError` (unreadable, bad content, duplicate ids);
    iterating the batches may raise what the embedder raises.
    """
    info, docs = load(item, processor)
    batches = (embed_pack(processor, pack) for pack in packs(item, processor, docs))
    return Processed(info, batches)


def process_all(item: WorkItem, processor: Processor) -> Processed:
    """:func:`process` with every batch computed: a plain, picklable return value."""
    done = process(item, processor)
    return Processed(done.info, list(done.batches))


def packs(item: WorkItem, processor: Processor, docs: list[Document]) -> Iterator[ChunkPack]:
    """The chunks of the documents that need work, in transaction-sized packs; the last
    one is flagged (one look-ahead, so no empty extra transaction follows a full pack, and
    a source with nothing to embed still yields one empty last pack)."""
    ready: ChunkPack | None = None
    for parts, chunks in _packed(item, processor, docs):
        if ready is not None:
            yield ready
        ready = ChunkPack(parts, chunks)
    ready = ready or ChunkPack([], [])
    ready.last = True
    yield ready


def _packed(
    item: WorkItem, processor: Processor, docs: list[Document]
) -> Iterator[tuple[list[DocumentPart], list[Chunk]]]:
    """Chunks of the documents that need work, packed into full batches."""
    chunker = processor.chunker()
    size = processor.batch_chunks
    parts: list[DocumentPart] = []
    chunks: list[Chunk] = []
    for doc in docs:
        h = document_hash(doc)
        if item.doc_hashes.get(doc.doc_id) == h:
            continue  # stored complete, same content
        key = processor.resume_key(h)
        stored_key, stored_n = item.pending.get(doc.doc_id, ("", 0))
        skip = stored_n if stored_key == key else 0
        todo = chunker.chunk(doc)[skip:]
        n_chars = len(doc.text)
        taken = 0
        while True:
            take = todo[taken : taken + size - len(chunks)]
            taken += len(take)
            last = taken >= len(todo)
            first = skip == 0 and taken == len(take)
            parts.append(
                DocumentPart(
                    doc.doc_id, doc.title, doc.type, n_chars, h, key, len(take), first, last
                )
            )
            chunks.extend(take)
            if len(chunks) >= size:
                yield parts, chunks
                parts, chunks = [], []
            if last:
                break
    if parts:
        yield parts, chunks


def embed_pack(processor: Processor, pack: ChunkPack) -> ChunkBatch:
    """Embed and tokenize one pack: the batch the committer writes in one transaction."""
    parts, chunks, last = pack.parts, pack.chunks, pack.last
    texts = [indexed_text(c.title, c.text, c.section) for c in chunks]
    if not texts:
        return ChunkBatch(parts, chunks, np.zeros((0, 0), np.float32), [], last)
    start = time.perf_counter()
    vectors = np.asarray(processor.embedder.embed_passages(texts), dtype=np.float32)
    seconds = time.perf_counter() - start
    tokens = with_section_terms(tokenize_many(texts), [c.section for c in chunks])
    return ChunkBatch(parts, chunks, vectors, tokens, last, seconds)


def document_hash(doc: Document) -> str:
    """Hash of what a document's chunks are made from (title, pages, headings, text)."""
    h = hashlib.sha1(doc.title.encode("utf-8", "surrogatepass"))
    for s in doc.sections:
        h.update(b"\x00" + str(s.page).encode() + b"\x00" + s.text.encode("utf-8", "surrogatepass"))
        if s.heading:  # sections without headings hash as they did before headings existed
            h.update(b"\x01" + s.path.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
