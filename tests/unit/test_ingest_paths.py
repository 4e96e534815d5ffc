"""Hostile paths: FIFOs, symlink loops, dangling links, unreadable folders, undecodable names.

Each is a real file-system object. Each must come out as one failed (or ignored) source
with a reason while the rest of the run goes on; nothing may hang (pytest-timeout) and
nothing may stop the run, with or without ``prune``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from snaprag.index.store import Store
from snaprag.ingest.chunking import Chunker
from snaprag.ingest.job import IngestJob

pytestmark = pytest.mark.timeout(60)  # a blocking open() on a FIFO must fail, not hang
GOOD = "Herons wade in the Tamsel marsh at dawn."


class TinyEmbedder:
    name = "tiny"
    dim = 4
    max_tokens = 512

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(np.array([1.0, 0, 0, 0], np.float32), (len(texts), 1))


def ingest(store: Store, paths: list[Path], prune: bool = False):
    emb = TinyEmbedder()
    chunker = Chunker(emb.count_tokens, emb.token_offsets, 64, 8)
    job = IngestJob(store, emb, chunker, "float16", 10**6)
    return job.run(paths, prune=prune)


def by_name(report) -> dict[str, tuple[str, str]]:
    return {os.path.basename(r.path): (r.status, r.reason) for r in report.results}


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "index.db")
    yield s
    s.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a-good.txt").write_text(GOOD)
    (root / "z-good.md").write_text("# Owls\n\nOwls hunt voles in the Brackle woods.")
    return root


def test_indexed_file_replaced_by_fifo(store: Store, docs: Path) -> None:
    (docs / "m-pipe.txt").write_text("Pipes carry water to the Fennick mill.")
    assert ingest(store, [docs]).ok
    before = store.counts()
    (docs / "m-pipe.txt").unlink()
    os.mkfifo(docs / "m-pipe.txt")
    for paths in ([docs], [docs / "m-pipe.txt", docs / "a-good.txt"]):
        for prune in (False, True):
            got = by_name(ingest(store, paths, prune=prune))
            assert got["m-pipe.txt"] == ("failed", "not a regular file (FIFO)")
            assert got["a-good.txt"][0] == "unchanged"
            assert store.counts() == before  # what was stored is kept, not pruned


def test_new_fifo_named_or_walked(store: Store, docs: Path) -> None:
    os.mkfifo(docs / "new-pipe.md")
    os.mkfifo(docs / "new-pipe")  # no suffix: unsupported, ignored without a look inside
    got = by_name(ingest(store, [docs]))
    assert got["new-pipe.md"] == ("failed", "not a regular file (FIFO)")
    assert got["new-pipe"][0] == "ignored"
    assert got["a-good.txt"][0] == "added" and got["z-good.md"][0] == "added"
    got = by_name(ingest(store, [docs / "new-pipe"]))  # named: what it is matters first
    assert got["new-pipe"] == ("failed", "not a regular file (FIFO)")


def test_symlink_loops_and_dangling_links(store: Store, docs: Path) -> None:
    os.symlink(docs / "loop-b.txt", docs / "loop-a.txt")
    os.symlink(docs / "loop-a.txt", docs / "loop-b.txt")
    os.symlink(docs / "missing.txt", docs / "m-dangling.txt")
    for prune in (False, True):
        got = by_name(ingest(store, [docs], prune=prune))
        assert got["loop-a.txt"][0] == got["loop-b.txt"][0] == "failed"
        assert "symlink loop" in got["loop-a.txt"][1]
        assert got["m-dangling.txt"][0] == "failed"
        assert "dangling symlink" in got["m-dangling.txt"][1]
        assert "missing.txt" in got["m-dangling.txt"][1]
        assert got["z-good.md"][0] in ("added", "unchanged")  # after them in walk order
    # named explicitly, as roots, with prune: one failed source each, the run goes on
    got = by_name(ingest(store, [docs / "loop-a.txt", docs / "m-dangling.txt", docs], prune=True))
    assert "symlink loop" in got["loop-a.txt"][1]
    assert got["z-good.md"][0] == "unchanged"
    assert store.counts()["sources"] == 2


def test_directory_symlink_loops_do_not_recurse(store: Store, docs: Path) -> None:
    sub = docs / "sub"
    sub.mkdir()
    (sub / "inner.txt").write_text("Inner notes on the Quarrel canal.")
    os.symlink(docs, sub / "up")  # a link to an ancestor
    os.symlink(docs / "dir-b", docs / "dir-a")  # a loop of directory-looking links
    os.symlink(docs / "dir-a", docs / "dir-b")
    report = ingest(store, [docs], prune=True)
    got = by_name(report)
    assert got["up"][0] == "ignored" and "not followed" in got["up"][1]
    assert got["inner.txt"][0] == "added" and got["z-good.md"][0] == "added"
    assert store.counts()["sources"] == 3
    assert len(report.results) < 10


def test_non_utf8_file_name(store: Store, docs: Path) -> None:
    name = os.fsencode(docs) + b"/caf\xe9-latin1.txt"
    with open(name, "wb") as fh:
        fh.write(b"Cafe notes.")
    for prune in (False, True):
        report = ingest(store, [docs], prune=prune)
        failed = [r for r in report.results if r.status == "failed"]
        assert len(failed) == 1 and "not valid UTF-8" in failed[0].reason
        failed[0].path.encode("utf-8")  # the report itself stays printable
        assert by_name(report)["z-good.md"][0] in ("added", "unchanged")


def _unreadable_dir_run(docs: Path, index: Path) -> dict[str, tuple[str, str]]:
    store = Store(index)
    try:
        return by_name(ingest(store, [docs], prune=True))
    finally:
        store.close()


def test_unreadable_directory(tmp_path: Path) -> None:
    """Root reads any folder, so as root the run happens in a child that is not."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="snaprag-unreadable-"))
    try:
        base.chmod(0o777)
        docs = base / "docs"
        (docs / "locked").mkdir(parents=True)
        (docs / "locked" / "secret.txt").write_text("Secret notes.")
        (docs / "a-good.txt").write_text(GOOD)
        (docs / "z-good.md").write_text("# Owls\n\nOwls hunt voles.")
        for p in (docs, docs / "a-good.txt", docs / "z-good.md"):
            p.chmod(0o777 if p.is_dir() else 0o666)
        (docs / "locked").chmod(0)
        got = _run_unprivileged(_unreadable_dir_run, docs, base / "index.db")
    finally:
        (base / "docs" / "locked").chmod(0o700)
        import shutil

        shutil.rmtree(base)
    assert got["locked"] == ("failed", "cannot read directory: permission denied")
    assert got["a-good.txt"][0] == "added" and got["z-good.md"][0] == "added"
    assert "secret.txt" not in got


