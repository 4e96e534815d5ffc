"""The edge profile through the engine, with the hash embedder: the ingest writes the int8
snapshot, a new engine searches it from disk (codes memory-mapped, rescored vectors and BM25
postings read by position), and the hits equal exact search's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from snaprag import Config, Engine, system
from snaprag.embed.hashing import HashEmbedder
from snaprag.index.quantized import QuantizedIndex
from snaprag.index.rowfile import PositionedArray

WORDS = [
    "desk",
    "frame",
    "motor",
    "warranty",
    "cable",
    "firmware",
    "button",
    "height",
    "lock",
    "tray",
    "screw",
    "foot",
]
QUERIES = ["desk height button", "warranty frame", "cable tray", "firmware lock", "screw foot"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SNAPRAG_"):
            monkeypatch.delenv(name)


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    rng = np.random.default_rng(7)
    for i in range(40):
        text = " ".join(rng.choice(WORDS, size=30))
        (root / f"note{i}.txt").write_text(f"Note {i}. {text}.", encoding="utf-8")
    return root


def engine(tmp_path: Path, profile: str) -> Engine:
    cfg = Config.from_env(
        index_dir=tmp_path / "index", cache_dir=tmp_path / "models", profile=profile, cache=False
    )
    return Engine(cfg, embedder=HashEmbedder())


def test_edge_ingest_writes_the_snapshot_and_search_maps_it(tmp_path, docs):
    with engine(tmp_path, "edge") as eng:
        report = eng.ingest([docs])
        assert report.ok
        loads = eng.retriever.snapshot_loads
        assert loads == 1  # built by the ingest itself
    metas = list((tmp_path / "index" / "snapshots").glob("v*/snapshot.json"))
    assert [json.loads(m.read_text())["kind"] for m in metas] == ["int8"]
    with engine(tmp_path, "edge") as eng:
        hits = eng.search(QUERIES[0], k=5)
        snap = eng.retriever.snapshot()
        assert isinstance(snap.dense, QuantizedIndex)
        assert isinstance(snap.dense.codes, np.memmap)  # loaded from disk, not rebuilt
        assert isinstance(snap.row_ids, np.memmap)
        # low_memory: what a query reads a little of stays out of the process's memory
        assert isinstance(snap.dense.half, PositionedArray)
        assert isinstance(snap.bm25._data, PositionedArray)
        assert len(hits) == 5


@pytest.mark.parametrize("profile", ["edge", "default"])
def test_loading_the_index_hands_memory_back_only_with_low_memory(
    tmp_path, docs, monkeypatch, profile
):
    with engine(tmp_path, "edge") as eng:
        eng.ingest([docs])
    calls: list[str] = []
    monkeypatch.setattr(system, "release_free_memory", lambda: calls.append("heap"))
    monkeypatch.setattr(system, "release_library_pages", lambda: calls.append("pages") or 0)
    with engine(tmp_path, profile) as eng:
        eng.search(QUERIES[0], k=5)
        eng.search(QUERIES[1], k=5)  # the same snapshot: nothing loaded, nothing released
    assert calls == (["heap", "pages"] if profile == "edge" else [])


def test_default_profile_maps_the_snapshot_it_searches(tmp_path, docs):
    cfg = Config.from_env(
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "models",
        dense_backend="int8",
        cache=False,
    )
    with Engine(cfg, embedder=HashEmbedder()) as eng:
        eng.ingest([docs])
    with Engine(cfg, embedder=HashEmbedder()) as eng:
        eng.search(QUERIES[0], k=5)
        snap = eng.retriever.snapshot()
        assert isinstance(snap.dense.half, np.memmap)
        assert isinstance(snap.bm25._data, np.memmap)


def test_edge_hits_equal_the_default_profiles(tmp_path, docs):
    with engine(tmp_path, "edge") as eng:
        eng.ingest([docs])
        edge = {q: eng.search(q, k=8) for q in QUERIES}
        dense = {q: eng.search(q, k=8, mode="dense") for q in QUERIES}
    with engine(tmp_path, "default") as eng:
        for q in QUERIES:
            want = eng.search(q, k=8)
            assert [h.id for h in edge[q]] == [h.id for h in want]
            assert [h.score for h in edge[q]] == pytest.approx([h.score for h in want], abs=1e-6)
            want_dense = eng.search(q, k=8, mode="dense")
            assert [h.id for h in dense[q]] == [h.id for h in want_dense]


def test_default_profile_ingest_writes_no_snapshot(tmp_path, docs):
    with engine(tmp_path, "default") as eng:
        eng.ingest([docs])
    assert not (tmp_path / "index" / "snapshots").exists()


def test_edge_search_runs_bm25_inline(tmp_path, docs):
    with engine(tmp_path, "edge") as eng:
        eng.ingest([docs])
        eng.search(QUERIES[1])
        assert eng.retriever._pool is None  # no second thread on one core
    with engine(tmp_path, "default") as eng:
        eng = Engine(eng.config.with_(threads=2), embedder=HashEmbedder())
        eng.search(QUERIES[1])
        assert eng.retriever._pool is not None  # two threads: BM25 beside the embedding
        eng.close()
