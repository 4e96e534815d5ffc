"""Ingestion on a real local Ray cluster gives the index a local ingest gives, and resumes.

One Ray cluster for the module (``ray.init(num_cpus=2)`` in this process: a real head node
that the CLI subprocesses join by its address). The real bundled model runs in the actors.

* the same sources through the local runner and through Ray actors: same results per
  source (including a failed file and a document-id clash that abandons a source whose
  packs are already in flight), same chunks, same vectors (within float16 rounding of
  thread-count differences), same search hits;
* ``snaprag ingest --ray ADDRESS`` killed after its first commit, then ``snaprag ingest
  --ray`` (a local Ray of its own) finishes it: only the rest is embedded, and the index
  equals a clean local run's.
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snaprag import Engine

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "scifact"
#: short chunks: several transactions from few documents, so the model's time stays small
SMALL_CHUNKS = {"chunk_tokens": 48, "chunk_overlap": 8}
QUERIES = [
    "vitamin D deficiency and bone density",
    "microglia in the developing brain",
    "warranty on the frame",
    "How do I reset the control box?",
]


@pytest.fixture(scope="module")
def ray_address() -> Any:
    """A two-CPU Ray head node for the module; its address for other drivers."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def scifact_records(start: int, stop: int) -> list[dict[str, Any]]:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, start, stop)]


@pytest.fixture
def corpus(tmp_path: Path, make) -> Path:
    """Every loader, two multi-batch BEIR files, a broken PDF, and a document-id clash."""
    if not SCIFACT.exists():
        pytest.skip("../shared/datasets/scifact not present")
    root = tmp_path / "corpus"
    root.mkdir()
    head = scifact_records(0, 120)  # ~800 short chunks: two transactions
    tail = scifact_records(120, 160)
    make.beir(root / "scifact-a.jsonl", head)
    make.beir(root / "scifact-b.jsonl", tail)
    # indexed first, it owns one of scifact-b's ids: scifact-b fails with its packs in flight
    make.beir(root / "a-clash.jsonl", [dict(tail[10], title="clash")])
    make.warranty_docs(root)
    make.pdf(root / "manual.pdf", ["Reset the control box by holding the button.", "Page 2"])
    make.docx(root / "notes.docx", "Notes", ["The frame carries a lifetime warranty."])
    (root / "page.html").write_text("<html><body><h1>Page</h1><p>Plain html.</p></body></html>")
    (root / "zz-broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (root / "zz-tail.md").write_text("# Tail\n\nThe last source, after the failures.\n")
    return root


def rows(index: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{index / 'snaprag.db'}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT d.doc_id, c.seq, c.text, c.page, c.char_start, c.char_end "
            "FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY d.doc_id, c.seq"
        ).fetchall()
    finally:
        conn.close()


def vectors_by_chunk(eng: Engine) -> dict[tuple[str, int], np.ndarray]:
    store = eng.store
    arrays = store.read_index(eng.embedder.dim, store.get_meta("vector_dtype") or "float16")
    info = store.chunk_rows([int(r) for r in arrays.row_ids])
    return {
        (info[int(r)].doc_id, info[int(r)].seq): v.astype(np.float32)
        for r, v in zip(arrays.row_ids, arrays.vectors, strict=True)
    }


def test_ray_ingest_equals_local_ingest(corpus: Path, ray_address: str, tmp_path: Path) -> None:
    from snaprag.ingest.runners.ray import RayRunner

    reports = {}
    for name in ("local", "ray"):
        runner = RayRunner(ray_address) if name == "ray" else "local"
        with Engine.open(tmp_path / name, **SMALL_CHUNKS) as eng:
            reports[name] = eng.ingest([corpus], runner=runner)
        if name == "ray":
            runner.close()  # type: ignore[union-attr]
    local, remote = reports["local"], reports["ray"]
    statuses = [
        (Path(r.path).name, r.status, r.reason, r.documents, r.chunks) for r in local.results
    ]
    assert statuses == [
        (Path(r.path).name, r.status, r.reason, r.documents, r.chunks) for r in remote.results
    ]
    failed = {name: reason for name, status, reason, *_ in statuses if status == "failed"}
    assert set(failed) == {"scifact-b.jsonl", "zz-broken.pdf"}, statuses
    assert "already indexed" in failed["scifact-b.jsonl"]
    assert statuses[-1][:2] == ("zz-tail.md", "added")  # the stream went on after both
    assert local.chunks_embedded > 512  # scifact-a alone needs two transactions
    # the work really ran on the actors, and each says what it did
    workers = remote.runner.workers
    assert remote.runner.name == "ray" and len(workers) == 2
    assert all(w.node and w.cpus == 1 for w in workers)
    # both actors embedded, and every chunk that was committed was embedded by one of them
    # (the clashing source's packs may have been embedded too, then dropped)
    assert all(w.chunks > 0 for w in workers)
    assert sum(w.chunks for w in workers) >= remote.chunks_embedded == local.chunks_embedded

    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    with (
        Engine.open(tmp_path / "local", **SMALL_CHUNKS) as a,
        Engine.open(tmp_path / "ray", **SMALL_CHUNKS) as b,
    ):
        va, vb = vectors_by_chunk(a), vectors_by_chunk(b)
        assert va.keys() == vb.keys() and len(va) == local.chunks_embedded
        diff = max(float(np.abs(va[k] - vb[k]).max()) for k in va)
        assert diff < 2e-3, diff  # float16 storage; ONNX threads 2 here, 1 in an actor
        for query in QUERIES:
            assert [h.id for h in a.search(query, k=5)] == [h.id for h in b.search(query, k=5)]


# --------------------------------------------------------------------------- kill and resume

N_DOCS = 1600  # one chunk each: four transactions of 512 (three full)


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = ["amber", "basalt", "cedar", "dune", "ember", "fjord", "granite", "heath", "iris"]
    path = tmp_path_factory.mktemp("big") / "BIG.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(N_DOCS):
            text = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(10))
            record = {"_id": f"doc-{i:05d}", "title": f"Record {i}", "text": f"Record {i} {text}."}
            f.write(json.dumps(record) + "\n")
    return path


