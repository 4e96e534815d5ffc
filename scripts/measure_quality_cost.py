"""What the quality profile costs, measured in one process on the same data.

``query``: single searches on the index ``snaprag eval`` built (cache off), default and
quality profile: wall p50/p95, CPU time of the process per query, stage p50s.
``ingest``: passage embedding (the bulk of an ingest) of the same chunks with the first
model, the second and the pair: wall, CPU and chunks/s.

Usage:
    python scripts/measure_quality_cost.py query DATASET SPLIT PROFILE
    python scripts/measure_quality_cost.py ingest INDEX_DB N
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

from snaprag import Config, Engine
from snaprag.bench.eval import eval_workdir, load_collection
from snaprag.embed.factory import create_embedder
from snaprag.index.tokenize import indexed_text


def query_cost(dataset: Path, split: str, profile: str) -> dict:
    cfg = Config.from_env(cache=False, profile=profile)
    work = eval_workdir(dataset, cfg)
    _, queries, _ = load_collection(dataset, split, work / "collection")
    texts = [q for _, q in queries][:300]
    engine = Engine(cfg.with_(index_dir=work / "index"))
    engine.warm_up()
    engine.search_many(texts[:8], k=10)
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    cpu0 = time.process_time()
    for q in texts:
        t = time.perf_counter()
        batch = engine.retriever.search_many([q], 10)
        walls.append((time.perf_counter() - t) * 1000)
        for name, ms in batch.timings.stages.items():
            stages.setdefault(name, []).append(ms)
    cpu = (time.process_time() - cpu0) * 1000 / len(texts)
    return {
        "dataset": dataset.name,
        "split": split,
        "profile": profile,
        "model": engine.model_name,
        "queries": len(texts),
        "p50_ms": round(float(np.percentile(walls, 50)), 3),
        "p95_ms": round(float(np.percentile(walls, 95)), 3),
        "cpu_ms_per_query": round(cpu, 3),
        "stage_p50_ms": {k: round(float(np.percentile(v, 50)), 3) for k, v in stages.items()},
        "loadavg": os.getloadavg(),
    }


def ingest_cost(db: Path, n: int) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT d.title, c.text, c.section FROM chunks c JOIN documents d "
        "ON d.id = c.document_id ORDER BY c.id LIMIT ?",
        (n,),
    ).fetchall()
    texts = [indexed_text(title, text, section) for title, text, section in rows]
    cfg = Config.from_env()
    out: dict = {"chunks": len(texts), "loadavg_start": os.getloadavg()}
    for spec in ("minilm", "e5-small", "minilm+e5-small"):
        embedder = create_embedder(spec, cfg)
        embedder.warm_up()
        embedder.embed_passages(texts[:8])
        wall, cpu = time.perf_counter(), time.process_time()
        embedder.embed_passages(texts)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out[spec] = {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "chunks_per_s": round(len(texts) / wall, 1),
        }
    out["loadavg_end"] = os.getloadavg()
    return out


def main() -> None:
    if sys.argv[1] == "query":
        result = query_cost(Path(sys.argv[2]).resolve(), sys.argv[3], sys.argv[4])
    else:
        result = ingest_cost(Path(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
