"""Config: defaults, SNAPRAG_* environment variables, overrides and validation."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from snaprag.config import (
    DENSE_BACKENDS,
    FUSIONS,
    QUANTIZATIONS,
    VECTOR_DTYPES,
    Config,
    default_cache_dir,
)
from snaprag.errors import ConfigError, SnapragError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No SNAPRAG_* variable of the surrounding shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("SNAPRAG_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def test_defaults():
    cfg = Config.from_env()
    assert cfg == Config()
    assert cfg.index_dir == Path(".snaprag")
    assert cfg.chunk_tokens == 192 and cfg.chunk_overlap == 32
    assert cfg.fusion == "weighted" and cfg.rrf_k == 60
    assert cfg.dense_backend == "auto"
    assert cfg.model is None
    assert cfg.cache_dir == Path.home() / ".cache" / "snaprag"


def test_default_cache_dir_sources(monkeypatch, tmp_path):
    assert default_cache_dir() == Path.home() / ".cache" / "snaprag"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "snaprag"
    monkeypatch.setenv("SNAPRAG_CACHE_DIR", str(tmp_path / "own"))
    assert default_cache_dir() == tmp_path / "own"
    assert Config().cache_dir == tmp_path / "own"
    assert Config(cache_dir=tmp_path / "explicit").cache_dir == tmp_path / "explicit"


# --------------------------------------------------------------------------- environment


def test_env_index(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPRAG_INDEX", str(tmp_path / "idx"))
    cfg = Config.from_env()
    assert cfg.index_dir == tmp_path / "idx"
    assert isinstance(cfg.index_dir, Path)


def test_env_index_dir_beats_index(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPRAG_INDEX", str(tmp_path / "a"))
    monkeypatch.setenv("SNAPRAG_INDEX_DIR", str(tmp_path / "b"))
    assert Config.from_env().index_dir == tmp_path / "b"


def test_env_chunk_tokens(monkeypatch):
    monkeypatch.setenv("SNAPRAG_CHUNK_TOKENS", "128")
    cfg = Config.from_env()
    assert cfg.chunk_tokens == 128 and isinstance(cfg.chunk_tokens, int)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_env_fusion(monkeypatch, fusion):
    monkeypatch.setenv("SNAPRAG_FUSION", fusion)
    assert Config.from_env().fusion == fusion


def test_env_other_types(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPRAG_DENSE_WEIGHT", "0.25")
    monkeypatch.setenv("SNAPRAG_MODEL", "e5-small")
    monkeypatch.setenv("SNAPRAG_THREADS", "3")
    monkeypatch.setenv("SNAPRAG_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SNAPRAG_DENSE_BACKEND", "hnsw")
    cfg = Config.from_env()
    assert cfg.dense_weight == 0.25 and isinstance(cfg.dense_weight, float)
    assert cfg.model == "e5-small"
    assert cfg.threads == 3 and cfg.effective_threads == 3
    assert cfg.cache_dir == tmp_path
    assert cfg.dense_backend == "hnsw"


def test_empty_env_value_ignored(monkeypatch):
    monkeypatch.setenv("SNAPRAG_CHUNK_TOKENS", "")
    monkeypatch.setenv("SNAPRAG_FUSION", "")
    cfg = Config.from_env()
    assert cfg.chunk_tokens == 192 and cfg.fusion == "weighted"


def test_unrelated_env_ignored(monkeypatch):
    monkeypatch.setenv("SNAPRAG_NOT_A_SETTING", "x")
    assert Config.from_env() == Config()


# --------------------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    ("var", "value", "allowed"),
    [
        ("SNAPRAG_FUSION", "sum", FUSIONS),
        ("SNAPRAG_DENSE_BACKEND", "faiss", DENSE_BACKENDS),
        ("SNAPRAG_QUANTIZATION", "int4", QUANTIZATIONS),
        ("SNAPRAG_VECTOR_DTYPE", "float32", VECTOR_DTYPES),
    ],
)
def test_invalid_choice_names_allowed_values(monkeypatch, var, value, allowed):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        Config.from_env()
    message = str(info.value)
    assert repr(value) in message
    for choice in allowed:
        assert choice in message


@pytest.mark.parametrize("value", ["abc", "1.5", "12x"])
def test_invalid_int_env(monkeypatch, value):
    monkeypatch.setenv("SNAPRAG_CHUNK_TOKENS", value)
    with pytest.raises(ConfigError, match="SNAPRAG_CHUNK_TOKENS"):
        Config.from_env()


def test_invalid_float_env(monkeypatch):
    monkeypatch.setenv("SNAPRAG_BM25_WEIGHT", "heavy")
    with pytest.raises(ConfigError, match="SNAPRAG_BM25_WEIGHT"):
        Config.from_env()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"chunk_tokens": 8}, "chunk_tokens must be >= 16"),
        ({"chunk_overlap": 128}, "chunk_overlap"),
        ({"chunk_overlap": -1}, "chunk_overlap"),
        ({"embed_batch_size": 0}, "embed_batch_size"),
        ({"candidates": 0}, "candidates"),
        ({"rrf_k": 0}, "rrf_k"),
        ({"max_file_bytes": 0}, "max_file_bytes"),
        ({"threads": -1}, "threads"),
        ({"dense_weight": -0.5}, "dense_weight"),
        ({"dense_weight": 0.0, "bm25_weight": 0.0}, "cannot both be 0"),
        ({"fusion": "RRF"}, "rrf, weighted"),
    ],
)
def test_invalid_values(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config(**changes)
    with pytest.raises(ConfigError, match=fragment):
        Config.from_env(**changes)


def test_env_value_out_of_range(monkeypatch):
    monkeypatch.setenv("SNAPRAG_CHUNK_TOKENS", "40")  # default overlap 32 >= 40 // 2
    with pytest.raises(ConfigError, match="chunk_overlap"):
        Config.from_env()
    assert Config.from_env(chunk_overlap=8).chunk_tokens == 40


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        Config(fusion="nope")
    assert issubclass(ConfigError, SnapragError)


# --------------------------------------------------------------------------- overrides


def test_overrides_beat_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPRAG_FUSION", "weighted")
    monkeypatch.setenv("SNAPRAG_CHUNK_TOKENS", "128")
    monkeypatch.setenv("SNAPRAG_INDEX", str(tmp_path / "env"))
    cfg = Config.from_env(fusion="rrf", chunk_tokens=96, index_dir=tmp_path / "arg")
    assert cfg.fusion == "rrf"
    assert cfg.chunk_tokens == 96
    assert cfg.index_dir == tmp_path / "arg"


def test_none_overrides_are_ignored(monkeypatch):
    monkeypatch.setenv("SNAPRAG_FUSION", "weighted")
    cfg = Config.from_env(fusion=None, model=None, chunk_tokens=None)
    assert cfg.fusion == "weighted" and cfg.chunk_tokens == 192


def test_override_str_path_is_converted():
    cfg = Config.from_env(index_dir="some/dir", cache_dir="cache/dir")
    assert cfg.index_dir == Path("some/dir") and cfg.cache_dir == Path("cache/dir")


def test_unknown_setting_rejected():
    with pytest.raises(ConfigError) as info:
        Config.from_env(chunk_size=100)
    message = str(info.value)
    assert "chunk_size" in message
    assert "chunk_tokens" in message  # lists the valid names


def test_with_revalidates_and_is_frozen():
    cfg = Config()
    smaller = cfg.with_(chunk_tokens=64, chunk_overlap=16)
    assert (smaller.chunk_tokens, smaller.chunk_overlap) == (64, 16)
    assert cfg.chunk_tokens == 192
    with pytest.raises(ConfigError):
        cfg.with_(fusion="max")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.fusion = "weighted"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.with_(no_such_setting=1)


def test_effective_threads_automatic():
    assert Config(threads=0).effective_threads >= 1
    assert Config(threads=5).effective_threads == 5