def committed(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet, or caught mid-checkpoint
        return None


def test_killed_ray_ingest_resumes(
    big_corpus: Path, ray_address: str, tmp_path: Path, cli, run_cli
) -> None:
    with Engine.open(tmp_path / "clean") as eng:
        assert eng.ingest([big_corpus]).chunks_embedded == N_DOCS
    clean = rows(tmp_path / "clean")

    index = tmp_path / "index"
    db = index / "snaprag.db"
    with (tmp_path / "ingest.log").open("w") as log:
        proc = subprocess.Popen(
            cli.command("ingest", big_corpus, "--index", index, "--ray", ray_address),
            env=cli.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 180
    while not committed(db):
        if proc.poll() is not None:
            pytest.fail(
                f"ingest ended (rc={proc.returncode}): {(tmp_path / 'ingest.log').read_text()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no commit became visible in time")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    done = committed(db)
    assert done is not None and 0 < done < N_DOCS, "the kill came too late"
    assert done % 512 == 0  # whole batches only
    with Engine.open(index) as eng:
        assert eng.stats()["partial_sources"] == 1

    # the rest, on a local Ray the command starts for itself
    res = run_cli("ingest", big_corpus, "--index", index, "--ray", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    report = res.json()
    assert report["failed"] == 0 and report["updated"] == 1
    assert report["chunks_embedded"] == N_DOCS - done  # nothing committed is embedded again
    assert report["runner"]["name"] == "ray" and report["runner"]["address"] == "local"
    assert sum(w["chunks"] for w in report["runner"]["workers"]) == N_DOCS - done
    assert rows(index) == clean
    with Engine.open(index) as eng:
        assert eng.stats()["partial_sources"] == 0
        assert eng.search("Record 1234", k=1, mode="bm25")[0].doc_id == "doc-01234"
