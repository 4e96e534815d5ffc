"""HNSW on request, snapshots across processes and database rebuilds, the ingest lock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from snaprag import Engine
from snaprag.errors import IndexStateError

DOCS = {
    "alpha.txt": "The alpha reactor cools with liquid sodium at 550 degrees.",
    "beta.txt": "Beta testing starts in March and ends in June for all regions.",
    "gamma.md": "# Gamma\n\nGamma rays are photons with the highest energy.",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def top_name(engine: Engine, query: str, **kw) -> str:
    return Path(engine.search(query, k=1, **kw)[0].source).name


def test_hnsw_on_request_matches_exact(tmp_path: Path, docs: Path) -> None:
    with Engine.open(tmp_path / "idx", dense_backend="hnsw") as eng:
        assert eng.ingest([docs]).ok
        assert top_name(eng, "sodium cooled reactor", mode="dense") == "alpha.txt"
        assert top_name(eng, "when does beta testing end", mode="dense") == "beta.txt"
    # a new process-like engine loads the saved HNSW graph from the snapshot
    snaps = list((tmp_path / "idx" / "snapshots").glob("v*/hnsw.bin"))
    assert len(snaps) == 1
    with Engine.open(tmp_path / "idx", dense_backend="hnsw") as eng:
        assert top_name(eng, "photons with high energy", mode="dense") == "gamma.md"
    with Engine.open(tmp_path / "idx") as eng:  # exact on the same index
        assert top_name(eng, "photons with high energy", mode="dense") == "gamma.md"


def test_snapshot_of_a_replaced_database_is_not_reused(tmp_path: Path, docs: Path) -> None:
    index = tmp_path / "idx"
    with Engine.open(index) as eng:
        assert eng.ingest([docs]).ok
        assert top_name(eng, "sodium reactor") == "alpha.txt"
        version = eng.stats()["version"]
    # recreate the database with other content that reaches the same version number
    for f in index.glob("snaprag.db*"):
        f.unlink()
    other = tmp_path / "other"
    other.mkdir()
    for i in range(len(DOCS)):
        (other / f"o{i}.txt").write_text(f"Completely different text number {i} about tea.")
    with Engine.open(index) as eng:
        assert eng.ingest([other]).ok
        assert eng.stats()["version"] == version
        hits = eng.search("sodium reactor", k=3)
        assert all(Path(h.source).parent == other.resolve() for h in hits)


def test_damaged_snapshot_is_rebuilt(tmp_path: Path, docs: Path) -> None:
    with Engine.open(tmp_path / "idx") as eng:
        assert eng.ingest([docs]).ok
        eng.search("warm", k=1)
    snap = next((tmp_path / "idx" / "snapshots").glob("v*"))
    (snap / "vectors.npy").write_bytes(b"garbage")
    with Engine.open(tmp_path / "idx") as eng:
        assert top_name(eng, "beta testing in March") == "beta.txt"


def test_one_ingest_at_a_time(tmp_path: Path, docs: Path) -> None:
    import fcntl

    index = tmp_path / "idx"
    with Engine.open(index) as eng:
        assert eng.ingest([docs]).ok
    with open(index / "ingest.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running ingest would
        with Engine.open(index) as eng, pytest.raises(IndexStateError, match="another"):
            eng.ingest([docs])
        with Engine.open(index) as eng:  # searching is not blocked
            assert top_name(eng, "gamma rays") == "gamma.md"


def test_index_directory_can_move(tmp_path: Path, docs: Path) -> None:
    with Engine.open(tmp_path / "idx") as eng:
        assert eng.ingest([docs]).ok
    shutil.move(tmp_path / "idx", tmp_path / "moved")
    with Engine.open(tmp_path / "moved") as eng:
        assert top_name(eng, "sodium reactor") == "alpha.txt"
        assert eng.stats()["documents"] == 3
