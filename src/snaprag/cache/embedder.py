"""Query embeddings through the cache (passages are never cached: they are stored)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .query_cache import QueryCache, hash_key


class CachedQueryEmbedder:
    """Wraps an embedder; ``embed_queries`` reads and fills the ``embedding`` namespace."""

    def __init__(self, embedder: Any, cache: QueryCache, fingerprint: str) -> None:
        self.inner = embedder
        self.cache = cache
        self.fingerprint = fingerprint

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        keys = [f"e:{hash_key([self.fingerprint, t])}" for t in texts]
        found = self.cache.tiered.get_many("embedding", keys)
        dim = self.inner.dim
        missing = [i for i, v in enumerate(found) if v is None or v.shape != (dim,)]
        if missing:
            fresh = self.inner.embed_queries([texts[i] for i in missing])
            items = []
            for j, i in enumerate(missing):
                vec = np.array(fresh[j], dtype=np.float32)
                vec.setflags(write=False)
                found[i] = vec
                items.append((keys[i], vec))
            self.cache.tiered.put_many("embedding", items)
        if not texts:
            return np.zeros((0, self.inner.dim), dtype=np.float32)
        return np.stack(found)
