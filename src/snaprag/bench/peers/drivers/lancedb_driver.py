"""LanceDB's hybrid search at its defaults: a vector column (no ANN index: LanceDB scans
flat until an index is made, which its docs suggest from ~100k rows) plus its native
full-text index, fused by its default reranker (RRF). Precomputed all-MiniLM-L6-v2 vectors
from the same encoder as the reference. No batch API for hybrid queries."""

from __future__ import annotations

import os
import time
from typing import Any

# a deprecation notice about auto-projected score columns is logged on every hybrid query;
# writing it would be timed as search work
os.environ.setdefault("LANCEDB_LOG", "error")

import lancedb
import pyarrow as pa
import sentence_transformers  # noqa: F401  (see driver_common.load_sentence_transformer)
from driver_common import (
    Searcher,
    encode,
    load_sentence_transformer,
    main,
    read_corpus,
)

TABLE = "docs"


def build(spec: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    model = load_sentence_transformer()
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = read_corpus(spec["corpus"])
    texts = [text for _, text in rows]
    vectors = encode(model, texts)
    dim = vectors.shape[1]
    data = pa.table(
        {
            "doc_id": pa.array([doc_id for doc_id, _ in rows]),
            "text": pa.array(texts),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
        }
    )
    table = lancedb.connect(spec["index_dir"]).create_table(TABLE, data=data)
    table.create_fts_index("text")
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(rows)}


class LanceSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.model = load_sentence_transformer()
        self.table = lancedb.connect(spec["index_dir"]).open_table(TABLE)

    def search(self, query: str, k: int) -> list[str]:
        vector = encode(self.model, [query])[0]
        found = (
            self.table.search(query_type="hybrid")
            .vector(vector)
            .text(query)
            .select(["doc_id"])
            .limit(k)
            .to_list()
        )
        return [row["doc_id"] for row in found]


if __name__ == "__main__":
    main(build, LanceSearcher, ("lancedb", "pyarrow", "sentence-transformers", "torch"))
