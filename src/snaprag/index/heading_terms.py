"""One extra BM25 term per chunk for its section's heading, matched by a query that is
exactly that heading.

Someone who types a section's title ("Options", "2.1 Loading the package", "F") wants
that section, but its words alone rank it poorly: a title of common words ("Usage") is
in hundreds of chunks, a one-letter title makes no word term at all, and a chunk that
repeats the words outranks the short one they head. So each chunk carries one term made
of its innermost heading as a whole (``§`` and its letters and digits, case folded), and
each query one made of its whole text the same way: the two meet only when the query is
the heading, spacing, case and punctuation aside. The term is an ordinary BM25 term, so
its weight is its rarity: a title that a hundred sections share lifts them little, a
title of one section lifts it above everything. A query that is not some heading
(every question, every longer query) gets no match from it, so its ranking is unchanged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..types import SECTION_SEPARATOR

#: what starts a heading term; the word pattern of the tokenizer never makes a token with it
PREFIX = "§"
#: longer keys are hashed, so that a long title makes a term of bounded size
MAX_KEY_CHARS = 48


def heading_term(text: str) -> str | None:
    """The term of a heading, or of a query compared with headings; None without any
    letter or digit."""
    key = "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())
    if not key:
        return None
    if len(key) > MAX_KEY_CHARS:
        # CPython's own BLAKE2 (what hashlib.blake2b returns), not hashlib: importing that
        # loads OpenSSL's library (~3.5 MiB) into every searching process
        from _blake2 import blake2b

        key = blake2b(key.encode(), digest_size=12).hexdigest()
    return PREFIX + key


def section_terms(section: str) -> list[str]:
    """The heading term of a chunk's heading path (``A > B``): that of its innermost
    heading only, so the chunks of ``Options > Draft`` do not answer ``Options``."""
    if not section:
        return []
    term = heading_term(section.split(SECTION_SEPARATOR)[-1])
    return [term] if term else []


def with_section_terms(tokens: Sequence[list[str]], sections: Sequence[str]) -> list[list[str]]:
    """Chunks' BM25 terms with their heading terms appended."""
    return [[*t, *section_terms(s)] for t, s in zip(tokens, sections, strict=True)]


def with_query_terms(tokens: Sequence[list[str]], queries: Sequence[str]) -> list[list[str]]:
    """Queries' BM25 terms with the heading term of each whole query appended."""
    out = []
    for t, query in zip(tokens, queries, strict=True):
        term = heading_term(query)
        out.append([*t, term] if term else list(t))
    return out
