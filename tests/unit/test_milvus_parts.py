"""The Milvus backend's parts that need no Milvus: its settings, names and ids, and BM25
as sparse vectors (checked against the embedded :class:`Bm25Index`, the oracle)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from snaprag.cache.query_cache import settings_fingerprint
from snaprag.config import Config
from snaprag.config_sources import redact
from snaprag.errors import ConfigError
from snaprag.index.bm25 import Bm25Index
from snaprag.index.milvus.bm25 import doc_weights, query_weights, term_counts
from snaprag.index.milvus.names import index_name, source_id, term_id
from snaprag.index.tokenize import tokenize_many


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SNAPRAG_"):
            monkeypatch.delenv(name)


# --------------------------------------------------------------------------- settings


def test_store_env_names_the_server(monkeypatch):
    monkeypatch.setenv("SNAPRAG_STORE", "milvus:http://10.0.0.5:19530")
    cfg = Config.from_env()
    assert (cfg.store, cfg.milvus_uri) == ("milvus", "http://10.0.0.5:19530")
    assert cfg.sources()["store"] == cfg.sources()["milvus_uri"] == "env SNAPRAG_STORE"
    local = Config(store="milvus:./data/milvus.db")
    assert (local.store, local.milvus_uri) == ("milvus", "./data/milvus.db")
    assert Config(store="milvus", milvus_uri="https://h:443").milvus_uri == "https://h:443"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"store": "milvus"}, "needs milvus_uri"),
        ({"store": "milvus:"}, "needs milvus_uri"),
        ({"store": "milvus:./milvus"}, "must end in .db"),
        ({"store": "postgres"}, "sqlite, milvus, milvus:URI"),
        ({"milvus_prefix": "1abc"}, "milvus_prefix"),
        ({"milvus_prefix": "my-prefix"}, "milvus_prefix"),
    ],
)
def test_bad_store_settings_say_what_to_set(settings, message):
    with pytest.raises(ConfigError, match=message):
        Config(**settings)


def test_bad_store_variable_is_named(monkeypatch):
    monkeypatch.setenv("SNAPRAG_STORE", "milvus")
    with pytest.raises(ConfigError, match=r"needs milvus_uri.*SNAPRAG_STORE"):
        Config.from_env()


def test_token_is_secret_and_location_leaves_cache_keys_alone():
    cfg = Config(store="milvus:http://127.0.0.1:19530", milvus_token="root:Milvus")
    assert "Milvus" not in repr(cfg)
    assert redact("milvus_token", cfg.milvus_token) == "********"
    # the index id in every cache key names the data; where it is served from does not
    moved = cfg.with_(milvus_uri="http://10.0.0.9:19530", milvus_token="other")
    assert settings_fingerprint(moved) == settings_fingerprint(cfg)


# --------------------------------------------------------------------------- names & ids


def test_index_name_is_the_directory_name(tmp_path: Path):
    # two hosts keeping their caches in /a/docs and /b/docs share the collections "docs"
    assert index_name("snaprag_", tmp_path / "a" / "docs") == "snaprag_docs"
    assert index_name("snaprag_", tmp_path / "b" / "docs") == "snaprag_docs"
    assert index_name("x_", tmp_path / ".snap-rag.v2") == "x_snap_rag_v2"
    assert index_name("x_", tmp_path / "---") == "x_index"


def test_ids_are_stable_and_in_range():
    assert term_id("warranti") == term_id("warranti")
    assert term_id("warranti") != term_id("frame")
    assert all(0 <= term_id(t) < 2**32 - 1 for t in ("a", "환불", "x" * 1000))
    assert source_id("/data/a.txt") == source_id("/data/a.txt") > 0
    assert source_id("/data/a.txt") != source_id("/data/b.txt")
    assert source_id("/data/a.txt") < 2**63


# --------------------------------------------------------------------------- BM25


TEXTS = [
    "The frame is covered by a two-year warranty against defects.",
    "Wheels and tyres are covered for one year; the frame for two.",
    "Clean the chain every two weeks and keep the tyres inflated.",
    "환불 신청은 구매일로부터 14일 이내에 고객센터로 접수해야 합니다.",
    "서울 지하철 9호선은 출퇴근 시간에 급행 열차를 운행합니다. 환불 불가.",
    "",
    "warranty warranty warranty claims for frames and wheels",
]
QUERIES = [
    "how long is the frame warranty",
    "tyres tyres inflated",
    "환불 신청 기간",
    "지하철 급행 warranty",
    "nothing matches xylophone",
]


def _sparse_scores(docs: list[list[str]], query: list[str]) -> np.ndarray:
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    dfs: dict[int, int] = {}
    for d in docs:
        for tid, c in term_counts(d).items():
            dfs[tid] = dfs.get(tid, 0) + c
    q = query_weights(query, n, dfs)
    return np.array(
        [sum(w * q.get(t, 0.0) for t, w in doc_weights(d, avgdl).items()) for d in docs]
    )


@pytest.mark.parametrize("query", QUERIES)
def test_sparse_vectors_score_as_the_embedded_index(query: str):
    docs = tokenize_many(TEXTS)
    tokens = tokenize_many([query])[0]
    expected = Bm25Index.build(docs).scores(tokens)
    assert _sparse_scores(docs, tokens) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_hangul_terms_use_their_own_parameters():
    # a Korean term's weight saturates at once (k1 = 0.2), an English one's slowly (1.2)
    ko = doc_weights(["환불"] * 3 + ["x"], avgdl=4.0)[term_id("환불")]
    en = doc_weights(["refund"] * 3 + ["x"], avgdl=4.0)[term_id("refund")]
    assert ko > 0.9 > en


def test_query_weights_count_repeats_and_skip_unknown_terms():
    dfs = {term_id("frame"): 2}
    q = query_weights(["frame", "frame", "unknown"], 10, dfs)
    assert list(q) == [term_id("frame")]
    once = query_weights(["frame"], 10, dfs)[term_id("frame")]
    assert q[term_id("frame")] == pytest.approx(2 * once)
    assert doc_weights([], 5.0) == {}
