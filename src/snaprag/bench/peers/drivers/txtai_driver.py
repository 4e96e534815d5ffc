"""txtai's hybrid Embeddings (dense + its own BM25 scoring, with stored content) at its
defaults: the model is the all-MiniLM-L6-v2 folder of the shared PyPI package, loaded
through txtai's own vector method; its default ANN backend is Faiss, which switches to an
IVF index above 5,000 rows (probing few cells). ``settings`` may override the config (the
exact-search variant sets ``backend: numpy``)."""

from __future__ import annotations

import time
from typing import Any

from driver_common import Searcher, main, model_dir, read_corpus
from txtai import Embeddings


def build(spec: dict[str, Any]) -> dict[str, Any]:
    config = {"path": model_dir(), "content": True, "hybrid": True, **spec["settings"]}
    t = time.perf_counter()
    embeddings = Embeddings(config)
    embeddings.transform("load the model")  # txtai loads the model lazily on first use
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = read_corpus(spec["corpus"])
    embeddings.index([(doc_id, text, None) for doc_id, text in rows])
    embeddings.save(spec["index_dir"])
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(rows)}


class TxtaiSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.embeddings = Embeddings()
        self.embeddings.load(spec["index_dir"])
        self.search_batch = self._search_batch

    def search(self, query: str, k: int) -> list[str]:
        return [str(r["id"]) for r in self.embeddings.search(query, k)]

    def _search_batch(self, queries: list[str], k: int) -> list[list[str]]:
        return [[str(r["id"]) for r in rs] for rs in self.embeddings.batchsearch(queries, k)]


if __name__ == "__main__":
    main(build, TxtaiSearcher, ("txtai", "faiss-cpu", "transformers", "torch", "numpy"))
