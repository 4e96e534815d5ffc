"""Bm25Index against two oracles: BM25 written out from the formula, and bm25s itself."""

from __future__ import annotations

import math
import random
from collections import Counter

import bm25s
import numpy as np
import pytest

from snaprag.errors import ConfigError, IndexStateError, QueryError
from snaprag.index import bm25 as bm25_module
from snaprag.index.bm25 import Bm25Index
from snaprag.index.rowfile import PositionedArray
from snaprag.index.vocab import TermTable

CORPUS = [
    ["cat", "sat", "mat", "cat"],
    ["dog", "sat", "log"],
    ["cat", "dog", "fight", "fight", "fight", "again", "cat"],
    [],
    ["bird", "sang"],
    ["cat", "sat", "mat", "cat"],  # same as row 0: equal scores, tie broken by row id
    ["mat", "mat", "mat", "mat", "mat", "mat", "mat", "mat", "mat", "long"],
    ["dog"],
]
QUERIES = [
    ["cat"],
    ["dog", "sat"],
    ["mat", "cat", "cat"],  # a repeated query token counts twice, as in bm25s
    ["fight", "unknown"],
    ["bird", "dog", "mat", "log", "long"],
    ["nothing", "here"],
    [],
]


def reference_scores(corpus, query, k1=1.2, b=0.75):
    """Lucene-variant BM25 (as bm25s defines it), straight from the formula."""
    n = len(corpus)
    avgdl = sum(len(d) for d in corpus) / n
    df = Counter(t for d in corpus for t in set(d))
    out = []
    for doc in corpus:
        tf = Counter(doc)
        score = 0.0
        for term in query:
            if tf[term] == 0:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            norm = k1 * (1 - b + b * len(doc) / avgdl)
            score += idf * tf[term] / (tf[term] + norm)
        out.append(score)
    return np.array(out)


def reference_top_k(scores, k, mask=None):
    rows = [i for i, s in enumerate(scores) if s > 0 and (mask is None or mask[i])]
    rows.sort(key=lambda i: (-scores[i], i))
    return rows[:k]


def random_corpus(n_docs, seed):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(300)]
    weights = [1 / (i + 1) for i in range(300)]  # Zipf-like, so some terms are common
    return [rng.choices(words, weights, k=rng.randint(0, 60)) for _ in range(n_docs)]


def assert_same_results(a, b):
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])


# ---------------------------------------------------------------- scores


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (0.9, 0.4), (2.0, 1.0), (1.5, 0.0)])
def test_scores_match_formula(k1, b):
    index = Bm25Index.build(CORPUS, k1=k1, b=b)
    for query in QUERIES:
        expected = reference_scores(CORPUS, query, k1, b)
        got = index.scores(query)
        assert got.dtype == np.float32
        assert got.shape == (len(CORPUS),)
        assert np.allclose(got, expected, rtol=1e-6, atol=1e-6), query


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (0.9, 0.4)])
def test_scores_match_bm25s(k1, b):
    corpus = random_corpus(300, seed=7)
    index = Bm25Index.build(corpus, k1=k1, b=b)
    reference = bm25s.BM25(method="lucene", k1=k1, b=b)
    reference.index(corpus, show_progress=False)
    rng = random.Random(1)
    queries = [[f"w{rng.randrange(320)}" for _ in range(rng.randint(1, 8))] for _ in range(50)]
    queries += [["w0", "w0", "w5"], ["w299"]]
    for query in queries:
        if not any(t in reference.vocab_dict for t in query):
            continue  # bm25s cannot score a query with no known token
        expected = reference.get_scores(query)
        assert np.allclose(index.scores(query), expected, rtol=1e-5, atol=1e-6), query


def test_top_k_matches_bm25s_retrieve():
    corpus = random_corpus(400, seed=3)
    index = Bm25Index.build(corpus)
    reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    reference.index(corpus, show_progress=False)
    queries = [["w3", "w17", "w150"], ["w0", "w1"], ["w42"], ["w7", "w7", "w250"]]
    ref_rows, ref_scores = reference.retrieve(queries, k=10, show_progress=False)
    for query, rows, scores in zip(queries, ref_rows, ref_scores, strict=True):
        got_rows, got_scores = index.search(query, 10)
        assert np.allclose(got_scores, scores, rtol=1e-5)
        # bm25s breaks ties its own way; compare the ranking where scores differ
        assert set(got_rows[got_scores > got_scores[-1]]) <= set(rows)


