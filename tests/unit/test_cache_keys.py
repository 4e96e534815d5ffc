"""Cache keys: what changes a result changes the key; what cannot, does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from snaprag.cache.query_cache import QueryCache, _redact, settings_fingerprint
from snaprag.config import Config


@pytest.mark.parametrize(
    "change",
    [
        {"fusion": "rrf"},
        {"dense_weight": 0.5},
        {"bm25_weight": 0.7},
        {"rrf_k": 30},
        {"candidates": 50},
        {"quantization": "fp32"},
        {"rerank_top_n": 10},
        {"rescore_model": "e5-small"},
        {"dense_backend": "hnsw"},
        {"hnsw_min_chunks": 10},  # decides exact vs HNSW under dense_backend=auto
        {"hangul_dense_weight": 0.3},
    ],
)
def test_result_settings_change_the_fingerprint(change: dict) -> None:
    base = Config(cache_dir=Path("/tmp/c"))
    assert settings_fingerprint(base, "m") != settings_fingerprint(base.with_(**change), "m")


@pytest.mark.parametrize(
    "change",
    [
        {"threads": 1},
        {"embed_batch_size": 8},
        {"index_dir": Path("/elsewhere")},
        {"cache_memory_mb": 1.0},
        {"redis_url": "redis://x:1/0"},
        {"redis_timeout": 1.0},
        {"semantic_cache": True},
        {"cache_ttl_retrieval": 5.0},
        {"otel_endpoint": "http://127.0.0.1:4318"},  # tracing on keeps the cache
        {"alert_p95_ms": "search=50"},  # so does an alert threshold
        {"alert_error_rate": 0.05},
        {"alert_webhook": "http://127.0.0.1:9/hook"},
    ],
)
def test_neutral_settings_keep_the_fingerprint(change: dict) -> None:
    base = Config(cache_dir=Path("/tmp/c"))
    assert settings_fingerprint(base, "m") == settings_fingerprint(base.with_(**change), "m")


def test_model_identity_is_part_of_the_fingerprint() -> None:
    base = Config(cache_dir=Path("/tmp/c"))
    assert settings_fingerprint(base, "minilm|2|int8") != settings_fingerprint(
        base, "e5-small|2|int8"
    )


def test_keys_separate_their_parts_unambiguously() -> None:
    k = QueryCache.key
    assert k("retrieval", "a", "bc") != k("retrieval", "ab", "c")
    assert k("retrieval", "s", "q", (5, "hybrid", None)) != k(
        "retrieval", "s", "q", (6, "hybrid", None)
    )
    assert k("retrieval", "s", "q") != k("answer", "s", "q")
    assert k("retrieval", "s", "질문") == k("retrieval", "s", "질문")


def test_redis_password_is_redacted() -> None:
    assert _redact("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert _redact("redis://host:6379/0") == "redis://host:6379/0"
