"""Per-script fusion weights: Hangul queries use their own dense / BM25 weights."""

from __future__ import annotations

import pytest

from snaprag.config import Config
from snaprag.errors import ConfigError
from snaprag.search.retriever import fusion_weights


def test_defaults_per_script():
    config = Config()
    assert fusion_weights("How long is the warranty?", config) == [0.4, 0.6]
    assert fusion_weights("보증 기간은 얼마나 되나요?", config) == [0.5, 0.5]
    assert fusion_weights("BM25를 쓰나요", config) == [0.5, 0.5]  # mixed text: has Hangul
    assert fusion_weights("ㅎㅎ", config) == [0.5, 0.5]  # compatibility jamo
    assert fusion_weights("東京 2020", config) == [0.4, 0.6]


def test_settings_and_environment(monkeypatch):
    config = Config(dense_weight=0.3, bm25_weight=0.7, hangul_dense_weight=0.6)
    assert fusion_weights("warranty", config) == [0.3, 0.7]
    assert fusion_weights("보증", config) == [0.6, 0.5]
    monkeypatch.setenv("SNAPRAG_HANGUL_BM25_WEIGHT", "0.25")
    assert fusion_weights("보증", Config.from_env()) == [0.5, 0.25]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hangul_dense_weight": -0.1}, "hangul_dense_weight must be >= 0"),
        ({"hangul_bm25_weight": float("nan")}, "hangul_bm25_weight must be >= 0"),
        ({"hangul_dense_weight": 0, "hangul_bm25_weight": 0}, "cannot both be 0"),
    ],
)
def test_bad_weights_are_rejected(settings, message):
    with pytest.raises(ConfigError, match=message):
        Config(**settings)
