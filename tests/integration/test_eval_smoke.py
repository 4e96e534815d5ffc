"""`snaprag eval` end to end on Cranfield (1,400 documents, 225 queries, graded qrels)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CRANFIELD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cranfield"


@pytest.mark.skipif(not CRANFIELD.exists(), reason="../shared/datasets/cranfield not present")
def test_eval_cranfield_json_contract() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "snaprag.cli", "eval", str(CRANFIELD), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "dataset",
        "split",
        "mode",
        "preset",
        "queries",
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "latency_ms",
        "ingest_chunks_per_s",
        "index_bytes",
    ):
        assert key in result
    assert result["queries"] == 225 and result["mode"] == "hybrid"
    assert set(result["latency_ms"]) >= {"p50", "p95"}
    # BM25 alone scores about .35 here; the hybrid pipeline must not be worse than .30
    assert 0.30 <= result["ndcg@10"] <= 1.0
    assert result["recall@100"] >= result["recall@10"]


def test_eval_rejects_a_non_collection(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "snaprag.cli", "eval", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "corpus.jsonl" in proc.stderr
