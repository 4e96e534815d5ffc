"""The quality profile with fakes: a pair of hash models stored as one vector per chunk,
split into two vector indexes by the snapshot, fused three ways; the second model's vectors
follow the first's through delete, re-ingest and snapshot reloads; the cache keys change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from snaprag import Config, Engine
from snaprag.cache.query_cache import settings_fingerprint
from snaprag.embed.factory import create_embedder
from snaprag.embed.hashing import HashEmbedder
from snaprag.embed.pair import PairEmbedder, split_vectors, with_second_model
from snaprag.errors import ConfigError
from snaprag.search import fusion

DOCS = {
    "warranty.md": "# Warranty\n\nThe frame carries a ten year warranty against defects.",
    "desk.md": "# Desk\n\nRaise the desk height with the control box buttons.",
    "cable.txt": "Route every power cable through the tray under the desk top.",
    "firmware.txt": "Firmware 2.4 fixes the memory button and adds a child lock.",
}
PAIR = "hash:16+hash:8"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SNAPRAG_"):
            monkeypatch.delenv(name)


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def make(tmp_path: Path, **kw) -> Engine:
    kw.setdefault("model", "hash:16")
    kw.setdefault("second_model", "hash:8")
    kw.setdefault("cache", False)
    return Engine(Config(index_dir=tmp_path / "index", cache_dir=tmp_path / "models", **kw))


def test_quality_profile_sets_the_second_model() -> None:
    cfg = Config.from_env(profile="quality")
    assert cfg.second_model == "auto"
    assert cfg.sources()["second_model"] == "profile quality"


def test_auto_pairs_english_with_multilingual_and_nothing_else() -> None:
    assert with_second_model("minilm", "auto") == "minilm+e5-small"
    assert with_second_model("e5-small", "auto") == "e5-small"  # MiniLM cannot read Korean
    assert with_second_model("minilm", None) == "minilm"
    assert with_second_model("minilm+e5-small", "auto") == "minilm+e5-small"
    assert with_second_model("hash:16", "hash:16") == "hash:16"
    assert with_second_model("hash:16", "hash") == "hash:16+hash:384"


def test_pair_vectors_are_unit_and_split_back_into_each_model() -> None:
    first, second = HashEmbedder(16), HashEmbedder(8)
    pair = PairEmbedder(first, second)
    texts = ["a desk", "ten year warranty"]
    vecs = pair.embed_passages(texts)
    assert vecs.shape == (2, 24) and pair.parts == (16, 8) and pair.spec == PAIR
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    a, b = split_vectors(vecs.astype(np.float16), pair.parts)  # as stored: float16
    np.testing.assert_allclose(a, first.embed_passages(texts), atol=2e-3)
    np.testing.assert_allclose(b, second.embed_passages(texts), atol=2e-3)
    assert isinstance(create_embedder(PAIR, Config()), PairEmbedder)


def test_pair_index_searches_three_lists(tmp_path: Path, docs: Path) -> None:
    engine = make(tmp_path)
    engine.ingest([docs])
    assert engine.store.get_meta("model") == PAIR
    assert engine.store.get_meta("dim") == "24"
    snap = engine.retriever.snapshot()
    assert snap.second is not None and len(snap.second) == len(snap.dense) == 4
    hits = engine.search("ten year warranty", k=4)
    assert hits[0].source.endswith("warranty.md")
    assert len(engine.search("desk", k=4, mode="dense")) == 4
    # the fused scores are those of the three lists, each min-max normalised and weighted
    cfg = engine.config
    assert cfg.second_dense_weight > 0
    assert hits[0].score <= cfg.dense_weight + cfg.bm25_weight + cfg.second_dense_weight + 1e-9


def test_three_way_weighted_fusion_adds_the_second_list() -> None:
    ids = np.array([1, 2, 3])
    dense = (ids, np.array([0.9, 0.5, 0.1]))
    lexical = (np.array([3, 2, 1]), np.array([9.0, 5.0, 1.0]))
    second = (np.array([2, 1, 3]), np.array([0.8, 0.4, 0.0]))
    two = fusion.weighted([dense, lexical], [0.4, 0.6], 3)
    three = fusion.weighted([dense, lexical, second], [0.4, 0.6, 0.3], 3)
    assert two[0][0] == 3  # BM25 decides between two
    assert three[0][0] == 2 and three[1][0] == pytest.approx(0.4 * 0.5 + 0.6 * 0.5 + 0.3)


def test_delete_and_reingest_keep_both_models_vectors(tmp_path: Path, docs: Path) -> None:
    engine = make(tmp_path)
    engine.ingest([docs])
    engine.delete(str(docs / "warranty.md"))
    snap = engine.retriever.snapshot()
    assert len(snap) == 3 and len(snap.second) == 3 and len(snap.dense) == 3
    assert all(not h.source.endswith("warranty.md") for h in engine.search("warranty", k=5))
    (docs / "desk.md").write_text("# Desk\n\nA ten year warranty on the desk.", encoding="utf-8")
    engine.ingest([docs])
    snap = engine.retriever.snapshot()
    assert len(snap) == len(snap.second) == 4
    # the second index holds exactly what the second model alone would have indexed
    alone_dir = tmp_path / "alone"
    alone_dir.mkdir()
    alone = make(alone_dir, model="hash:8", second_model=None)
    alone.ingest([docs])
    assert _vectors_by_text(alone, "dense").keys() == _vectors_by_text(engine, "second").keys()
    want, got = _vectors_by_text(alone, "dense"), _vectors_by_text(engine, "second")
    for text, vec in want.items():
        np.testing.assert_allclose(got[text], vec, atol=3e-3)


def _vectors_by_text(engine: Engine, which: str) -> dict[str, np.ndarray]:
    snap = engine.retriever.snapshot()
    rows = engine.store.chunk_rows(snap.row_ids.tolist())
    matrix = getattr(snap, which).matrix
    return {rows[int(r)].text: matrix[i] for i, r in enumerate(snap.row_ids.tolist())}


def test_saved_snapshot_is_verified_with_its_split(tmp_path: Path, docs: Path) -> None:
    make(tmp_path).ingest([docs])
    first = make(tmp_path)
    snap = first.retriever.snapshot()
    saved = sorted((tmp_path / "index" / "snapshots").glob("v*"))[-1]
    meta = json.loads((saved / "snapshot.json").read_text())
    assert meta["parts"] == [16, 8] and (saved / "second").is_dir()
    # a fresh process loads both indexes from the saved files
    again = make(tmp_path).retriever.snapshot()
    np.testing.assert_array_equal(again.row_ids, snap.row_ids)
    assert len(again.second) == len(snap.second)
    # a damaged second index is rebuilt, not searched
    (saved / "second" / "vectors.npy").write_bytes(b"garbage")
    rebuilt = make(tmp_path).retriever.snapshot()
    assert len(rebuilt.second) == 4


def test_profile_changes_the_cache_fingerprint() -> None:
    plain = Config(model="minilm")
    quality = Config(model="minilm", second_model="auto")
    assert settings_fingerprint(plain) != settings_fingerprint(quality)
    weighted = Config(model="minilm", second_model="auto", second_dense_weight=0.2)
    assert settings_fingerprint(quality) != settings_fingerprint(weighted)
    pair = PairEmbedder(HashEmbedder(16), HashEmbedder(8))
    assert pair.fingerprint != HashEmbedder(16).fingerprint


def test_cached_search_never_crosses_profiles(tmp_path: Path, docs: Path) -> None:
    engine = make(tmp_path, cache=True, redis_url=None)
    engine.ingest([docs])
    scope = engine._scope()
    other = make(tmp_path, cache=True, redis_url=None, second_dense_weight=0.1)
    assert other._scope() != scope


def test_quality_profile_refuses_an_index_built_without_it(tmp_path: Path, docs: Path) -> None:
    make(tmp_path, second_model=None).ingest([docs])
    with pytest.raises(ConfigError, match="quality profile"):
        make(tmp_path, model=None).search("desk")
    # the pair index is searched as built, with or without the profile named
    other = tmp_path / "pair"
    other.mkdir()
    make(other).ingest([docs])
    assert make(other, model=None, second_model=None).search("desk", k=1)


def test_bad_second_weight_is_refused() -> None:
    with pytest.raises(ConfigError, match="second_dense_weight"):
        Config(second_dense_weight=-1.0)


def test_a_store_that_searches_itself_refuses_the_pair(tmp_path: Path) -> None:
    from snaprag.index.store import Store
    from snaprag.ingest.job import IngestJob

    class SearchingSqlite(Store):  # stands in for Milvus: the search runs in the store
        def search_indexes(self):  # pragma: no cover - never reached
            raise AssertionError

    store = SearchingSqlite(tmp_path / "db.sqlite")
    pair = PairEmbedder(HashEmbedder(16), HashEmbedder(8))
    with pytest.raises(ConfigError, match="second model"):
        IngestJob.for_index(store, pair, PAIR, Config(index_dir=tmp_path))
    assert IngestJob.for_index(store, HashEmbedder(16), "hash:16", Config(index_dir=tmp_path))
