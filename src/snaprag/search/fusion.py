"""Fusion of ranked lists: reciprocal rank fusion and weighted score fusion.

Pure functions over ``(ids, scores)`` arrays, ranked best first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Ranked = tuple[np.ndarray, np.ndarray]


def rrf(lists: Sequence[Ranked], weights: Sequence[float], k: int = 60, limit: int = 10) -> Ranked:
    """Reciprocal rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))``, ranks from 1."""
    return _accumulate(
        [
            (ids, w / (k + np.arange(1, len(ids) + 1, dtype=np.float64)))
            for (ids, _), w in zip(lists, weights, strict=True)
        ],
        limit,
    )


def weighted(lists: Sequence[Ranked], weights: Sequence[float], limit: int = 10) -> Ranked:
    """Weighted sum of min-max normalised scores (a list's best is 1, its worst 0)."""
    parts = []
    for (ids, scores), w in zip(lists, weights, strict=True):
        parts.append((ids, w * minmax(scores)))
    return _accumulate(parts, limit)


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] (best 1, worst 0); all ones when they are all equal."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        return s
    lo, hi = float(s.min()), float(s.max())
    return (s - lo) / (hi - lo) if hi > lo else np.ones_like(s)


def _accumulate(parts: Sequence[tuple[np.ndarray, np.ndarray]], limit: int) -> Ranked:
    nonempty = [(i, s) for i, s in parts if len(i)]
    if not nonempty:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    ids = np.concatenate([i for i, _ in nonempty]).astype(np.int64)
    scores = np.concatenate([s for _, s in nonempty])
    uniq, inverse = np.unique(ids, return_inverse=True)
    total = np.bincount(inverse, weights=scores, minlength=len(uniq))
    order = np.lexsort((uniq, -total))[:limit]  # best score first, ties by id
    return uniq[order], total[order]
