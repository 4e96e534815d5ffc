"""The incremental ingest job: plan, process and commit, one source after another.

Guarantees:

* one bad source never stops the run and never touches what is stored: it is reported
  with a one-line reason and the run goes on;
* work is committed in transactions of at most ``COMMIT_CHUNKS`` chunks; a killed process
  loses at most the batch in flight, and running the job again resumes it (complete
  documents are not embedded again, a half-written one continues after its last stored
  chunk, nothing is duplicated);
* a source is marked complete (its content hash recorded) only in the transaction that
  writes its last batch, so a half-ingested source is never skipped as unchanged.

The stages live in :mod:`.plan` (what to do: file system and index reads only),
:mod:`.process` (load, chunk, embed: pure and picklable) and :mod:`.commit` (the writer).
Where the process stage runs is the runner's business (:mod:`.runners`: this process, or
Ray actors); planning and committing always happen here, in order, whatever the runner.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..config import Config
from ..embed.base import Embedder
from ..embed.models import korean_model_note
from ..errors import ConfigError, SnapragError
from ..index.base import DocumentStore, SearchingStore
from ..index.tokenize import TOKENIZER_VERSION, has_hangul, indexed_text
from .chunking import Chunker
from .commit import Committer
from .plan import Candidate, Discovery, Excluder, WorkItem, discover, plan_one
from .process import COMMIT_CHUNKS, Processor
from .report import (
    ADDED,
    FAILED,
    IGNORED,
    REMOVED,
    UNCHANGED,
    UPDATED,
    IngestReport,
    Progress,
    SourceResult,
)
from .runners.base import Pending, ProcessRunner
from .runners.local import LocalRunner

__all__ = [
    "ADDED",
    "COMMIT_CHUNKS",
    "FAILED",
    "IGNORED",
    "REMOVED",
    "UNCHANGED",
    "UPDATED",
    "IngestJob",
    "IngestReport",
    "Progress",
    "SourceResult",
    "discover",
    "indexed_text",
]


class IngestJob:
    """Runs the three stages, streaming each source's batches from the runner (by default
    this process) into the store (bounded memory, whatever the size of a document)."""

    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        chunker: Chunker,
        vector_dtype: str,
        max_file_bytes: int,
        progress: Progress | None = None,
        *,
        batch_chunks: int = COMMIT_CHUNKS,
        runner: ProcessRunner | None = None,
    ) -> None:
        self.store = store
        #: where the process stage runs; the caller that made it closes it
        self.runner: ProcessRunner = runner or LocalRunner()
        # the chunker's settings, not the object: the processor must stay picklable
        self.processor = Processor(
            embedder, chunker.max_tokens, chunker.overlap, max_file_bytes, batch_chunks
        )
        self.committer = Committer(store, vector_dtype)
        self.progress = progress or (lambda event, data: None)
        self.report = IngestReport(runner=self.runner.info)
        #: the index's model and directory (``for_index``): for the note on Korean text
        self.model: str | None = None
        self.index_dir: Path | None = None

    @classmethod
    def for_index(
        cls,
        store: DocumentStore,
        embedder: Embedder,
        model: str,
        config: Config,
        progress: Progress | None = None,
        runner: ProcessRunner | None = None,
    ) -> IngestJob:
        """The job for an index with the config's settings. An index with no chunks yet
        records the model, vector format and chunk settings its chunks will be made with
        (the caller holds the ingest lock, so no other writer can disagree)."""
        if getattr(embedder, "parts", None) and isinstance(store, SearchingStore):
            # its search runs in the store, over one vector field: the pair would be searched
            # as one vector, never split into the two lists the quality profile fuses
            raise ConfigError(
                f"store {config.store!r} cannot hold a second model's vectors; use the "
                "sqlite store for the quality profile (or ingest without it)"
            )
        dtype = store.get_meta("vector_dtype") or config.vector_dtype
        if store.get_meta("model") is None or not store.counts()["chunks"]:
            store.set_meta(
                {
                    "model": model,
                    "dim": embedder.dim,
                    "vector_dtype": dtype,
                    "chunk_tokens": config.chunk_tokens,
                    "chunk_overlap": config.chunk_overlap,
                    "tokenizer_version": TOKENIZER_VERSION,
                    "quantization": config.quantization,
                }
            )
        chunker = Chunker(
            embedder.count_tokens,
            embedder.token_offsets,
            min(config.chunk_tokens, embedder.max_tokens - 16),
            config.chunk_overlap,
        )
        job = cls(store, embedder, chunker, dtype, config.max_file_bytes, progress, runner=runner)
        job.model, job.index_dir = model, config.index_dir
        job.report.model = store.get_meta("model") or model
        return job

    def run(
        self,
        paths: Sequence[Path],
        prune: bool = False,
        skip: Sequence[Path] = (),
        exclude: Sequence[str] = (),
    ) -> IngestReport:
        """Discover ``paths`` (minus ``skip`` and ``exclude`` globs), then ingest them."""
        return self.run_discovered(discover(paths, skip, exclude), prune=prune)

    def run_discovered(self, found: Discovery, prune: bool = False) -> IngestReport:
        """Ingest what :func:`~snaprag.ingest.plan.discover` found (it may have run before
        the ingest lock was taken: it reads nothing of the index)."""
        start = time.perf_counter()
        self.progress("discovered", len(found.entries))
        planned = (self._plan(e) for e in found.entries)
        for entry in self.runner.run(planned, self.processor):
            result = self._one(entry) if isinstance(entry, Pending) else entry
            self.report.results.append(result)
            self.progress("source", result)
        if prune:
            self._prune(found)
        self.report.seconds = time.perf_counter() - start
        if self.model is not None and self.index_dir is not None:
            note = korean_model_note(self.model, self.report.korean_chunks, self.index_dir)
            if note:
                self.report.notes.append(note)
        return self.report

    # ------------------------------------------------------------------ one source
    def _plan(self, entry: Candidate | SourceResult) -> WorkItem | SourceResult:
        if isinstance(entry, SourceResult):
            return entry
        return plan_one(entry, self.store, self.processor.max_file_bytes)

    def _one(self, pending: Pending) -> SourceResult:
        source = pending.item.source
        self.progress("start", source)
        try:
            return self._index(pending)
        except SnapragError as exc:
            return SourceResult(source, FAILED, str(exc))
        except OSError as exc:  # the file went away or became unreadable meanwhile
            return SourceResult(source, FAILED, f"cannot read file: {exc.strerror or exc}")

    def _index(self, pending: Pending) -> SourceResult:
        item = pending.item
        done = pending.open()
        stored = self.store.source(item.source)
        if stored is not None and stored[1] == done.info.content_hash:
            return SourceResult(item.source, UNCHANGED)  # changed back since it was planned
        self.committer.check(done.info)
        n_chunks = 0
        for batch in done.batches:
            start = time.perf_counter()
            n = self.committer.write(done.info, batch)
            self.report.commit_seconds += time.perf_counter() - start
            n_chunks += n
            self.report.chunks_embedded += n
            self.report.embed_seconds += batch.embed_seconds
            self.report.korean_chunks += sum(has_hangul(c.text) for c in batch.chunks)
            if n:
                self.progress("chunks", n)
        status = UPDATED if item.indexed else ADDED
        return SourceResult(item.source, status, "", len(done.info.doc_ids), n_chunks)

    # ------------------------------------------------------------------ prune
    def _prune(self, found: Discovery) -> None:
        """Remove indexed sources under the roots whose files are really gone.

        A root that does not exist (an unmounted drive, a typo) prunes nothing, and a source
        is removed only when its own path no longer exists, so files added by someone else
        meanwhile, or in folders this run could not read, are kept; so are sources that an
        ``--exclude`` pattern matches.
        """
        excluder = Excluder(found.exclude)
        roots = [os.path.realpath(r) for r in found.roots if os.path.exists(r)]
        doomed = []
        for s in self.store.sources():
            root = next(
                (r for r in roots if s == r or s.startswith(r.rstrip(os.sep) + os.sep)), None
            )
            if root is None or excluder.match_within(os.path.relpath(s, root), s):
                continue
            try:
                os.lstat(s)
            except FileNotFoundError:
                doomed.append(s)
            except OSError:
                continue
        for s, n in self.committer.remove(doomed):
            result = SourceResult(s, REMOVED, "source no longer exists", n)
            self.report.results.append(result)
            self.progress("source", result)


def nothing_to_read(found: Discovery, progress: Progress | None = None) -> IngestReport:
    """The report of an ingest that found nothing to read (told to ``progress`` as a run
    would tell it), before any index is created or locked."""
    report = found.report()
    if progress is not None:
        progress("discovered", 0)
        for result in report.results:
            progress("source", result)
    return report
