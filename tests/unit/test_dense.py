"""ExactIndex against brute force, and HnswIndex recall, persistence and filtered search."""

from __future__ import annotations

import numpy as np
import pytest

from snaprag.index.dense import ExactIndex, HnswIndex


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute_force(matrix, queries, k, mask=None):
    """Top-k by descending score, ties by row, using the same float32 product."""
    scores = queries.astype(np.float32) @ matrix.astype(np.float32).T
    out = []
    for row in scores:
        allowed = np.arange(len(row)) if mask is None else np.flatnonzero(mask)
        order = allowed[np.lexsort((allowed, -row[allowed]))][:k]
        out.append((order, row[order]))
    return out


def assert_results_equal(got, expected):
    assert len(got) == len(expected)
    for (rows, vals), (erows, evals) in zip(got, expected, strict=True):
        assert rows.dtype == np.int64 and vals.dtype == np.float32
        assert rows.tolist() == erows.tolist()
        np.testing.assert_array_equal(vals, evals)


@pytest.fixture(scope="module")
def data():
    return unit_vectors(500, 32, seed=1), unit_vectors(64, 32, seed=2)


# --------------------------------------------------------------------------- exact


@pytest.mark.parametrize("k", [1, 5, 10, 100, 499])
def test_exact_matches_brute_force(data, k):
    matrix, queries = data
    index = ExactIndex(matrix)
    assert len(index) == 500
    assert_results_equal(index.search_many(queries, k), brute_force(matrix, queries, k))


def test_exact_scores_are_descending_cosines(data):
    matrix, queries = data
    for rows, vals in ExactIndex(matrix).search_many(queries, 20):
        assert np.all(np.diff(vals) <= 0)
        assert np.all(np.abs(vals) <= 1.0 + 1e-5)
        assert len(set(rows.tolist())) == 20


def test_exact_query_finds_itself(data):
    matrix, _ = data
    results = ExactIndex(matrix).search_many(matrix[:50], 1)
    assert [r[0].tolist() for r in results] == [[i] for i in range(50)]
    np.testing.assert_allclose([r[1][0] for r in results], 1.0, atol=1e-5)


@pytest.mark.parametrize("k", [1, 7, 60, 500])
def test_exact_with_mask(data, k):
    matrix, queries = data
    mask = np.random.default_rng(3).random(len(matrix)) < 0.1
    got = ExactIndex(matrix).search_many(queries, k, mask)
    assert_results_equal(got, brute_force(matrix, queries, k, mask))
    for rows, _ in got:
        assert mask[rows].all()
        assert len(rows) == min(k, int(mask.sum()))


def test_exact_mask_excluding_everything(data):
    matrix, queries = data
    got = ExactIndex(matrix).search_many(queries[:3], 10, np.zeros(len(matrix), bool))
    assert [len(r) for r, _ in got] == [0, 0, 0]


def test_exact_mask_is_not_modified_and_results_repeat(data):
    matrix, queries = data
    mask = np.ones(len(matrix), bool)
    mask[::2] = False
    before = mask.copy()
    index = ExactIndex(matrix)
    a = index.search_many(queries, 5, mask)
    b = index.search_many(queries, 5, mask)
    np.testing.assert_array_equal(mask, before)
    assert_results_equal(a, b)


def test_exact_k_larger_than_n():
    matrix = unit_vectors(6, 4, seed=5)
    queries = unit_vectors(3, 4, seed=6)
    got = ExactIndex(matrix).search_many(queries, 50)
    assert [len(r) for r, _ in got] == [6, 6, 6]
    assert_results_equal(got, brute_force(matrix, queries, 6))


def test_exact_k_zero_and_empty_index():
    queries = unit_vectors(4, 8, seed=7)
    empty = ExactIndex(np.zeros((0, 8), np.float32))
    assert len(empty) == 0
    for index, k in ((empty, 10), (ExactIndex(unit_vectors(5, 8, seed=8)), 0)):
        got = index.search_many(queries, k)
        assert len(got) == 4
        for rows, vals in got:
            assert rows.dtype == np.int64 and vals.dtype == np.float32 and len(rows) == 0


def test_exact_no_queries(data):
    matrix, _ = data
    assert ExactIndex(matrix).search_many(np.zeros((0, 32), np.float32), 5) == []


def test_exact_accepts_float64_and_non_contiguous(data):
    matrix, queries = data
    index = ExactIndex(np.asfortranarray(matrix.astype(np.float64)))
    assert index.matrix.dtype == np.float32 and index.matrix.flags.c_contiguous
    assert_results_equal(index.search_many(queries, 5), ExactIndex(matrix).search_many(queries, 5))


def test_exact_ties_ordered_by_row():
    base = unit_vectors(1, 16, seed=9)
    matrix = np.repeat(base, 8, axis=0)
    got = ExactIndex(matrix).search_many(base, 8)
    assert got[0][0].tolist() == list(range(8))
    matrix = np.vstack([unit_vectors(1, 16, seed=10), base, base, base])
    rows, vals = ExactIndex(matrix).search_many(base, 4)[0]
    assert rows.tolist() == [1, 2, 3, 0]
    assert vals[0] == vals[1] == vals[2]


def test_exact_ties_at_the_cut_keep_lowest_rows():
    matrix = np.zeros((12, 2), np.float32)
    matrix[:, 0] = 0.5
    matrix[[0, 3, 5, 7, 9, 11], 0] = 1.0
    query = np.array([[1.0, 0.0]], np.float32)
    index = ExactIndex(matrix)
    assert index.search_many(query, 3)[0][0].tolist() == [0, 3, 5]
    assert index.search_many(query, 5)[0][0].tolist() == [0, 3, 5, 7, 9]


