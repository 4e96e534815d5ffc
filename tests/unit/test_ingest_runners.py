"""Process-stage runners: the contract as the job sees it, the factory, and the parts of
the Ray runner that need no cluster (address parsing, refusals). The Ray runner itself runs
on a real local cluster in tests/integration/test_ray_ingest.py."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from snaprag.errors import ConfigError, LoaderError
from snaprag.index.store import Store
from snaprag.ingest.chunking import Chunker
from snaprag.ingest.job import IngestJob
from snaprag.ingest.plan import WorkItem
from snaprag.ingest.process import Processed, Processor, process_all
from snaprag.ingest.report import SourceResult
from snaprag.ingest.runners import create_runner, opened
from snaprag.ingest.runners.base import Pending, RunnerInfo
from snaprag.ingest.runners.local import LocalRunner
from snaprag.testing import HashEmbedder


class AheadRunner:
    """A runner that works ahead like a distributed one: every source is processed
    completely on a thread pool before the first is handed to the writer."""

    def __init__(self, fail: str = "") -> None:
        self.info = RunnerInfo("ahead")
        self.fail = fail  # a source name whose loading fails
        self.pulled = 0

    def run(
        self, planned: Iterable[WorkItem | SourceResult], processor: Processor
    ) -> Iterator[Pending | SourceResult]:
        entries = list(planned)
        self.pulled = len(entries)
        done: dict[int, Processed | Exception] = {}

        def work(i: int, item: WorkItem) -> None:
            time.sleep(0.01 * (len(entries) - i))  # later sources finish first
            try:
                if Path(item.source).name == self.fail:
                    raise LoaderError("cannot parse this one")
                done[i] = process_all(item, processor)
            except Exception as exc:
                done[i] = exc

        threads = [
            threading.Thread(target=work, args=(i, e))
            for i, e in enumerate(entries)
            if isinstance(e, WorkItem)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, entry in enumerate(entries):
            if isinstance(entry, SourceResult):
                yield entry
            else:
                yield Pending(entry, lambda i=i: self._open(done[i]))

    @staticmethod
    def _open(result: Processed | Exception) -> Processed:
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        pass


def corpus(root: Path) -> Path:
    root.mkdir()
    words = ["amber", "basalt", "cedar", "dune", "ember", "fjord", "granite", "heath"]
    for n in range(6):
        body = " ".join(f"Line {i} of file {n} has {words[(i + n) % 8]}." for i in range(60))
        (root / f"doc{n}.md").write_text(f"# File {n}\n\n{body}\n")
    (root / "skip.xyz").write_text("not a supported type")
    return root


def job(store: Store, runner=None, events: list | None = None) -> IngestJob:
    emb = HashEmbedder(32)
    chunker = Chunker(emb.count_tokens, emb.token_offsets, max_tokens=40, overlap=8)
    progress = (lambda e, d: events.append((e, d))) if events is not None else None
    return IngestJob(store, emb, chunker, "float16", 10**8, progress, batch_chunks=4, runner=runner)


def rows(store: Store) -> list[tuple]:
    return (
        store._conn()
        .execute(
            "SELECT d.doc_id, c.seq, c.text, c.tokens, c.vector FROM chunks c "
            "JOIN documents d ON d.id = c.document_id ORDER BY c.id"
        )
        .fetchall()
    )


def test_a_runner_that_works_ahead_gives_the_local_index(tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    stores = {name: Store(tmp_path / f"{name}.db") for name in ("local", "ahead")}
    local = job(stores["local"]).run([docs])
    events: list = []
    ahead = job(stores["ahead"], AheadRunner(), events).run([docs])
    summary = [(r.path, r.status, r.chunks) for r in local.results]
    assert summary == [(r.path, r.status, r.chunks) for r in ahead.results]
    assert local.chunks_embedded == ahead.chunks_embedded > 6 * 8  # several batches each
    assert rows(stores["local"]) == rows(stores["ahead"])  # same order, same rowids too
    # progress still names each source before its chunks, in walk order
    starts = [Path(d).name for e, d in events if e == "start"]
    assert starts == [f"doc{n}.md" for n in range(6)]
    assert ahead.runner is not None and ahead.runner.name == "ahead"
    for s in stores.values():
        s.close()


def test_a_source_the_runner_cannot_load_fails_alone(tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    store = Store(tmp_path / "index.db")
    report = job(store, AheadRunner(fail="doc2.md")).run([docs])
    failed = [(Path(r.path).name, r.reason) for r in report.failed]
    assert failed == [("doc2.md", "cannot parse this one")]
    assert report.count("added") == 5
    again = job(store, AheadRunner()).run([docs])  # fixed: only that one is indexed now
    assert again.count("added") == 1 and again.count("unchanged") == 5
    store.close()


def test_local_runner_reports_its_work(tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    store = Store(tmp_path / "index.db")
    report = job(store).run([docs])
    data = report.to_dict()["runner"]
    assert data["name"] == "local"
    (worker,) = data["workers"]
    assert worker["worker"] == "local" and worker["chunks"] == report.chunks_embedded
    assert worker["busy_seconds"] > 0 and worker["chunks_per_s"] > 0
    assert report.to_dict()["commit_seconds"] > 0
    store.close()


def test_runner_factory() -> None:
    assert isinstance(create_runner("local"), LocalRunner)
    from snaprag.ingest.runners.ray import RayRunner

    plain = create_runner("ray", workers=3, cpus_per_worker=2)
    assert isinstance(plain, RayRunner) and plain.address is None
    assert (plain.workers, plain.cpus_per_worker) == (3, 2)
    for spec, address in [
        ("ray:auto", "auto"),
        ("ray:10.0.0.5:6379", "10.0.0.5:6379"),
        ("ray:ray://head:10001", "ray://head:10001"),
    ]:
        runner = create_runner(spec)
        assert isinstance(runner, RayRunner) and runner.address == address
    for bad in ("spark", "ray:", "local:x", ""):
        with pytest.raises(ConfigError, match="local, ray, ray:ADDRESS"):
            create_runner(bad)
    with pytest.raises(ConfigError, match="--ray"):
        create_runner("local", workers=2)
    with pytest.raises(ConfigError, match="> 0"):
        create_runner("ray", cpus_per_worker=0)
    with pytest.raises(ConfigError, match="at least 1"):
        create_runner("ray", workers=0)


def test_opened_closes_only_what_it_made() -> None:
    closed: list[str] = []

    class Mine(LocalRunner):
        def close(self) -> None:
            closed.append("mine")

    mine = Mine()
    with opened(mine) as runner:
        assert runner is mine
    assert closed == []
    with opened("local") as runner:
        assert isinstance(runner, LocalRunner)


def test_ray_runner_starts_nothing_without_work_and_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from snaprag.ingest.runners.ray import RayRunner

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    processor = Processor(HashEmbedder(32))
    runner = RayRunner()
    settled = [SourceResult("/a.txt", "unchanged"), SourceResult("/b.txt", "ignored")]
    assert list(runner.run(iter(settled), processor)) == settled  # no Ray needed
    with pytest.raises(ConfigError, match=r"pip install 'snaprag\[ray\]'"):
        list(runner.run(iter([WorkItem("/a.txt", "/a.txt")]), processor))
    runner.close()


def test_ray_runner_refuses_an_address_nobody_answers_on_at_once() -> None:
    pytest.importorskip("ray")
    from snaprag.ingest.runners.ray import RayRunner

    with socket.socket() as s:  # a port that was free a moment ago, and is closed now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = RayRunner(f"127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(ConfigError, match="ray start --head"):
        list(runner.run(iter([WorkItem("/a.txt", "/a.txt")]), Processor(HashEmbedder(32))))
    assert time.monotonic() - start < 30  # Ray alone would retry for minutes
    runner.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ingest", "docs", "--ray"], ["ingest", "docs", "--ray"]),
        (["ingest", "--ray", "docs"], ["ingest", "--ray", "docs"]),
        (["ingest", "docs", "--ray", "auto"], ["ingest", "docs", "--ray-address=auto"]),
        (["ingest", "--ray", "10.0.0.5:6379", "d"], ["ingest", "--ray-address=10.0.0.5:6379", "d"]),
        (["ingest", "d", "--ray=ray://h:10001"], ["ingest", "d", "--ray-address=ray://h:10001"]),
        (["ingest", "d", "--ray", "local"], ["ingest", "d", "--ray-address=local"]),
        (["ingest", "--", "--ray", "auto"], ["ingest", "--", "--ray", "auto"]),
        (["search", "--ray", "auto"], ["search", "--ray", "auto"]),
    ],
)
def test_ray_address_after_the_flag(args: list[str], expected: list[str]) -> None:
    from snaprag.cli.ingest import ray_address_args

    assert ray_address_args(args) == expected
