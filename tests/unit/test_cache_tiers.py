"""The cache's building blocks: normalization, codec, L1, L3, circuit breaker, tiering."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from snaprag.cache.breaker import CircuitBreaker
from snaprag.cache.codec import CodecError, decode, encode
from snaprag.cache.disk import CacheDB, DiskCache
from snaprag.cache.memory import MemoryCache
from snaprag.cache.normalize import normalize_query
from snaprag.cache.tiered import CacheStats, Codec, TieredCache


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the WARRANTY period?", "what is the warranty period"),
        ("  what   is\tthe warranty period ?? ", "what is the warranty period"),
        ("ＷＨＡＴ is the warranty period？", "what is the warranty period"),  # full-width
        ("Straße?", "strasse"),  # case folding, not just lower()
        ("보증 기간은 얼마나 되나요?", "보증 기간은  얼마나 되나요"),
        ("보증 기간은 얼마나 되나요？", "보증 기간은 얼마나 되나요."),
        ("프레임 보증은 몇 년인가요。", "프레임 보증은 몇 년인가요"),
    ],
)
def test_trivial_variants_normalize_alike(a: str, b: str) -> None:
    assert normalize_query(a) == normalize_query(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("warranty on the frame", "warranty on the frames"),
        ("is aspirin effective", "is aspirin not effective"),
        ("price in 2019", "price in 2020"),
        ("보증 기간은 얼마나 되나요", "보증 기간은 얼마나 안 되나요"),
        ('the "frame" warranty', "the frame warranty"),
    ],
)
def test_different_questions_stay_different(a: str, b: str) -> None:
    assert normalize_query(a) != normalize_query(b)


def test_codec_round_trips_vectors_and_json() -> None:
    vec = np.linspace(-1, 1, 384, dtype=np.float32)
    back = decode(encode(vec))
    assert back.dtype == np.float32 and np.array_equal(back, vec)
    assert not back.flags.writeable
    data = {"text": "보증 기간 " * 500, "pages": [1, 2, None]}
    raw = encode(data)
    assert raw[:1] == b"z" and len(raw) < 1000  # long repetitive JSON is compressed
    assert decode(raw) == data
    small = encode([1, "a"])
    assert small[:1] == b"j" and decode(small) == [1, "a"]
    for bad in (b"", b"q123", b"j{not json", b"zgarbage"):
        with pytest.raises(CodecError):
            decode(bad)


def test_memory_cache_is_lru_bounded_in_bytes_and_entries() -> None:
    mem = MemoryCache(max_bytes=10_000, max_entries=1000)
    for i in range(10):
        mem.put(f"k{i}", i, size=1500, ttl=60)
    assert mem.bytes <= 10_000
    assert len(mem) < 10 and mem.get("k0") is None and mem.get("k9") == 9
    # touching an entry protects it from eviction
    mem.put("a", "a", 100, 60)
    for i in range(5):
        mem.get("a")
        mem.put(f"x{i}", i, 1500, 60)
    assert mem.get("a") == "a"
    few = MemoryCache(max_bytes=10**9, max_entries=3)
    for i in range(5):
        few.put(str(i), i, 1, 60)
    assert len(few) == 3 and few.get("0") is None and few.get("4") == 4
    # an entry larger than the whole bound is not stored (and evicts nothing)
    mem.put("huge", 1, 10**6, 60)
    assert mem.get("huge") is None and mem.get("a") == "a"


def test_memory_cache_ttl_expires() -> None:
    mem = MemoryCache()
    mem.put("k", 1, 10, ttl=0.05)
    assert mem.get("k") == 1
    time.sleep(0.08)
    assert mem.get("k") is None and len(mem) == 0 and mem.bytes == 0
    mem.put("zero", 1, 10, ttl=0)
    assert mem.get("zero") is None


def test_circuit_breaker_opens_then_half_opens_then_closes() -> None:
    cb = CircuitBreaker(failures=2, cooldown=0.1)
    assert cb.allow() and cb.state == "closed"
    cb.failure()
    assert cb.allow()
    cb.failure()
    assert cb.state == "open" and not cb.allow() and cb.trips == 1
    time.sleep(0.12)
    assert cb.state == "half-open"
    assert cb.allow()  # one trial call...
    assert not cb.allow()  # ...and only one
    cb.failure()  # the trial failed: open again for a full cooldown
    assert cb.state == "open" and not cb.allow() and cb.trips == 2
    time.sleep(0.12)
    assert cb.allow()
    cb.success()
    assert cb.state == "closed" and cb.allow() and cb.allow()


def test_disk_cache_persists_expires_and_is_bounded(tmp_path) -> None:
    db = CacheDB(tmp_path / "cache.db")
    disk = DiskCache(db, max_bytes=50_000)
    disk.put_many([("a", b"x" * 100, 60), ("b", b"y", 0.01)])
    time.sleep(0.02)
    assert disk.get_many(["a", "b", "c"]) == [b"x" * 100, None, None]
    db.close()
    db2 = CacheDB(tmp_path / "cache.db")
    disk2 = DiskCache(db2, max_bytes=50_000)
    assert disk2.get_many(["a"]) == [b"x" * 100]  # survives a restart
    for i in range(200):
        disk2.put_many([(f"k{i}", b"z" * 1000, 60)])
    info = disk2.info()
    assert info["bytes"] <= 50_000 and info["entries"] < 200
    assert disk2.get_many(["k199"]) == [b"z" * 1000]  # newest kept, oldest dropped
    assert disk2.get_many(["k0"]) == [None]


def test_damaged_cache_file_is_moved_aside(tmp_path) -> None:
    path = tmp_path / "cache.db"
    path.write_bytes(b"this is not a database" * 100)
    db = CacheDB(path)
    disk = DiskCache(db)
    disk.put_many([("k", b"v", 60)])
    assert disk.get_many(["k"]) == [b"v"]
    assert list(tmp_path.glob("cache.db.damaged-*"))
    sqlite3.connect(path).execute("SELECT count(*) FROM entries").fetchone()


def test_query_log_and_stats_accumulate_across_restarts(tmp_path) -> None:
    db = CacheDB(tmp_path / "cache.db")
    db.log_queries([("search", "q1", "[5]", "Q1", 3, 1.0), ("search", "q2", "[5]", "Q2", 1, 2.0)])
    db.log_queries([("search", "q2", "[5]", "Q2", 5, 3.0)])
    db.add_stats({("memory", "retrieval"): [4, 1]})
    db.close()
    db = CacheDB(tmp_path / "cache.db")
    db.add_stats({("memory", "retrieval"): [1, 1], ("disk", "retrieval"): [0, 1]})
    top = db.top_queries(10)
    assert [(t["query"], t["count"]) for t in top] == [("q2", 6), ("q1", 3)]
    assert db.read_stats() == {("memory", "retrieval"): [5, 2], ("disk", "retrieval"): [0, 1]}


class _Tier:
    """A bytes tier over a dict: a real implementation of the tier protocol for unit tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, float] = {}

    def get_many(self, keys):
        return [self.data.get(k) for k in keys]

    def put_many(self, items):
        for k, v, ttl in items:
            self.data[k] = v
            self.ttls[k] = ttl

    def delete(self, keys):
        for k in keys:
            self.data.pop(k, None)


