"""L2: Redis through redis-py, behind a circuit breaker.

One connection pool per cache; reads are one ``MGET`` and writes one pipeline, whatever
the number of keys. Every call has a short socket timeout and no retries: a dead or slow
Redis costs at most one timeout per call, and after ``failures`` calls in a row the
breaker opens and requests stop trying Redis for ``cooldown`` seconds, then one trial
call checks whether it is back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from .breaker import CircuitBreaker

log = logging.getLogger(__name__)


class RedisCache:
    """Binary values under ``prefix``; errors become misses and open the breaker."""

    name = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "snaprag:",
        timeout: float = 0.1,
        breaker: CircuitBreaker | None = None,
        max_connections: int = 32,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "redis_url is set but the redis client is missing: pip install 'snaprag[redis]'"
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            # more threads than connections wait (up to the timeout) for a free one,
            # instead of failing as if Redis were down
            self._pool = redis.BlockingConnectionPool.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                max_connections=max_connections,
                timeout=max(timeout, 1.0),
            )
        except ValueError as exc:
            raise ConfigError(
                f"bad redis_url {url!r}: {exc}; use redis://HOST:PORT/DB or unix:///path"
            ) from exc
        self._client = redis.Redis(connection_pool=self._pool)
        self.url = url
        self.prefix = prefix
        self.breaker = breaker or CircuitBreaker()
        self.errors = 0
        self.skipped = 0
        self._warned = False

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.breaker.failure()
        if not self._warned:
            log.warning("Redis cache at %s unavailable (%s); using the other tiers", self.url, exc)
            self._warned = True

    def _ok(self) -> None:
        if self._warned:
            log.warning("Redis cache at %s is back", self.url)
            self._warned = False
        self.breaker.success()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """The values (None where missing), or None when Redis could not be asked."""
        if not keys:
            return []
        if not self.breaker.allow():
            self.skipped += 1
            return None
        try:
            values = self._client.mget([self.prefix + k for k in keys])
        except self._errors as exc:
            self._failed(exc)
            return None
        self._ok()
        return list(values)

    def put_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        if not items:
            return
        if not self.breaker.allow():
            self.skipped += 1
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, value, ttl in items:
                pipe.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))
            pipe.execute()
        except self._errors as exc:
            self._failed(exc)
            return
        self._ok()

    def delete(self, keys: Sequence[str]) -> None:
        if keys and self.breaker.allow():
            try:
                self._client.delete(*[self.prefix + k for k in keys])
            except self._errors as exc:
                self._failed(exc)
            else:
                self._ok()

    def clear(self) -> int | None:
        """Delete every key under the prefix (SCAN, not KEYS: never blocks the server);
        the number removed, or None when Redis could not be reached."""
        removed = 0
        try:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=self.prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += int(self._client.delete(*batch))
                    batch = []
            if batch:
                removed += int(self._client.delete(*batch))
        except self._errors as exc:
            self._failed(exc)
            return None
        return removed

    def info(self) -> dict[str, Any]:
        """Keys and bytes under the prefix, and the server's memory; ``{}`` when down."""
        try:
            keys = 0
            size = 0
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=self.prefix + "*", count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    size += self._sizes(batch)
                    keys += len(batch)
                    batch = []
            size += self._sizes(batch)
            keys += len(batch)
            memory = self._client.info("memory").get("used_memory", 0)
        except self._errors as exc:
            self._failed(exc)
            return {"available": False, "state": self.state}
        return {
            "available": True,
            "entries": keys,
            "bytes": size,
            "server_memory": int(memory),
            "state": self.state,
        }

    @property
    def state(self) -> str:
        """``ok``, ``down (skipped for N s)`` or ``retrying`` (the circuit breaker's view)."""
        state = self.breaker.state
        if state == "open":
            return f"down (skipped for {self.breaker.remaining:.0f} s)"
        return "retrying" if state == "half-open" else "ok"

    def _sizes(self, keys: list[bytes]) -> int:
        if not keys:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.strlen(key)
        return sum(int(n) for n in pipe.execute())

    def close(self) -> None:
        self._pool.disconnect()