# ---------------------------------------------------------------- search


def test_search_order_and_ties():
    index = Bm25Index.build(CORPUS)
    for query in QUERIES:
        expected_scores = reference_scores(CORPUS, query)
        for k in (1, 2, 3, 10):
            rows, scores = index.search(query, k)
            assert rows.dtype == np.int64
            assert scores.dtype == np.float32
            assert rows.tolist() == reference_top_k(expected_scores, k), (query, k)
            assert np.allclose(scores, expected_scores[rows], rtol=1e-6)
            assert np.all(scores > 0)
            assert np.all(np.diff(scores) <= 0)
    rows, scores = index.search(["cat", "mat"], 3)
    assert scores[0] == scores[1]
    assert rows[:2].tolist() == [0, 5]  # identical documents: smaller row id first


def test_ties_among_many_equal_rows_are_by_row_id():
    corpus = [["x", "y"]] * 50 + [["x"]] * 10
    index = Bm25Index.build(corpus)
    rows, _ = index.search(["y"], 7)
    assert rows.tolist() == list(range(7))
    rows, _ = index.search(["x"], 55)
    assert rows.tolist() == list(range(50, 60)) + list(range(45))  # shorter docs score higher


def test_only_positive_scores_are_returned():
    index = Bm25Index.build(CORPUS)
    rows, scores = index.search(["bird"], 10)
    assert rows.tolist() == [4]
    assert scores.shape == (1,)


def test_filter_mask():
    index = Bm25Index.build(CORPUS)
    mask = np.array([False, True, True, True, False, True, True, False])
    for query in QUERIES:
        expected = reference_top_k(reference_scores(CORPUS, query), 10, mask)
        rows, _ = index.search(query, 10, filter_mask=mask)
        assert rows.tolist() == expected
        many = index.search_many([query], 10, filter_mask=mask)
        assert many[0][0].tolist() == expected
    rows, _ = index.search(["cat"], 10, filter_mask=np.zeros(len(CORPUS), dtype=bool))
    assert rows.size == 0


@pytest.mark.parametrize(
    "bad_mask",
    [np.ones(3, dtype=bool), np.ones(len(CORPUS), dtype=np.int8), np.ones((len(CORPUS), 1), bool)],
)
def test_bad_filter_mask_is_rejected(bad_mask):
    index = Bm25Index.build(CORPUS)
    with pytest.raises(QueryError, match="filter_mask"):
        index.search(["cat"], 5, filter_mask=bad_mask)


def test_bad_k_and_string_query_are_rejected():
    index = Bm25Index.build(CORPUS)
    with pytest.raises(QueryError, match="k must be"):
        index.search(["cat"], -1)
    with pytest.raises(QueryError, match="k must be"):
        index.search(["cat"], 2.5)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="tokenize"):
        index.search("cat", 5)  # type: ignore[arg-type]


def test_bad_parameters_are_rejected():
    with pytest.raises(ConfigError, match="k1"):
        Bm25Index.build(CORPUS, k1=-1)
    with pytest.raises(ConfigError, match="b must"):
        Bm25Index.build(CORPUS, b=1.5)
    with pytest.raises(ConfigError, match="hangul_k1"):
        Bm25Index.build(CORPUS, hangul_k1=float("nan"))
    with pytest.raises(ConfigError, match="hangul_b"):
        Bm25Index.build(CORPUS, hangul_b=-0.1)


# ---------------------------------------------------------------- per-script parameters

MIXED = [
    ["학교", "학교", "공부", "cat", "cat", "sat"],
    ["학교", "서울", "dog"],
    ["서울", "서울", "서울", "서울", "cat", "mat", "mat", "long", "longer", "longest"],
    ["공부", "2월", "dog", "dog"],
    [],
    ["cat"],
]
MIXED_QUERIES = [["학교"], ["서울", "cat"], ["2월", "dog", "공부"], ["mat", "학교", "학교"]]


def reference_per_script(corpus, query, k1, b, hangul_k1, hangul_b):
    """The formula with (hangul_k1, hangul_b) for terms containing Hangul, else (k1, b)."""
    total = np.zeros(len(corpus))
    for term in query:
        hangul = any("\uac00" <= ch <= "\ud7a3" for ch in term)
        params = (hangul_k1, hangul_b) if hangul else (k1, b)
        total += reference_scores(corpus, [term], *params)
    return total


