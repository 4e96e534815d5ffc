"""Citation markers in an answer (``[2]``, ``[1][3]``, ``[1, 3]``, ``[1-3]``) mapped to their
sources.

Numbers refer to the numbered blocks of the context (:class:`.context.BuiltContext`). A
number outside them (a model inventing ``[7]`` with five sources, or ``[0]``) is ignored:
it names no document.
"""

from __future__ import annotations

import re

from ..types import Citation
from .context import BuiltContext

# [1]  [1, 2]  [1,2; 3]  [1-3]  and the full-width or lenticular brackets some models write
# in CJK text: ［1］ 【1】
_ITEM = r"\d{1,3}(?:\s*[-–~]\s*\d{1,3})?"
_MARKER = re.compile(rf"[\[［【]\s*({_ITEM}(?:\s*[,;、]\s*{_ITEM})*)\s*[\]］】]")
_PART = re.compile(r"(\d+)(?:\s*[-–~]\s*(\d+))?")
_MAX_RANGE = 20  # "[1-3]" is three sources; "[1-900]" is not a citation anyone means


def cited_numbers(text: str) -> list[int]:
    """Every number inside citation brackets (ranges expanded), in order of first
    appearance, once each."""
    seen: dict[int, None] = {}
    for marker in _MARKER.finditer(text):
        for first, last in _PART.findall(marker.group(1)):
            lo = int(first)
            hi = int(last) if last else lo
            if hi < lo or hi - lo > _MAX_RANGE:
                hi = lo
            for n in range(lo, hi + 1):
                seen.setdefault(n, None)
    return list(seen)


def map_citations(text: str, context: BuiltContext) -> list[Citation]:
    """The sources ``text`` cites, as citations numbered like the context blocks."""
    citations = []
    for n in cited_numbers(text):
        source = context.source(n)
        if source is None:
            continue
        hit = source.hit
        citations.append(Citation(n, hit.source, hit.page, hit.doc_id, hit.id, hit.section))
    return citations
