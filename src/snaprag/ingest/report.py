"""What an ingest run reports: one result per source, totals, and the progress events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runners.base import RunnerInfo

ADDED, UPDATED, UNCHANGED, FAILED, IGNORED, REMOVED = (
    "added",
    "updated",
    "unchanged",
    "failed",
    "ignored",
    "removed",
)

#: progress callback ``(event, data)``; events: ``"discovered"`` (number of sources found),
#: ``"start"`` (the path about to be read, loaded and embedded), ``"source"`` (its
#: :class:`SourceResult`), ``"chunks"`` (number of chunks just committed)
Progress = Callable[[str, object], None]


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
    #: of the chunks embedded, those with Korean text (Hangul)
    korean_chunks: int = 0
    #: advice for the user about this run, one line each (e.g. the model to use)
    notes: list[str] = field(default_factory=list)
    #: time the one writer spent committing batches (the ceiling of any runner's speed)
    commit_seconds: float = 0.0
    #: which runner processed the sources, and what each of its workers did
    runner: RunnerInfo | None = None
    #: the index's embedding model (None when the run stopped before opening the index)
    model: str | None = None

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
            "notes": list(self.notes),
            "commit_seconds": round(self.commit_seconds, 3),
            "runner": self.runner.to_dict() if self.runner is not None else None,
            "model": self.model,
        }
