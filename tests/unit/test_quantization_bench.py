import math

import numpy as np
import pytest

from snaprag.bench.quantization import (
    average_ranks,
    markdown_table,
    mean_cosine,
    mean_row_spearman,
    select_subset,
    spearman,
    top_k_overlap,
)


def test_average_ranks_share_ties():
    assert average_ranks(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert average_ranks(np.array([])).tolist() == []


def test_spearman_hand_worked():
    # ranks x: 1 2 3 4 5, ranks y: 2 1 4 3 5 -> sum d^2 = 4, rho = 1 - 6*4 / (5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0.1, 0.5, 0.9], [1, 2, 30]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 6, size=40).astype(float)  # many ties
        b = a + rng.normal(size=40)
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
        c = rng.normal(size=200)
        d = rng.normal(size=200)
        assert spearman(c, d) == pytest.approx(stats.spearmanr(c, d).statistic, abs=1e-12)


def test_row_helpers():
    a = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    assert mean_row_spearman(a, a) == pytest.approx(1.0)
    assert mean_row_spearman(a, -a) == pytest.approx(-1.0)
    assert mean_cosine(a, 2 * a) == pytest.approx(1.0)
    assert top_k_overlap(a, a, k=2) == 1.0
    assert top_k_overlap(a, -a, k=1) == 0.0


def test_subset_keeps_judged_and_is_deterministic():
    ids = [f"d{i}" for i in range(1000)]
    judged = {"d3", "d999", "d500", "missing"}
    first = select_subset(ids, judged, 50)
    again = select_subset(ids, sorted(judged, reverse=True), 50)
    assert first == again
    assert len(first) == 50
    assert {"d3", "d999", "d500"} <= set(first)
    assert first == [d for d in ids if d in set(first)]  # corpus order
    assert select_subset(ids, judged, 50, seed=1) != first


def test_subset_edges():
    ids = [f"d{i}" for i in range(10)]
    assert select_subset(ids, {"d1"}, None) == ids
    assert select_subset(ids, {"d1"}, 10) == ids
    # judged docs are kept even past the limit
    assert select_subset(ids, {"d1", "d2", "d3"}, 2) == ["d1", "d2", "d3"]


def test_markdown_table():
    row = {
        "model_bytes": 1000,
        "passages_per_s": 10.0,
        "query_ms_p50": 1.5,
        "cosine_to_fp32": 1.0,
        "spearman_to_fp32": 1.0,
        "ndcg@10": 0.5,
        "ndcg_delta_vs_fp32": 0.0,
    }
    result = {"presets": {"m": {"fp32": row}}, "docs": {"m": 12}, "subset": {"m": True}}
    table = markdown_table(result)
    assert "| m | fp32 | 12 (subset) | 1,000 |" in table
