"""snaprag through the same harness as its peers, at its defaults (hybrid search, int8 ONNX
all-MiniLM-L6-v2 converted from the same PyPI package, chunked documents ranked by their
best chunk). The query cache is off: every query is answered, not looked up."""

from __future__ import annotations

import time
from typing import Any

from driver_common import Searcher, main

from snaprag import Engine

#: chunks fetched per wanted document for the quality depth (several chunks share a document)
CHUNKS_PER_DOC = 3


def build(spec: dict[str, Any]) -> dict[str, Any]:
    engine = Engine.open(spec["index_dir"], cache=False)
    t = time.perf_counter()
    engine.embedder.embed_queries(["load the model"])
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    report = engine.ingest([spec["corpus"]])
    ingest_s = time.perf_counter() - t
    if not report.ok:
        raise RuntimeError(f"snaprag ingest failed: {report.failed[0].reason}")
    chunks = engine.stats()["chunks"]
    engine.close()
    return {"model_load_s": model_load_s, "ingest_s": ingest_s, "items": chunks}


class SnapragSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.engine = Engine.open(spec["index_dir"], cache=False)
        self.engine.warm_up()
        self.search_batch = self._search_batch

    def search(self, query: str, k: int) -> list[str]:
        return [h.doc_id for h in self.engine.search(query, k=k)]

    def _search_batch(self, queries: list[str], k: int) -> list[list[str]]:
        return [[h.doc_id for h in hs] for hs in self.engine.search_many(queries, k=k)]

    def rank(self, query: str, depth: int) -> list[str]:
        return self.search(query, depth * CHUNKS_PER_DOC)


if __name__ == "__main__":
    main(build, SnapragSearcher, ("snaprag", "onnxruntime", "numpy", "tokenizers"))
