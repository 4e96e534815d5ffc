"""Chroma's PersistentClient at its defaults (HNSW, L2 space: on unit vectors the same order
as cosine), given precomputed all-MiniLM-L6-v2 vectors (its own default embedding function
downloads an ONNX model on first use, impossible offline; the same sentence-transformers
encoder as the reference keeps the comparison about the store). Dense only: the local
client ranks no full text."""

from __future__ import annotations

import time
from typing import Any

import chromadb
import sentence_transformers  # noqa: F401  (see driver_common.load_sentence_transformer)
from driver_common import Searcher, encode, load_sentence_transformer, main, read_corpus


def build(spec: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    model = load_sentence_transformer()
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = read_corpus(spec["corpus"])
    client = chromadb.PersistentClient(path=spec["index_dir"])
    docs = client.create_collection("docs")
    step = min(1000, client.get_max_batch_size())
    for i in range(0, len(rows), step):
        part = rows[i : i + step]
        texts = [text for _, text in part]
        docs.add(
            ids=[doc_id for doc_id, _ in part],
            embeddings=encode(model, texts),
            documents=texts,
        )
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(rows)}


class ChromaSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.model = load_sentence_transformer()
        self.docs = chromadb.PersistentClient(path=spec["index_dir"]).get_collection("docs")
        self.search_batch = self._search_batch

    def _search_batch(self, queries: list[str], k: int) -> list[list[str]]:
        found = self.docs.query(
            query_embeddings=encode(self.model, queries), n_results=k, include=[]
        )
        return found["ids"]

    def search(self, query: str, k: int) -> list[str]:
        return self._search_batch([query], k)[0]


if __name__ == "__main__":
    main(build, ChromaSearcher, ("chromadb", "sentence-transformers", "torch", "numpy"))
