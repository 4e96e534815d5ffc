"""Quality gain and latency cost of second-stage rescoring on a collection's split.

Usage: python scripts/measure_rescoring.py DATASET SPLIT FIRST_PRESET SECOND_PRESET
       [MAX_QUERIES] [ALPHAS]
First stage: the default pipeline with FIRST_PRESET (index shared with `snaprag eval`);
second stage: SECOND_PRESET embeds the top 30 candidates of each query. One JSON line per
alpha (the first stage's share of the blended score), plus the first stage alone.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from snaprag.bench.eval import eval_workdir, load_collection
from snaprag.bench.metrics import evaluate
from snaprag.config import Config
from snaprag.embed.onnx_embedder import OnnxEmbedder
from snaprag.engine import Engine
from snaprag.ingest.job import indexed_text
from snaprag.search.fusion import minmax


def main() -> None:
    dataset, split = Path(sys.argv[1]).resolve(), sys.argv[2]
    first, second = sys.argv[3], sys.argv[4]
    max_queries = int(sys.argv[5]) if len(sys.argv) > 5 else 300
    alphas = [float(a) for a in (sys.argv[6] if len(sys.argv) > 6 else "0,0.3,0.5").split(",")]
    config = Config.from_env(model=first)
    work = eval_workdir(dataset, config)
    corpus, queries, qrels = load_collection(dataset, split, work / "collection")
    if len(queries) > max_queries:
        queries = random.Random(0).sample(queries, max_queries)
    engine = Engine(config.with_(index_dir=work / "index"))
    engine.ingest([corpus])
    texts = [q for _, q in queries]
    top = engine.search_many(texts, k=30)
    judged = {q: qrels[q] for q, _ in queries}

    def score(hit_lists) -> dict[str, float]:
        run = {qid: [h.doc_id for h in hs] for (qid, _), hs in zip(queries, hit_lists, strict=True)}
        return {k: round(v, 4) for k, v in evaluate(judged, run).items()}

    print(json.dumps({"stage": "first", "preset": first, "queries": len(queries), **score(top)}))
    embedder = OnnxEmbedder(second, config.cache_dir, threads=config.effective_threads)
    embedder.warm_up()
    # embed each query's candidates once; every alpha blends the same cosines
    start = time.perf_counter()
    cosines = []
    for q, hs in zip(texts, top, strict=True):
        qv = embedder.embed_queries([q])[0]
        pv = embedder.embed_passages([indexed_text(h.title, h.text) for h in hs])
        cosines.append(pv @ qv)
    ms = (time.perf_counter() - start) * 1000 / len(texts)
    for alpha in alphas:
        rescored = []
        for hs, cos in zip(top, cosines, strict=True):
            first_stage = np.array([h.score for h in hs])
            blended = alpha * minmax(first_stage) + (1 - alpha) * minmax(cos)
            rescored.append([hs[i] for i in sorted(range(len(hs)), key=lambda i: -blended[i])])
        print(
            json.dumps(
                {
                    "stage": "rescored",
                    "second": second,
                    "alpha": alpha,
                    "ms_per_query": round(ms, 1),
                    **score(rescored),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
