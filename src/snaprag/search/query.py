"""Checks on a query's text before any work is done for it.

Two questions, asked in this order by whatever takes a query (search, ask, the server):

1. :func:`check_query`: is it a query at all? Empty or whitespace-only text, or text over
   the length limit (:data:`MAX_QUERY_CHARS` by default), raises
   :class:`~snaprag.errors.QueryError` with a message that says what to do. The limit
   bounds the time and memory one request can take: every stage (normalization, the
   embedding tokenizer, BM25, the cache key) is at least linear in the query's length,
   and the embedding model reads only its first few hundred tokens anyway.
2. :func:`has_searchable_terms`: can it match anything? A query of only punctuation or
   emoji ("???", "🙂") has no term for BM25 and no letter or digit for the embedding to
   mean anything by; the caller answers it with no results instead of searching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError, QueryError
from ..index.tokenize import tokenize
from ..types import Filters, Hit, SearchBatch

if TYPE_CHECKING:
    from .base import Searcher

__all__ = ["MAX_QUERY_CHARS", "check_batch", "check_query", "has_searchable_terms"]

#: the default limit on a query's length, in characters (Python ``len``, code points):
#: some 1,500 English words, far beyond any question and beyond what the embedding model
#: reads (512 tokens), small enough that no query costs more than milliseconds to prepare
MAX_QUERY_CHARS = 8192


def check_query(text: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    """Return ``text`` unchanged if it is a query that may be searched.

    Raises :class:`~snaprag.errors.QueryError` when ``text`` is not a string, is empty or
    only whitespace, or is longer than ``max_chars`` characters; the message states the
    limit and what to do. ``max_chars`` below 1 is a :class:`~snaprag.errors.ConfigError`.
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ConfigError(f"max_chars must be a positive number of characters; got {max_chars!r}")
    if not isinstance(text, str):
        raise QueryError(f"the query must be text; got {type(text).__name__}")
    if len(text) > max_chars:
        raise QueryError(
            f"the query is {len(text):,} characters long, over the limit of {max_chars:,}; "
            "shorten it to the question or key words (a search does not need the whole "
            "text of a document), or raise the limit"
        )
    if not text.strip():
        raise QueryError("the query is empty (or only whitespace); give a question or key words")
    return text


def has_searchable_terms(text: str) -> bool:
    """Whether ``text`` has something to search for: a letter or digit, or a BM25 term.

    False for ``""``, whitespace, punctuation only and emoji only. Letters of any script
    count (Hangul, CJK, Cyrillic...), so the tokenizer (and the Korean analyser) runs only
    for text without any: then it decides, so that a term such as ``"__"`` still counts.
    """
    if any(ch.isalnum() for ch in text):
        return True
    return bool(text.strip()) and bool(tokenize(text))


def check_batch(queries: Sequence[str], max_chars: int = MAX_QUERY_CHARS) -> list[int]:
    """:func:`check_query` on every query before any work (a bad one fails the whole
    batch, and the message names it); returns the positions of the queries that have
    something to search for (:func:`has_searchable_terms`)."""
    if isinstance(queries, str):
        raise QueryError("expected a list of queries, got one string; use search() for one")
    for i, query in enumerate(queries):
        try:
            check_query(query, max_chars)
        except QueryError as exc:
            if len(queries) == 1:
                raise
            raise QueryError(f"query {i + 1} of {len(queries)}: {exc}") from None
    return [i for i, q in enumerate(queries) if has_searchable_terms(q)]


def search_checked(
    searcher: Searcher,
    queries: list[str],
    k: int,
    filters: Filters | None,
    mode: str,
    max_chars: int = MAX_QUERY_CHARS,
) -> SearchBatch:
    """:func:`check_batch`, then search: queries with no searchable terms ("???", emoji)
    match nothing, so they get no hits and are neither searched nor cached."""
    searchable = check_batch(queries, max_chars)
    if len(searchable) == len(queries):
        return searcher.search_many(queries, k, filters, mode)
    found = searcher.search_many([queries[i] for i in searchable], k, filters, mode)
    hits: list[list[Hit]] = [[] for _ in queries]
    for i, got in zip(searchable, found, strict=True):
        hits[i] = got
    return SearchBatch(hits, found.timings)
