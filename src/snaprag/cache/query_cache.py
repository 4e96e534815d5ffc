"""The engine's cache: tiers built from the config, keys, the query log and statistics.

Keys are hashes of everything that decides a result:

- ``embedding``: the embedding model's fingerprint and the exact query text;
- ``retrieval``: index id and version, the settings fingerprint, the normalized query,
  ``k``, mode and filters;
- ``answer``: the same plus the generator's fingerprint (model, prompt, sampling).

Any write to the index bumps its version, so ingesting, updating or deleting a document
makes every retrieval and answer entry of the previous version unreachable at once, in
every tier and every process; they age out by TTL and by the tiers' size bounds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from .answers import dump_answer, hit_from_row, hit_to_row, load_answer
from .breaker import CircuitBreaker
from .disk import CacheDB, DiskCache
from .memory import MemoryCache
from .semantic import SemanticCache
from .tiered import CacheStats, Codec, TieredCache

log = logging.getLogger(__name__)

CACHE_DB = "cache.db"
KEY_FORMAT = 1
#: settings that never change a search result or an answer (everything else is part of
#: the fingerprint, so a new setting is safe by default)
NEUTRAL_SETTINGS = frozenset(
    {
        "index_dir",
        "cache_dir",
        "threads",
        "low_memory",  # memory, not results
        "embed_batch_size",
        "max_file_bytes",
        "chunk_tokens",  # ingest-time: the index version changes when chunks do
        "chunk_overlap",
        "max_query_chars",  # refuses queries; never changes the result of one it accepts
        "store",  # the index id in every key already names the data
        "milvus_uri",  # where the store lives: the index id names its data
        "milvus_token",
        "milvus_prefix",
        "otel_endpoint",  # where traces go: turning tracing on must not empty the cache
        "profile",  # a name for defaults: the values it sets are keyed themselves
    }
)
FLUSH_EVERY_S = 5.0
FLUSH_EVERY_QUERIES = 256


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the code that computes results, so that an upgrade (or a local change)
    never serves entries computed by the previous code."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(digest_size=8)
    parts = ("embed", "index", "search", "generate", "ingest", "cache", "types.py")
    for part in parts:  # everything that computes or shapes a cached value
        paths = [root / part] if part.endswith(".py") else sorted((root / part).rglob("*.py"))
        for path in paths:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def scope_template(config: Config, index_id: str, model_fingerprints: str) -> str:
    """The fixed part of every cache key of an index: its id and the settings and models
    that change results, around a ``{}`` for the index generation (read per call, so a
    write by any process makes older entries unreachable)."""
    return f"{index_id}:{{}}:{settings_fingerprint(config, model_fingerprints)}"


def settings_fingerprint(config: Config, prefix: str = "") -> str:
    """A short hash of the settings (and code) that change results (cache options excluded)."""
    values = {
        k: str(v)
        for k, v in asdict(config).items()
        if k not in NEUTRAL_SETTINGS
        # alert thresholds only watch the results: setting one must not empty the cache
        and not k.startswith(("cache", "redis", "semantic", "llm", "server", "alert"))
        and k != "context_tokens"
    }
    return hash_key([KEY_FORMAT, code_fingerprint(), prefix, sorted(values.items())])[:16]


def hash_key(parts: Any) -> str:
    """A 128-bit hex digest of JSON-serialisable ``parts`` (cache keys and fingerprints)."""
    raw = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


class QueryCache:
    """Tiered cache + semantic lookup + query log + counters for one index."""

    def __init__(
        self,
        config: Config,
        index_dir: Path | None = None,
        index_id: str = "",
        persist: bool = True,
    ) -> None:
        """``persist`` False: no ``cache.db`` at all (a read-only index directory)."""
        self.config = config
        #: a read-only index: its cache file is neither read nor written
        self.read_only = not persist
        index_dir = Path(index_dir or config.index_dir)
        self.stats = CacheStats()
        memory = (
            MemoryCache(int(config.cache_memory_mb * 2**20)) if config.cache_memory_mb > 0 else None
        )
        tiers: list[Any] = []
        self.redis = None
        if config.redis_url:
            from .redis import RedisCache

            self.redis = RedisCache(
                config.redis_url,
                # one prefix per index: `cache clear` and `cache stats` see only this index
                prefix=f"snaprag:{index_id[:16]}:" if index_id else "snaprag:",
                timeout=config.redis_timeout,
                breaker=CircuitBreaker(config.redis_failures, config.redis_cooldown),
            )
            tiers.append(self.redis)
        self.db: CacheDB | None = None
        self.disk: DiskCache | None = None
        try:
            self.db = CacheDB(index_dir / CACHE_DB) if persist else None
        except Exception as exc:  # read-only index directory, full disk...
            log.warning("no persistent cache in %s (%s): memory/Redis only", index_dir, exc)
        if self.db is not None and config.cache_disk and config.cache_disk_mb > 0:
            self.disk = DiskCache(self.db, int(config.cache_disk_mb * 2**20))
            tiers.append(self.disk)
        ttls = {
            "embedding": config.cache_ttl_embedding,
            "retrieval": config.cache_ttl_retrieval,
            "answer": config.cache_ttl_answer,
        }
        self.tiered = TieredCache(memory, tiers, ttls, dict(CODECS), self.stats)
        self.semantic = (
            SemanticCache(config.semantic_threshold, db=self.db) if config.semantic_cache else None
        )
        self._log: dict[tuple[str, str, Any], list[Any]] = {}
        self._log_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._pending = 0

    # ------------------------------------------------------------------ keys
    @staticmethod
    def key(namespace: str, *parts: Any) -> str:
        """``n:<128-bit hash>`` of the parts (str() of each, unambiguously separated)."""
        raw = "\x1f".join(map(str, parts)).encode("utf-8", "surrogatepass")
        return f"{namespace[0]}:{hashlib.blake2b(raw, digest_size=16).hexdigest()}"

    # ------------------------------------------------------------------ query log
    def log_queries(
        self,
        kind: str,
        normalized: Sequence[str],
        params: tuple[Any, ...],
        texts: Sequence[str],
        flush: bool = True,
    ) -> None:
        """Count queries (in memory; written to the cache file every few seconds, unless
        ``flush`` is False: a caller that must not wait on the disk leaves it to the next)."""
        if self.db is None:
            return
        p = params
        now = time.time()
        with self._log_lock:
            for norm, text in zip(normalized, texts, strict=True):
                row = self._log.get((kind, norm, p))
                if row is None:
                    self._log[(kind, norm, p)] = [text, 1, now]
                else:
                    row[1] += 1
                    row[2] = now
            self._pending += len(normalized)
            due = (
                self._pending >= FLUSH_EVERY_QUERIES
                or time.monotonic() - self._last_flush >= FLUSH_EVERY_S
            )
        if due and flush:
            self.flush()

    def flush(self) -> None:
        """Write the query log and the counters to the cache file."""
        if self.db is None:
            return
        with self._log_lock:
            rows = [
                (k, q, json.dumps(p, separators=(",", ":")), t, n, last)
                for (k, q, p), (t, n, last) in self._log.items()
            ]
            self._log = {}
            self._pending = 0
            self._last_flush = time.monotonic()
        deltas = self.stats.take_unflushed()
        try:
            if rows:
                self.db.log_queries(rows)
            self.db.add_stats(deltas)
        except Exception as exc:  # locked or read-only: keep serving, try again later
            if not self.db.path.parent.exists():
                return  # the index was deleted (by another process): nothing to log to
            log.warning("cannot write the query log to %s: %s", self.db.path, exc)
            self.stats.restore_unflushed(deltas)
            with self._log_lock:
                for kind, query, params, text, n, last in rows:
                    key = (kind, query, _tuples(json.loads(params)))
                    row = self._log.setdefault(key, [text, 0, last])
                    row[1] += n
                    row[2] = max(row[2], last)

    def top_queries(self, n: int, kind: str | None = None) -> list[dict[str, Any]]:
        self.flush()
        return self.db.top_queries(n, kind) if self.db is not None else []

    # ------------------------------------------------------------------ statistics
    def report(self) -> dict[str, Any]:
        """Counters of this process and earlier ones, and what each tier holds.

        A damaged cache file has been moved aside by the time this returns (the report is
        then of the new, empty file); a cache file that cannot be read at all (locked,
        unreadable) leaves this process's counters and an ``unavailable`` disk tier.
        """
        self.flush()
        counts = self.stats.snapshot()
        if self.db is not None:
            try:
                counts = self.db.read_stats()
            except sqlite3.Error as exc:
                log.warning("cannot read the counters in %s: %s", self.db.path, exc)
        tiers: dict[str, Any] = {}
        if self.tiered.memory is not None:
            mem = self.tiered.memory
            tiers["memory"] = {"entries": len(mem), "bytes": mem.bytes, "max_bytes": mem.max_bytes}
        if self.redis is not None:
            tiers["redis"] = {
                "url": _redact(self.redis.url),
                **self.redis.info(),
                "errors": self.redis.errors,
            }
        if self.disk is not None:
            try:
                tiers["disk"] = {**self.disk.info(), "max_bytes": self.disk.max_bytes}
            except sqlite3.Error as exc:
                log.warning("cannot read the disk cache %s: %s", self.db_path, exc)
                tiers["disk"] = {"path": self.db_path, "state": f"unavailable: {exc}"}
        if self.semantic is not None:
            tiers["semantic"] = {"entries": len(self.semantic), "bytes": self.semantic.bytes}
        return {
            "tiers": tiers,
            "stats": CacheStats.table(counts),
            "hit_rate": CacheStats.hit_rates(counts),
        }

    def reset_stats(self) -> None:
        self.stats.take_unflushed()
        if self.db is not None:
            self.db.reset_stats()

    def clear(self) -> dict[str, int | None]:
        """Entries removed per tier (None: Redis unreachable or the cache file unusable,
        nothing removed there). The cache file is checked whole first: a damaged one is
        moved aside, which empties it, even if its damage is not in the entries."""
        out: dict[str, int | None] = {}
        if self.tiered.memory is not None:
            out["memory"] = len(self.tiered.memory)
            self.tiered.memory.clear()
        if self.redis is not None:
            out["redis"] = self.redis.clear()
        if self.disk is not None:
            try:
                self.disk.db.verify()
                out["disk"] = self.disk.clear()
            except sqlite3.Error as exc:
                log.warning("cannot clear the disk cache %s: %s", self.db_path, exc)
                out["disk"] = None
        elif self.read_only:
            log.warning("the index is read-only: its disk cache (cache.db) was not cleared")
            out["disk"] = None
        return out

    @property
    def db_path(self) -> str:
        return str(self.db.path) if self.db is not None else ""

    def close(self) -> None:
        self.flush()
        if self.redis is not None:
            self.redis.close()
        if self.db is not None:
            self.db.close()


def _redact(url: str) -> str:
    """``redis://user:secret@host`` -> ``redis://user:***@host``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _dump_hits(hits: Sequence[Any]) -> list[list[Any]]:
    return [hit_to_row(h) for h in hits]


def _load_hits(rows: Any) -> tuple[Any, ...]:
    if not isinstance(rows, list):
        raise ValueError("cached hits are not a list")
    return tuple(hit_from_row(row) for row in rows)


def _load_vector(data: Any) -> np.ndarray:
    if not isinstance(data, np.ndarray) or data.ndim != 1 or not data.size:
        raise ValueError("expected a vector")
    if not np.isfinite(data).all():
        raise ValueError("cached vector has non-finite values")
    return data


def _dump_answer(answer: Any) -> dict[str, Any]:
    return dump_answer(answer) if not isinstance(answer, dict) else answer


CODECS: dict[str, Codec] = {
    "embedding": Codec(load=_load_vector),
    "retrieval": Codec(dump=_dump_hits, load=_load_hits),
    "answer": Codec(dump=_dump_answer, load=load_answer),
}


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the log is keyed by."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
