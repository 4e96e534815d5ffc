"""Qdrant's local mode (``QdrantClient(path=...)``, on disk) at its defaults, given
precomputed all-MiniLM-L6-v2 vectors with cosine distance. fastembed would embed inside
the client, but it fetches its models (and the BM25 sparse model a hybrid needs) from the
hub, which is unreachable offline; so this peer is dense only."""

from __future__ import annotations

import time
from typing import Any

import sentence_transformers  # noqa: F401  (see driver_common.load_sentence_transformer)
from driver_common import Searcher, encode, load_sentence_transformer, main, read_corpus
from qdrant_client import QdrantClient, models

COLLECTION = "docs"


def build(spec: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    model = load_sentence_transformer()
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = read_corpus(spec["corpus"])
    client = QdrantClient(path=spec["index_dir"])
    client.create_collection(
        COLLECTION,
        vectors_config=models.VectorParams(
            size=model.get_embedding_dimension(), distance=models.Distance.COSINE
        ),
    )
    step = 256
    for i in range(0, len(rows), step):
        part = rows[i : i + step]
        vectors = encode(model, [text for _, text in part])
        client.upsert(
            COLLECTION,
            points=[
                models.PointStruct(id=i + j, vector=v.tolist(), payload={"doc_id": doc_id})
                for j, ((doc_id, _), v) in enumerate(zip(part, vectors, strict=True))
            ],
        )
    client.close()
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(rows)}


class QdrantSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.model = load_sentence_transformer()
        self.client = QdrantClient(path=spec["index_dir"])
        self.search_batch = self._search_batch

    def search(self, query: str, k: int) -> list[str]:
        vector = encode(self.model, [query])[0].tolist()
        found = self.client.query_points(COLLECTION, query=vector, limit=k, with_payload=True)
        return [p.payload["doc_id"] for p in found.points]

    def _search_batch(self, queries: list[str], k: int) -> list[list[str]]:
        requests = [
            models.QueryRequest(query=v.tolist(), limit=k, with_payload=True)
            for v in encode(self.model, queries)
        ]
        found = self.client.query_batch_points(COLLECTION, requests=requests)
        return [[p.payload["doc_id"] for p in r.points] for r in found]


if __name__ == "__main__":
    main(build, QdrantSearcher, ("qdrant-client", "sentence-transformers", "torch", "numpy"))
