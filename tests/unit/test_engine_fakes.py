"""Engine behaviour with the package's fakes: fast, deterministic, no model files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from snaprag import Config, Engine, Filters
from snaprag.embed.hashing import HashEmbedder
from snaprag.generate.echo import EchoGenerator
from snaprag.index.base import DocumentStore
from snaprag.observe.telemetry import RecordingTelemetry
from snaprag.search.base import Searcher
from snaprag.testing import HashEmbedder as PublicHashEmbedder

DOCS = {
    "warranty.md": "# Warranty\n\nThe frame carries a ten year warranty against defects.",
    "desk.md": "# Desk\n\nRaise the desk height with the control box buttons.",
    "cable.txt": "Route every power cable through the tray under the desk top.",
    "firmware.txt": "Firmware 2.4 fixes the memory button and adds a child lock.",
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SNAPRAG_INDEX", "SNAPRAG_MODEL", "SNAPRAG_CACHE", "SNAPRAG_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def make(tmp_path: Path, **kw) -> Engine:
    cfg = Config(index_dir=tmp_path / "index", cache_dir=tmp_path / "models", **kw)
    return Engine(cfg, embedder=HashEmbedder(), generator=EchoGenerator())


def test_fakes_are_exported_for_users() -> None:
    assert PublicHashEmbedder is HashEmbedder


def test_ingest_search_ask_with_fakes(tmp_path: Path, docs: Path) -> None:
    telemetry = RecordingTelemetry()
    cfg = Config(index_dir=tmp_path / "index", cache_dir=tmp_path / "models")
    with Engine(cfg, embedder=HashEmbedder(), generator=EchoGenerator(), telemetry=telemetry) as e:
        report = e.ingest([docs])
        assert report.ok and report.count("added") == 4
        assert isinstance(e.store, DocumentStore) and isinstance(e.searcher, Searcher)
        hits = e.search("ten year warranty", k=3)
        assert hits[0].source.endswith("warranty.md")
        assert {"embed", "bm25", "dense", "fuse", "fetch", "cache"} <= set(hits.timings.stages)
        assert hits.timings.cache_tier is None  # first time: a miss
        again = e.search("Ten year warranty?", k=3)  # a trivial variant: same entry
        assert again.timings.cache_tier == "memory" and "embed" not in again.timings.stages
        assert [h.id for h in again] == [h.id for h in hits]
        answer = e.ask("How long is the frame warranty?", k=2)
        assert answer.generator == "echo" and answer.citations[0].n == 1
        assert "[1]" in answer.text and answer.timings.stages["retrieve"] > 0
        assert e.stats()["model"] == "hash:384"
    ops = telemetry.operations()
    assert ops.count("search") == 2 and ops.count("ask") == 1
    assert ("retrieval", "memory", 1, 0) in telemetry.cache
    assert telemetry.generators and not telemetry.errors


def test_search_many_keeps_order_and_timings(tmp_path: Path, docs: Path) -> None:
    with make(tmp_path) as e:
        e.ingest([docs])
        queries = ["desk height", "power cable tray", "firmware child lock"]
        batch = e.search_many(queries, k=1)
        assert [hits[0].source.rsplit("/", 1)[-1] for hits in batch] == [
            "desk.md",
            "cable.txt",
            "firmware.txt",
        ]
        assert batch.timings.stages["fuse"] >= 0
        mixed = e.search_many(["desk height", "ten year warranty"], k=1)
        assert mixed.timings.cache_tier == "mixed"


def test_filters_are_case_insensitive_and_validated(tmp_path: Path, docs: Path) -> None:
    assert Filters(type="MD").type == "md" and Filters(type=".TXT").type == "txt"
    with pytest.raises(ValueError, match="unknown document type"):
        Filters(type="exe")
    with make(tmp_path) as e:
        e.ingest([docs])
        hits = e.search("desk", k=10, filters=Filters(type="TXT"))
        assert hits and all(h.source.endswith(".txt") for h in hits)


def test_answers_are_cached_and_replayed(tmp_path: Path, docs: Path) -> None:
    generator = EchoGenerator()
    cfg = Config(index_dir=tmp_path / "index", cache_dir=tmp_path / "models")
    with Engine(cfg, embedder=HashEmbedder(), generator=generator) as e:
        e.ingest([docs])
        first = e.ask("Which firmware adds a child lock?")
        second = e.ask("which firmware adds a child lock")
        assert generator.requests == 1 and second.text == first.text
        assert second.metrics.get("cached") == 1.0 and second.timings.cache_tier == "memory"
        (docs / "firmware.txt").write_text("Firmware 2.5 removes the child lock.")
        e.ingest([docs])  # a new index version: the old answer is unreachable
        third = e.ask("Which firmware adds a child lock?")
        assert generator.requests == 2 and "2.5" in third.text


def test_generator_errors_are_events(tmp_path: Path, docs: Path) -> None:
    cfg = Config(index_dir=tmp_path / "index", cache_dir=tmp_path / "models")
    telemetry = RecordingTelemetry()
    failing = EchoGenerator(fail_with="timeout")
    with Engine(cfg, embedder=HashEmbedder(), generator=failing, telemetry=telemetry) as e:
        e.ingest([docs])
        events = list(e.ask_events("desk height"))
        assert [ev.kind for ev in events] == ["hits", "error"]
        assert events[-1].code == "timeout"
        assert telemetry.errors and telemetry.errors[0][0] == "ask"


def test_cache_off_by_injection(tmp_path: Path, docs: Path) -> None:
    cfg = Config(index_dir=tmp_path / "index", cache_dir=tmp_path / "models")
    with Engine(cfg, embedder=HashEmbedder(), cache=None) as e:
        e.ingest([docs])
        assert e.cache is None and e.searcher is e.retriever
        assert e.search("desk").timings.cache_tier is None


def test_injected_model_is_kept_by_the_index(tmp_path: Path, docs: Path) -> None:
    with make(tmp_path) as e:
        e.ingest([docs])
    other = Engine(Config(index_dir=tmp_path / "index", model="hash:64"))
    with other, pytest.raises(ValueError, match="built with model 'hash:384'"):
        other.search("desk")
    # opened by name, the stored model is rebuilt by the factory: same results
    with Engine(Config(index_dir=tmp_path / "index", cache=False)) as by_name:
        assert by_name.search("desk height", k=1)[0].source.endswith("desk.md")


def test_no_index_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    with make(tmp_path) as e:
        with pytest.raises(Exception, match="no index at"):
            e.search("anything")
        with pytest.raises(Exception, match="no index at"):
            e.require_index()
        report = e.ingest([tmp_path / "missing"])
        assert not report.ok and report.results[0].reason == "no such file or directory"
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("after_ingest", [False, True])
def test_cold_engine_under_32_threads_builds_each_part_once(
    tmp_path: Path, docs: Path, after_ingest: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """32 threads on a cold engine (built from the config: model, cache and all): one
    store, one embedder, one cache, one retriever, one snapshot build, and the results of
    a single thread. Every builder is slowed down so that an unlocked build would run in
    many threads at once (without the engine's lock these counts reach 32)."""
    import time

    import snaprag.embed.factory
    from snaprag.cache.query_cache import QueryCache
    from snaprag.index.store import Store
    from snaprag.search.retriever import Retriever

    index = tmp_path / "index"
    with Engine(Config(index_dir=index, model="hash"), cache=None) as e:
        e.ingest([docs])
        expected = [h.id for h in e.search("desk height control box", k=4)]
    if after_ingest:  # no saved snapshot: every thread would build one
        import shutil

        shutil.rmtree(index / "snapshots")
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def spy(name: str, fn):
        def wrapper(*args, **kwargs):
            with lock:
                counts[name] = counts.get(name, 0) + 1
            time.sleep(0.02)
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(Store, "__init__", spy("store", Store.__init__))
    monkeypatch.setattr(Store, "read_index", spy("snapshot build", Store.read_index))
    monkeypatch.setattr(Retriever, "__init__", spy("retriever", Retriever.__init__))
    monkeypatch.setattr(QueryCache, "__init__", spy("cache", QueryCache.__init__))
    monkeypatch.setattr(
        snaprag.embed.factory,
        "create_embedder",
        spy("embedder", snaprag.embed.factory.create_embedder),
    )
    engine = Engine(Config(index_dir=index))  # cold: nothing built yet
    barrier = threading.Barrier(32)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append([h.id for h in engine.search("desk height control box", k=4)])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        assert len(results) == 32 and all(r == expected for r in results)
        want = {"store": 1, "embedder": 1, "cache": 1, "retriever": 1}
        if after_ingest:
            want["snapshot build"] = 1
        assert counts == want
    finally:
        engine.close()


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    emb = HashEmbedder(dim=64)
    a = emb.embed_queries(["ten year warranty", "", "!!!"])
    b = emb.embed_passages(["ten year warranty"])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    assert emb.count_tokens(["a b, c"]) == [4]
    assert emb.token_offsets("ab cd") == [(0, 2), (3, 5)]
    import pickle

    assert pickle.loads(pickle.dumps(emb)).embed_queries(["x"]).shape == (1, 64)


def test_search_cached_answers_only_what_the_cache_holds(tmp_path: Path, docs: Path) -> None:
    with make(tmp_path) as e:
        e.ingest([docs])
        assert e.search_cached("ten year warranty") is None  # nothing built, nothing searched
        searched = e.search("ten year warranty", k=3)
        before = e.cache_report()
        again = e.search_cached("Ten  year WARRANTY", k=3, memory_only=True)  # normalized key
        assert again is not None and again.timings.cache_tier == "memory"
        assert [h.id for h in again] == [h.id for h in searched]
        assert e.search_cached("ten year warranty", k=4) is None  # other parameters
        assert e.search_cached("child lock", k=3) is None

        def memory_hits(report: dict) -> int:
            rows = [r for r in report["stats"] if r["tier"] == "memory"]
            return next(r["hits"] for r in rows if r["namespace"] == "retrieval")

        # the hit was counted like a search's look-up; misses of search_cached count nothing
        assert memory_hits(e.cache_report()) == memory_hits(before) + 1
        assert e.cache_report()["hit_rate"]["retrieval"] == 0.5
    with make(tmp_path, cache=False) as e:
        e.search("ten year warranty", k=3)
        assert e.search_cached("ten year warranty", k=3) is None


def test_search_cached_many_answers_each_query_with_its_own_tier(
    tmp_path: Path, docs: Path
) -> None:
    """A server gathers the probes of concurrent requests: each query gets its own hits and
    tier (or None), only the queries found are counted, and a miss is counted once, by the
    search that follows it."""
    with make(tmp_path) as e:
        e.ingest([docs])
        on_disk = e.search("ten year warranty", k=3)
    with make(tmp_path) as e:  # a new process: its memory tier is empty
        in_memory = e.search("child lock", k=3)

        def counts() -> dict[tuple[str, str], tuple[int, int]]:
            rows = e.cache_report()["stats"]
            return {
                (r["tier"], r["namespace"]): (r["hits"], r["misses"])
                for r in rows
                if r["namespace"] == "retrieval"
            }

        before = counts()
        found = e.search_cached_many(["child lock", "ten year warranty", "frame size"], k=3)
        assert [h.id for h in found[0]] == [h.id for h in in_memory]
        assert [h.id for h in found[1]] == [h.id for h in on_disk]
        assert found[2] is None
        assert [found[0].timings.cache_tier, found[1].timings.cache_tier] == ["memory", "disk"]
        after = counts()

        def delta(key: tuple[str, str]) -> tuple[int, int]:
            old = before.get(key, (0, 0))
            new = after.get(key, (0, 0))
            return new[0] - old[0], new[1] - old[1]

        # the two found, not the miss: one in memory, one fell through to the disk
        assert delta(("memory", "retrieval")) == (1, 1)
        assert delta(("disk", "retrieval")) == (1, 0)
        before = after
        e.search_many(["frame size"], k=3)
        after = counts()
        assert delta(("memory", "retrieval")) == (0, 1)  # the miss, counted by its search
        assert delta(("disk", "retrieval")) == (0, 1)
