"""Where settings come from, apart from their defaults: the sections of the TOML config
file and its reading, ``SNAPRAG_*`` variables (parsed, misspellings reported), and how a
value is shown without its secrets, and the parsing of ``server_lanes``. The settings
themselves are :class:`~.config.Config`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: the sections of the config file, in the order ``snaprag config show`` lists them
SECTIONS = ("index", "ingest", "search", "cache", "llm", "server", "alerts", "observe")

#: the section (table of the TOML file) of every Config field; a test checks it covers all
FIELD_SECTIONS: dict[str, str] = {
    # where the index lives, what it is stored with, which model embeds it
    "index_dir": "index",
    "profile": "index",
    "store": "index",
    "model": "index",
    "quantization": "index",
    "vector_dtype": "index",
    "dense_backend": "index",
    "hnsw_min_chunks": "index",
    "cache_dir": "index",
    "milvus_uri": "index",
    "milvus_token": "index",
    "milvus_prefix": "index",
    # turning files into chunks and vectors
    "chunk_tokens": "ingest",
    "chunk_overlap": "ingest",
    "max_file_bytes": "ingest",
    "embed_batch_size": "ingest",
    # retrieval: fusion, second stage, limits
    "fusion": "search",
    "rrf_k": "search",
    "dense_weight": "search",
    "bm25_weight": "search",
    "hangul_dense_weight": "search",
    "hangul_bm25_weight": "search",
    "rerank_model": "search",
    "rerank_top_n": "search",
    "rescore_model": "search",
    "rescore_alpha": "search",
    "second_model": "index",  # its vectors are stored at ingest
    "second_dense_weight": "search",
    "candidates": "search",
    "max_query_chars": "search",
    # the query cache
    "cache": "cache",
    "cache_memory_mb": "cache",
    "cache_disk": "cache",
    "cache_disk_mb": "cache",
    "redis_url": "cache",
    "redis_timeout": "cache",
    "redis_failures": "cache",
    "redis_cooldown": "cache",
    "cache_ttl_embedding": "cache",
    "cache_ttl_retrieval": "cache",
    "cache_ttl_answer": "cache",
    "semantic_cache": "cache",
    "semantic_threshold": "cache",
    "cache_warm_top": "cache",
    # answers
    "llm": "llm",
    "llm_model": "llm",
    "llm_api_key": "llm",
    "llm_threads": "llm",
    "llm_ctx": "llm",
    "llm_gpu_layers": "llm",
    "llm_parallel": "llm",
    "llm_max_tokens": "llm",
    "llm_temperature": "llm",
    "llm_timeout": "llm",
    "llm_retries": "llm",
    "context_tokens": "llm",
    # the running process (the HTTP server adds its own settings here)
    "threads": "server",
    "low_memory": "server",
    "server_concurrency": "server",
    "server_queue": "server",
    "server_timeout": "server",
    "server_max_body": "server",
    "server_max_upload": "server",
    "server_lanes": "server",
    "server_batch_max": "server",
    "server_batch_wait_ms": "server",
    "server_max_cpu": "server",
    "server_max_memory_mb": "server",
    "server_latency_budget": "server",
    "alert_p95_ms": "alerts",
    "alert_error_rate": "alerts",
    "alert_memory_mb": "alerts",
    "alert_cpu_percent": "alerts",
    "alert_cache_hit_rate": "alerts",
    "alert_queue_length": "alerts",
    "alert_disk_free_mb": "alerts",
    "alert_for": "alerts",
    "alert_interval": "alerts",
    "alert_webhook": "alerts",
    # traces sent to an OpenTelemetry collector
    "otel_endpoint": "observe",
}

#: settings never shown in clear (``snaprag config show`` masks them)
SECRET_SETTINGS = frozenset({"llm_api_key", "milvus_token"})


def redact(name: str, value: Any) -> Any:
    """``value`` safe to print: secrets masked, passwords in URLs (``redis_url``,
    ``llm``'s ``openai:https://user:pass@host``) replaced by ``****``."""
    if value is None:
        return None
    if name in SECRET_SETTINGS:
        return "********"
    if isinstance(value, str) and "@" in value and "://" in value:
        from urllib.parse import urlsplit, urlunsplit

        prefix, sep, url = (
            value.rpartition("openai:") if value.startswith("openai:") else ("", "", value)
        )
        parts = urlsplit(url)
        if parts.password is not None:
            user = parts.username or ""
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            netloc = f"{user}:****@{host}{port}"
            return prefix + sep + urlunsplit(parts._replace(netloc=netloc))
    return value


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML config file, by field name, checked against the sections.

    Relative paths in it (``index_dir``, ``cache_dir``) are taken from the file's folder.
    Every problem is one :class:`ConfigError` line naming the file, the key and the valid
    ones.
    """
    path = Path(path).expanduser()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    from .config import Config  # the fields; config imports this module

    types = {f.name: str(f.type) for f in fields(Config)}
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in SECTIONS:
            if section in FIELD_SECTIONS:
                raise ConfigError(
                    f"{path}: {section!r} must be under [{FIELD_SECTIONS[section]}], "
                    "not at the top level"
                )
            raise ConfigError(
                f"{path}: unknown section [{section}]; sections are {', '.join(SECTIONS)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table of settings")
        valid = [n for n, s in FIELD_SECTIONS.items() if s == section]
        for key, value in table.items():
            home = FIELD_SECTIONS.get(key)
            if home is None:
                raise ConfigError(
                    f"{path}: unknown key {key!r} in [{section}]; valid keys: {', '.join(valid)}"
                )
            if home != section:
                raise ConfigError(f"{path}: {key!r} belongs in [{home}], not in [{section}]")
            values[key] = _from_toml(path, section, key, value, types[key])
    return values


def _from_toml(path: Path, section: str, key: str, value: Any, typ: str) -> Any:
    """Check the TOML value's type against the field's; paths resolved from the file."""
    if typ == "bool":
        ok, want = isinstance(value, bool), "true or false"
    elif typ == "int":
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif typ == "float":
        ok, want = isinstance(value, int | float) and not isinstance(value, bool), "a number"
        value = float(value) if ok else value
    else:  # str, str | None, Path
        ok, want = isinstance(value, str), "a string"
    if not ok:
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        raise ConfigError(f"{path}: [{section}] {key} must be {want}, got {shown}")
    if typ == "Path":
        p = Path(value).expanduser()
        return p if p.is_absolute() else path.parent / p
    return value


#: SNAPRAG_* variables that are not settings fields but are read by snaprag or its tools
OTHER_VARIABLES = frozenset({"SNAPRAG_INDEX", "SNAPRAG_CONFIG", "SNAPRAG_TESTS_NO_REDIS"})
_warned: set[str] = set()


def warn_unknown_variables(names: set[str]) -> None:
    """A misspelled variable (``SNAPRAG_FUSOIN``) would silently change nothing: say so,
    once per process, with the nearest setting's name."""
    import logging

    for var in sorted(os.environ):
        if not var.startswith("SNAPRAG_") or var in OTHER_VARIABLES or var in _warned:
            continue
        name = var[len("SNAPRAG_") :].lower()
        if name in names:
            continue
        _warned.add(var)
        import difflib  # only for a misspelling: not resident in every process

        near = difflib.get_close_matches(name, sorted(names), n=1)
        hint = f"; did you mean SNAPRAG_{near[0].upper()}?" if near else ""
        logging.getLogger("snaprag").warning("%s is not a snaprag setting%s", var, hint)


def parse_env_value(name: str, raw: str, typ: str) -> Any:
    if typ == "bool":
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"SNAPRAG_{name.upper()}={raw!r} is not a boolean (use 1/0, true/false)")
    try:
        if "int" in typ and "str" not in typ:
            return int(raw)
        if "float" in typ:
            return float(raw)
        if "Path" in typ:
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"SNAPRAG_{name.upper()}={raw!r} is not a valid {typ}") from exc
    return raw


LANES = ("search", "ask", "chat", "embed", "ingest")


def parse_lanes(spec: str) -> dict[str, tuple[int, int]]:
    """``"ask=1:4,ingest=1:8"`` -> {route: (concurrency, queue)} (server_lanes)."""
    out: dict[str, tuple[int, int]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, limits = part.partition("=")
        works, _, waits = limits.partition(":")
        if name.strip() not in LANES or not (works.isdigit() and waits.isdigit()):
            raise ConfigError(
                f"server_lanes: {part!r} is not ROUTE=CONCURRENCY:QUEUE with ROUTE one of "
                f"{', '.join(LANES)} (e.g. 'ask=1:4,ingest=1:8')"
            )
        if int(works) < 1:
            raise ConfigError(f"server_lanes: {part!r}: the concurrency must be at least 1")
        out[name.strip()] = (int(works), int(waits))
    return out
