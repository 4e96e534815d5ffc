"""Haystack (3.x, the current major version; the pipeline API of 2.x) at its defaults: an
InMemoryDocumentStore (saved to disk) holding documents embedded by
SentenceTransformersDocumentEmbedder with the all-MiniLM-L6-v2 folder of the shared PyPI
package; a query pipeline of the text embedder and embedding retriever beside the BM25
retriever, joined by DocumentJoiner with reciprocal rank fusion. Whole documents, no
splitter. No batch API for a pipeline run."""

from __future__ import annotations

import os
import time
from typing import Any

from driver_common import Searcher, main, model_dir, read_corpus
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.document_stores.in_memory import InMemoryDocumentStore

# Haystack 3 ships its sentence-transformers embedders as an integration package
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)


def _store_path(spec: dict[str, Any]) -> str:
    return os.path.join(spec["index_dir"], "store.json")


def build(spec: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    embedder = SentenceTransformersDocumentEmbedder(model=model_dir(), progress_bar=False)
    embedder.warm_up()
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    docs = [
        Document(id=doc_id, content=text, meta={"doc_id": doc_id})
        for doc_id, text in read_corpus(spec["corpus"])
    ]
    store = InMemoryDocumentStore()
    store.write_documents(embedder.run(documents=docs)["documents"])
    os.makedirs(spec["index_dir"], exist_ok=True)
    store.save_to_disk(_store_path(spec))
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(docs)}


class HaystackSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        store = InMemoryDocumentStore.load_from_disk(_store_path(spec))
        pipe = Pipeline()
        # progress_bar off: a bar drawn per query is display, not retrieval work
        embedder = SentenceTransformersTextEmbedder(model=model_dir(), progress_bar=False)
        pipe.add_component("text_embedder", embedder)
        pipe.add_component("embedding", InMemoryEmbeddingRetriever(document_store=store))
        pipe.add_component("bm25", InMemoryBM25Retriever(document_store=store))
        pipe.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
        pipe.connect("text_embedder.embedding", "embedding.query_embedding")
        pipe.connect("embedding", "joiner")
        pipe.connect("bm25", "joiner")
        pipe.warm_up()
        self.pipe = pipe

    def search(self, query: str, k: int) -> list[str]:
        out = self.pipe.run(
            {
                "text_embedder": {"text": query},
                "embedding": {"top_k": k},
                "bm25": {"query": query, "top_k": k},
                "joiner": {"top_k": k},
            }
        )
        return [d.meta["doc_id"] for d in out["joiner"]["documents"]]


if __name__ == "__main__":
    main(
        build,
        HaystackSearcher,
        ("haystack-ai", "sentence-transformers-haystack", "sentence-transformers", "torch"),
    )