@pytest.mark.parametrize(
    ("k1", "b", "hangul_k1", "hangul_b"),
    [(1.2, 0.75, 0.2, 0.5), (0.9, 0.4, 2.0, 1.0), (1.5, 0.0, 0.0, 0.3)],
)
def test_hangul_terms_use_their_own_parameters(k1, b, hangul_k1, hangul_b):
    index = Bm25Index.build(MIXED, k1, b, hangul_k1=hangul_k1, hangul_b=hangul_b)
    for query in MIXED_QUERIES:
        expected = reference_per_script(MIXED, query, k1, b, hangul_k1, hangul_b)
        assert np.allclose(index.scores(query), expected, rtol=1e-6, atol=1e-6), query


def test_default_parameters_per_script():
    index = Bm25Index.build(MIXED)
    assert (index.k1, index.b) == (bm25_module.K1, bm25_module.B) == (1.2, 0.75)
    assert (index.hangul_k1, index.hangul_b) == (bm25_module.HANGUL_K1, bm25_module.HANGUL_B)
    assert (index.hangul_k1, index.hangul_b) == (0.2, 0.5)
    for query in MIXED_QUERIES:
        expected = reference_per_script(MIXED, query, 1.2, 0.75, 0.2, 0.5)
        assert np.allclose(index.scores(query), expected, rtol=1e-6, atol=1e-6), query
    # a repeated Hangul term barely adds with k1 = 0.2: the 4x "서울" row is not far ahead
    seoul = index.scores(["서울"])
    assert seoul[2] / seoul[1] < 1.15
    assert "hangul_k1=0.2" in repr(index)


def test_hangul_parameters_leave_other_scripts_bit_identical():
    corpus = random_corpus(200, seed=9)
    plain = Bm25Index.build(corpus, hangul_k1=1.2, hangul_b=0.75)
    per_script = Bm25Index.build(corpus)
    assert np.array_equal(plain._data, per_script._data)
    # the same holds for the non-Hangul terms of a mixed corpus
    mixed_plain = Bm25Index.build(MIXED, hangul_k1=1.2, hangul_b=0.75)
    mixed = Bm25Index.build(MIXED)
    for term in ("cat", "dog", "mat", "sat"):
        assert np.array_equal(mixed_plain.scores([term]), mixed.scores([term])), term
    assert not np.array_equal(mixed_plain.scores(["서울"]), mixed.scores(["서울"]))


def test_k_zero_and_k_beyond_corpus():
    index = Bm25Index.build(CORPUS)
    rows, scores = index.search(["cat"], 0)
    assert rows.size == 0 and scores.size == 0
    rows, _ = index.search(["cat"], 1000)
    assert rows.tolist() == reference_top_k(reference_scores(CORPUS, ["cat"]), 1000)


def test_empty_query_and_unknown_terms_give_empty_results():
    index = Bm25Index.build(CORPUS)
    for query in ([], ["unknown"], ["unknown", "also-unknown"]):
        rows, scores = index.search(query, 5)
        assert rows.shape == (0,) and rows.dtype == np.int64
        assert scores.shape == (0,) and scores.dtype == np.float32


@pytest.mark.parametrize("corpus", [[], [[]], [[], [], []]])
def test_empty_corpus_gives_empty_results(corpus, tmp_path):
    index = Bm25Index.build(corpus)
    assert len(index) == len(corpus)
    assert index.vocab_size == 0
    rows, scores = index.search(["anything"], 5)
    assert rows.size == 0 and scores.size == 0
    assert all(r.size == 0 for r, _ in index.search_many([["a"], []], 5))
    assert index.scores(["a"]).shape == (len(corpus),)
    index.save(tmp_path)
    loaded = Bm25Index.load(tmp_path)
    assert len(loaded) == len(corpus)
    assert loaded.search(["anything"], 5)[0].size == 0


def test_search_many_equals_search_per_query(monkeypatch):
    corpus = random_corpus(200, seed=11)
    index = Bm25Index.build(corpus)
    rng = random.Random(5)
    queries = [[f"w{rng.randrange(330)}" for _ in range(rng.randint(0, 6))] for _ in range(60)]
    queries += [[], ["unknown"], ["w0", "w0"]]
    mask = np.array([i % 3 != 0 for i in range(len(corpus))])
    for filter_mask in (None, mask):
        singles = [index.search(q, 7, filter_mask=filter_mask) for q in queries]
        batched = index.search_many(queries, 7, filter_mask=filter_mask)
        assert len(batched) == len(queries)
        for a, b in zip(singles, batched, strict=True):
            assert_same_results(a, b)
        # Force several scoring blocks, as on a large corpus.
        monkeypatch.setattr(bm25_module, "_MAX_BLOCK_CELLS", 3 * len(corpus))
        for a, b in zip(singles, index.search_many(queries, 7, filter_mask), strict=True):
            assert_same_results(a, b)
        monkeypatch.undo()
    assert index.search_many([], 5) == []


