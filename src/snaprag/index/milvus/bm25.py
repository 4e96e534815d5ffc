"""BM25 in Milvus as sparse vectors, scored exactly as the embedded index scores it.

snaprag's :class:`~snaprag.index.bm25.Bm25Index` scores a document ``d`` for a query
``q`` as ``sum over q's tokens t of idf(t) * w(t, d)``, with::

    w(t, d) = tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)  = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

(``k1``/``b`` per script: terms with Hangul use their own pair). That is an inner product
of two sparse vectors: the chunk's ``{term: w(t, d)}``, stored in Milvus when the chunk is
written, and the query's ``{term: idf(t) * count(t, q)}``, made per search from the
document frequencies kept in the ``terms`` collection and ``N`` kept in ``meta``. Terms
are snaprag's own (Korean morphemes, English stems), so Milvus never tokenizes anything.

``avgdl`` moves as the corpus grows; a chunk records the ``avgdl`` its weights were made
with, and after every write the chunks whose record is more than :data:`AVGDL_TOLERANCE`
away from the current one are weighted again (see ``MilvusStore``), so the scores stay
those of the embedded index to within that tolerance on the length norm.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ..bm25 import HANGUL_B, HANGUL_K1, K1, B
from ..tokenize import has_hangul
from .names import term_id

#: relative drift of avgdl after which a chunk's weights are made again
AVGDL_TOLERANCE = 0.01


def doc_weights(tokens: Sequence[str], avgdl: float) -> dict[int, float]:
    """The chunk's sparse vector: ``{term id: w(t, d)}`` (empty for a chunk without terms)."""
    if not tokens:
        return {}
    dl = len(tokens)
    norm = dl / avgdl if avgdl > 0 else 1.0
    out: dict[int, float] = {}
    for term, tf in Counter(tokens).items():
        k1, b = (HANGUL_K1, HANGUL_B) if has_hangul(term) else (K1, B)
        tid = term_id(term)  # two terms sharing a 32-bit id add up (rare)
        out[tid] = out.get(tid, 0.0) + tf / (tf + k1 * (1.0 - b + b * norm))
    return out


def idf(n_docs: int, df: int) -> float:
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def query_weights(tokens: Sequence[str], n_docs: int, dfs: dict[int, int]) -> dict[int, float]:
    """The query's sparse vector: ``{term id: idf(t) * count(t, q)}`` over terms in the index."""
    out: dict[int, float] = {}
    for term, count in Counter(tokens).items():
        tid = term_id(term)
        df = dfs.get(tid, 0)
        if df > 0:
            out[tid] = out.get(tid, 0.0) + idf(n_docs, df) * count
    return out


def term_counts(tokens: Sequence[str]) -> Counter[int]:
    """Document frequency contributions of one chunk: each distinct term id once."""
    return Counter({term_id(t) for t in tokens})
