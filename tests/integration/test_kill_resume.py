"""Kill an ingest run half-way (SIGKILL, Ctrl-C), run it again: same index as a clean run.

The corpus is one BEIR jsonl with enough one-chunk documents that the job commits several
times (every 512 chunks). The test waits until the first commit is visible in the SQLite
database (read-only, from outside), interrupts the process, then runs the very same command
to completion and compares the result with a clean, uninterrupted run.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from snaprag import Engine

N_DOCS = 1600  # > 3 commits of 512 chunks, one chunk per document
WORDS = [
    "amber", "basalt", "cedar", "dune", "ember", "fjord", "granite", "heath", "iris",
    "juniper", "kelp", "lagoon", "moss", "nectar", "onyx", "pebble", "quartz", "reef",
    "sage", "tundra", "umber", "violet", "willow", "yarrow", "zephyr",
]  # fmt: skip


def doc_ids() -> list[str]:
    return [f"doc-{i:05d}" for i in range(N_DOCS)]


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "BIG.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, doc_id in enumerate(doc_ids()):
            words = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(10))
            text = f"Record {i} notes {words}."
            f.write(json.dumps({"_id": doc_id, "title": f"Record {i}", "text": text}) + "\n")
    return path


def chunk_count(db: Path) -> int | None:
    """Chunks committed so far, read from outside the writer; None while unreadable."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        return int(conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
    except sqlite3.Error:  # not created yet, or caught mid-checkpoint
        return None
    finally:
        conn.close()


