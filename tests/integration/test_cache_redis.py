"""L2 against a real ``redis-server`` on loopback: sharing, staleness, outages.

Each test module starts its own server on a free port (Debian package ``redis-server``;
``.ci/run`` installs it) and stops it afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from snaprag import Engine
from snaprag.cache.redis import RedisCache
from snaprag.cache.redis_server import RedisServer

Q = "How long is the warranty on the frame?"


@pytest.fixture(scope="module")
def redis_server():
    if os.environ.get("SNAPRAG_TESTS_NO_REDIS") == "1":
        pytest.skip("SNAPRAG_TESTS_NO_REDIS=1")
    server = RedisServer()  # fails loudly when redis-server is not installed
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.start()  # a test may have stopped it
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


def _l2_only(index: Path, url: str, **settings) -> Engine:
    """An engine whose only cache tier is Redis (no memory, no disk)."""
    return Engine.open(index, redis_url=url, cache_memory_mb=0, cache_disk=False, **settings)


@pytest.fixture
def index(make, tmp_path: Path) -> tuple[Path, Path]:
    docs = make.warranty_docs(tmp_path / "docs", 2)
    index = tmp_path / "index"
    with Engine.open(index, cache=False) as engine:
        engine.ingest([docs])
    return docs, index


def test_redis_tier_round_trips_binary_values(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix="t:")
    vec = np.random.default_rng(0).standard_normal(384).astype(np.float32).tobytes()
    cache.put_many([("a", vec, 60), ("b", b"\x00\r\n\xff", 0.2)])
    assert cache.get_many(["a", "b", "missing"]) == [vec, b"\x00\r\n\xff", None]
    time.sleep(0.3)
    assert cache.get_many(["b"]) == [None]  # TTL set in Redis itself
    assert cache.info()["entries"] == 1
    assert cache.clear() == 1
    cache.close()


def test_second_process_gets_l2_hits(index, redis_url: str) -> None:
    _, idx = index
    with _l2_only(idx, redis_url) as a:
        expected = a.search(Q, k=3)
    with _l2_only(idx, redis_url) as b:
        assert b.search(Q, k=3) == expected
        counts = b.cache.stats.snapshot()
        assert counts[("redis", "retrieval")] == [1, 0]


def test_all_tiers_promote_from_redis(index, redis_url: str) -> None:
    _, idx = index
    with Engine.open(idx, redis_url=redis_url, cache_disk=False) as a:
        expected = a.search(Q, k=3)
    with Engine.open(idx, redis_url=redis_url) as b:  # fresh memory and disk
        assert b.search(Q, k=3) == expected  # L2 hit, promoted into L1
        assert b.search(Q, k=3) == expected  # L1 hit
        counts = b.cache.stats.snapshot()
        assert counts[("memory", "retrieval")] == [1, 1]
        assert counts[("redis", "retrieval")] == [1, 0]


def test_change_is_never_served_stale_through_redis(make, index, redis_url: str) -> None:
    docs, idx = index
    with _l2_only(idx, redis_url) as a:
        assert "2-year" in a.search(Q, k=1)[0].text
        make.warranty_docs(docs, 9)
        a.ingest([docs])
    with _l2_only(idx, redis_url) as b:  # another process, same Redis
        assert "9-year" in b.search(Q, k=1)[0].text
        assert b.cache.stats.snapshot()[("redis", "retrieval")] == [0, 1]


def test_redis_down_then_back(index, redis_server: RedisServer, redis_url: str) -> None:
    _, idx = index
    with Engine.open(idx, redis_url=redis_url, redis_cooldown=3.0) as engine:
        expected = engine.search(Q, k=3)
        redis_cache = engine.cache.redis
        redis_server.stop()
        engine.cache.tiered.memory.clear()
        # every request still succeeds (from disk, or computed), without waiting long
        for i in range(6):
            t = time.perf_counter()
            assert engine.search(Q, k=3) == expected
            engine.search(f"question number {i}", k=3)
            assert time.perf_counter() - t < 5
        assert redis_cache.errors >= 3
        assert redis_cache.breaker.state == "open"
        errors_when_open = redis_cache.errors
        engine.cache.tiered.memory.clear()
        assert engine.search(Q, k=3) == expected
        assert redis_cache.errors == errors_when_open  # no timeout paid while open
        assert redis_cache.skipped > 0
        # Redis returns on the same port: after the cooldown L2 is used again by itself
        redis_server.start()
        time.sleep(3.1)
        engine.search("a new question about tyres", k=3)
        assert redis_cache.breaker.state == "closed"
        engine.search("a new question about tyres", k=3)
    with _l2_only(idx, redis_url) as other:
        other.search("a new question about tyres", k=3)
        assert other.cache.stats.snapshot()[("redis", "retrieval")] == [1, 0]


def test_hung_redis_costs_one_timeout_then_is_skipped(
    index, redis_server: RedisServer, redis_url: str
) -> None:
    _, idx = index
    with Engine.open(idx, redis_url=redis_url, redis_timeout=0.2, redis_cooldown=30) as engine:
        engine.search(Q, k=3)
        redis_cache = engine.cache.redis
        redis_server.pause()  # accepts connections, answers nothing
        try:
            slow = []
            for i in range(8):
                t = time.perf_counter()
                engine.search(f"paused question {i}", k=3)
                slow.append(time.perf_counter() - t)
            assert redis_cache.breaker.state == "open"
            assert redis_cache.errors == 3  # the breaker stopped paying the timeout
            assert redis_cache.skipped >= 5
            # the timeouts were paid by the first two searches only (a get and a put each)
            assert all(s < 0.15 for s in slow[2:]), slow
            assert sum(s >= 0.15 for s in slow) <= 2
        finally:
            redis_server.resume()


def test_cli_reports_redis_tier(index, redis_url: str, run_cli) -> None:
    _, idx = index
    with Engine.open(idx, redis_url=redis_url) as engine:
        engine.search(Q, k=3)
    out = run_cli("cache", "stats", "--index", idx, "--json", env={"SNAPRAG_REDIS_URL": redis_url})
    assert out.returncode == 0, out.stderr
    tiers = out.json()["tiers"]
    assert tiers["redis"]["available"] is True and tiers["redis"]["entries"] >= 1


def test_bad_redis_url_is_a_clear_error(index, run_cli) -> None:
    _, idx = index
    out = run_cli("search", Q, "--index", idx, env={"SNAPRAG_REDIS_URL": "http://nope"})
    assert out.returncode == 2
    assert "redis_url" in out.err_flat


def test_copies_of_one_index_never_share_entries(
    make, index, redis_url: str, tmp_path: Path
) -> None:
    """Two copies that change differently reach the same version number; their cache keys
    must still differ (a restored backup sharing a Redis with the original)."""
    import shutil

    docs, idx = index
    copies = []
    for name, years in (("a", 3), ("b", 8)):
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(idx, copy)
        make.warranty_docs(docs, years)
        with Engine.open(copy, cache=False) as engine:
            engine.ingest([docs])
        copies.append(copy)
    versions = []
    for copy in copies:
        with Engine.open(copy, cache=False) as engine:
            versions.append(engine.stats()["version"])
    assert versions[0] == versions[1]
    with _l2_only(copies[0], redis_url) as a:
        assert "3-year" in a.search(Q, k=1)[0].text
    with _l2_only(copies[1], redis_url) as b:
        assert "8-year" in b.search(Q, k=1)[0].text
        assert b.cache.stats.snapshot()[("redis", "retrieval")] == [0, 1]