def test_tiered_read_through_promotes_and_keeps_remaining_ttl() -> None:
    l2, l3 = _Tier("redis"), _Tier("disk")
    stats = CacheStats()
    codec = Codec(dump=lambda v: {"v": v}, load=lambda d: d["v"])
    cache = TieredCache(MemoryCache(), [l2, l3], {"answer": 100.0}, {"answer": codec}, stats)
    cache.put("answer", "k", "value")
    assert "k" in l2.data and "k" in l3.data  # write-through
    # only L3 has it: a hit there fills L2 and L1 with the remaining TTL, not a new one
    cache.memory.clear()
    l2.data.clear()
    time.sleep(0.05)
    assert cache.get("answer", "k") == "value"
    assert "k" in l2.data and l2.ttls["k"] < 100.0
    assert cache.memory.get("k") == "value" and cache.memory.ttl_left("k") < 100.0
    counts = stats.snapshot()
    assert counts[("memory", "answer")] == [0, 1]
    assert counts[("redis", "answer")] == [0, 1]
    assert counts[("disk", "answer")] == [1, 0]
    assert cache.get("answer", "k") == "value"
    assert stats.snapshot()[("memory", "answer")] == [1, 1]


def test_tiered_skips_and_removes_damaged_values() -> None:
    l3 = _Tier("disk")
    cache = TieredCache(None, [l3], {"retrieval": 60.0})
    l3.data["bad"] = b"\x00" * 3
    l3.data["bad2"] = b"\x00" * 8 + b"jnot json"
    assert cache.get_many("retrieval", ["bad", "bad2"]) == [None, None]
    assert "bad" not in l3.data and "bad2" not in l3.data


def test_tiered_expired_entry_in_slow_tier_is_a_miss() -> None:
    l3 = _Tier("disk")
    cache = TieredCache(MemoryCache(), [l3], {"retrieval": 0.02})
    cache.put("retrieval", "k", [1, 2])
    cache.memory.clear()
    time.sleep(0.04)
    assert cache.get("retrieval", "k") is None


def test_zero_ttl_namespace_is_not_cached() -> None:
    l3 = _Tier("disk")
    cache = TieredCache(MemoryCache(), [l3], {"answer": 0.0})
    cache.put("answer", "k", "v")
    assert cache.get("answer", "k") is None and not l3.data


def test_query_log_keeps_the_most_frequent(tmp_path) -> None:
    db = CacheDB(tmp_path / "cache.db")
    db.log_queries(
        [("search", f"q{i}", "[]", f"Q{i}", i, float(i)) for i in range(1, 301)], keep=100
    )
    top = db.top_queries(1000)
    assert len(top) == 100 and top[0]["query"] == "q300" and top[-1]["query"] == "q201"


def test_hit_rate_counts_requests_not_the_last_tier() -> None:
    counts = {
        ("requests", "retrieval"): [6, 0],
        ("memory", "retrieval"): [4, 2],  # a process without L3: its misses were computed
        ("disk", "retrieval"): [0, 0],
        ("requests", "answer"): [2, 0],
        ("memory", "answer"): [0, 2],
        ("semantic", "answer"): [1, 1],
    }
    assert CacheStats.hit_rates(counts) == {"retrieval": 0.6667, "answer": 0.5}
    assert [r["tier"] for r in CacheStats.table(counts)].count("requests") == 0
