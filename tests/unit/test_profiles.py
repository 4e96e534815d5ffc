"""Profiles: named defaults below the file, variables and options; the edge profile's values
and where each came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snaprag.config import Config
from snaprag.errors import ConfigError
from snaprag.profiles import PROFILES, profile_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SNAPRAG_"):
            monkeypatch.delenv(name)


def test_default_profile_changes_nothing():
    assert Config.from_env() == Config()
    assert Config.from_env().profile == "default"
    assert profile_settings("default") == {}


def test_edge_profile_values_and_their_source():
    cfg = Config.from_env(profile="edge")
    assert cfg.dense_backend == "int8"
    assert cfg.threads == 1 and cfg.effective_threads == 1
    assert cfg.redis_url is None
    assert cfg.embed_batch_size == 8 and cfg.cache_memory_mb == 8.0
    sources = cfg.sources()
    assert sources["profile"] == "option"
    assert {n for n, s in sources.items() if s == "profile edge"} == set(PROFILES["edge"])
    assert sources["fusion"] == "default"  # what the profile leaves alone


def test_profile_from_the_environment(monkeypatch):
    monkeypatch.setenv("SNAPRAG_PROFILE", "edge")
    cfg = Config.from_env()
    assert cfg.profile == "edge" and cfg.dense_backend == "int8"
    assert cfg.sources()["profile"] == "env SNAPRAG_PROFILE"


def test_profile_from_the_config_file(tmp_path: Path):
    path = tmp_path / "snaprag.toml"
    path.write_text('[index]\nprofile = "edge"\n', encoding="utf-8")
    cfg = Config.from_env(config_file=path)
    assert cfg.profile == "edge" and cfg.threads == 1


def test_file_env_and_options_beat_the_profile(monkeypatch, tmp_path: Path):
    path = tmp_path / "snaprag.toml"
    path.write_text('[index]\ndense_backend = "binary"\n', encoding="utf-8")
    monkeypatch.setenv("SNAPRAG_THREADS", "2")
    monkeypatch.setenv("SNAPRAG_REDIS_URL", "redis://127.0.0.1:6379/0")
    cfg = Config.from_env(config_file=path, profile="edge", embed_batch_size=16)
    assert cfg.dense_backend == "binary"
    assert cfg.threads == 2
    assert cfg.redis_url == "redis://127.0.0.1:6379/0"  # asked for: the profile allows it
    assert cfg.embed_batch_size == 16
    assert cfg.cache_memory_mb == 8.0
    sources = cfg.sources()
    assert sources["dense_backend"] == f"file {path}"
    assert sources["threads"] == "env SNAPRAG_THREADS"
    assert sources["cache_memory_mb"] == "profile edge"


def test_a_value_equal_to_the_default_still_beats_the_profile():
    cfg = Config.from_env(profile="edge", dense_backend="auto", threads=0)
    assert cfg.dense_backend == "auto" and cfg.threads == 0


@pytest.mark.parametrize(
    ("where", "fragment"), [("env", "SNAPRAG_PROFILE"), ("option", "default, edge")]
)
def test_unknown_profile_names_the_valid_ones_and_where_it_was_set(monkeypatch, where, fragment):
    if where == "env":
        monkeypatch.setenv("SNAPRAG_PROFILE", "egde")
        make = Config.from_env
    else:
        make = lambda: Config.from_env(profile="egde")  # noqa: E731
    with pytest.raises(ConfigError, match="profile must be one of default, edge") as info:
        make()
    assert fragment in str(info.value) and "'egde'" in str(info.value)


def test_unknown_profile_in_the_file_names_the_file(tmp_path: Path):
    path = tmp_path / "snaprag.toml"
    path.write_text('[index]\nprofile = "tiny"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"set in .*snaprag.toml \[index\]"):
        Config.from_env(config_file=path)


def test_direct_construction_validates_but_applies_no_defaults():
    assert Config(profile="edge").dense_backend == "auto"
    with pytest.raises(ConfigError, match="profile must be one of"):
        Config(profile="small")


def test_every_profile_names_real_settings_with_valid_values():
    for name, values in PROFILES.items():
        cfg = Config.from_env(profile=name)  # validated like any other values
        for field, value in values.items():
            assert getattr(cfg, field) == value


def test_profile_is_neutral_for_cache_keys_but_its_values_are_not():
    from snaprag.cache.query_cache import settings_fingerprint

    base = Config.from_env()
    named = base.with_(profile="edge")  # the name alone changes no result
    assert settings_fingerprint(base, "m") == settings_fingerprint(named, "m")
    edge = Config.from_env(profile="edge")  # its int8 backend may
    assert settings_fingerprint(base, "m") != settings_fingerprint(edge, "m")
