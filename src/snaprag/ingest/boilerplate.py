"""Text on pages that is not content: tables of contents, back-of-book indexes, dot-leader
lines and running headers and footers.

A table of contents repeats every section title next to its page number, an index repeats
every key term; left in the index, such a page matches a title query better than the page
it points to (short, dense, every word of the title), and a running header puts the
chapter title on every page of the chapter. These functions take the text of each page of
a document and return it without those lines; pure functions over lists of lines, so any
page-structured loader can use them.

Lines are judged by shape, never by language: a page reference is a number (``12``,
``xiv``) at the end of a line; what makes a page a table of contents is that most of its
lines end in one and the numbers rise down the page (an index's do not: its entries are
sorted by term, its numbers jump about); what makes a line a running header is that it
sits at the top or bottom of the page and repeats on other pages, or carries the page's
own number there.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

#: lines at the top and at the bottom of a page where running headers and footers sit
EDGE_LINES = 3
#: a line repeated at the edge of this many pages (and this share of them) is a running one
MIN_REPEATS = 3
MIN_REPEAT_SHARE = 0.25
#: share of a page's lines that must be entries for it to be a contents or index page
MIN_ENTRY_SHARE = 0.5
MIN_ENTRIES = 4
#: a document losing more than this share of its text to boilerplate is kept whole
MIN_KEPT_SHARE = 0.2

_NUMBER = r"(?:\d{1,4}|[ivxlcdm]{1,7}|[IVXLCDM]{1,7})"
# "Title . . . . 12", "Title ........ 12", "Title …… 12"
_LEADER_RE = re.compile(rf"(?:\s?[.·…․‥]){{3,}}\s*{_NUMBER}\s*$")
# "1.2 Title 12" / "Title 12": text, a space, a page number (a TOC without leaders)
_TRAILING_NUMBER_RE = re.compile(rf"\S\s+({_NUMBER})\s*$")
_PAGE_NUMBER_RE = re.compile(rf"(\d{{1,4}}|{_NUMBER})\s*$")
# index entries: "term, 12", "term, 12, 45–47", "term (package), 175", and their
# continuation lines "138, 140, 283"
_INDEX_ENTRY_RE = re.compile(
    rf"^(?:.{{0,80}}?,\s*)?{_NUMBER}(?:\s*[-–—]\s*{_NUMBER})?"
    rf"(?:\s*,\s*{_NUMBER}(?:\s*[-–—]\s*{_NUMBER})?)*\s*,?$"
)
_INDEX_SEE_RE = re.compile(r",\s*(?:see|see also|→|참조|참고)\b", re.IGNORECASE)
# a line that is only a page number, "- 12 -", "Page 3", "3 / 10", "Page 3 of 10"
_BARE_PAGE_RE = re.compile(
    rf"^(?:page|p\.|쪽)?\s*[-–—(]?\s*{_NUMBER}\s*[-–—)]?\s*(?:(?:/|of)\s*\d{{1,4}})?\s*(?:쪽|면)?$",
    re.IGNORECASE,
)
_SPACES_RE = re.compile(r"\s+")
# "page 3 of 10", "p. 3", "3 / 10", "3/10쪽" inside a footer line
_PAGE_OF_RE = re.compile(
    r"\b(?:page|p\.)\s*(\d{1,4})(?:\s*(?:of|/)\s*\d{1,4})?\b|\b(\d{1,4})\s*/\s*\d{1,4}\s*쪽",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class CleanPage:
    """A page's text without boilerplate; ``listing`` when the page was a table of
    contents or an index (what is left of it belongs to no section)."""

    text: str
    listing: bool = False


def clean_pages(pages: Sequence[str]) -> list[CleanPage]:
    """Each page's text without boilerplate lines (pages in document order).

    Dropped: running headers and footers (:func:`running_lines`), bare page numbers,
    dot-leader lines, and the entries of table-of-contents and index pages. A page may
    come back empty. When dropping would leave less than :data:`MIN_KEPT_SHARE` of the
    text (a document that is one long list, a price list with leaders), its pages come
    back as they were.
    """
    lines = [page.split("\n") for page in pages]
    running = running_lines(lines)
    out: list[CleanPage] = []
    for number, page_lines in enumerate(lines):
        kept = [
            line
            for i, line in enumerate(page_lines)
            if (number, i) not in running and not _BARE_PAGE_RE.match(line.strip())
        ]
        listing = True
        if is_contents_page(kept):
            # entries set inline ("2.4.1 Title 13, 2.4.2 Other 16") and the wrapped parts
            # of long ones also carry numbers; a contents page's own title does not
            kept = [
                line
                for line in kept
                if not (_is_contents_entry(line) or any(ch.isdigit() for ch in line))
            ]
        elif is_index_page(kept):
            kept = [line for line in kept if not _is_index_line(line)]
        else:
            listing = False
        kept = [line for line in kept if not is_leader_line(line)]
        out.append(CleanPage("\n".join(kept).strip("\n"), listing))
    kept_chars = sum(len(page.text) for page in out)
    if kept_chars < MIN_KEPT_SHARE * sum(len(page) for page in pages):
        return [CleanPage(page) for page in pages]  # one long list: the list is the content
    return out


def is_leader_line(line: str) -> bool:
    """A line ending in dot leaders and a page number (a contents or list-of-figures entry)."""
    return _LEADER_RE.search(line) is not None


def is_contents_page(lines: Sequence[str]) -> bool:
    """Whether these lines are (mostly) table-of-contents entries.

    Most lines end in a page number and those numbers never fall much down the page (a
    table of contents is in page order; an index or a table of figures by value is not);
    a page of numbers in a table is told apart by needing leaders or titles with words.
    """
    content = [line.strip() for line in lines if line.strip()]
    if len(content) < MIN_ENTRIES:
        return False
    entries = [line for line in content if _is_contents_entry(line)]
    if len(entries) < max(MIN_ENTRIES, MIN_ENTRY_SHARE * len(content)):
        return False
    numbers = [_page_value(line) for line in entries]
    values = [n for n in numbers if n is not None]
    rising = sum(b >= a for a, b in itertools.pairwise(values))
    if len(values) > 1 and rising < 0.8 * (len(values) - 1):
        return False
    leaders = sum(is_leader_line(line) for line in entries)
    worded = sum(_has_words(line) for line in entries)
    return leaders >= 2 or worded >= 0.8 * len(entries)


def is_index_page(lines: Sequence[str]) -> bool:
    """Whether these lines are (mostly) entries of a back-of-book index."""
    content = [line.strip() for line in lines if line.strip()]
    if len(content) < MIN_ENTRIES:
        return False
    entries = sum(_is_index_line(line) for line in content)
    with_comma = sum("," in line for line in content)
    return entries >= MIN_ENTRY_SHARE * len(content) and with_comma >= MIN_ENTRIES


def running_lines(pages: Sequence[Sequence[str]]) -> set[tuple[int, int]]:
    """``(page index, line index)`` of running headers and footers.

    A line near the top or bottom of a page (within :data:`EDGE_LINES`) is running when
    the same line, page numbers aside, sits near the edge of at least :data:`MIN_REPEATS`
    pages and :data:`MIN_REPEAT_SHARE` of them, or when it is short and ends or starts
    with the page's own number (the offset between printed and physical page numbers is
    learnt from the document: the most common one among edge lines, seen on at least
    :data:`MIN_REPEATS` pages).
    """
    edges: list[list[tuple[int, str]]] = []
    for page_lines in pages:
        indexed = [(i, line.strip()) for i, line in enumerate(page_lines) if line.strip()]
        if len(indexed) <= 2 * EDGE_LINES:
            edges.append(indexed)
        else:
            edges.append(indexed[:EDGE_LINES] + indexed[-EDGE_LINES:])
    shapes = Counter(
        shape for page in edges for shape in {_shape(line) for _, line in page} if shape
    )
    need = max(MIN_REPEATS, MIN_REPEAT_SHARE * len(pages))
    # arabic and roman page numbers each have their own offset (front matter is numbered
    # i, ii, ... and the body restarts at 1). The offset is the one most pages agree on
    # with the same words around the number ("Manual 7", "Manual 8"): numbered headings
    # at the top of a page also start with a number, but each with other words.
    support: Counter[tuple[str, int, str]] = Counter()
    for n, page in enumerate(edges):
        support.update({(kind, n - value, stem) for kind, value, stem in _numbers(page)})
    confirmed = set()
    for kind in ("a", "r"):
        best = max(
            ((seen, key[:2]) for key, seen in support.items() if key[0] == kind), default=None
        )
        # a short document is confirmed when every page agrees (two pages, two footers)
        if best is not None and best[0] >= min(MIN_REPEATS, max(2, len(pages))):
            confirmed.add(best[1])
    found: set[tuple[int, int]] = set()
    for n, page in enumerate(edges):
        for i, line in page:
            repeated = shapes[_shape(line)] >= need and len(pages) >= MIN_REPEATS
            number = _edge_number(line)
            numbered = number is not None and (number[0], n - number[1]) in confirmed
            if repeated or (numbered and len(line) <= 80):
                found.add((n, i))
    return found


# --------------------------------------------------------------------------- internals


def _is_contents_entry(line: str) -> bool:
    line = line.strip()
    return is_leader_line(line) or (
        _TRAILING_NUMBER_RE.search(line) is not None and _has_words(line) and len(line) <= 120
    )


def _is_index_line(line: str) -> bool:
    line = line.strip()
    if len(line) <= 2:  # the letter heading of an index group ("R", "ㄱ")
        return True
    return _INDEX_ENTRY_RE.match(line) is not None or _INDEX_SEE_RE.search(line) is not None


def _has_words(line: str) -> bool:
    """At least one run of two letters (a title, not a row of numbers)."""
    run = 0
    for ch in line:
        run = run + 1 if ch.isalpha() else 0
        if run >= 2:
            return True
    return False


def _page_value(line: str) -> int | None:
    found = _PAGE_NUMBER_RE.search(line.strip())
    if found is None or not found.group(1).isdigit():
        return None  # roman numbers (front matter) say nothing of the order
    return int(found.group(1))


def _numbers(page: Sequence[tuple[int, str]]) -> set[tuple[str, int, str]]:
    """``(kind, page number, the line's other words)`` of a page's edge lines that carry
    a page number."""
    found = set()
    for _, line in page:
        number = _edge_number(line)
        if number is not None:
            found.add((number[0], number[1], number[2].casefold()))
    return found


def _edge_number(line: str) -> tuple[str, int, str] | None:
    """The page number of a header or footer line, if any, with the rest of the line:
    ``("a", 12, "Manual")`` for an arabic number at its start or end or written as
    ``page 12 of 30`` / ``12/30쪽``, ``("r", 14, ...)`` for a roman one (``xiv``)."""
    found = _PAGE_OF_RE.search(line)  # before the last number: "page 2 of 3" ends in 3
    if found is not None:
        return "a", int(found.group(1) or found.group(2)), _PAGE_OF_RE.sub("#", line)
    parts = line.split()
    for token, rest in ((parts[-1], parts[:-1]), (parts[0], parts[1:])) if parts else ():
        if token.isdigit() and len(token) <= 4:
            return "a", int(token), " ".join(rest)
        value = _roman(token)
        if value is not None:
            return "r", value, " ".join(rest)
    return None


_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}
_ROMAN_RE = re.compile(r"^(?:m{0,3})(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$")


def _roman(token: str) -> int | None:
    """The value of a roman numeral written in one case (``xiv``, ``XIV``), else None."""
    if not token or len(token) > 7 or not (token.islower() or token.isupper()):
        return None
    low = token.lower()
    if not _ROMAN_RE.match(low):
        return None
    total = 0
    for ch, after in zip(low, [*low[1:], ""], strict=True):
        value = _ROMAN[ch]
        total += -value if after and _ROMAN[after] > value else value
    return total or None


def _shape(line: str) -> str:
    """A line as compared across pages (case and spacing aside); empty for a line with no
    letters. Numbers are kept: a header with the page's number is found by its number
    (see :func:`running_lines`), and body lines that differ only in a number ("Figure 3",
    "Figure 4") are not running lines."""
    shape = _SPACES_RE.sub(" ", line.casefold()).strip()
    return shape if any(ch.isalpha() for ch in shape) else ""
