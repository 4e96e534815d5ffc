"""The process stage on a Ray cluster: one model per actor, one writer in this process.

Each actor holds one :class:`~snaprag.ingest.process.Processor` (one embedder, its ONNX
intra-op threads equal to the CPUs the actor reserves) and does two kinds of work:

* ``split``: load one source and chunk it into transaction-sized packs, streamed back one
  by one (a Ray streaming generator with back-pressure, so a huge source never sits whole
  in the object store);
* ``embed``: embed and tokenize one pack. The packs of one source go to every actor, so a
  single big file (a BEIR ``corpus.jsonl``) is embedded in parallel too.

The driver (this process) keeps a bounded window of packs in flight, hands them out in
order to the least busy actor, and gives the writer the batches in exactly the order a local
run would commit them. So the index is the same as a local ingest's, and a killed run
resumes after its last committed batch like a local one: what was in flight is simply
computed again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError, SnapragError
from ..plan import WorkItem
from ..process import ChunkBatch, ChunkPack, Processed, Processor, SourceInfo, embed_pack
from ..process import load as load_source
from ..process import packs as source_packs
from ..report import SourceResult
from .base import Pending, RunnerInfo, WorkerStats

log = logging.getLogger(__name__)
progress = logging.getLogger("snaprag.progress")

#: packs in flight per actor: one being embedded, one waiting, so no actor idles while the
#: driver commits
PACKS_PER_ACTOR = 2
#: planned entries pulled ahead of the writer at most (settled results included)
MAX_AHEAD = 64
#: seconds the workers may take to be placed and load their model (a node that has never
#: run snaprag converts the model first)
START_TIMEOUT = 300.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "ingesting with Ray needs the 'ray' extra: pip install 'snaprag[ray]' "
            "(on the driver and on every node of the cluster)"
        ) from None
    return ray


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors from logger ``name`` while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse an address nothing listens on, at once: Ray itself retries for minutes,
    deaf to Ctrl-C, before it gives up."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray finds the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "'ray start --head' and pass the address it prints, or drop the address to "
            "start a local Ray"
        ) from None


@dataclass(frozen=True, slots=True)
class Raised:
    """An error a worker met for one source, sent back to be raised in the writer (as a
    local run would raise it: the source is reported failed, the run goes on)."""

    error: BaseException


class ProcessWorker:
    """What runs inside each Ray actor (plain class; :class:`RayRunner` makes it remote)."""

    def __init__(self, processor: Processor, cpus: float) -> None:
        import ray

        self.processor = processor
        # one inference pool per actor, as wide as the CPUs Ray reserved for it
        if hasattr(processor.embedder, "threads"):
            processor.embedder.threads = max(1, int(cpus))
        self.stats = WorkerStats("", ray.util.get_node_ip_address(), cpus)

    def hello(self, name: str) -> WorkerStats:
        """Name the worker and load its model (so the first pack does not pay for it): the
        passage side only, as a worker never embeds a query."""
        self.stats.worker = name
        self.processor.embedder.embed_passages(["warm up"])
        return self.stats

    def split(self, item: WorkItem) -> Iterator[SourceInfo | ChunkPack | Raised]:
        """The source's record (or why it cannot be read), then its packs."""
        start = time.perf_counter()
        try:
            info, docs = load_source(item, self.processor)
            yield info
            for pack in source_packs(item, self.processor, docs):
                self.stats.busy_seconds += time.perf_counter() - start
                yield pack
                start = time.perf_counter()
        except (SnapragError, OSError) as exc:
            yield Raised(exc)
        finally:
            self.stats.busy_seconds += time.perf_counter() - start

    def embed(self, pack: ChunkPack | Raised) -> ChunkBatch | Raised:
        if isinstance(pack, Raised):  # the split failed after some packs: pass it on
            return pack
        start = time.perf_counter()
        try:
            batch = embed_pack(self.processor, pack)
        except SnapragError as exc:
            return Raised(exc)
        finally:
            self.stats.busy_seconds += time.perf_counter() - start
        self.stats.chunks += len(batch.chunks)
        self.stats.embed_seconds += batch.embed_seconds
        return batch

    def report(self) -> WorkerStats:
        return self.stats


@dataclass
class _Source:
    """One work item in flight: its split stream, its record and its dispatched batches."""

    item: WorkItem
    actor: int
    gen: Any  # ray.ObjectRefGenerator of split
    info: Any = None  # ObjectRef of the first split item (SourceInfo or Raised)
    split_done: bool = False
    batches: deque[tuple[int, Any]] = field(default_factory=deque)  # (actor, ObjectRef)


