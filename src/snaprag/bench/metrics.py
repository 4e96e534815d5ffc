"""Ranking metrics over graded relevance judgements (trec_eval conventions).

``qrels`` maps query id -> {doc id: grade}; grades <= 0 count as not relevant. ``run``
maps query id -> doc ids ranked best first (duplicates are ignored after the first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]


def _dedup(ranked: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for d in ranked:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def ndcg_at(rels: Mapping[str, int], ranked: Sequence[str], k: int) -> float:
    """nDCG@k with linear gains (grade) and log2 discounts, as trec_eval's ndcg_cut."""
    gains = [max(0, rels.get(d, 0)) for d in _dedup(ranked)[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(rels: Mapping[str, int], ranked: Sequence[str], k: int) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(_dedup(ranked)[:k])) / len(relevant)


def mrr_at(rels: Mapping[str, int], ranked: Sequence[str], k: int) -> float:
    for i, d in enumerate(_dedup(ranked)[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean metrics over the queries that have at least one relevant document."""
    judged = [q for q, rels in qrels.items() if any(g > 0 for g in rels.values())]
    if not judged:
        return {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    n = len(judged)
    return {
        "ndcg@10": sum(ndcg_at(qrels[q], run.get(q, ()), 10) for q in judged) / n,
        "recall@10": sum(recall_at(qrels[q], run.get(q, ()), 10) for q in judged) / n,
        "recall@100": sum(recall_at(qrels[q], run.get(q, ()), 100) for q in judged) / n,
        "mrr@10": sum(mrr_at(qrels[q], run.get(q, ()), 10) for q in judged) / n,
    }
