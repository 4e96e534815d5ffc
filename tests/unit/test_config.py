"""Config: defaults, sections, the TOML file, SNAPRAG_* variables, overrides, provenance
and validation."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from snaprag.config import (
    DENSE_BACKENDS,
    FIELD_SECTIONS,
    FUSIONS,
    QUANTIZATIONS,
    SECTIONS,
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


def test_unrelated_env_ignored_with_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("SNAPRAG_NOT_A_SETTING", "x")
    monkeypatch.setenv("SNAPRAG_FUSOIN", "rrf")
    with caplog.at_level("WARNING", logger="snaprag"):
        assert Config.from_env() == Config()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "SNAPRAG_FUSOIN is not a snaprag setting; did you mean SNAPRAG_FUSION?" in said
    assert "SNAPRAG_NOT_A_SETTING is not a snaprag setting" in said


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
        ({"server_latency_budget": 0.5}, "0 \\(off\\) or at least 1"),
        ({"server_latency_budget": float("nan")}, "server_latency_budget"),
        ({"server_latency_budget": float("inf")}, "server_latency_budget"),
        ({"server_latency_budget": -1.0}, "server_latency_budget"),
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


# --------------------------------------------------------------------------- sections


def test_every_field_has_a_known_section():
    names = {f.name for f in dataclasses.fields(Config)}
    assert set(FIELD_SECTIONS) == names
    assert set(FIELD_SECTIONS.values()) <= set(SECTIONS)


def test_section_returns_its_fields():
    cfg = Config(fusion="rrf", redis_url="redis://127.0.0.1:6379/0")
    search = cfg.section("search")
    assert search["fusion"] == "rrf" and search["max_query_chars"] == 8192
    assert "redis_url" not in search
    assert cfg.section("cache")["redis_url"] == "redis://127.0.0.1:6379/0"
    assert cfg.section("index")["store"] == "sqlite"
    merged = {}
    for name in SECTIONS:
        merged.update(cfg.section(name))
    assert merged == dataclasses.asdict(cfg)
    with pytest.raises(ConfigError, match="index, ingest, search"):
        cfg.section("retrieval")


def test_new_fields_are_validated():
    assert Config().store == "sqlite" and Config().max_query_chars == 8192
    with pytest.raises(ConfigError, match="store must be one of sqlite, milvus, milvus:URI"):
        Config(store="lancedb")
    with pytest.raises(ConfigError, match="store milvus needs milvus_uri"):
        Config(store="milvus")
    with pytest.raises(ConfigError, match="max_query_chars"):
        Config(max_query_chars=0)


# --------------------------------------------------------------------------- TOML file


def write(tmp_path: Path, text: str, name: str = "snaprag.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_file_sets_values_by_section(tmp_path):
    path = write(
        tmp_path,
        '[search]\nfusion = "rrf"\nrrf_k = 30\ndense_weight = 1\n'
        '[cache]\nredis_url = "redis://127.0.0.1:6379/0"\nsemantic_cache = true\n'
        '[index]\nindex_dir = "idx"\n[llm]\nllm_temperature = 0.5\n',
    )
    cfg = Config.from_env(config_file=path)
    assert cfg.fusion == "rrf" and cfg.rrf_k == 30
    assert cfg.dense_weight == 1.0 and isinstance(cfg.dense_weight, float)
    assert cfg.redis_url == "redis://127.0.0.1:6379/0" and cfg.semantic_cache is True
    assert cfg.index_dir == tmp_path / "idx"  # relative to the file's folder
    assert cfg.llm_temperature == 0.5


def test_snaprag_config_variable(monkeypatch, tmp_path):
    path = write(tmp_path, "[ingest]\nchunk_tokens = 128\n")
    monkeypatch.setenv("SNAPRAG_CONFIG", str(path))
    assert Config.from_env().chunk_tokens == 128
    other = write(tmp_path, "[ingest]\nchunk_tokens = 96\n", "other.toml")
    assert Config.from_env(config_file=other).chunk_tokens == 96  # explicit file wins


def test_priority_default_file_env_option(monkeypatch, tmp_path):
    path = write(tmp_path, '[search]\nfusion = "rrf"\nrrf_k = 30\ncandidates = 50\n')
    monkeypatch.setenv("SNAPRAG_RRF_K", "40")
    monkeypatch.setenv("SNAPRAG_CANDIDATES", "70")
    cfg = Config.from_env(config_file=path, candidates=90)
    assert (cfg.fusion, cfg.rrf_k, cfg.candidates, cfg.chunk_tokens) == ("rrf", 40, 90, 192)
    sources = cfg.sources()
    assert sources["fusion"] == f"file {path}"
    assert sources["rrf_k"] == "env SNAPRAG_RRF_K"
    assert sources["candidates"] == "option"
    assert sources["chunk_tokens"] == "default"
    assert set(sources) == {f.name for f in dataclasses.fields(Config)}


def test_provenance_of_index_alias_and_direct_configs(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPRAG_INDEX", str(tmp_path / "a"))
    assert Config.from_env().sources()["index_dir"] == "env SNAPRAG_INDEX"
    direct = Config(fusion="rrf")
    assert direct.sources()["fusion"] == "option"
    assert direct.sources()["rrf_k"] == "default"
    assert direct.sources()["cache_dir"] == "default"
    changed = Config.from_env().with_(rrf_k=5)
    assert changed.sources()["rrf_k"] == "option"
    assert changed.sources()["index_dir"] == "env SNAPRAG_INDEX"


def test_provenance_stays_out_of_equality_repr_and_asdict(monkeypatch, tmp_path):
    path = write(tmp_path, '[search]\nfusion = "rrf"\n')
    from_file = Config.from_env(config_file=path)
    from_option = Config.from_env(fusion="rrf")
    assert from_file.sources()["fusion"] != from_option.sources()["fusion"]
    assert from_file == from_option and hash(from_file) == hash(from_option)
    assert repr(from_file) == repr(from_option)
    assert dataclasses.asdict(from_file) == dataclasses.asdict(from_option)
    assert "_sources" not in dataclasses.asdict(from_file)
    assert str(path) not in repr(from_file)


def test_cache_keys_do_not_depend_on_provenance(tmp_path):
    from snaprag.cache.query_cache import settings_fingerprint

    path = write(tmp_path, '[search]\nfusion = "rrf"\n')
    assert settings_fingerprint(Config.from_env(config_file=path)) == settings_fingerprint(
        Config(fusion="rrf")
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[retrieval]\nfusion = "rrf"\n', ["unknown section [retrieval]", "search, cache"]),
        ("[search]\nfusoin = 'rrf'\n", ["unknown key 'fusoin' in [search]", "fusion, rrf_k"]),
        ('[search]\nredis_url = "redis://x"\n', ["'redis_url' belongs in [cache]"]),
        ('fusion = "rrf"\n', ["'fusion' must be under [search]"]),
        ('[search]\nrrf_k = "sixty"\n', ["[search] rrf_k must be an integer, got 'sixty'"]),
        ("[search]\nrrf_k = 1.5\n", ["rrf_k must be an integer"]),
        ("[cache]\ncache = 1\n", ["[cache] cache must be true or false, got 1"]),
        ("[search]\ndense_weight = true\n", ["dense_weight must be a number, got true"]),
        ("[llm]\nllm_model = 3\n", ["llm_model must be a string"]),
        ("[search]\nfusion = \n", ["not valid TOML"]),
        ("search = 3\n", ["[search] must be a table"]),
        ('[search]\nfusion = "max"\n', ["fusion must be one of rrf, weighted", "[search]"]),
    ],
)
def test_file_errors_name_file_key_and_valid_ones(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Config.from_env(config_file=path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_config_file(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml not found"):
        Config.from_env(config_file=tmp_path / "nope.toml")
    monkeypatch.setenv("SNAPRAG_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml not found"):
        Config.from_env()
    with pytest.raises(ConfigError, match="is a directory"):
        Config.from_env(config_file=tmp_path)


def test_env_error_still_names_the_variable(monkeypatch):
    monkeypatch.setenv("SNAPRAG_FUSION", "max")
    with pytest.raises(ConfigError, match=r"\(set by SNAPRAG_FUSION\)"):
        Config.from_env()


def test_readme_config_example_is_valid(tmp_path):
    import re

    readme = Path(__file__).resolve().parents[2] / "README.md"
    block = re.search(r"```toml\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    assert block is not None, "README.md has no TOML example"
    cfg = Config.from_env(config_file=write(tmp_path, block.group(1)))
    assert cfg.sources()["fusion"].startswith("file ")


# --------------------------------------------------------------------------- observe


def test_otel_endpoint_is_off_by_default_and_read_from_observe(monkeypatch, tmp_path):
    assert Config().otel_endpoint == ""
    path = write(tmp_path, '[observe]\notel_endpoint = "http://127.0.0.1:4318"\n')
    assert Config.from_env(config_file=path).otel_endpoint == "http://127.0.0.1:4318"
    monkeypatch.setenv("SNAPRAG_OTEL_ENDPOINT", " https://collector.example:4318/v1/traces ")
    cfg = Config.from_env(config_file=path)
    assert cfg.otel_endpoint == "https://collector.example:4318/v1/traces"
    assert cfg.sources()["otel_endpoint"] == "env SNAPRAG_OTEL_ENDPOINT"
    assert cfg.section("observe") == {"otel_endpoint": cfg.otel_endpoint}


@pytest.mark.parametrize(
    "value", ["127.0.0.1:4318", "grpc://127.0.0.1:4317", "http://", "http://host:port"]
)
def test_otel_endpoint_must_be_an_http_url(value):
    with pytest.raises(ConfigError, match="otel_endpoint must be an http:// or https:// URL"):
        Config(otel_endpoint=value)


def test_otel_endpoint_error_names_the_file_section(tmp_path):
    path = write(tmp_path, '[observe]\notel_endpoint = "localhost:4318"\n')
    with pytest.raises(ConfigError, match=r"\[observe\]"):
        Config.from_env(config_file=path)
    path = write(tmp_path, '[server]\notel_endpoint = "http://127.0.0.1:4318"\n')
    with pytest.raises(ConfigError, match=r"belongs in \[observe\]"):
        Config.from_env(config_file=path)
