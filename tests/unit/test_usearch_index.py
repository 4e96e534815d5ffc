"""The usearch HNSW backend: graph candidates over int8 codes rescored from float16; recall
against exact search, persistence as a memory-mapped view, filters and deletes."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from snaprag.errors import ConfigError
from snaprag.index.dense import ExactIndex
from snaprag.index.factory import memory_mapped, vector_index_class

try:  # through the index's own import, which loads onnxruntime before usearch
    from snaprag.index.usearch_hnsw import _usearch

    _usearch()
except ConfigError:
    pytest.skip("usearch is not installed (extra edge)", allow_module_level=True)

from snaprag.index.rowfile import PositionedArray
from snaprag.index.usearch_hnsw import UsearchIndex

DIM = 64


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, DIM))
    v = (centres[rng.integers(0, 30, n)] + 0.8 * rng.normal(size=(n, DIM))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    matrix = clustered(4000, seed=1)
    return matrix, clustered(50, seed=2)


def recall(got, want) -> float:
    pairs = zip(got, want, strict=True)
    return float(np.mean([len(set(a[0]) & set(b[0])) / len(b[0]) for a, b in pairs]))


def oracle(matrix: np.ndarray) -> ExactIndex:
    return ExactIndex(matrix.astype(np.float16).astype(np.float32))


def test_recall_and_exact_scores(data):
    matrix, queries = data
    index = UsearchIndex.build(matrix, threads=1)
    got = index.search_many(queries, 10)
    want = oracle(matrix).search_many(queries, 10)
    assert recall(got, want) >= 0.95  # measured 1.0 here
    half = matrix.astype(np.float16).astype(np.float32)
    for q, (rows, scores) in zip(queries, got, strict=True):
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        np.testing.assert_allclose(scores, half[rows] @ q, atol=1e-6)  # rescored
        assert np.all(np.diff(scores) <= 0)


def test_save_load_is_a_memory_mapped_view(data, tmp_path):
    matrix, queries = data
    built = UsearchIndex.build(matrix, threads=1)
    built.save(tmp_path)
    loaded = vector_index_class("usearch").load(tmp_path, DIM, len(matrix))
    assert isinstance(loaded.half, np.memmap)
    assert loaded.graph.expansion_search == UsearchIndex.EXPANSION_SEARCH
    for a, b in zip(built.search_many(queries, 10), loaded.search_many(queries, 10), strict=True):
        assert a[0].tolist() == b[0].tolist()
    with pytest.raises(ValueError, match="expected"):
        UsearchIndex.load(tmp_path, DIM, len(matrix) + 1)


def test_positioned_load_gives_the_same_results(data, tmp_path):
    matrix, queries = data
    UsearchIndex.build(matrix).save(tmp_path)
    mapped = UsearchIndex.load(tmp_path, DIM, len(matrix))
    loaded = UsearchIndex.load(tmp_path, DIM, len(matrix), positioned=True)
    assert isinstance(loaded.half, PositionedArray)
    mask = np.arange(len(matrix)) % 7 == 0  # a filter: the allowed rows scanned exactly
    for k, allowed in ((10, None), (5, mask)):
        want = mapped.search_many(queries, k, allowed)
        for a, b in zip(want, loaded.search_many(queries, k, allowed), strict=True):
            assert a[0].tolist() == b[0].tolist()
            np.testing.assert_array_equal(a[1], b[1])


def test_filters_scan_exactly_and_deletes_are_skipped(data):
    matrix, queries = data
    index = UsearchIndex.build(matrix, threads=1)
    exact = oracle(matrix)
    mask = np.random.default_rng(3).random(len(matrix)) < 0.05
    got = index.search_many(queries, 10, mask)
    want = exact.search_many(queries, 10, mask)
    assert [g[0].tolist() for g in got] == [w[0].tolist() for w in want]
    top = int(index.search_many(queries[:1], 1)[0][0][0])
    index.delete(np.array([top]))
    assert top not in index.search_many(queries[:1], 20)[0][0]
    assert index.count() == len(matrix) - 1
    assert len(index.search_many(queries[:1], 20)[0][0]) == 20


def test_add_and_empty():
    matrix = clustered(60, seed=4)
    index = UsearchIndex.build(matrix[:40], threads=1)
    assert index.add(matrix[40:]).tolist() == list(range(40, 60))
    assert index.search_many(matrix[55:56], 1)[0][0].tolist() == [55]
    empty = UsearchIndex.build(np.zeros((0, DIM), np.float32))
    assert empty.search_many(matrix[:2], 5)[0][0].size == 0


def test_factory_and_missing_extra(monkeypatch):
    assert vector_index_class("usearch") is UsearchIndex and memory_mapped("usearch")
    real_import = builtins.__import__

    def no_usearch(name, *args, **kwargs):
        if name == "usearch" or name.startswith("usearch."):
            raise ImportError("No module named 'usearch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_usearch)
    with pytest.raises(ConfigError, match=r"pip install 'snaprag\[edge\]'"):
        vector_index_class("usearch")


def test_onnxruntime_after_usearch_does_not_crash_the_process() -> None:
    """usearch 2.26 imported before onnxruntime crashed the process as onnxruntime loaded
    (a search opens its snapshot before its encoder): the index loads onnxruntime first."""
    import subprocess
    import sys

    code = (
        "from snaprag.index.usearch_hnsw import _usearch; _usearch(); "
        "import onnxruntime; print('alive')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "alive", out.stderr[-500:]
