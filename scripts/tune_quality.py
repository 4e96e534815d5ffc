"""Grid-search the quality profile's three fusion weights on a collection's split.

Uses the index that ``SNAPRAG_PROFILE=quality snaprag eval DATASET`` built (BM25 weight
fixed at 0.6; the first and second dense weights vary). The queries are embedded once for
the whole grid: the weights only change the fusion. Tune on train splits; report on test.

Usage: python scripts/tune_quality.py DATASET SPLIT OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from snaprag import Config, Engine
from snaprag.bench.eval import eval_workdir, load_collection
from snaprag.bench.metrics import evaluate

GRID = [(d, s) for d in (0.2, 0.3, 0.4) for s in (0.0, 0.1, 0.2, 0.3, 0.4, 0.6)]


class _Replay:
    """The pair embedder, answering queries from vectors computed once."""

    def __init__(self, inner: Any, vectors: dict[str, np.ndarray]) -> None:
        self.inner, self.vectors = inner, vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def main() -> None:
    dataset, split, out = Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3])
    base = Config.from_env(cache=False, profile="quality")
    work = eval_workdir(dataset, base)  # shares the index that `snaprag eval` built
    _, queries, qrels = load_collection(dataset, split, work / "collection")
    texts = [q for _, q in queries]
    first = Engine(base.with_(index_dir=work / "index"))
    vectors = dict(zip(texts, first.retriever.embedder.embed_queries(texts), strict=True))
    rows = []
    for dense, second in GRID:
        cfg = base.with_(
            index_dir=work / "index",
            dense_weight=dense,
            bm25_weight=0.6,
            second_dense_weight=second,
        )
        retriever = Engine(cfg).retriever
        retriever.embedder = _Replay(retriever.embedder, vectors)
        hits = retriever.search_many(texts, 100)
        run = {qid: [h.doc_id for h in hs] for (qid, _), hs in zip(queries, hits, strict=True)}
        metrics = evaluate({q: qrels[q] for q, _ in queries}, run)
        row = {"dense_weight": dense, "bm25_weight": 0.6, "second_dense_weight": second}
        row.update({k: round(v, 4) for k, v in metrics.items()})
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {"dataset": dataset.name, "split": split, "queries": len(texts), "grid": rows}
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
