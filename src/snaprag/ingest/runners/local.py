"""The default runner: the process stage in this process, one batch at a time, so memory
stays bounded and nothing is computed that the writer has not asked for yet."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator

from ..plan import WorkItem
from ..process import ChunkBatch, Processed, Processor, process
from ..report import SourceResult
from .base import Pending, RunnerInfo, WorkerStats


class LocalRunner:
    """Processes each work item when the writer opens it, in the caller's thread."""

    def __init__(self) -> None:
        self.info = RunnerInfo("local")

    def run(
        self, planned: Iterable[WorkItem | SourceResult], processor: Processor
    ) -> Iterator[Pending | SourceResult]:
        cpus = float(getattr(processor.embedder, "threads", 1))
        stats = WorkerStats("local", socket.gethostname(), cpus)
        self.info.workers = [stats]
        for entry in planned:
            if isinstance(entry, SourceResult):
                yield entry
            else:
                yield Pending(entry, lambda item=entry: _open(item, processor, stats))

    def close(self) -> None:
        """Nothing to release."""


def _open(item: WorkItem, processor: Processor, stats: WorkerStats) -> Processed:
    start = time.perf_counter()
    done = process(item, processor)
    stats.busy_seconds += time.perf_counter() - start
    return Processed(done.info, _timed(done.batches, stats))


def _timed(batches: Iterable[ChunkBatch], stats: WorkerStats) -> Iterator[ChunkBatch]:
    """The batches, each one's making counted as the worker's busy time."""
    it = iter(batches)
    while True:
        start = time.perf_counter()
        batch = next(it, None)
        stats.busy_seconds += time.perf_counter() - start
        if batch is None:
            return
        stats.chunks += len(batch.chunks)
        stats.embed_seconds += batch.embed_seconds
        yield batch
