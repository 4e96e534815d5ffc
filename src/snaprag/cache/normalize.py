"""Query normalization for cache keys, so trivial variants of a question share one entry.

``"  What is the WARRANTY period?? "`` and ``"what is the warranty period"`` normalize to
the same text; so do full-width and half-width forms (NFKC) and Korean questions that
differ only in spacing around punctuation or a trailing ``?``/``。``. Words are never
changed or dropped: two queries that differ in a word stay different.

Time is linear in the length of the query, whatever it holds: a query of 200,000 question
marks is normalized as fast as one of 200,000 letters.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# trailing punctuation that does not change what is asked (after NFKC: full-width forms
# are already ASCII); quotes and brackets are kept, they can carry meaning. Stripped by a
# scan from the end, not by a regex "[...]+$": a search for that pattern restarts at every
# character of a long run that does not reach the end ("???...?a"), quadratic time.
_TRAILING = frozenset("?!.。,;:…·~")
_LEADING = re.compile(r"^[\s¿¡]+")
_SPACE = re.compile(r"\s+")
# spaces before punctuation inside the query ("warranty ?" == "warranty?")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?!.,;:])")


#: queries up to this length are memoized (longer ones are rare, and 8192 of them could
#: hold gigabytes)
MEMO_MAX_CHARS = 1024


def normalize_query(text: str) -> str:
    """NFKC, case folding, collapsed whitespace, no trailing punctuation."""
    if len(text) <= MEMO_MAX_CHARS:
        return _normalize_memo(text)
    return _normalize(text)


@functools.lru_cache(maxsize=8192)
def _normalize_memo(text: str) -> str:
    return _normalize(text)


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text)  # first: the pattern below then meets single spaces only
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _LEADING.sub("", text)  # anchored: tried at the start only
    end = len(text)
    while end and (text[end - 1] in _TRAILING or text[end - 1].isspace()):  # isspace is \s
        end -= 1
    return text[:end]
