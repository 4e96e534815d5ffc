"""Ingestion in three stages (plan, process, commit) with a deterministic fake embedder.

Covers: picklable work items, processor and results; large documents committed in several
transactions and resumed after a kill between two commits; excludes; progress events.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from snaprag.index.store import Store
from snaprag.ingest.chunking import Chunker
from snaprag.ingest.commit import Committer
from snaprag.ingest.job import IngestJob
from snaprag.ingest.plan import Candidate, WorkItem, discover, plan, plan_one
from snaprag.ingest.process import Processed, Processor, process, process_all

DIM = 16
WORD = re.compile(r"\S+")


class FakeEmbedder:
    """Whitespace tokens, bag-of-words hashed vectors; counts what it embeds."""

    name = "fake-words"
    dim = DIM
    max_tokens = 512

    def __init__(self) -> None:
        self.embedded = 0

    def warm_up(self) -> None:
        pass

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in WORD.finditer(text)]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self._vectors(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)

    @staticmethod
    def _vectors(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, hashlib.md5(w.encode()).digest()[0] % DIM] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out


class Killed(Exception):
    """Stands for SIGKILL between two commits: nothing catches it."""


def make_job(store: Store, emb: FakeEmbedder, events: list | None = None, **kw) -> IngestJob:
    chunker = Chunker(emb.count_tokens, emb.token_offsets, max_tokens=40, overlap=8)
    progress = (lambda e, d: events.append((e, d))) if events is not None else None
    return IngestJob(store, emb, chunker, "float16", 10**8, progress, **kw)


def big_text(n_sentences: int) -> str:
    """One paragraph; distinct words at both ends to search for."""
    words = ["amber", "basalt", "cedar", "dune", "ember", "fjord", "granite", "heath"]
    body = " ".join(
        f"Sentence {i} tells of {words[i % 8]} and {words[(i * 3) % 8]} near {i}."
        for i in range(n_sentences)
    )
    return f"Zanzibar opens the file. {body} Quokka closes the file."


def rows(store: Store) -> list[tuple]:
    return (
        store._conn()
        .execute(
            "SELECT d.doc_id, c.seq, c.text, c.char_start, c.char_end, c.tokens, c.vector "
            "FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY d.doc_id, c.seq"
        )
        .fetchall()
    )


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "index.db")
    yield s
    s.close()


# --------------------------------------------------------------------------- pickling


def test_work_items_processor_and_results_pickle(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(big_text(30))
    found = discover([tmp_path])
    items = plan(found, None, 10**6)
    assert [type(i) for i in items] == [WorkItem]
    item = pickle.loads(pickle.dumps(items[0]))
    assert item == items[0]
    processor = Processor(FakeEmbedder(), max_tokens=40, overlap=8, batch_chunks=3)
    copy = pickle.loads(pickle.dumps(processor))
    assert (copy.max_tokens, copy.overlap, copy.batch_chunks) == (40, 8, 3)
    done = pickle.loads(pickle.dumps(process_all(item, copy)))
    direct = process_all(items[0], processor)
    assert isinstance(done, Processed) and done.info == direct.info
    assert len(done.batches) == len(direct.batches) > 2
    for a, b in zip(done.batches, direct.batches, strict=True):
        assert a.vectors.dtype == np.float32 and np.array_equal(a.vectors, b.vectors)
        assert a.terms == b.terms and a.chunks == b.chunks and a.parts == b.parts
    assert [b.last for b in done.batches] == [False] * (len(done.batches) - 1) + [True]
    assert pickle.loads(pickle.dumps(found)).entries == found.entries


def test_onnx_embedder_pickles_without_loading(tmp_path: Path) -> None:
    """A process pool ships the processor, embedder included, to its workers."""
    from snaprag.embed.onnx_embedder import OnnxEmbedder

    emb = OnnxEmbedder("minilm", tmp_path / "cache", "int8", 1, 8)
    copy = pickle.loads(pickle.dumps(Processor(emb)))
    assert copy.embedder.spec == "minilm" and copy.embedder.batch_size == 8
    assert not copy.embedder.loaded  # the worker loads the model on its side
    emb.embed_queries(["load it"])
    again = pickle.loads(pickle.dumps(emb))  # a loaded one pickles without its session
    assert emb.loaded and not again.loaded
    assert again.embed_queries(["load it"]).shape == (1, again.dim)


def test_process_reads_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n" + big_text(5))
    monkeypatch.setattr(sqlite3, "connect", None)  # any database access would fail
    item = plan_one(Candidate(str(tmp_path / "a.md"), str(tmp_path / "a.md"), True), None, 10**6)
    assert isinstance(item, WorkItem)
    done = process_all(item, Processor(FakeEmbedder(), max_tokens=40, overlap=8))
    assert done.info.type == "md" and sum(len(b.chunks) for b in done.batches) > 1


# --------------------------------------------------------------------------- large documents


def test_large_document_spans_several_transactions(tmp_path: Path, store: Store) -> None:
    (tmp_path / "big.txt").write_text(big_text(400))
    emb = FakeEmbedder()
    versions = []
    job = make_job(store, emb, batch_chunks=32)
    original = job.committer.write

    def write(info, batch):
        n = original(info, batch)
        versions.append(store.version)
        assert n <= 32
        return n

    job.committer.write = write  # type: ignore[method-assign]
    report = job.run([tmp_path])
    assert report.ok and report.results[0].status == "added"
    n = report.results[0].chunks
    assert n > 3 * 32 and len(versions) == -(-n // 32)  # one version per transaction
    assert versions == sorted(set(versions))
    assert store.counts()["partial_sources"] == 0
    assert not store.pending_documents(store.source(str(tmp_path / "big.txt"))[0])


@pytest.mark.parametrize("fail_after", [1, 3])
def test_kill_between_commits_then_resume(tmp_path: Path, fail_after: int) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.txt").write_text(big_text(400))
    (docs / "small.txt").write_text("Small file about the Yarrow valley.")
    clean = Store(tmp_path / "clean.db")
    clean_emb = FakeEmbedder()
    assert make_job(clean, clean_emb, batch_chunks=32).run([docs]).ok
    total = clean.counts()["chunks"]

    store = Store(tmp_path / "killed.db")
    emb = FakeEmbedder()
    job = make_job(store, emb, batch_chunks=32)
    calls = 0
    original = Committer.write

    def dying_write(self, info, batch):
        nonlocal calls
        if calls == fail_after:
            raise Killed
        calls += 1
        return original(self, info, batch)

    job.committer.write = dying_write.__get__(job.committer)  # type: ignore[method-assign]
    with pytest.raises(Killed):
        job.run([docs])
    committed = store.counts()["chunks"]
    assert committed == 32 * fail_after
    assert store.counts()["partial_sources"] == 1  # never mistaken for a finished source
    big = store.source(str(docs / "big.txt"))
    assert big[1] is None
    assert store.document_hashes(big[0]) == {}  # the half-written document is not complete
    assert [n for _, n in store.pending_documents(big[0]).values()] == [committed]

    emb2 = FakeEmbedder()
    report = make_job(store, emb2, batch_chunks=32).run([docs])
    assert report.ok
    assert emb2.embedded == total - committed  # resumed after the last stored chunk
    assert rows(store) == rows(clean)  # same chunks, texts, offsets, terms and vectors
    assert store.counts() == clean.counts()
    texts = [r[2] for r in rows(store)]
    assert any("Zanzibar" in t for t in texts) and any("Quokka" in t for t in texts)
    again = make_job(store, FakeEmbedder(), batch_chunks=32).run([docs])
    assert {r.status for r in again.results} == {"unchanged"}
    clean.close()
    store.close()


def test_pending_document_with_other_content_is_rewritten(tmp_path: Path, store: Store) -> None:
    (tmp_path / "big.txt").write_text(big_text(300))
    job = make_job(store, FakeEmbedder(), batch_chunks=32)
    original = Committer.write
    state = {"calls": 0}

    def dying_write(self, info, batch):
        if state["calls"] == 2:
            raise Killed
        state["calls"] += 1
        return original(self, info, batch)

    job.committer.write = dying_write.__get__(job.committer)  # type: ignore[method-assign]
    with pytest.raises(Killed):
        job.run([tmp_path])
    (tmp_path / "big.txt").write_text(big_text(300).replace("Zanzibar", "Zebulon"))
    emb = FakeEmbedder()
    report = make_job(store, emb, batch_chunks=32).run([tmp_path])
    assert report.ok
    assert emb.embedded == store.counts()["chunks"]  # the whole document again
    texts = [r[2] for r in rows(store)]
    assert not any("Zanzibar" in t for t in texts) and texts[0].startswith("Zebulon")
    seqs = [r[1] for r in rows(store)]
    assert seqs == list(range(len(seqs)))  # no duplicates, no gaps


def test_resume_key_depends_on_chunk_settings() -> None:
    emb = FakeEmbedder()
    a = Processor(emb, max_tokens=40, overlap=8).resume_key("h")
    assert a == Processor(emb, max_tokens=40, overlap=8).resume_key("h")
    assert a != Processor(emb, max_tokens=41, overlap=8).resume_key("h")
    assert a != Processor(emb, max_tokens=40, overlap=8).resume_key("h2")


def test_bounded_tokenizer_calls_while_chunking(tmp_path: Path) -> None:
    class Counting(FakeEmbedder):
        largest = 0

        def count_tokens(self, texts: Sequence[str]) -> list[int]:
            Counting.largest = max(Counting.largest, len(texts))
            return super().count_tokens(texts)

    (tmp_path / "big.txt").write_text(big_text(3000))
    item = plan_one(Candidate(str(tmp_path / "big.txt"), "big", True), None, 10**8)
    done = process(item, Processor(Counting(), max_tokens=40, overlap=8))
    for _ in done.batches:
        pass
    assert 0 < Counting.largest <= 1024


# --------------------------------------------------------------------------- excludes, progress


def test_exclude_patterns(tmp_path: Path, store: Store) -> None:
    docs = tmp_path / "docs"
    for rel in ("a.txt", "b.tmp.txt", "drafts/d.txt", "x/scans/s.txt", "scans/t.txt", "keep/k.md"):
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        (docs / rel).write_text(f"Text of {rel} about herons.")
    exclude = ["*.tmp.txt", "./drafts/*", "**/scans/*"]
    report = make_job(store, FakeEmbedder()).run([docs], exclude=exclude)
    got = {Path(r.path).relative_to(docs).as_posix(): (r.status, r.reason) for r in report.results}
    assert got["a.txt"][0] == "added" and got["keep/k.md"][0] == "added"
    assert got["b.tmp.txt"] == ("ignored", "excluded by --exclude *.tmp.txt")
    assert got["drafts/d.txt"] == ("ignored", "excluded by --exclude ./drafts/*")
    assert got["x/scans/s.txt"] == ("ignored", "excluded by --exclude **/scans/*")
    assert got["scans/t.txt"] == ("ignored", "excluded by --exclude **/scans/*")
    assert store.counts()["sources"] == 2
    # a whole directory by name, and by absolute path
    report = make_job(store, FakeEmbedder()).run([docs], exclude=["keep", f"{docs}/x"])
    got = {Path(r.path).relative_to(docs).as_posix(): (r.status, r.reason) for r in report.results}
    assert got["keep"] == ("ignored", "excluded by --exclude keep")
    assert got["x"] == ("ignored", f"excluded by --exclude {docs}/x")


def test_excluded_sources_are_not_pruned(tmp_path: Path, store: Store) -> None:
    docs = tmp_path / "docs"
    (docs / "drafts").mkdir(parents=True)
    (docs / "a.txt").write_text("Alpha herons.")
    (docs / "drafts" / "d.txt").write_text("Draft herons.")
    (docs / "gone.txt").write_text("Gone herons.")
    assert make_job(store, FakeEmbedder()).run([docs]).ok
    (docs / "drafts" / "d.txt").unlink()
    (docs / "gone.txt").unlink()
    report = make_job(store, FakeEmbedder()).run([docs], prune=True, exclude=["drafts/*"])
    removed = [Path(r.path).name for r in report.results if r.status == "removed"]
    assert removed == ["gone.txt"]
    assert sorted(Path(s).name for s in store.sources()) == ["a.txt", "d.txt"]


def test_progress_names_each_file_before_its_work(tmp_path: Path, store: Store) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(big_text(40))
    (docs / "b.png").write_bytes(b"\x89PNG")
    events: list = []
    make_job(store, FakeEmbedder(), events, batch_chunks=8).run([docs])
    names = [e for e, _ in events]
    assert names[0] == "discovered" and events[0][1] == 2
    start = names.index("start")
    assert events[start][1] == str(docs / "a.txt")
    assert names[start + 1 : names.index("source", start)] == ["chunks"] * (names.count("chunks"))
    assert names.count("source") == 2
    # unchanged sources are not started: there is nothing to read but their hash
    events.clear()
    make_job(store, FakeEmbedder(), events).run([docs])
    assert "start" not in [e for e, _ in events]


def test_discover_needs_no_index(tmp_path: Path) -> None:
    found = discover([tmp_path / "nope.txt", tmp_path / "nodir"])
    assert found.candidates == []
    report = found.report()
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert all(r.reason == "no such file or directory" for r in report.results)
    assert list(tmp_path.iterdir()) == []
