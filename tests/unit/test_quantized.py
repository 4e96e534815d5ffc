"""Quantized indexes (int8, binary): candidates from the codes, rescored from float16, give
exact search's top-k over the same float16-stored vectors; persistence is memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

from snaprag.index.dense import ExactIndex
from snaprag.index.factory import memory_mapped, vector_index_class
from snaprag.index.quantized import BinaryIndex, Int8Index, QuantizedIndex
from snaprag.index.rowfile import PositionedArray

KINDS = [Int8Index, BinaryIndex]
DIM = 384  # the presets' width: binary codes of fewer bits are too coarse to test against


def clustered(n: int, dim: int, seed: int, clusters: int = 20) -> np.ndarray:
    """Unit vectors around a few centres, as sentence embeddings are (not uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    v = centres[rng.integers(0, clusters, n)] + 0.8 * rng.normal(size=(n, dim))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    matrix = clustered(3000, DIM, seed=1)
    # queries near stored rows, as real queries are near their answers
    rng = np.random.default_rng(2)
    queries = matrix[rng.integers(0, 3000, 40)] + 0.3 * rng.normal(size=(40, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    return matrix, queries


def exact_over_half(matrix: np.ndarray) -> ExactIndex:
    """The oracle: exact search over the float16-stored vectors, as the store keeps them."""
    return ExactIndex(matrix.astype(np.float16).astype(np.float32))


def recall(got, want) -> float:
    return float(
        np.mean(
            [len(set(a[0]) & set(b[0])) / max(len(b[0]), 1) for a, b in zip(got, want, strict=True)]
        )
    )


@pytest.mark.parametrize("k", [1, 10, 100])
def test_int8_gives_the_same_top_k_as_exact_search(data, k):
    matrix, queries = data
    got = Int8Index.build(matrix).search_many(queries, k)
    want = exact_over_half(matrix).search_many(queries, k)
    for (rows, scores), (wrows, wscores) in zip(got, want, strict=True):
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        assert rows.tolist() == wrows.tolist()
        np.testing.assert_allclose(scores, wscores, atol=1e-6)


# Measured on this data (tight clusters: neighbours differ in noise, which one bit per
# dimension keeps poorly): recall 1.0, .78 and .92; SciFact's real vectors do far better
# (docs/benchmarks.md, "Edge profile")
BINARY_RECALL = {1: 0.95, 10: 0.72, 100: 0.88}


@pytest.mark.parametrize("k", [1, 10, 100])
def test_binary_recall_within_measured_tolerance(data, k):
    matrix, queries = data
    got = BinaryIndex.build(matrix).search_many(queries, k)
    want = exact_over_half(matrix).search_many(queries, k)
    assert recall(got, want) >= BINARY_RECALL[k]
    half = matrix.astype(np.float16).astype(np.float32)
    for q, (rows, scores), (_, wscores) in zip(queries, got, want, strict=True):
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        assert np.all(np.diff(scores) <= 0)
        # the rows found carry their exact (rescored) scores, never above the true best
        np.testing.assert_allclose(scores, half[rows] @ q, atol=1e-6)
        assert scores[0] <= wscores[0] + 1e-6


@pytest.mark.parametrize("cls", KINDS)
def test_without_rescoring_candidates_the_codes_alone_are_worse(data, cls):
    """The rescoring is what makes the result exact: with one candidate per result the
    codes' own ranking shows through (this keeps the test above able to fail)."""
    matrix, queries = data
    index = cls.build(matrix)
    index.oversample, k = 1, 10
    small = type("NoMargin", (cls,), {"MIN_CANDIDATES": 0})(
        index.codes, index.half, index.scale, oversample=1
    )
    got = small.search_many(queries, k)
    want = exact_over_half(matrix).search_many(queries, k)
    same = np.mean([set(a[0]) == set(b[0]) for a, b in zip(got, want, strict=True)])
    assert same < 1.0


def test_int8_codes_keep_the_ranking(data):
    """The int8 scan alone (before rescoring) agrees with the float ranking closely."""
    matrix, queries = data
    index = Int8Index.build(matrix)
    approx = index._candidate_scores(queries) / index.scale
    exact = queries @ matrix.T
    assert np.abs(approx - exact).max() < 0.02
    assert index.codes.dtype == np.int8 and index.nbytes == matrix.size


def test_binary_codes_are_one_bit_per_dimension(data):
    matrix, _ = data
    index = BinaryIndex.build(matrix)
    assert index.codes.shape == (len(matrix), DIM // 8)
    assert index.nbytes * 32 == matrix.nbytes


@pytest.mark.parametrize("cls", KINDS)
def test_filters_and_deletes(data, cls):
    matrix, queries = data
    index = cls.build(matrix)
    oracle = exact_over_half(matrix)
    mask = np.random.default_rng(3).random(len(matrix)) < 0.3
    got = index.search_many(queries, 10, mask)
    want = oracle.search_many(queries, 10, mask)
    assert all(mask[rows].all() for rows, _ in got)
    assert recall(got, want) >= (1.0 if cls is Int8Index else BINARY_RECALL[10])
    few = np.zeros(len(matrix), bool)
    few[[5, 7, 2999]] = True  # fewer rows pass than candidates: all of them are rescored
    rows, _ = index.search_many(queries[:1], 10, few)[0]
    assert sorted(rows.tolist()) == [5, 7, 2999]
    assert index.search_many(queries[:2], 5, np.zeros(len(matrix), bool))[0][0].size == 0
    top = index.search_many(queries[:1], 1)[0][0][0]
    index.delete(np.array([top]))
    oracle.delete(np.array([top]))
    assert top not in index.search_many(queries[:1], 50)[0][0]
    assert recall(index.search_many(queries, 10), oracle.search_many(queries, 10)) >= (
        1.0 if cls is Int8Index else BINARY_RECALL[10]
    )
    assert index.count() == len(matrix) - 1


@pytest.mark.parametrize("cls", KINDS)
def test_save_load_is_memory_mapped_and_equal(data, cls, tmp_path):
    matrix, queries = data
    built = cls.build(matrix)
    built.delete(np.array([3]))
    built.save(tmp_path)
    loaded = vector_index_class(cls.kind).load(tmp_path, DIM, len(matrix))
    assert isinstance(loaded, QuantizedIndex)
    assert isinstance(loaded.half, np.memmap) and isinstance(loaded.codes, np.memmap)
    for a, b in zip(built.search_many(queries, 20), loaded.search_many(queries, 20), strict=True):
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_array_equal(a[1], b[1])
    assert loaded.count() == len(matrix) - 1
    with pytest.raises(ValueError, match="expected"):
        cls.load(tmp_path, DIM, len(matrix) + 1)
    other = BinaryIndex if cls is Int8Index else Int8Index
    with pytest.raises(ValueError, match="codes, not"):
        other.load(tmp_path, DIM, len(matrix))


@pytest.mark.parametrize("cls", KINDS)
def test_positioned_load_reads_rows_and_gives_the_same_results(data, cls, tmp_path):
    matrix, queries = data
    built = cls.build(matrix)
    built.delete(np.array([5]))
    built.save(tmp_path)
    mapped = cls.load(tmp_path, DIM, len(matrix))
    loaded = cls.load(tmp_path, DIM, len(matrix), positioned=True)
    assert isinstance(loaded.half, PositionedArray) and isinstance(loaded.codes, np.memmap)
    mask = np.zeros(len(matrix), bool)
    mask[[1, 2, 3, 900, 2999]] = True  # few rows allowed: all of them rescored
    for k, allowed in ((1, None), (10, None), (100, None), (3, mask)):
        want = mapped.search_many(queries, k, allowed)
        for a, b in zip(want, loaded.search_many(queries, k, allowed), strict=True):
            assert a[0].tolist() == b[0].tolist()
            np.testing.assert_array_equal(a[1], b[1])
    # adding rows and saving read the whole file back
    loaded.add(matrix[:2])
    assert len(loaded) == len(matrix) + 2
    loaded.save(tmp_path / "again")
    np.testing.assert_array_equal(
        np.load(tmp_path / "again" / "vectors-f16.npy"),
        np.concatenate([matrix, matrix[:2]]).astype(np.float16),
    )


@pytest.mark.parametrize("cls", KINDS)
def test_add_and_empty(cls):
    empty = cls.build(np.zeros((0, 8), np.float32))
    assert empty.search_many(np.ones((2, 8), np.float32), 5)[0][0].size == 0
    matrix = clustered(50, 8, seed=4)
    index = cls.build(matrix[:30])
    assert index.add(matrix[30:]).tolist() == list(range(30, 50))
    rows, _ = index.search_many(matrix[45:46], 1)[0]
    assert rows.tolist() == [45]


def test_factory_names_and_mapping():
    assert vector_index_class("int8") is Int8Index
    assert vector_index_class("binary") is BinaryIndex
    assert memory_mapped("int8") and memory_mapped("binary")
    assert not memory_mapped("exact") and not memory_mapped("auto")
