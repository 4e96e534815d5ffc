"""The process-stage runner contract: where sources are loaded, chunked, embedded and
tokenized while the job plans and commits in this process.

The job hands a runner its planned entries in order -- :class:`~snaprag.ingest.plan.WorkItem`
s to process and already settled :class:`~snaprag.ingest.report.SourceResult` s -- and gets
them back in the same order, each work item as a :class:`Pending` whose
:meth:`Pending.open` gives the :class:`~snaprag.ingest.process.Processed` source with its
batches. The one writer commits those batches as they come, so a runner may work ahead
(several sources and batches at once, on other processes or machines) but never reorders
what the writer sees: a killed run resumes exactly as a local one does.

Backends (one file each, built by name in :mod:`snaprag.ingest.runners.factory`):
:class:`~snaprag.ingest.runners.local.LocalRunner` (this process, one batch at a time) and
:class:`~snaprag.ingest.runners.ray.RayRunner` (Ray actors, extra ``ray``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..plan import WorkItem
from ..process import Processed, Processor
from ..report import SourceResult


@dataclass(frozen=True, slots=True)
class Pending:
    """A work item on its way through the runner.

    ``open()`` waits for the source to be loaded and returns it, its batches still coming
    (iterating them waits for each in turn); it raises what loading raises
    (:class:`~snaprag.errors.LoaderError`...), and the batches what embedding raises.
    """

    item: WorkItem
    open: Callable[[], Processed]


@dataclass(slots=True)
class WorkerStats:
    """What one worker did in a run: for per-worker throughput."""

    worker: str  # a stable name within the run ("local", "actor-0", ...)
    node: str  # the host it ran on
    cpus: float  # CPUs it was given (its ONNX intra-op threads)
    chunks: int = 0
    embed_seconds: float = 0.0  # time inside the embedder (passages)
    busy_seconds: float = 0.0  # time in load, chunk, embed and tokenize together

    def to_dict(self) -> dict[str, object]:
        return {
            "worker": self.worker,
            "node": self.node,
            "cpus": self.cpus,
            "chunks": self.chunks,
            "embed_seconds": round(self.embed_seconds, 3),
            "busy_seconds": round(self.busy_seconds, 3),
            "chunks_per_s": round(self.chunks / self.busy_seconds, 1)
            if self.busy_seconds
            else None,
        }


@dataclass
class RunnerInfo:
    """Which runner did the work and what each worker did (empty until the first source)."""

    name: str
    address: str = ""
    workers: list[WorkerStats] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "address": self.address,
            "workers": [w.to_dict() for w in self.workers],
        }


class ProcessRunner(Protocol):
    """Runs the process stage for a stream of planned entries, in order.

    ``run`` pulls ``planned`` lazily (a runner that works ahead pulls ahead; planning reads
    the index, so it happens in the caller's process) and yields every entry back in the
    same order: settled results as they are, work items as :class:`Pending`. The caller
    opens each pending item and iterates its batches before it asks for the next entry.
    Closing the iterator early (an error in the writer, Ctrl-C) stops the work in flight.
    ``close`` releases what the runner started (workers, a local cluster); it is safe to
    call twice. Nothing heavy starts before ``run`` meets its first work item.
    """

    info: RunnerInfo

    def run(
        self, planned: Iterable[WorkItem | SourceResult], processor: Processor
    ) -> Iterator[Pending | SourceResult]: ...

    def close(self) -> None: ...