def test_properties():
    index = Bm25Index.build(CORPUS, k1=1.1, b=0.6)
    assert len(index) == len(CORPUS)
    assert index.vocab_size == len({t for d in CORPUS for t in d})
    assert (index.k1, index.b) == (1.1, 0.6)
    assert index.avgdl == pytest.approx(sum(map(len, CORPUS)) / len(CORPUS))
    assert index.doc_freq("cat") == 3
    assert index.doc_freq("unknown") == 0
    assert "rows=8" in repr(index)


def test_build_is_deterministic():
    a = Bm25Index.build(CORPUS)
    b = Bm25Index.build([list(d) for d in CORPUS])
    for query in QUERIES:
        assert_same_results(a.search(query, 10), b.search(query, 10))


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize(("mmap", "positioned"), [(True, False), (False, False), (True, True)])
def test_save_load_round_trip(tmp_path, mmap, positioned):
    corpus = [*random_corpus(150, seed=2), ["한국어", "토큰"], ["naïve", "ünïcode"]]
    index = Bm25Index.build(corpus, k1=0.9, b=0.5)
    index.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25", mmap=mmap, positioned=positioned)
    # positioned: the postings are read per query, not mapped, and the vocabulary is a
    # compact table (the low-memory setting)
    assert isinstance(loaded._data, PositionedArray) is positioned
    assert isinstance(loaded._vocab, TermTable) is positioned
    assert len(loaded) == len(index)
    assert loaded.vocab_size == index.vocab_size
    assert (loaded.k1, loaded.b, loaded.avgdl) == (index.k1, index.b, index.avgdl)
    assert (loaded.hangul_k1, loaded.hangul_b) == (index.hangul_k1, index.hangul_b) == (0.2, 0.5)
    queries = [["w1", "w20"], ["한국어"], ["naïve", "w3"], [], ["unknown"]]
    for a, b in zip(index.search_many(queries, 10), loaded.search_many(queries, 10), strict=True):
        assert_same_results(a, b)
    assert np.array_equal(index.scores(["w4", "토큰"]), loaded.scores(["w4", "토큰"]))


def test_positioned_load_of_an_index_saved_without_a_term_table(tmp_path):
    """Saved by an earlier version: the vocabulary is read as a dict, results the same."""
    index = Bm25Index.build(CORPUS)
    index.save(tmp_path)
    (tmp_path / "bm25_terms.npy").unlink()
    loaded = Bm25Index.load(tmp_path, positioned=True)
    assert isinstance(loaded._vocab, dict)
    for query in QUERIES:
        assert_same_results(index.search(query, 10), loaded.search(query, 10))


def test_an_index_loaded_with_a_term_table_saves_the_same_files(tmp_path):
    Bm25Index.build(CORPUS).save(tmp_path / "a")
    Bm25Index.load(tmp_path / "a", positioned=True).save(tmp_path / "b")
    for name in ("bm25_vocab.json", "bm25_terms.npy", "bm25_terms.bin", "bm25_data.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path):
    Bm25Index.build(CORPUS).save(tmp_path)
    Bm25Index.build([["other"]]).save(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loaded = Bm25Index.load(tmp_path)
    assert len(loaded) == 1
    assert loaded.search(["other"], 3)[0].tolist() == [0]


def test_load_missing_or_foreign_directory(tmp_path):
    with pytest.raises(IndexStateError, match="build and save"):
        Bm25Index.load(tmp_path / "nowhere")
    Bm25Index.build(CORPUS).save(tmp_path)
    meta = tmp_path / "bm25_meta.json"
    version = f'"version": {bm25_module._FORMAT_VERSION}'
    assert version in meta.read_text()
    meta.write_text(meta.read_text().replace(version, '"version": 99'))
    with pytest.raises(IndexStateError, match="rebuild"):
        Bm25Index.load(tmp_path)


def test_load_incomplete_directory(tmp_path):
    Bm25Index.build(CORPUS).save(tmp_path)
    (tmp_path / "bm25_data.npy").unlink()
    with pytest.raises(IndexStateError, match="incomplete"):
        Bm25Index.load(tmp_path)
