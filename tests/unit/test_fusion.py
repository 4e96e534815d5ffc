"""rrf and weighted fusion: hand-computed cases and a plain-Python reference on random lists."""

from __future__ import annotations

import random

import numpy as np
import pytest

from snaprag.search.fusion import rrf, weighted


def ranked(ids, scores=None):
    ids = np.asarray(ids, dtype=np.int64)
    if scores is None:
        scores = np.linspace(1.0, 0.0, len(ids)) if len(ids) else np.zeros(0)
    return ids, np.asarray(scores, dtype=np.float64)


def empty():
    return np.zeros(0, np.int64), np.zeros(0, np.float64)


def as_pairs(result):
    ids, scores = result
    return list(zip(ids.tolist(), scores.tolist(), strict=True))


# --------------------------------------------------------------------------- reference


def ref_rrf(lists, weights, k=60, limit=10):
    total: dict[int, float] = {}
    for (ids, _), w in zip(lists, weights, strict=True):
        for rank, d in enumerate(ids, start=1):
            total[int(d)] = total.get(int(d), 0.0) + w / (k + rank)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def ref_weighted(lists, weights, limit=10):
    total: dict[int, float] = {}
    for (ids, scores), w in zip(lists, weights, strict=True):
        scores = [float(s) for s in scores]
        if not scores:
            continue
        lo, hi = min(scores), max(scores)
        for d, s in zip(ids, scores, strict=True):
            norm = (s - lo) / (hi - lo) if hi > lo else 1.0
            total[int(d)] = total.get(int(d), 0.0) + w * norm
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def assert_same(result, expected):
    ids, scores = result
    assert ids.dtype == np.int64
    assert ids.tolist() == [d for d, _ in expected]
    np.testing.assert_allclose(scores, [s for _, s in expected], rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- rrf


def test_rrf_hand_computed():
    dense = ranked([1, 2, 3])
    bm25 = ranked([3, 1])
    ids, scores = rrf([dense, bm25], [1.0, 1.0], k=60, limit=10)
    expected = {1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61}
    assert ids.tolist() == [1, 3, 2]
    np.testing.assert_allclose(scores, [expected[i] for i in ids.tolist()], rtol=1e-15)


def test_rrf_weights_scale_each_list():
    dense = ranked([10, 20])
    bm25 = ranked([20, 10])
    ids, scores = rrf([dense, bm25], [2.0, 0.5], k=60)
    s10 = 2.0 / 61 + 0.5 / 62
    s20 = 2.0 / 62 + 0.5 / 61
    assert ids.tolist() == [10, 20]
    np.testing.assert_allclose(scores, [s10, s20], rtol=1e-15)


def test_rrf_zero_weight_list_only_adds_zero():
    ids, scores = rrf([ranked([1, 2]), ranked([3])], [1.0, 0.0], k=60)
    assert ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(scores, [1 / 61, 1 / 62, 0.0])


def test_rrf_k_changes_scores():
    ids, scores = rrf([ranked([7, 8])], [1.0], k=1)
    assert ids.tolist() == [7, 8]
    np.testing.assert_allclose(scores, [1 / 2, 1 / 3])


def test_rrf_ignores_input_scores():
    a = rrf([ranked([4, 5, 6], [100.0, -3.0, -50.0])], [1.0])
    b = rrf([ranked([4, 5, 6], [0.3, 0.2, 0.1])], [1.0])
    assert as_pairs(a) == as_pairs(b)


def test_rrf_ties_broken_by_id():
    # 9 and 5 swap ranks in the two lists: equal scores, so the smaller id wins
    ids, scores = rrf([ranked([9, 5]), ranked([5, 9])], [1.0, 1.0])
    assert ids.tolist() == [5, 9]
    assert scores[0] == scores[1]
    # ids that appear only once, at the same rank of different lists
    ids, _ = rrf([ranked([30, 1]), ranked([20, 2])], [1.0, 1.0])
    assert ids.tolist() == [20, 30, 1, 2]


def test_rrf_limit():
    lists = [ranked(list(range(50))), ranked(list(range(49, -1, -1)))]
    full = rrf(lists, [1.0, 1.0], limit=100)
    assert len(full[0]) == 50
    for limit in (0, 1, 5, 50):
        ids, scores = rrf(lists, [1.0, 1.0], limit=limit)
        assert len(ids) == len(scores) == min(limit, 50)
        assert ids.tolist() == full[0][:limit].tolist()


def test_rrf_empty_inputs():
    for lists, weights in (([], []), ([empty()], [1.0]), ([empty(), empty()], [1.0, 1.0])):
        ids, scores = rrf(lists, weights)
        assert ids.dtype == np.int64 and scores.dtype == np.float64
        assert len(ids) == len(scores) == 0


@pytest.mark.parametrize("side", [0, 1])
def test_rrf_one_empty_side(side):
    lists = [ranked([3, 1, 2]), empty()]
    if side:
        lists.reverse()
    ids, scores = rrf(lists, [1.0, 1.0])
    assert ids.tolist() == [3, 1, 2]
    np.testing.assert_allclose(scores, [1 / 61, 1 / 62, 1 / 63])


def test_rrf_weights_must_match_lists():
    with pytest.raises(ValueError):
        rrf([ranked([1]), ranked([2])], [1.0])


# --------------------------------------------------------------------------- weighted


def test_weighted_min_max_hand_computed():
    dense = ranked([1, 2, 3], [0.9, 0.5, 0.1])  # -> 1, 0.5, 0
    bm25 = ranked([3, 4], [12.0, 2.0])  # -> 1, 0
    ids, scores = weighted([dense, bm25], [1.0, 2.0])
    expected = {1: 1.0, 2: 0.5, 3: 0.0 + 2.0, 4: 0.0}
    assert ids.tolist() == [3, 1, 2, 4]
    np.testing.assert_allclose(scores, [expected[i] for i in ids.tolist()])


def test_weighted_constant_scores_normalise_to_one():
    ids, scores = weighted([ranked([5, 6, 7], [0.4, 0.4, 0.4])], [3.0])
    assert ids.tolist() == [5, 6, 7]  # all tied: by id
    np.testing.assert_allclose(scores, [3.0, 3.0, 3.0])
    ids, scores = weighted([ranked([8], [-2.0])], [1.0])
    assert as_pairs((ids, scores)) == [(8, 1.0)]


def test_weighted_is_scale_and_shift_invariant():
    ids = [4, 2, 9, 1]
    raw = np.array([5.0, 3.0, 2.5, -1.0])
    a = weighted([ranked(ids, raw)], [1.0])
    b = weighted([ranked(ids, raw * 7.5 + 100.0)], [1.0])
    assert a[0].tolist() == b[0].tolist()
    np.testing.assert_allclose(a[1], b[1])
    assert a[1].max() == 1.0 and a[1].min() == 0.0


def test_weighted_empty_and_one_empty_side():
    ids, scores = weighted([empty(), empty()], [1.0, 1.0])
    assert len(ids) == len(scores) == 0 and ids.dtype == np.int64
    ids, scores = weighted([empty(), ranked([2, 1], [3.0, 1.0])], [1.0, 0.5])
    assert ids.tolist() == [2, 1]
    np.testing.assert_allclose(scores, [0.5, 0.0])


def test_weighted_limit_and_ties():
    ids, scores = weighted([ranked([3, 2], [1.0, 0.0]), ranked([2, 3], [1.0, 0.0])], [1.0, 1.0])
    assert ids.tolist() == [2, 3]
    assert scores.tolist() == [1.0, 1.0]
    ids, _ = weighted([ranked(list(range(20)))], [1.0], limit=3)
    assert ids.tolist() == [0, 1, 2]


# --------------------------------------------------------------------------- random vs reference


def random_lists(rng: random.Random, n_lists: int):
    lists = []
    for _ in range(n_lists):
        n = rng.choice([0, 1, 2, 5, 20, 60])
        ids = rng.sample(range(80), n)
        scores = sorted((rng.uniform(-3, 3) for _ in range(n)), reverse=True)
        if n and rng.random() < 0.2:
            scores = [scores[0]] * n  # constant scores
        lists.append(ranked(ids, scores))
    return lists


@pytest.mark.parametrize("seed", range(40))
def test_rrf_matches_reference(seed):
    rng = random.Random(seed)
    lists = random_lists(rng, rng.randint(1, 4))
    weights = [rng.choice([0.0, 0.5, 1.0, 1.7]) for _ in lists]
    k = rng.choice([1, 10, 60])
    limit = rng.choice([1, 10, 100])
    assert_same(rrf(lists, weights, k=k, limit=limit), ref_rrf(lists, weights, k, limit))


@pytest.mark.parametrize("seed", range(40))
def test_weighted_matches_reference(seed):
    rng = random.Random(1000 + seed)
    lists = random_lists(rng, rng.randint(1, 4))
    weights = [rng.choice([0.0, 0.5, 1.0, 1.7]) for _ in lists]
    limit = rng.choice([1, 10, 100])
    assert_same(weighted(lists, weights, limit=limit), ref_weighted(lists, weights, limit))
