"""Query normalization for cache keys, so trivial variants of a question share one entry.

``"  What is the WARRANTY period?? "`` and ``"what is the warranty period"`` normalize to
the same text; so do full-width and half-width forms (NFKC) and Korean questions that
differ only in spacing around punctuation or a trailing ``?``/``。``. Words are never
changed or dropped: two queries that differ in a word stay different.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# trailing punctuation that does not change what is asked (after NFKC: full-width forms
# are already ASCII); quotes and brackets are kept, they can carry meaning
_TRAILING = re.compile(r"[\s?!.。,;:…·~]+$")
_LEADING = re.compile(r"^[\s¿¡]+")
_SPACE = re.compile(r"\s+")
# spaces before punctuation inside the query ("warranty ?" == "warranty?")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?!.,;:])")


@functools.lru_cache(maxsize=8192)
def normalize_query(text: str) -> str:
    """NFKC, case folding, collapsed whitespace, no trailing punctuation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _LEADING.sub("", text)
    return _TRAILING.sub("", text)