@pytest.mark.parametrize("seed", range(3))
def test_exact_many_ties_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 3, size=(200, 6)).astype(np.float32)  # many equal scores
    queries = rng.integers(0, 3, size=(10, 6)).astype(np.float32)
    # k = n: no cut inside a group of ties, so the order alone decides
    assert_results_equal(
        ExactIndex(matrix).search_many(queries, 200), brute_force(matrix, queries, 200)
    )


# --------------------------------------------------------------------------- hnsw


@pytest.fixture(scope="module")
def hnsw_data():
    pytest.importorskip("hnswlib")
    matrix = unit_vectors(2000, 64, seed=11)
    queries = unit_vectors(200, 64, seed=12)
    return matrix, queries, HnswIndex.build(matrix, threads=2)


def test_hnsw_recall_at_10(hnsw_data):
    matrix, queries, index = hnsw_data
    assert len(index) == 2000 and index.kind == "hnsw"
    approx = index.search_many(queries, 10)
    exact = ExactIndex(matrix).search_many(queries, 10)
    hits = sum(
        len(set(a.tolist()) & set(e.tolist())) for (a, _), (e, _) in zip(approx, exact, strict=True)
    )
    recall = hits / (10 * len(queries))
    assert recall >= 0.95, recall


def test_hnsw_scores_are_cosines(hnsw_data):
    matrix, queries, index = hnsw_data
    for rows, vals in index.search_many(queries[:20], 10):
        assert rows.dtype == np.int64 and vals.dtype == np.float32
        assert len(rows) == len(vals) == 10
        assert np.all(np.diff(vals) <= 1e-6)
    rows, vals = index.search_many(queries[:1], 10)[0]
    np.testing.assert_allclose(vals, matrix[rows] @ queries[0], atol=1e-4)


def test_hnsw_save_load_round_trip(hnsw_data, tmp_path):
    matrix, queries, index = hnsw_data
    index.save(tmp_path)
    assert (tmp_path / "hnsw.bin").stat().st_size > 0
    loaded = HnswIndex.load(tmp_path, dim=64, n=len(matrix))
    assert len(loaded) == len(matrix)
    before = index.search_many(queries, 10)
    after = loaded.search_many(queries, 10)
    for (r1, v1), (r2, v2) in zip(before, after, strict=True):
        assert r1.tolist() == r2.tolist()
        np.testing.assert_allclose(v1, v2, atol=1e-6)


def test_hnsw_mask_falls_back_to_exact(hnsw_data):
    matrix, queries, index = hnsw_data
    mask = np.zeros(len(matrix), bool)
    mask[np.random.default_rng(13).choice(len(matrix), 37, replace=False)] = True
    got = index.search_many(queries[:20], 10, mask)
    assert_results_equal(got, ExactIndex(matrix).search_many(queries[:20], 10, mask))
    for rows, _ in got:
        assert mask[rows].all()


def test_hnsw_k_limits():
    pytest.importorskip("hnswlib")
    matrix = unit_vectors(30, 8, seed=14)
    queries = unit_vectors(4, 8, seed=15)
    index = HnswIndex.build(matrix)
    got = index.search_many(queries, 100)  # k > n returns all n
    assert [len(r) for r, _ in got] == [30] * 4
    for rows, _ in got:
        assert sorted(rows.tolist()) == list(range(30))
    assert all(len(r) == 0 for r, _ in index.search_many(queries, 0))


def test_hnsw_empty_index():
    pytest.importorskip("hnswlib")
    index = HnswIndex.build(np.zeros((0, 8), np.float32))
    assert len(index) == 0
    got = index.search_many(unit_vectors(3, 8, seed=16), 5)
    assert len(got) == 3 and all(len(r) == 0 for r, _ in got)


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_vector_index_contract_add_delete_save_load(kind, tmp_path):
    """Both backends: add appends rows, delete hides them (filtered or not), and a saved
    index loads back with its deletions."""
    from snaprag.index.base import RowFilter, VectorIndex
    from snaprag.index.factory import vector_index_class
    from snaprag.types import Filters

    cls = vector_index_class(kind)
    matrix = unit_vectors(300, 16, seed=21)
    index = cls.build(matrix[:200], 1)
    assert isinstance(index, VectorIndex)
    rows = index.add(matrix[200:])
    assert rows.tolist() == list(range(200, 300)) and index.count() == 300
    # every row is its own nearest neighbour, including the added ones
    got = index.search_many(matrix[[5, 250]], 1)
    assert [int(r[0]) for r, _ in got] == [5, 250]
    index.delete(np.array([5, 250, 5]))
    index.delete(np.array([250]))  # deleting twice is not an error
    assert index.count() == 298
    for r, _ in index.search_many(matrix[[5, 250]], 10):
        assert 5 not in r.tolist() and 250 not in r.tolist()
    everything = RowFilter(Filters(source="*"), np.ones(300, bool))
    for r, _ in index.search_many(matrix[[5, 250]], 10, everything):
        assert 5 not in r.tolist() and 250 not in r.tolist()
    index.save(tmp_path)
    loaded = cls.load(tmp_path, 16, 300)
    assert loaded.count() == 298
    assert [int(r[0]) for r, _ in loaded.search_many(matrix[[7]], 1)] == [7]
    for r, _ in loaded.search_many(matrix[[5]], 10):
        assert 5 not in r.tolist()


def test_unknown_vector_index_names_the_valid_ones():
    from snaprag.errors import ConfigError
    from snaprag.index.factory import vector_index_class

    with pytest.raises(ConfigError, match="exact, hnsw"):
        vector_index_class("faiss")
