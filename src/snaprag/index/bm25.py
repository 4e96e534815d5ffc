"""In-process BM25 index over pre-tokenized documents.

Scoring follows the conventions of ``bm25s`` with ``method="lucene"`` (Kamphuis et al.,
ECIR 2020): for a query term ``t`` and a document ``d``::

    idf(t)     = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    s(t, d)    = idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    score(q,d) = sum over the query's tokens t (repeats count again) of s(t, d)

``k1`` and ``b`` depend on the term's script: terms containing Hangul use ``hangul_k1`` and
``hangul_b`` (default 0.2 and 0.5), every other term ``k1`` and ``b`` (default 1.2 and
0.75). A KorQuAD question shares most of its content morphemes with its paragraph and
with that paragraph's neighbours; a low ``k1`` counts each matched term about once, so
the paragraph matching the most distinct terms wins over one repeating a single term
(tuned on half of the KorQuAD 1.0 dev articles, nDCG@10 of BM25 alone .9570 at
k1=1.2/b=0.75 vs .9598 at 0.2/0.5, hybrid .9680 vs .9720; see docs/benchmarks.md,
"Korean tuning"). Terms without Hangul keep the parameters used on SciFact and score
exactly as before.

Every ``s(t, d)`` is computed once at build time and stored as a term-major sparse
matrix (CSC by document: ``indptr`` per vocabulary id, ``indices`` = row ids, ``data`` =
scores), so a query is a gather plus a ``np.bincount``; a batch of queries is one gather
and one ``np.bincount`` into a dense ``(queries x rows)`` block. No Python loop runs per
posting; top-k selection is a few NumPy calls per query.

Results are deterministic: rows are ordered by score, descending, ties broken by the
smaller row id, and only rows with a positive score are returned.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from snaprag.errors import ConfigError, IndexStateError, QueryError
from snaprag.fs import atomic_write
from snaprag.index.base import RowFilter, mask_of
from snaprag.index.rowfile import SUPPORTED as _POSITIONED
from snaprag.index.rowfile import PositionedArray, gather_runs
from snaprag.index.tokenize import has_hangul
from snaprag.index.vocab import TABLE as _TERMS
from snaprag.index.vocab import TermTable, write_term_table

__all__ = ["HANGUL_B", "HANGUL_K1", "K1", "B", "Bm25Index"]

#: Parameters of terms without Hangul (English and other scripts).
K1 = 1.2
B = 0.75
#: Parameters of terms containing Hangul (tuned on half of KorQuAD 1.0 dev).
HANGUL_K1 = 0.2
HANGUL_B = 0.5

_FORMAT = "snaprag-bm25"
# 2: per-script parameters (scores of Hangul terms differ from version 1's)
_FORMAT_VERSION = 2
_META = "bm25_meta.json"
_VOCAB = "bm25_vocab.json"
_DATA = "bm25_data.npy"
_INDICES = "bm25_indices.npy"
_INDPTR = "bm25_indptr.npy"

# A batch is scored in blocks of at most this many (query, row) cells: about 3 MB of
# scratch, which stays in cache. Larger blocks were slower (SciFact 300 queries, and the
# same corpus x20: 2^18 cells 0.055 / 0.98 ms per query, 2^22 cells 0.072 / 1.16 ms).
_MAX_BLOCK_CELLS = 1 << 18

_EMPTY_IDS = np.empty(0, dtype=np.int64)
_EMPTY_SCORES = np.empty(0, dtype=np.float32)

SearchResult = tuple[np.ndarray, np.ndarray]


class Bm25Index:
    """An immutable BM25 index; rows are the positions of the documents given to ``build``.

    Build one with :meth:`build` or :meth:`load`; the constructor takes the raw arrays.
    Searching is read-only, so one instance can serve many threads at once.
    """

    __slots__ = (
        "_avgdl",
        "_b",
        "_data",
        "_hangul_b",
        "_hangul_k1",
        "_indices",
        "_indptr",
        "_k1",
        "_n_docs",
        "_vocab",
    )

    def __init__(
        self,
        *,
        vocab: Mapping[str, int],
        indptr: np.ndarray,
        indices: np.ndarray | PositionedArray,
        data: np.ndarray | PositionedArray,
        n_docs: int,
        k1: float,
        b: float,
        avgdl: float,
        hangul_k1: float | None = None,
        hangul_b: float | None = None,
    ) -> None:
        if indptr.shape != (len(vocab) + 1,):
            raise IndexStateError(
                f"BM25 index is inconsistent: {len(vocab)} vocabulary entries but "
                f"{indptr.shape[0]} index pointers; rebuild the index"
            )
        if indices.shape != data.shape:
            raise IndexStateError(
                "BM25 index is inconsistent: postings and scores differ in length; "
                "rebuild the index"
            )
        self._vocab = vocab
        self._indptr = indptr
        self._indices = indices
        self._data = data
        self._n_docs = int(n_docs)
        self._k1 = float(k1)
        self._b = float(b)
        self._hangul_k1 = float(k1 if hangul_k1 is None else hangul_k1)
        self._hangul_b = float(b if hangul_b is None else hangul_b)
        self._avgdl = float(avgdl)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        token_lists: Sequence[Sequence[str]],
        k1: float = K1,
        b: float = B,
        *,
        hangul_k1: float = HANGUL_K1,
        hangul_b: float = HANGUL_B,
    ) -> Bm25Index:
        """Index documents given as token lists; row ``i`` is ``token_lists[i]``.

        Terms containing Hangul are scored with ``hangul_k1`` and ``hangul_b``, all others
        with ``k1`` and ``b``; pass the same values to score every term alike. Each ``k1``
        must be >= 0 and each ``b`` within [0, 1]. Documents may be empty; an empty
        sequence gives an empty index that returns no results.
        """
        for name, value in (("k1", k1), ("hangul_k1", hangul_k1)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        for name, value in (("b", b), ("hangul_b", hangul_b)):
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ConfigError(f"{name} must be within [0, 1], got {value!r}")
        n_docs = len(token_lists)
        lengths = np.fromiter((len(d) for d in token_lists), dtype=np.int64, count=n_docs)
        n_tokens = int(lengths.sum())
        vocab: dict[str, int] = {}
        # Vocabulary ids in order of first appearance: deterministic for a given input.
        token_ids = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for doc in token_lists for t in doc),
            dtype=np.int64,
            count=n_tokens,
        )
        n_terms = len(vocab)
        if n_tokens == 0:
            return cls(
                vocab=vocab,
                indptr=np.zeros(n_terms + 1, dtype=np.int64),
                indices=np.empty(0, dtype=np.int32),
                data=np.empty(0, dtype=np.float32),
                n_docs=n_docs,
                k1=k1,
                b=b,
                avgdl=0.0,
                hangul_k1=hangul_k1,
                hangul_b=hangul_b,
            )
        doc_ids = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # One sort of (term, row) keys yields term frequencies already in CSC order.
        keys, tf = np.unique(token_ids * n_docs + doc_ids, return_counts=True)
        terms = keys // n_docs
        rows = keys - terms * n_docs
        df = np.bincount(terms, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        avgdl = n_tokens / n_docs
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        tf = tf.astype(np.float64)
        norm = (k1 * (1.0 - b + b * lengths / avgdl))[rows]
        if (hangul_k1, hangul_b) != (k1, b):
            hangul = np.fromiter((has_hangul(t) for t in vocab), dtype=bool, count=n_terms)
            if hangul.any():
                norm_hangul = hangul_k1 * (1.0 - hangul_b + hangul_b * lengths / avgdl)
                norm = np.where(hangul[terms], norm_hangul[rows], norm)
        data = idf[terms] * tf / (tf + norm)
        return cls(
            vocab=vocab,
            indptr=indptr,
            indices=rows.astype(np.int32),
            data=data.astype(np.float32),
            n_docs=n_docs,
            k1=k1,
            b=b,
            avgdl=avgdl,
            hangul_k1=hangul_k1,
            hangul_b=hangul_b,
        )

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return self._n_docs

    def __repr__(self) -> str:
        return (
            f"Bm25Index(rows={self._n_docs}, vocab_size={self.vocab_size}, "
            f"k1={self._k1}, b={self._b}, hangul_k1={self._hangul_k1}, "
            f"hangul_b={self._hangul_b})"
        )

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens in the indexed documents."""
        return len(self._vocab)

    @property
    def k1(self) -> float:
        return self._k1

    @property
    def b(self) -> float:
        return self._b

    @property
    def hangul_k1(self) -> float:
        return self._hangul_k1

    @property
    def hangul_b(self) -> float:
        return self._hangul_b

    @property
    def avgdl(self) -> float:
        """Mean document length in tokens."""
        return self._avgdl

    def doc_freq(self, token: str) -> int:
        """Number of rows that contain ``token`` (0 for an unknown token)."""
        tid = self._vocab.get(token)
        if tid is None:
            return 0
        return int(self._indptr[tid + 1] - self._indptr[tid])

    # ------------------------------------------------------------------ searching

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every row for one query, as float32 of shape ``(len(self),)``."""
        return self._score_block([self._term_ids(query_tokens)])[0]

    def search(
        self,
        query_tokens: Sequence[str],
        k: int,
        filter_mask: np.ndarray | None = None,
    ) -> SearchResult:
        """Top-``k`` rows for one tokenized query.

        Returns ``(row_ids int64, scores float32)``, best first, ties by row id, only
        rows scoring above zero. ``filter_mask`` (bool, one entry per row) keeps only
        rows where it is True. Unknown tokens are ignored; a query with no known token
        gives empty arrays.
        """
        return self.search_many([query_tokens], k, filter_mask)[0]

    def search_many(
        self,
        queries: Sequence[Sequence[str]],
        k: int,
        filter_mask: np.ndarray | RowFilter | None = None,
    ) -> list[SearchResult]:
        """:meth:`search` for many queries at once; one result per query, in order.

        The queries are scored together in cache-sized blocks. The work is dominated by
        the postings each query touches, so this saves the per-call overhead (10-30 %
        per query measured on SciFact), not the scoring itself.
        """
        k = self._check_k(k)
        mask = self._check_mask(mask_of(filter_mask))
        results: list[SearchResult] = [(_EMPTY_IDS, _EMPTY_SCORES)] * len(queries)
        if k == 0 or self._n_docs == 0:
            return results
        term_ids = [self._term_ids(q) for q in queries]
        todo = [i for i, t in enumerate(term_ids) if t.size]
        block = max(1, _MAX_BLOCK_CELLS // self._n_docs)
        for start in range(0, len(todo), block):
            chunk = todo[start : start + block]
            dense = self._score_block([term_ids[i] for i in chunk])
            if mask is not None:
                dense[:, ~mask] = 0.0
            for i, res in zip(chunk, _top_k_rows(dense, k), strict=True):
                results[i] = res
        return results

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path | str) -> None:
        """Write the index into ``directory`` (created if missing).

        Each file is written under a temporary name and renamed into place, the metadata
        last, so no file is ever half-written and processes that memory-map the previous
        files keep working. The set of files is not replaced atomically, though: to swap
        an index under live readers, save each version into its own directory.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab_list = [""] * len(self._vocab)
        for token, tid in self._vocab.items():
            vocab_list[tid] = token
        for name, array in (
            (_INDPTR, self._indptr),
            (_INDICES, self._indices),
            (_DATA, self._data),
        ):
            atomic_write(directory / name, lambda f, a=array: np.save(f, np.asarray(a)))
        atomic_write(
            directory / _VOCAB,
            lambda f: f.write(json.dumps(vocab_list, ensure_ascii=False).encode("utf-8")),
        )
        write_term_table(directory, vocab_list)  # what a low-memory reader looks terms up in
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "method": "lucene",
            "n_docs": self._n_docs,
            "vocab_size": len(vocab_list),
            "n_postings": int(self._indices.shape[0]),
            "k1": self._k1,
            "b": self._b,
            "hangul_k1": self._hangul_k1,
            "hangul_b": self._hangul_b,
            "avgdl": self._avgdl,
        }
        atomic_write(directory / _META, lambda f: f.write(json.dumps(meta).encode("utf-8")))

    @classmethod
    def load(
        cls, directory: Path | str, *, mmap: bool = True, positioned: bool = False
    ) -> Bm25Index:
        """Open an index written by :meth:`save`.

        With ``mmap=True`` (default) the posting arrays are memory-mapped read-only, so
        opening is fast and pages are shared between processes. With ``positioned=True``
        each query reads its terms' postings from the files (``os.pread``, where the
        platform has it) instead: they stay in the page cache, out of the process's
        resident memory (the low-memory setting; see :mod:`snaprag.index.rowfile`), and
        the vocabulary is a :class:`~snaprag.index.vocab.TermTable` rather than a dict
        (~0.6 MB instead of ~3.2 MiB for 24,000 terms) where the index has one.
        """
        directory = Path(directory)
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexStateError(
                f"no BM25 index in {directory} ({_META} is missing); build and save one first"
            ) from None
        except (OSError, ValueError) as exc:
            raise IndexStateError(
                f"cannot read {directory / _META} ({exc}); rebuild the index"
            ) from None
        if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
            raise IndexStateError(
                f"{directory} holds a BM25 index of format {meta.get('format')!r} version "
                f"{meta.get('version')!r}; this snaprag reads {_FORMAT!r} version "
                f"{_FORMAT_VERSION}: rebuild the index"
            )
        mode = "r" if mmap else None
        try:
            indptr = np.load(directory / _INDPTR, mmap_mode=mode)
            if positioned and _POSITIONED:
                indices: np.ndarray | PositionedArray = PositionedArray(directory / _INDICES)
                data: np.ndarray | PositionedArray = PositionedArray(directory / _DATA)
            else:
                indices = np.load(directory / _INDICES, mmap_mode=mode)
                data = np.load(directory / _DATA, mmap_mode=mode)
            vocab: Mapping[str, int]
            if positioned and (directory / _TERMS).exists():
                vocab = TermTable.load(directory)
            else:  # no table: saved by an older version
                vocab_list = json.loads((directory / _VOCAB).read_bytes())
                vocab = dict(zip(vocab_list, range(len(vocab_list)), strict=True))
        except (OSError, ValueError, EOFError) as exc:
            raise IndexStateError(
                f"BM25 index in {directory} is incomplete or corrupt ({exc}); rebuild it"
            ) from None
        return cls(
            vocab=vocab,
            indptr=indptr,
            indices=indices,
            data=data,
            n_docs=meta["n_docs"],
            k1=meta["k1"],
            b=meta["b"],
            avgdl=meta["avgdl"],
            hangul_k1=meta["hangul_k1"],
            hangul_b=meta["hangul_b"],
        )

    # ------------------------------------------------------------------ internals

    def _term_ids(self, query_tokens: Sequence[str]) -> np.ndarray:
        if isinstance(query_tokens, str):
            raise QueryError(
                "query_tokens must be a list of tokens, not a string; tokenize the query first"
            )
        get = self._vocab.get
        ids = [tid for tid in map(get, query_tokens) if tid is not None]
        return np.asarray(ids, dtype=np.int64)

    def _score_block(self, term_ids: Sequence[np.ndarray]) -> np.ndarray:
        """Dense float32 scores of shape ``(len(term_ids), n_docs)``."""
        n_q, n_docs = len(term_ids), self._n_docs
        if n_docs == 0:
            return np.zeros((n_q, 0), dtype=np.float32)
        counts = np.fromiter((t.size for t in term_ids), dtype=np.int64, count=n_q)
        terms = np.concatenate(term_ids) if n_q else _EMPTY_IDS
        query_of_term = np.repeat(np.arange(n_q, dtype=np.int64), counts)
        starts = np.asarray(self._indptr[terms], dtype=np.int64)
        lengths = np.asarray(self._indptr[terms + 1], dtype=np.int64) - starts
        # every posting of every query term, term after term (without a loop per posting)
        rows = gather_runs(self._indices, starts, lengths)
        cells = np.repeat(query_of_term * n_docs, lengths) + rows
        weights = gather_runs(self._data, starts, lengths)
        flat = np.bincount(cells, weights=weights, minlength=n_q * n_docs)
        # float32 like the stored scores, so equal returned scores are exactly the ties
        # that are then broken by row id.
        return flat.astype(np.float32).reshape(n_q, n_docs)

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise QueryError(f"k must be an integer >= 0, got {k!r}")
        return min(int(k), self._n_docs)

    def _check_mask(self, filter_mask: np.ndarray | None) -> np.ndarray | None:
        if filter_mask is None:
            return None
        mask = np.asarray(filter_mask)
        if mask.dtype != np.bool_ or mask.shape != (self._n_docs,):
            raise QueryError(
                f"filter_mask must be a bool array of shape ({self._n_docs},), got "
                f"dtype {mask.dtype} and shape {mask.shape}"
            )
        return mask


def _top_k_rows(dense: np.ndarray, k: int) -> list[SearchResult]:
    """Per row of ``dense``: the top-k positive columns, by score desc then column asc."""
    return [_top_k(row, k) for row in dense]


def _top_k(row: np.ndarray, k: int) -> SearchResult:
    # Select among the positive entries only: np.partition slows down several-fold on
    # the many equal zeros of a full score row (measured 25 us vs 105 us per SciFact row).
    cols = np.flatnonzero(row > 0)
    vals = row[cols]
    if cols.size > k:
        # Keep everything at or above the k-th largest value, so ties at the boundary
        # are all present and get resolved by column id below.
        kth = np.partition(vals, cols.size - k)[cols.size - k]
        keep = vals >= kth
        cols, vals = cols[keep], vals[keep]
    order = np.argsort(-vals, kind="stable")[:k]  # stable: equal scores stay by column
    return cols[order].astype(np.int64), vals[order]
