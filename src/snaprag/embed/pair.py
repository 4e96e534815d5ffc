"""Two embedding models as one: the quality profile's passage vectors.

A :class:`PairEmbedder` embeds every text with both models and returns the two unit vectors
side by side, scaled by ``1/sqrt(2)`` so the pair is itself a unit vector (the
:class:`~snaprag.embed.base.Embedder` contract). Stored as one vector per chunk, the second
model's vectors then follow every lifecycle of the first's for free: written in the same row
by the same ingest, deleted with the chunk, re-embedded when a document changes, read into
the same snapshot and checked against the index's model (``minilm+e5-small``) and
dimension. At query time the retriever splits the pair (:attr:`parts`) into two matrices,
searches each with its own half of the query vector and fuses three ranked lists.

Chunks are cut by the first model's tokenizer, at the shorter of the two models' windows,
so neither model truncates a chunk the other reads whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Embedder

SEPARATOR = "+"
_SCALE = np.float32(1.0 / np.sqrt(2.0))


def pair_spec(first: str, second: str) -> str:
    """The model name of a pair (``minilm+e5-small``), as stored in the index."""
    return f"{first}{SEPARATOR}{second}"


def with_second_model(model: str, second: str | None) -> str:
    """The model an index is built with when the quality profile's ``second`` model is set.

    ``auto`` pairs an English-only preset with the multilingual preset and leaves every other
    model alone: beside the multilingual model an English-only one reads Korean text as noise
    (KorQuAD dev nDCG@10 .059 for MiniLM alone), and its list is dropped for such queries
    anyway, so it would double the ingest for nothing.
    """
    from .models import PRESETS, canonical_name

    if not second or split_spec(model) is not None:
        return model
    if second == "auto":
        preset = PRESETS.get(model)
        if preset is None or preset.languages != "en":
            return model
        second = next(p.name for p in PRESETS.values() if p.languages != "en")
    second = canonical_name(second)
    return model if second == model else pair_spec(model, second)


def split_spec(spec: str) -> tuple[str, str] | None:
    """``(first, second)`` of a pair's model name; None for a single model."""
    first, sep, second = spec.partition(SEPARATOR)
    return (first, second) if sep and first and second else None


def split_vectors(vectors: np.ndarray, parts: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The two models' unit vectors of pair vectors (rows re-normalised: stored vectors are
    float16 or int8, so each half is only nearly ``1/sqrt(2)`` long)."""
    first = parts[0]
    return _unit(vectors[:, :first]), _unit(vectors[:, first:])


def _unit(matrix: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


class PairEmbedder:
    """Embeds with two models; vectors are ``[first | second] / sqrt(2)``."""

    def __init__(self, first: Embedder, second: Embedder) -> None:
        self.first = first
        self.second = second
        self.name = pair_spec(first.name, second.name)
        self.spec = pair_spec(
            getattr(first, "spec", first.name), getattr(second, "spec", second.name)
        )
        self.dim = first.dim + second.dim
        #: the two models' dimensions, in order: how the retriever splits a pair vector
        self.parts = (first.dim, second.dim)
        # the shorter window: a chunk cut for the first model is read whole by the second
        self.max_tokens = min(first.max_tokens, second.max_tokens)

    @property
    def fingerprint(self) -> str:
        fingerprints = [getattr(e, "fingerprint", e.name) for e in (self.first, self.second)]
        return f"pair({fingerprints[0]};{fingerprints[1]})"

    def warm_up(self) -> None:
        self.first.warm_up()
        self.second.warm_up()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._join(self.first.embed_passages(texts), self.second.embed_passages(texts))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._join(self.first.embed_queries(texts), self.second.embed_queries(texts))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.first.count_tokens(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.first.token_offsets(text)

    def _join(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32).reshape(-1, self.parts[0])
        b = np.asarray(b, dtype=np.float32).reshape(-1, self.parts[1])
        return np.hstack([a, b]) * _SCALE