def _run_unprivileged(fn, *args):
    if os.geteuid() != 0:
        return fn(*args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, run, send the result back
        code = 1
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            with os.fdopen(write, "w") as out:
                json.dump(fn(*args), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, "the unprivileged run failed"
    return {k: tuple(v) for k, v in json.loads(data).items()}


def test_fifo_never_opened_even_when_checks_race(store: Store, docs: Path, monkeypatch) -> None:
    """A file swapped for a FIFO after its check is refused on the open descriptor."""
    from snaprag.ingest import files

    (docs / "m-pipe.txt").write_text("Pipes carry water.")
    assert ingest(store, [docs]).ok
    (docs / "m-pipe.txt").unlink()
    os.mkfifo(docs / "m-pipe.txt")
    real = os.stat

    def lying_stat(path, *a, **kw):
        st = real(path, *a, **kw)
        if str(path).endswith("m-pipe.txt"):  # pretend it still is a regular file
            return os.stat_result((stat.S_IFREG | 0o644, *tuple(st)[1:]))
        return st

    monkeypatch.setattr(files.os, "stat", lying_stat)
    got = by_name(ingest(store, [docs]))
    assert got["m-pipe.txt"] == ("failed", "not a regular file (FIFO)")


@pytest.mark.skipif(sys.platform != "linux", reason="FIFOs and fork as on Linux")
def test_nothing_left_open(store: Store, docs: Path) -> None:
    os.mkfifo(docs / "pipe.txt")
    before = len(os.listdir("/proc/self/fd"))
    ingest(store, [docs])
    assert len(os.listdir("/proc/self/fd")) <= before + 1  # the store's own connection