class RayRunner:
    """Runs the process stage on Ray actors; see the module docstring.

    ``address``: None starts a local Ray (all this machine's CPUs, or ``num_cpus``); a Ray
    address (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) connects to a running cluster. A
    Ray already initialised in this process is used as it is. ``cpus_per_worker``: CPUs
    each actor reserves (its ONNX threads); ``workers``: how many actors (default: as many
    as the cluster's CPUs allow, at least one).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus_per_worker: float = 1.0,
        workers: int | None = None,
        num_cpus: int | None = None,
    ) -> None:
        if cpus_per_worker <= 0:
            raise ConfigError(f"cpus per Ray worker must be > 0, got {cpus_per_worker}")
        if workers is not None and workers < 1:
            raise ConfigError(f"Ray workers must be at least 1, got {workers}")
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.workers = workers
        self.num_cpus = num_cpus
        self.info = RunnerInfo("ray", address or "local")
        self._ray: Any = None
        self._started = False  # this runner called ray.init (so it shuts Ray down)
        self._actors: list[Any] = []
        self._load: list[int] = []  # calls handed to each actor and not yet collected
        self._window = 0
        self._inflight = 0
        self._order: deque[_Source] = deque()  # started, in order, not yet done
        self._dispatch: deque[_Source] = deque()  # started, packs not all dispatched
        self._draining: list[_Source] = []  # abandoned by the writer, split still running

    # ------------------------------------------------------------------ lifecycle
    def _start(self, processor: Processor) -> None:
        if self._actors:
            return
        ray = self._ray = _import_ray()
        if not ray.is_initialized():
            if self.address is not None:
                _check_reachable(self.address)
            progress.info(
                "starting Ray" if self.address is None else f"connecting to Ray at {self.address}"
            )
            try:
                with _quiet("ray"):  # its start-up notices are not the user's business
                    ray.init(
                        # "local": a new Ray of our own, never a cluster found by chance
                        address=self.address or "local",
                        num_cpus=self.num_cpus if self.address is None else None,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                        configure_logging=False,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray"
                raise ConfigError(
                    f"cannot start or reach Ray ({where}): {exc}; check the address "
                    "('ray start --head' prints it) or omit it to start a local Ray"
                ) from None
            self._started = True
            self.info.address = self.address or "local"
        else:  # the caller's Ray
            self.info.address = ray.get_runtime_context().gcs_address
        n = self.workers or max(
            1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_worker)
        )
        # one thread splits while another embeds, and never two embeds at once: the model's
        # threads are the CPUs the actor reserved
        remote = ray.remote(
            num_cpus=self.cpus_per_worker, concurrency_groups={"split": 1, "embed": 1}
        )(ProcessWorker)
        self._actors = [remote.remote(processor, self.cpus_per_worker) for _ in range(n)]
        self._load = [0] * n
        self._window = PACKS_PER_ACTOR * n
        progress.info(f"loading the model on {n} Ray worker(s)")
        hello = [a.hello.remote(f"actor-{i}") for i, a in enumerate(self._actors)]
        try:
            self.info.workers = list(self._get(hello, timeout=START_TIMEOUT))
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(
                f"Ray did not start {n} worker(s) of {self.cpus_per_worker:g} CPU(s) within "
                f"{START_TIMEOUT:.0f} s (cluster CPUs: {ray.cluster_resources().get('CPU', 0):g},"
                f" free: {ray.available_resources().get('CPU', 0):g}); ask for fewer with "
                "--ray-workers or --ray-cpus"
            ) from None

    def _collect(self) -> None:
        """The workers' statistics so far, into :attr:`info` (totals since they started)."""
        if self._actors:
            self.info.workers = list(self._get([a.report.remote() for a in self._actors]))

    def close(self) -> None:
        """Collect the workers' statistics, end the actors, and stop Ray if it was started
        here (a cluster reached by address keeps running)."""
        ray = self._ray
        if ray is None:
            return
        if self._actors:
            with contextlib.suppress(Exception):  # a dead actor leaves its stats unknown
                stats = ray.get([a.report.remote() for a in self._actors], timeout=30)
                self.info.workers = list(stats)
            for actor in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        self._actors, self._order, self._dispatch, self._draining = [], deque(), deque(), []
        if self._started:
            ray.shutdown()
            self._started = False
        self._ray = None

    # ------------------------------------------------------------------ the stream
    def run(
        self, planned: Iterable[WorkItem | SourceResult], processor: Processor
    ) -> Iterator[Pending | SourceResult]:
        """Entries back in order; up to one source per actor (plus one) is split ahead."""
        ahead: deque[WorkItem | SourceResult] = deque()  # pulled, not yet yielded
        entries = iter(planned)
        exhausted = False
        try:
            while True:
                # pull until enough sources are on their way, a bounded look-ahead in all
                # (a long run of unchanged files still shows progress as it goes)
                while (
                    not exhausted
                    and len(self._order) <= len(self._actors)
                    and len(ahead) < MAX_AHEAD
                ):
                    entry = next(entries, None)
                    if entry is None:
                        exhausted = True
                    else:
                        ahead.append(entry)
                        if isinstance(entry, WorkItem):
                            self._start(processor)
                            self._split(entry)
                self._pump()
                if not ahead:
                    self._collect()
                    return
                entry = ahead.popleft()
                if isinstance(entry, SourceResult):
                    yield entry
                    continue
                source = self._order[0]
                yield Pending(entry, lambda s=source: self._open(s))
                self._finish(source)
        finally:
            self._order.clear()
            self._dispatch.clear()
            self._draining.clear()

    def _split(self, item: WorkItem) -> None:
        i = self._least_busy()
        method = self._actors[i].split.options(
            concurrency_group="split", _generator_backpressure_num_objects=self._window
        )
        self._load[i] += 1
        source = _Source(item, i, method.remote(item))
        self._order.append(source)
        self._dispatch.append(source)

    def _least_busy(self) -> int:
        return min(range(len(self._load)), key=self._load.__getitem__)

    def _pump(self) -> None:
        """Without blocking: take what the splits have produced, in order, and hand packs
        to the actors while the window has room."""
        for source in list(self._draining):
            while self._ray.wait([source.gen], timeout=0)[0] and self._take(source):
                pass
        while self._dispatch:
            source = self._dispatch[0]
            # a record holds no slot of the window; a pack does
            if source.info is not None and self._inflight >= self._window:
                return
            if not self._ray.wait([source.gen], timeout=0)[0]:
                return
            self._take(source)  # the last one takes the source out of the dispatch queue

    def _take(self, source: _Source) -> bool:
        """Take the next split item of ``source`` (it is ready); False when none is left."""
        try:
            ref = next(source.gen)
        except StopIteration:
            source.split_done = True
            self._load[source.actor] -= 1
            for queue in (self._dispatch, self._draining):
                if source in queue:
                    queue.remove(source)
            return False
        if source in self._draining:
            return True  # the writer is done with this source: drop the pack
        if source.info is None:
            source.info = ref
        else:
            i = self._least_busy()
            call = self._actors[i].embed.options(concurrency_group="embed").remote(ref)
            source.batches.append((i, call))
            self._load[i] += 1
            self._inflight += 1
        return True

    def _wait_split(self, source: _Source) -> None:
        """Block until ``source``'s split has its next item. Every source before it is
        done, so it is first in the dispatch queue, and it may pass the window: the
        writer waits for nothing else."""
        self._ray.wait([source.gen], num_returns=1)
        self._take(source)
        self._pump()

    def _open(self, source: _Source) -> Processed:
        while source.info is None:
            self._wait_split(source)
        info = self._get([source.info])[0]
        if isinstance(info, Raised):
            raise info.error
        return Processed(info, self._batches(source))

    def _batches(self, source: _Source) -> Iterator[ChunkBatch]:
        while True:
            while not source.batches:
                if source.split_done:
                    return
                self._wait_split(source)
            actor, ref = source.batches[0]
            # wait for this batch, handing out packs whenever the next split has one
            while not self._ray.wait([ref], timeout=0)[0]:
                self._ray.wait([ref, *(s.gen for s in list(self._dispatch)[:1])], num_returns=1)
                self._pump()
            batch = self._get([ref])[0]
            source.batches.popleft()
            self._load[actor] -= 1
            self._inflight -= 1
            if isinstance(batch, Raised):
                raise batch.error
            yield batch

    def _finish(self, source: _Source) -> None:
        """The writer is done with ``source``, completely or not (it failed, or changed
        back since it was planned): what is left of it is dropped."""
        self._order.remove(source)
        for actor, _ in source.batches:
            self._load[actor] -= 1
            self._inflight -= 1
        source.batches.clear()
        if not source.split_done and source in self._dispatch:
            # its split must run out (a blocked generator would hold the actor's thread);
            # its packs are dropped as they come
            self._dispatch.remove(source)
            self._draining.append(source)

    def _get(self, refs: list[Any], timeout: float | None = None) -> list[Any]:
        """``ray.get``, with a dead worker or a lost node told as what to do next."""
        ray = self._ray
        try:
            return ray.get(refs, timeout=timeout)
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as exc:
            raise RayWorkerLost(
                f"a Ray worker was lost ({type(exc).__name__}); everything committed so far "
                "is kept: run the same command again to resume"
            ) from exc
        except ray.exceptions.RayTaskError as exc:
            # snaprag's own errors (a model a node cannot convert...) arrive as they were
            # raised, without the remote traceback that Ray wraps around them
            if isinstance(getattr(exc, "cause", None), SnapragError):
                raise exc.cause from None
            raise


class RayWorkerLost(RuntimeError):
    """A Ray actor or object was lost mid-run (a node died, out of memory): the run stops;
    running it again resumes after the last commit. Not a :class:`SnapragError`, so the job
    does not report the source failed and carry on with a broken pool."""
