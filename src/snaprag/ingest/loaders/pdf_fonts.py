"""Headings of a PDF without an outline, recognised by their font size.

pypdf hands every piece of text it extracts to a visitor with the font size and the
text and current matrices; the size on the page is the font size times the vertical scale
of both. :class:`LineSizes` rebuilds the page's lines from those pieces with the size of
most of each line's letters. :func:`font_headings` then takes the body size (the size of
most letters in the document) and calls a line a heading when it is clearly larger, short,
has letters, does not end a sentence and does not repeat on many pages (a running header
in a large font). Larger sizes nest smaller ones, like an outline: each distinct heading
size is a level. A size found only once, on the first page, is the document's title,
already the document's title, so it is not a level. The result has the shape of an outline
(:class:`~.pdf_outline.Bookmark`), so the structure code places these headings on their
pages as it places bookmarks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .pdf_outline import Bookmark

#: a heading's letters are at least this much larger than the body text's (ratio and
#: points: footnote-sized body text must not make normal text a heading)
MIN_RATIO = 1.12
MIN_POINTS = 0.9
#: longest heading, in characters and in words
MAX_CHARS = 90
MAX_WORDS = 14
#: a heading text on more pages than this is a running header or a repeated label
MAX_REPEATS = 3
#: heading sizes closer than this (points) are one level
_SIZE_STEP = 0.5
#: at most this many levels (the smallest sizes beyond it join the last level)
MAX_LEVELS = 4
_SENTENCE_END = (".", ",", ";", "다.", "요.")

#: the lines of one page: (text, size of most of its letters)
SizedLines = list[tuple[str, float]]


class LineSizes:
    """A ``visitor_text`` for ``page.extract_text`` that records each line's text size."""

    def __init__(self) -> None:
        self.lines: SizedLines = []
        self._text: list[str] = []
        self._sizes: Counter[float] = Counter()

    def __call__(self, text: str, cm: Any, tm: Any, font: Any, font_size: Any) -> None:
        if not text:
            return
        try:
            size = round(float(font_size) * _scale(tm, cm), 1)
        except (TypeError, ValueError, IndexError):
            size = 0.0
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if i:
                self._end_line()
            self._text.append(part)
            letters = sum(ch.isalnum() for ch in part)
            if letters:
                self._sizes[size] += letters

    def finish(self) -> SizedLines:
        """The page's lines (call once, after ``extract_text``)."""
        self._end_line()
        return self.lines

    def _end_line(self) -> None:
        text = " ".join("".join(self._text).split())
        if text:
            size = self._sizes.most_common(1)[0][0] if self._sizes else 0.0
            self.lines.append((text, size))
        self._text, self._sizes = [], Counter()


def _scale(tm: Sequence[float], cm: Sequence[float]) -> float:
    """The vertical scale of the text matrix times the current transformation matrix."""
    c = tm[2] * cm[0] + tm[3] * cm[2]
    d = tm[2] * cm[1] + tm[3] * cm[3]
    return math.hypot(c, d)


def font_headings(pages: Sequence[tuple[int, SizedLines]]) -> list[Bookmark]:
    """Headings recognised by size, in page order, as outline entries with their paths.

    ``pages``: ``(1-based page number, lines)`` of every page with text.
    """
    letters: Counter[float] = Counter()
    for _, lines in pages:
        for text, size in lines:
            letters[size] += sum(ch.isalnum() for ch in text)
    if not letters:
        return []
    body = letters.most_common(1)[0][0]
    found = _candidates(pages, body)
    if not found:
        return []
    on_pages: dict[str, set[int]] = {}
    for page, title, _ in found:
        on_pages.setdefault(title.casefold(), set()).add(page)
    found = [f for f in found if len(on_pages[f[1].casefold()]) <= MAX_REPEATS]
    levels = _levels([(page, size) for page, _, size in found], pages[0][0])
    out: list[Bookmark] = []
    stack: list[tuple[int, str]] = []  # (depth, title) of the open headings
    for page, title, size in found:
        depth = levels.get(_step(size))
        if depth is None:
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        stack.append((depth, title))
        out.append(Bookmark(title, page, len(stack) - 1, tuple(t for _, t in stack)))
    return out


def _candidates(
    pages: Sequence[tuple[int, SizedLines]], body: float
) -> list[tuple[int, str, float]]:
    """``(page, heading text, size)`` of the lines set clearly larger than ``body``; a
    heading wrapped onto a second line of the same size is one heading."""
    out: list[tuple[int, str, float]] = []
    for page, lines in pages:
        previous = -2  # the line that started the last heading, while it can take another
        for i, (text, size) in enumerate(lines):
            if size < body * MIN_RATIO or size - body < MIN_POINTS:
                continue
            if previous == i - 1 and out[-1][2] == size:
                joined = f"{out[-1][1]} {text}"
                if _is_heading(joined):  # the second line of a wrapped heading
                    out[-1] = (page, joined, size)
                    previous = -2
                    continue
            if _is_heading(text):
                out.append((page, text, size))
                previous = i
    return out


def _is_heading(text: str) -> bool:
    if not 2 <= len(text) <= MAX_CHARS or len(text.split()) > MAX_WORDS:
        return False
    if sum(ch.isalpha() for ch in text) < 2:  # page numbers, labels such as "(a)"
        return False
    return not text.endswith(_SENTENCE_END)


def _levels(found: Sequence[tuple[int, float]], first_page: int) -> dict[float, int]:
    """Depth per heading size (rounded): the largest size is depth 0. A size seen once,
    on the first page, is the document's title and gets no depth."""
    count = Counter(_step(size) for _, size in found)
    where = {_step(size): page for page, size in found}
    sizes = sorted(
        (s for s in count if not (count[s] == 1 and where[s] == first_page)), reverse=True
    )
    return {s: min(i, MAX_LEVELS - 1) for i, s in enumerate(sizes)}


def _step(size: float) -> float:
    return round(size / _SIZE_STEP) * _SIZE_STEP
