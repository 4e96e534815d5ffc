"""Regressions of the abuse test that live in the engine and the snapshot (fakes: fast)."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from snaprag import Config, Engine
from snaprag.embed.hashing import HashEmbedder
from snaprag.errors import SnapragError


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("# Bridge\n\nThe bridge toll for bicycles is one coin.")
    (root / "b.txt").write_text("The ferry leaves every hour from the north pier.")
    return root


def test_refused_ingest_changes_nothing(tmp_path: Path, docs: Path) -> None:
    """An ingest refused because another one holds the lock must not have written the
    index's model (it used to, before taking the lock: vectors of one model, queries
    embedded with another)."""
    index = tmp_path / "index"
    with Engine(Config(index_dir=index), embedder=HashEmbedder(dim=32)) as first:
        first.ingest([docs / "b.txt"])
        first.delete(str(docs / "b.txt"))  # an index with no chunks: the case that broke
        assert first.stats()["chunks"] == 0 and first.stats()["model"] == "hash:32"
    with open(index / "ingest.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another ingest is running
        second = Engine(Config(index_dir=index), embedder=HashEmbedder(dim=64))
        with second, pytest.raises(SnapragError, match="another 'snaprag ingest' is running"):
            second.ingest([docs])
    with Engine(Config(index_dir=index), embedder=HashEmbedder(dim=32)) as first:
        assert first.store.get_meta("model") == "hash:32"  # untouched
        assert first.store.get_meta("dim") == "32"
        assert first.ingest([docs]).ok
        assert first.stats()["model"] == "hash:32" and first.stats()["dim"] == 32
        assert first.search("bicycle toll", k=1)[0].source.endswith("a.md")


def test_settings_are_checked_inside_the_lock(tmp_path: Path, docs: Path) -> None:
    index = tmp_path / "index"
    with Engine(Config(index_dir=index), embedder=HashEmbedder(dim=32)) as first:
        first.ingest([docs])
    other = Engine(Config(index_dir=index), embedder=HashEmbedder(dim=64))
    with other, pytest.raises(SnapragError, match="built with model 'hash:32'"):
        other.ingest([docs])
    with Engine(Config(index_dir=index), embedder=HashEmbedder(dim=32)) as first:
        assert first.stats()["model"] == "hash:32"


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage-meta"])
def test_damaged_snapshot_is_rebuilt_and_rewritten(tmp_path: Path, docs: Path, damage: str) -> None:
    """A snapshot whose files were deleted or damaged is rebuilt, and saved again, so the
    next process loads it instead of rebuilding it every time."""
    index = tmp_path / "index"
    with Engine(Config(index_dir=index, cache=False), embedder=HashEmbedder()) as e:
        e.ingest([docs])
        expected = [h.id for h in e.search("ferry pier", k=2)]
    (snap,) = (index / "snapshots").glob("v*")
    target = snap / "vectors.npy"
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    else:
        (snap / "snapshot.json").write_text("{not json")
    with Engine(Config(index_dir=index, cache=False), embedder=HashEmbedder()) as e:
        assert [h.id for h in e.search("ferry pier", k=2)] == expected
    meta = json.loads((snap / "snapshot.json").read_text())
    assert (snap / "vectors.npy").stat().st_size > 1000 and meta["dim"] == 384
    with Engine(Config(index_dir=index, cache=False), embedder=HashEmbedder()) as e:
        retriever = e.retriever
        assert [h.id for h in e.search("ferry pier", k=2)] == expected
        assert retriever.snapshot_loads == 1
    assert not [p for p in (index / "snapshots").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_clear_error(tmp_path: Path, docs: Path, query: str) -> None:
    with Engine(Config(index_dir=tmp_path / "index"), embedder=HashEmbedder()) as e:
        e.ingest([docs])
        with pytest.raises(SnapragError, match="empty"):
            e.search(query)
        with pytest.raises(SnapragError, match=r"query 2 of 2: .*empty"):
            e.search_many(["ferry", query])
        events = list(e.ask_events(query))
        assert [ev.kind for ev in events] == ["error"] and "empty" in events[0].message


@pytest.mark.parametrize("query", ["???", "!!! ...", "🙂🙂", "— · —"])
def test_termless_query_returns_no_hits(tmp_path: Path, docs: Path, query: str) -> None:
    from snaprag.generate.echo import EchoGenerator

    generator = EchoGenerator()
    cfg = Config(index_dir=tmp_path / "index")
    with Engine(cfg, embedder=HashEmbedder(), generator=generator) as e:
        e.ingest([docs])
        assert e.search(query) == []
        batch = e.search_many(["ferry pier", query])
        assert batch[0] and batch[1] == []
        answer = e.ask(query)
        assert answer.hits == [] and answer.text.startswith("No answer")
        assert generator.requests == 0  # no model call for nothing to search


def test_query_length_limit(tmp_path: Path, docs: Path) -> None:
    cfg = Config(index_dir=tmp_path / "index", max_query_chars=100)
    with Engine(cfg, embedder=HashEmbedder()) as e:
        e.ingest([docs])
        assert e.search("ferry " * 16)  # 96 characters
        with pytest.raises(SnapragError, match="over the limit of 100"):
            e.search("ferry " * 17)


@pytest.mark.timeout(120)
def test_huge_query_of_one_character_completes(tmp_path: Path, docs: Path) -> None:
    """'?' * 100,000 + 'a' took 21 s with the cache on (quadratic normalization); with the
    default limit it is refused at once, and with the limit raised it runs in linear time."""
    query = "?" * 100_000 + "a"
    with Engine(Config(index_dir=tmp_path / "index"), embedder=HashEmbedder()) as e:
        e.ingest([docs])
        with pytest.raises(SnapragError, match="limit"):
            e.search(query)
    big = Config(index_dir=tmp_path / "index", max_query_chars=2_000_000)
    with Engine(big, embedder=HashEmbedder()) as e:
        e.search("?" * 1_000_000 + "a")
        e.search("?" * 1_000_000 + "a")  # the cached path too


def test_snapshot_of_another_history_is_not_used(tmp_path: Path) -> None:
    """A database restored from a backup can reach a version number again with other
    contents; the snapshot saved for that number by the other history must not be used."""
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    index = tmp_path / "index"

    def ingest(name: str, text: str) -> None:
        (docs / name).write_text(text)
        with Engine(Config(index_dir=index, cache=False), embedder=HashEmbedder()) as e:
            e.ingest([docs / name])
            e.search("warm")  # saves the snapshot of this version

    ingest("a.txt", "apple orchard harvest.")
    shutil.copy(index / "snaprag.db", tmp_path / "backup.db")
    ingest("b.txt", "banana smoothie recipe.")
    version = Engine(Config(index_dir=index), embedder=HashEmbedder()).store.version
    shutil.copy(tmp_path / "backup.db", index / "snaprag.db")
    for name in ("snaprag.db-wal", "snaprag.db-shm"):
        (index / name).unlink(missing_ok=True)
    ingest("c.txt", "cherry pie instructions.")
    with Engine(Config(index_dir=index, cache=False), embedder=HashEmbedder()) as e:
        assert e.store.version == version  # the same number, other contents
        hits = e.search("cherry pie", k=1, mode="bm25")
        assert hits and hits[0].source.endswith("c.txt")
        assert e.search("banana smoothie", k=3, mode="bm25") == []


def test_open_engine_never_searches_with_a_model_the_index_no_longer_has(
    tmp_path: Path, docs: Path
) -> None:
    """A long-lived engine (a server) on an index emptied and re-created with another model
    by another process gets a clear error, not another model's query vectors."""
    index = tmp_path / "index"
    with Engine(Config(index_dir=index), embedder=HashEmbedder(dim=32)) as first:
        first.ingest([docs / "b.txt"])
        first.delete(str(docs / "b.txt"))
    server = Engine(Config(index_dir=index, cache=False))  # the stored model: hash:32
    assert server.search("ferry") == []
    with Engine(Config(index_dir=index), embedder=HashEmbedder(dim=64)) as other:
        other.ingest([docs])  # allowed: the index had no chunks
    with server, pytest.raises(SnapragError, match="open it again"):
        server.search("ferry")
