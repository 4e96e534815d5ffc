"""Ranking metrics: a hand-worked example and an independent second implementation."""

from __future__ import annotations

import math
import random

import pytest

from snaprag.bench.metrics import evaluate, mrr_at, ndcg_at, recall_at


def test_hand_worked_example() -> None:
    # relevant: a (grade 3), b (grade 1), c (grade 2); ranking: x, a, c, y, b
    rels = {"a": 3, "b": 1, "c": 2}
    ranked = ["x", "a", "c", "y", "b"]
    dcg = 3 / math.log2(3) + 2 / math.log2(4) + 1 / math.log2(6)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(rels, ranked, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(rels, ranked, 2) == pytest.approx((3 / math.log2(3)) / (3 + 2 / math.log2(3)))
    assert recall_at(rels, ranked, 3) == pytest.approx(2 / 3)
    assert mrr_at(rels, ranked, 10) == pytest.approx(1 / 2)


def test_negative_and_zero_grades_are_not_relevant() -> None:
    rels = {"a": -1, "b": 0, "c": 4}
    assert recall_at(rels, ["a", "b"], 10) == 0.0
    assert mrr_at(rels, ["a", "b", "c"], 10) == pytest.approx(1 / 3)
    assert ndcg_at(rels, ["c"], 10) == 1.0
    # a query whose judgements are all non-positive is left out of the mean
    assert evaluate({"q1": {"a": -1}, "q2": {"c": 1}}, {"q1": ["a"], "q2": ["c"]}) == {
        "ndcg@10": 1.0,
        "recall@10": 1.0,
        "recall@100": 1.0,
        "mrr@10": 1.0,
    }


def test_duplicates_in_a_ranking_count_once() -> None:
    assert ndcg_at({"a": 1}, ["a", "a", "b"], 10) == 1.0
    assert recall_at({"a": 1, "b": 1}, ["a", "a"], 2) == 0.5


def test_missing_run_scores_zero() -> None:
    assert evaluate({"q": {"a": 1}}, {})["ndcg@10"] == 0.0


def _ndcg_reference(rels: dict[str, int], ranked: list[str], k: int) -> float:
    """trec_eval's ndcg_cut, written independently: gains summed over ranks 1..k."""
    dcg = 0.0
    for rank, doc in enumerate(ranked[:k], start=1):
        g = rels.get(doc, 0)
        if g > 0:
            dcg += g / math.log(rank + 1, 2)
    grades = sorted([g for g in rels.values() if g > 0], reverse=True)
    idcg = sum(g / math.log(r + 1, 2) for r, g in enumerate(grades[:k], start=1))
    return dcg / idcg if idcg else 0.0


def test_matches_an_independent_implementation_on_random_runs() -> None:
    rnd = random.Random(7)
    docs = [f"d{i}" for i in range(40)]
    for _ in range(200):
        rels = {d: rnd.choice([-1, 0, 1, 2, 3, 4]) for d in rnd.sample(docs, rnd.randint(1, 12))}
        ranked = rnd.sample(docs, rnd.randint(0, 40))
        for k in (1, 5, 10, 100):
            assert ndcg_at(rels, ranked, k) == pytest.approx(_ndcg_reference(rels, ranked, k))
        relevant = {d for d, g in rels.items() if g > 0}
        if relevant:
            expect = len(relevant & set(ranked[:10])) / len(relevant)
            assert recall_at(rels, ranked, 10) == pytest.approx(expect)
