"""Ingest a BEIR collection at several chunk sizes and report quality and speed per size.

Usage: python scripts/tune_chunk_size.py DATASET SPLIT SIZES   (e.g. ../shared/datasets/scifact
train 128,192,256). Tune on a train split; report on test. One JSON line per size; indexes
are left in /tmp/snaprag-tune-<size>.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from snaprag import Engine
from snaprag.bench.datasets import load_queries
from snaprag.bench.metrics import evaluate


def main() -> None:
    dataset, split, sizes = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    queries, qrels = load_queries(dataset, split)
    texts = [q for _, q in queries]
    for size in [int(x) for x in sizes.split(",")]:
        engine = Engine.open(
            Path(f"/tmp/snaprag-tune-{size}"), chunk_tokens=size, chunk_overlap=min(32, size // 4)
        )
        start = time.perf_counter()
        report = engine.ingest([dataset / "corpus.jsonl"])
        out = {
            "chunk_tokens": size,
            "chunks": engine.stats()["chunks"],
            "embed_chunks_per_s": round(report.chunks_embedded / report.embed_seconds, 1)
            if report.embed_seconds
            else None,
            "ingest_s": round(time.perf_counter() - start, 1),
        }
        for mode in ("hybrid", "dense", "bm25"):
            hits = engine.search_many(texts, k=100, mode=mode)
            run = {q: [h.doc_id for h in hs] for (q, _), hs in zip(queries, hits, strict=True)}
            scores = evaluate({q: qrels[q] for q, _ in queries}, run)
            out[mode] = {k: round(v, 4) for k, v in scores.items()}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
