"""Grid-search fusion settings offline on a collection's split.

Runs dense and BM25 once per query (``candidates`` chunks each, batched), then fuses the
two ranked lists with every setting of the grid and reports nDCG@10 / Recall@10 per
setting. Tune on train splits; report on test.

Usage: python scripts/tune_fusion.py DATASET SPLIT [PRESET]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from snaprag.bench.eval import eval_workdir, load_collection
from snaprag.bench.metrics import evaluate
from snaprag.config import Config
from snaprag.engine import Engine
from snaprag.search import fusion


def main() -> None:
    dataset, split = Path(sys.argv[1]).resolve(), sys.argv[2]
    preset = sys.argv[3] if len(sys.argv) > 3 else None
    config = Config.from_env(model=preset)
    work = eval_workdir(dataset, config)  # shares the index that `snaprag eval` built
    corpus, queries, qrels = load_collection(dataset, split, work / "collection")
    engine = Engine(config.with_(index_dir=work / "index"))
    engine.ingest([corpus])
    texts = [q for _, q in queries]
    n = config.candidates
    dense = engine.search_many(texts, k=n, mode="dense")
    lexical = engine.search_many(texts, k=n, mode="bm25")
    ids: dict[str, int] = {}
    doc_of: dict[int, str] = {}

    def ranked(hits):
        rows = []
        for h in hits:
            i = ids.setdefault(h.id, len(ids))
            doc_of[i] = h.doc_id
            rows.append(i)
        return np.array(rows, dtype=np.int64), np.array([h.score for h in hits])

    pairs = [(ranked(d), ranked(b)) for d, b in zip(dense, lexical, strict=True)]
    judged = {q: qrels[q] for q, _ in queries}
    grid = [("rrf", w, k) for w in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0) for k in (10, 30, 60)]
    grid += [("weighted", w, None) for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)]
    for kind, w, k in grid:
        run = {}
        for (qid, _), (d, b) in zip(queries, pairs, strict=True):
            if kind == "rrf":
                rows, _ = fusion.rrf([d, b], [w, 1.0], k or 60, 100)
            else:
                rows, _ = fusion.weighted([d, b], [w, 1.0 - w], 100)
            run[qid] = [doc_of[int(r)] for r in rows]
        scores = evaluate(judged, run)
        print(
            json.dumps(
                {
                    "fusion": kind,
                    "dense_weight": w,
                    "rrf_k": k,
                    "ndcg@10": round(scores["ndcg@10"], 4),
                    "recall@10": round(scores["recall@10"], 4),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