def chunk_rows(db: Path) -> list[tuple[str, int, str, int | None]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT d.doc_id, c.seq, c.text, c.page FROM chunks c "
            "JOIN documents d ON d.id = c.document_id ORDER BY d.doc_id, c.seq"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def clean_run(big_corpus: Path, tmp_path_factory: pytest.TempPathFactory, cli):
    """One uninterrupted CLI run: its stats and its chunks, to compare against."""
    index = tmp_path_factory.mktemp("clean") / "index"
    proc = subprocess.run(
        cli.command("ingest", big_corpus, "--index", index, "--json"),
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["chunks_embedded"] == N_DOCS
    with Engine.open(index) as eng:
        stats = eng.stats()
    assert stats["chunks"] == N_DOCS and stats["partial_sources"] == 0
    return stats, chunk_rows(index / "snaprag.db")


def start_ingest(cli, corpus: Path, index: Path, log: Path) -> subprocess.Popen:
    def default_sigint() -> None:  # a shell may start us with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    with log.open("w") as out:
        return subprocess.Popen(
            cli.command("ingest", corpus, "--index", index),
            env=cli.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=default_sigint,
        )


def wait_for_first_commit(db: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = chunk_count(db)
        if n:
            return n
        if proc.poll() is not None:
            pytest.fail(f"ingest ended (rc={proc.returncode}) before a commit was seen")
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    pytest.fail("no commit became visible in time")


def resume_and_check(big_corpus: Path, index: Path, clean_run, committed: int, run_cli) -> None:
    """Run the same command to completion; the index must equal the clean run's."""
    clean_stats, clean_chunks = clean_run
    res = run_cli("ingest", big_corpus, "--index", index, "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    report = res.json()
    assert report["failed"] == 0
    # what was committed before the interruption is not embedded again
    assert report["chunks_embedded"] == N_DOCS - committed
    db = index / "snaprag.db"
    rows = chunk_rows(db)
    assert len(rows) == clean_stats["chunks"]
    assert rows == clean_chunks  # same documents, same chunks, same text
    ids = [r[0] for r in rows]
    assert sorted(set(ids)) == doc_ids()
    assert len(ids) == len(set(ids))  # one chunk per document: every _id exactly once
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    stats = run_cli("stats", "--index", index, "--json")
    assert stats.returncode == 0, stats.stderr
    data = stats.json()
    assert data["partial_sources"] == 0
    assert data["chunks"] == clean_stats["chunks"]
    assert data["documents"] == clean_stats["documents"] == N_DOCS
    assert data["sources"] == 1
    # and once more: nothing left to do
    again = run_cli("ingest", big_corpus, "--index", index, "--json", timeout=300)
    assert again.returncode == 0
    assert again.json()["unchanged"] == 1 and again.json()["chunks_embedded"] == 0
    with Engine.open(index) as eng:
        hit = eng.search("Record 1234", k=1, mode="bm25")[0]
        assert hit.doc_id == "doc-01234"


def test_sigkill_then_resume(big_corpus: Path, clean_run, tmp_path: Path, run_cli, cli) -> None:
    index = tmp_path / "index"
    db = index / "snaprag.db"
    proc = start_ingest(cli, big_corpus, index, tmp_path / "ingest.log")
    seen = wait_for_first_commit(db, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    committed = chunk_count(db)
    assert committed is not None and seen <= committed < N_DOCS, "the kill came too late"
    assert committed % 512 == 0  # whole batches only
    with Engine.open(index) as eng:
        assert eng.stats()["partial_sources"] == 1  # not mistaken for a finished source
    resume_and_check(big_corpus, index, clean_run, committed, run_cli)


def test_ctrl_c_exits_cleanly_then_resume(
    big_corpus: Path, clean_run, tmp_path: Path, run_cli, cli
) -> None:
    index = tmp_path / "index"
    db = index / "snaprag.db"
    log = tmp_path / "ingest.log"
    proc = start_ingest(cli, big_corpus, index, log)
    wait_for_first_commit(db, proc)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=120)
    output = log.read_text()
    assert rc == 130, output
    assert "Traceback" not in output
    flat = " ".join(output.split())
    assert "interrupted" in flat and "run the same command again" in flat
    committed = chunk_count(db)
    assert committed is not None and 0 < committed < N_DOCS
    assert committed % 512 == 0
    resume_and_check(big_corpus, index, clean_run, committed, run_cli)


# --------------------------------------------------------------------------- one huge document


class Killed(BaseException):
    """Stands for SIGKILL between two commits: nothing in snaprag catches it."""


def test_huge_document_commits_in_batches_and_resumes(tmp_path: Path, monkeypatch) -> None:
    """One single-paragraph file of ~600 chunks: several transactions, a kill between two
    of them, then a resumed run that embeds only the rest and equals a clean result."""
    from snaprag.index.store import Store
    from snaprag.ingest.chunking import Chunker
    from snaprag.types import Document, Section

    sentences = [f"Line {i} of the {WORDS[i % len(WORDS)]} ledger is plain." for i in range(4000)]
    text = "Zanzibar opens the ledger. " + " ".join(sentences) + " Quokka closes the ledger."
    path = tmp_path / "ledger.html"
    path.write_text(f"<html><body><p>{text}</p></body></html>", encoding="utf-8")
    index = tmp_path / "index"
    real = Store.transaction

    def dying(self, bump=False):
        if bump and self.counts()["chunks"]:
            raise Killed  # after the first batch is in, before the second is written
        return real(self, bump)

    monkeypatch.setattr(Store, "transaction", dying)
    with Engine.open(index, chunk_tokens=64, chunk_overlap=8) as eng:
        emb = eng.embedder
        chunker = Chunker(emb.count_tokens, emb.token_offsets, 64, 8)
        expected = len(chunker.chunk(Document("x", str(path), "html", "ledger", (Section(text),))))
        assert 512 < expected < 1024, "the document must need two transactions"
        with pytest.raises(Killed):
            eng.ingest([path])
        stats = eng.stats()
        assert stats["chunks"] == 512 and stats["partial_sources"] == 1
    monkeypatch.setattr(Store, "transaction", real)
    with Engine.open(index, chunk_tokens=64, chunk_overlap=8) as eng:
        report = eng.ingest([path])
        assert report.ok and report.chunks_embedded == expected - 512
        stats = eng.stats()
        assert stats["chunks"] == expected and stats["partial_sources"] == 0
        seqs = [r[1] for r in chunk_rows(index / "snaprag.db")]
        assert seqs == list(range(expected))  # no duplicates, no gaps
        for word in ("Zanzibar", "Quokka"):
            assert word in eng.search(word, k=1, mode="bm25")[0].text
        assert "Quokka" in eng.search("Quokka closes the ledger", k=1, mode="dense")[0].text
        assert eng.ingest([path]).count("unchanged") == 1
