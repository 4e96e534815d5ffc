"""Query checks: a documented length limit, empty queries, queries with nothing to search."""

from __future__ import annotations

import pytest

from snaprag.errors import ConfigError, QueryError
from snaprag.search.query import MAX_QUERY_CHARS, check_query, has_searchable_terms


def test_a_query_within_the_limit_comes_back_unchanged() -> None:
    for text in ("warranty", "  What is the warranty?  ", "보증 기간", "x" * MAX_QUERY_CHARS):
        assert check_query(text, MAX_QUERY_CHARS) is text


def test_the_default_limit() -> None:
    assert MAX_QUERY_CHARS == 8192
    check_query("a" * MAX_QUERY_CHARS)
    with pytest.raises(QueryError):
        check_query("a" * (MAX_QUERY_CHARS + 1))


@pytest.mark.parametrize("limit", [1, 10, 8192])
def test_over_the_limit_says_the_limit_and_what_to_do(limit: int) -> None:
    with pytest.raises(QueryError) as info:
        check_query("?" * (limit + 1), limit)
    message = str(info.value)
    assert f"{limit:,}" in message and f"{limit + 1:,}" in message
    assert "shorten" in message
    assert "\n" not in message


def test_length_counts_characters_not_bytes() -> None:
    check_query("가" * 100, 100)  # 300 bytes in UTF-8
    with pytest.raises(QueryError):
        check_query("가" * 101, 100)


@pytest.mark.parametrize("text", ["", " ", "\t\n ", "\u3000", "\u00a0\u2003"])
def test_empty_and_whitespace_only(text: str) -> None:
    with pytest.raises(QueryError, match=r"^the query is empty"):
        check_query(text, MAX_QUERY_CHARS)


def test_not_text() -> None:
    with pytest.raises(QueryError, match="must be text"):
        check_query(None, MAX_QUERY_CHARS)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="must be text"):
        check_query(b"warranty", MAX_QUERY_CHARS)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -1, 2.5, True, None])
def test_a_bad_limit_is_a_config_error(limit: object) -> None:
    with pytest.raises(ConfigError, match="max_chars"):
        check_query("warranty", limit)  # type: ignore[arg-type]


def test_query_error_is_a_value_error() -> None:  # callers that catch ValueError keep working
    with pytest.raises(ValueError):
        check_query("", MAX_QUERY_CHARS)


@pytest.mark.parametrize(
    "text",
    ["", " ", "\t\n", "???", "?!.,;:…", "()[]{}<>", "🙂", "🙂🎉 👍", "— – · • ※", "。、！？"],
)
def test_nothing_to_search(text: str) -> None:
    assert not has_searchable_terms(text)


@pytest.mark.parametrize(
    "text",
    [
        "warranty",
        "a",  # one letter: BM25 drops it, the embedding still has something to go on
        "7",
        "the",  # a stop word: no BM25 term, but words
        "보증",
        "가",
        "ㄱ",  # a lone jamo
        "保証",
        "гарантия",
        "?? warranty ??",
        "🙂 frame",
        "__",  # no letter, but a BM25 term
        "x²",
    ],
)
def test_something_to_search(text: str) -> None:
    assert has_searchable_terms(text)
