"""A deterministic fake embedder for tests: no model, no files, microseconds per text.

Each word (lower-cased) is hashed into one of ``dim`` buckets with a sign (the "hashing
trick"), so texts sharing words get similar vectors and a query finds the passages that
contain its words. It is not a language model: use it to test code around retrieval
(yours or snaprag's), never to judge retrieval quality. Select it with ``model="hash"``
(or ``hash:DIM``), or inject it: ``Engine(config, embedder=HashEmbedder())``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


class HashEmbedder:
    """Bag-of-words vectors by signed feature hashing, L2-normalised."""

    def __init__(self, dim: int = 384, max_tokens: int = 512) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self.dim = dim
        self.max_tokens = max_tokens
        self.name = f"hash-{dim}"
        #: the factory name that builds this embedder again (stored as the index model)
        self.spec = f"hash:{dim}"
        #: texts embedded so far (tests count model calls with it)
        self.calls = 0

    @property
    def fingerprint(self) -> str:
        return f"hash:{self.dim}"

    def warm_up(self) -> None:
        """Nothing to load."""

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [sum(1 for _ in _TOKEN.finditer(t)) for t in texts]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _TOKEN.findall(text.lower())[: self.max_tokens]:
                if not word[0].isalnum():
                    continue
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            if norm:
                out[i] /= norm
            else:  # no word at all: one fixed unit vector, so every vector is normalised
                out[i, 0] = 1.0
        return out
