"""A damaged query cache file (``<index>/cache.db``) never stops a command.

Whichever path meets the damage first (a search, ``cache stats``, ``cache clear``; at
open or in a file that turns bad while open) moves the file aside once, keeping one
damaged copy, says so, and goes on with an empty cache. The index itself is untouched.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from snaprag import Engine

Q = "How long is the warranty on the frame?"


@pytest.fixture
def corpus(make, tmp_path: Path) -> tuple[Path, Path]:
    """An index whose cache file holds entries, counters and a query log."""
    docs = make.warranty_docs(tmp_path / "docs")
    index = tmp_path / "index"
    with Engine.open(index) as engine:
        engine.ingest([docs])
        engine.search(Q, k=2)
        engine.search("chain care", k=2)
    assert (index / "cache.db").stat().st_size > 0
    return docs, index


def _damage(path: Path, how: str, seed: int = 0) -> None:
    """Random bytes over the whole file, or over its second half (a valid header)."""
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    start = 0 if how == "garbage" else len(data) // 2
    data[start:] = rng.randbytes(len(data) - start)
    path.write_bytes(bytes(data))


def _checkpoint(engine: Engine) -> None:
    """Everything into the main file, so that damage to it is damage to the cache."""
    assert engine.cache is not None and engine.cache.db is not None
    engine.cache.db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())


def _damaged_copies(index: Path) -> list[Path]:
    return [p for p in index.glob("cache.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]


def _moved_aside_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        "damaged" in r.getMessage() and "moved aside" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("how", ["garbage", "half"])
def test_damaged_before_opening(corpus, caplog: pytest.LogCaptureFixture, how: str) -> None:
    _, index = corpus
    _damage(index / "cache.db", how)
    caplog.set_level(logging.WARNING)
    with Engine.open(index) as engine:
        cache = engine.cache
        assert cache is not None
        report = cache.report()  # counters and the disk tier: the first reads of the file
        assert report["tiers"]["disk"]["entries"] == 0
        assert "frame" in engine.search(Q, k=1)[0].text
        cleared = cache.clear()
        assert cleared["disk"] is not None
        assert "frame" in engine.search(Q, k=1)[0].text
        assert cache.report()["tiers"]["disk"]["entries"] >= 1  # the new file works
    assert _moved_aside_logged(caplog)
    assert len(_damaged_copies(index)) == 1


@pytest.mark.parametrize("how", ["garbage", "half"])
@pytest.mark.parametrize("first", ["report", "clear", "search", "top_queries"])
def test_damaged_while_open(corpus, caplog: pytest.LogCaptureFixture, how: str, first: str) -> None:
    _, index = corpus
    caplog.set_level(logging.WARNING)
    with Engine.open(index) as engine:
        cache = engine.cache
        assert cache is not None
        cache.report()  # the file is open and in use
        _checkpoint(engine)
        _damage(index / "cache.db", how)
        if first == "report":
            cache.report()
        elif first == "clear":
            assert cache.clear()["disk"] is not None
        elif first == "search":
            assert "frame" in engine.search("frame warranty years", k=1)[0].text
        else:
            cache.top_queries(10)
        # every later path finds a working (new) file
        cache.report()
        assert cache.clear()["disk"] is not None
        assert "frame" in engine.search(Q, k=1)[0].text
        cache.flush()
        assert cache.report()["tiers"]["disk"]["entries"] >= 1
    if first != "search" or how == "garbage":  # a search may not read the damaged pages
        assert _moved_aside_logged(caplog)
        assert len(_damaged_copies(index)) == 1
    with Engine.open(index) as engine:  # and the next process too
        assert engine.cache is not None and engine.cache.report()["tiers"]["disk"]["entries"] >= 1


def test_one_damaged_copy_is_kept(corpus) -> None:
    _, index = corpus
    for seed in range(3):
        _damage(index / "cache.db", "garbage", seed)
        with Engine.open(index) as engine:
            assert engine.cache is not None
            engine.cache.report()
            engine.search(Q, k=1)
    assert len(_damaged_copies(index)) == 1


@pytest.mark.parametrize("how", ["garbage", "half"])
@pytest.mark.parametrize("command", ["stats", "clear"])
def test_cli_cache_commands_on_a_damaged_file(corpus, run_cli, how: str, command: str) -> None:
    _, index = corpus
    _damage(index / "cache.db", how)
    done = run_cli("cache", command, "--index", index)
    assert done.returncode == 0, done.stderr
    assert "index database error" not in done.err_flat
    assert "damaged" in done.err_flat and "moved aside" in done.err_flat, done.stderr
    assert str(index / "cache.db") in done.err_flat
    assert len(_damaged_copies(index)) == 1
    again = run_cli("cache", command, "--index", index)  # the new file is healthy
    assert again.returncode == 0 and "damaged" not in again.err_flat, again.stderr
    assert len(_damaged_copies(index)) == 1


def test_cli_json_output_stays_clean(corpus, run_cli) -> None:
    """The warning goes to stderr: ``--json`` output on stdout still parses."""
    _, index = corpus
    _damage(index / "cache.db", "garbage")
    done = run_cli("cache", "stats", "--index", index, "--json")
    assert done.returncode == 0, done.stderr
    assert done.json()["tiers"]["disk"]["entries"] == 0
    assert "moved aside" in done.err_flat
