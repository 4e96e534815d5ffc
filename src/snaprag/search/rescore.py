"""Second-stage rescoring of the top candidates with another (stronger) bi-encoder.

Available offline with the bundled presets (e.g. the multilingual ``e5-small`` over a
``minilm`` index). The first stage's fused scores and the second model's cosines are each
min-max normalised over the candidates and blended; ``alpha`` is the weight of the first
stage. Costs one passage embedding per candidate and query (see docs/benchmarks.md), so it
is off by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..embed.base import Embedder
from ..index.tokenize import indexed_text
from ..types import Hit
from .fusion import minmax


class BiEncoderRescorer:
    """Blends the first stage's scores with a second bi-encoder's cosines."""

    def __init__(self, embedder: Embedder, alpha: float = 0.3) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.embedder = embedder
        self.alpha = alpha

    @property
    def fingerprint(self) -> str:
        inner = getattr(self.embedder, "fingerprint", self.embedder.name)
        return f"rescore:{inner}|alpha={self.alpha}"

    def warm_up(self) -> None:
        """Both sides: a rescore embeds the query and the candidate passages."""
        self.embedder.warm_up()
        self.embedder.embed_passages(["warm up"])

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int | None = None) -> list[Hit]:
        n = len(hits) if top_n is None else min(top_n, len(hits))
        if n == 0:
            return list(hits)
        head = list(hits[:n])
        q = self.embedder.embed_queries([query])[0]
        p = self.embedder.embed_passages([indexed_text(h.title, h.text, h.section) for h in head])
        cosine = p @ q
        first = np.array([h.score for h in head], dtype=np.float64)
        blended = self.alpha * minmax(first) + (1.0 - self.alpha) * minmax(cosine)
        order = sorted(range(n), key=lambda i: (-blended[i], i))
        rescored = [dataclasses.replace(head[i], score=float(blended[i])) for i in order]
        return rescored + list(hits[n:])
