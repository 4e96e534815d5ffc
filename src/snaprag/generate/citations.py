"""Citation markers in an answer (``[2]``, ``[1][3]``, ``[1, 3]``) mapped to their sources.

Numbers refer to the numbered blocks of the context (:class:`.context.BuiltContext`). A
number outside them (a model inventing ``[7]`` with five sources, or ``[0]``) is ignored:
it names no document.
"""

from __future__ import annotations

import re

from ..types import Citation
from .context import BuiltContext

# [1]  [1, 2]  [1,2; 3]  and the full-width brackets some models write in CJK text
_MARKER = re.compile(r"[\[［]\s*(\d{1,3}(?:\s*[,;、]\s*\d{1,3})*)\s*[\]］]")
_NUMBER = re.compile(r"\d+")


def cited_numbers(text: str) -> list[int]:
    """Every number inside citation brackets, in order of first appearance, once each."""
    seen: dict[int, None] = {}
    for marker in _MARKER.finditer(text):
        for number in _NUMBER.findall(marker.group(1)):
            seen.setdefault(int(number), None)
    return list(seen)


def map_citations(text: str, context: BuiltContext) -> list[Citation]:
    """The sources ``text`` cites, as citations numbered like the context blocks."""
    citations = []
    for n in cited_numbers(text):
        source = context.source(n)
        if source is None:
            continue
        hit = source.hit
        citations.append(Citation(n, hit.source, hit.page, hit.doc_id, hit.id))
    return citations
