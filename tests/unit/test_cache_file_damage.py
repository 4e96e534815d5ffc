"""CacheDB: a damaged file is moved aside once, whoever meets the damage, then work goes on."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import pytest

import snaprag.cache.disk as disk
from snaprag.cache.disk import CacheDB, DiskCache, is_damage


def _filled(path: Path) -> None:
    db = CacheDB(path)
    DiskCache(db).put_many([(f"k{i}", b"v" * 2000, 60) for i in range(40)])
    db.add_stats({("disk", "retrieval"): [1, 2]})
    db.log_queries([("search", "q", "[5]", "Q", 1, 1.0)])
    db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    db.close()


def _damage(path: Path, start_fraction: float, seed: int = 0) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * start_fraction)
    data[start:] = random.Random(seed).randbytes(len(data) - start)
    path.write_bytes(bytes(data))


def _copies(path: Path) -> list[Path]:
    return [
        p
        for p in path.parent.glob(f"{path.name}.damaged-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]


def test_damage_is_told_from_busy() -> None:
    assert is_damage(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_damage(sqlite3.DatabaseError("file is not a database"))
    assert not is_damage(sqlite3.OperationalError("database is locked"))
    assert not is_damage(OSError("disk full"))


@pytest.mark.parametrize("fraction", [0.0, 0.5])
@pytest.mark.parametrize(
    "read",
    [
        lambda db: db.read_stats(),
        lambda db: db.top_queries(5),
        lambda db: db.semantic_entries("s", 5),
        lambda db: DiskCache(db).info(),
        lambda db: DiskCache(db).clear(),
        lambda db: db.verify(),
    ],
)
def test_every_read_survives_damage_after_opening(tmp_path: Path, fraction: float, read) -> None:
    path = tmp_path / "cache.db"
    _filled(path)
    db = CacheDB(path)  # opened while healthy
    _damage(path, fraction)
    read(db)
    read(db)
    db.verify()  # whatever the first read saw, the file in use is now whole
    assert len(_copies(path)) <= 1
    if fraction == 0.0:  # a garbage header: every read meets it
        assert len(_copies(path)) == 1 and db.recoveries == 1
    DiskCache(db).put_many([("new", b"x", 60)])
    assert DiskCache(db).get_many(["new"]) == [b"x"]


def test_writes_after_damage_land_in_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    _filled(path)
    db = CacheDB(path)
    _damage(path, 0.0)
    DiskCache(db).put_many([("k", b"v", 60)])
    db.add_stats({("memory", "retrieval"): [1, 0]})
    db.add_semantic("s", "q", "k", [0.5, 0.5], keep_scopes=4)
    fresh = CacheDB(path)
    assert DiskCache(fresh).get_many(["k"]) == [b"v"]
    assert fresh.read_stats() == {("memory", "retrieval"): [1, 0]}
    assert [q for q, _, _ in fresh.semantic_entries("s", 5)] == ["q"]


def test_the_other_process_finds_the_new_file(tmp_path: Path, monkeypatch) -> None:
    """Two handles on one path (as two processes): one moves the file aside, the other
    neither moves the new file nor keeps writing into the old one (once its next check of
    the path is due: here at once)."""
    monkeypatch.setattr(disk, "REPLACED_CHECK_S", 0.0)
    path = tmp_path / "cache.db"
    _filled(path)
    first, second = CacheDB(path), CacheDB(path)
    _damage(path, 0.5)
    first.verify()
    assert len(_copies(path)) == 1
    DiskCache(second).put_many([("after", b"1", 60)])
    assert DiskCache(first).get_many(["after"]) == [b"1"]
    second.verify()
    assert len(_copies(path)) == 1 and second.recoveries == 0


def test_threads_meeting_the_damage_together_move_it_once(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    _filled(path)
    db = CacheDB(path)
    _damage(path, 0.0)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            db.read_stats()
            DiskCache(db).info()
        except BaseException as exc:  # the test reports any
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert db.recoveries == 1 and len(_copies(path)) == 1


def test_one_damaged_copy_is_kept_across_incidents(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "cache.db"
    clock = iter(range(1_000, 2_000, 10))
    monkeypatch.setattr("snaprag.cache.disk.time.time", lambda: float(next(clock)))
    kept: list[str] = []
    for seed in range(3):
        _filled(path)
        _damage(path, 0.0, seed)
        CacheDB(path).read_stats()
        (copy,) = _copies(path)
        kept.append(copy.name)
    assert len(set(kept)) == 3  # each incident's copy replaced the one before


def test_the_path_is_checked_at_most_every_interval(tmp_path: Path, monkeypatch) -> None:
    """One ``stat`` per statement cost ~0.1 ms each on a search's path: the path is
    compared with the opened file at most every ``REPLACED_CHECK_S``."""
    db = CacheDB(tmp_path / "cache.db")
    cache = DiskCache(db)
    calls = []
    real = disk.os.stat
    monkeypatch.setattr(disk.os, "stat", lambda p, *a, **kw: calls.append(p) or real(p, *a, **kw))
    monkeypatch.setattr(disk, "REPLACED_CHECK_S", 3600.0)
    db._checked = float("-inf")
    for i in range(20):
        cache.put_many([(f"k{i}", b"v", 60)])
        assert cache.get_many([f"k{i}"]) == [b"v"]
    assert [c for c in calls if str(c) == str(db.path)] == [db.path]
