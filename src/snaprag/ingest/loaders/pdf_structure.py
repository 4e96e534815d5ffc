"""The heading structure of a PDF: which section each line of each page belongs to.

A PDF's text layer has no headings, only lines. Where the document has an outline, each
bookmark names a heading and its page; the heading's line is looked up on that page, so
the page is split where the section starts. Where it has none, headings are recognised
from the text layer by their numbering (``2.3 Title``, ``1 Introduction``, ``Chapter 4``,
``제 3 장``), accepted only in sequence (``2.3`` after ``2.2`` or ``2``, never a ``1.``
list item restarting the count), so that numbered lists and tables do not pass for
headings. Boilerplate (see :mod:`snaprag.ingest.boilerplate`) is dropped first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...types import Section
from ..boilerplate import clean_pages
from .pdf_outline import Bookmark

#: font-size headings needed in a document to use them instead of its numbering
MIN_SIZED = 2
#: longest line taken for a numbered heading (longer ones are body text)
MAX_HEADING_CHARS = 90
#: a label before a bookmark's title on its line ("3.2", "Chapter 4", "제 3 장", "A.1")
_LABEL_RE = re.compile(
    r"^(?:chapter|appendix|part|section|제)?\s*(?:[0-9]{1,3}|[A-Z])?(?:\.[0-9]{1,3})*\.?"
    r"\s*(?:장|절|편|부)?$",
    re.IGNORECASE,
)
_NUMBERED_RE = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})(\.?)\s+(\S.*)$")
_CHAPTER_RE = re.compile(
    r"^(?:chapter|appendix|part)\s+(\d{1,2}|[A-Z]|[IVX]{1,5})[.:]?(?:\s+(\S.*))?$",
    re.IGNORECASE,
)
_KOREAN_CHAPTER_RE = re.compile(r"^제\s?(\d{1,3})\s?(?:장|편|부)(?:\s+(\S.*))?$")
_SENTENCE_END = (".", ",", ";", ":", "다.", "요.")
_LIST_ITEM_RE = re.compile(r"^(\d{1,2})[.)]\s")


def pdf_sections(
    pages: Sequence[tuple[int, str]],
    bookmarks: Sequence[Bookmark],
    sized: Sequence[Bookmark] = (),
) -> list[Section]:
    """Sections of a PDF's pages: boilerplate dropped, each page split where a heading
    starts, each part carrying its heading path (the path in effect carries over pages).

    Headings come from the outline (``bookmarks``), else from font sizes (``sized``, see
    :mod:`.pdf_fonts`; at least ``MIN_SIZED`` of them), else from numbering."""
    numbers = [n for n, _ in pages]
    cleaned = clean_pages([text for _, text in pages])
    lines = [page.text.split("\n") if page.text else [] for page in cleaned]
    if bookmarks:
        starts = _bookmark_starts(numbers, lines, bookmarks)
    elif len(sized) >= MIN_SIZED:
        # a line the boilerplate pass dropped (a running header set large) starts nothing
        starts = _bookmark_starts(numbers, lines, sized, anchor_missing=False)
    else:
        starts = _numbered_starts(lines)
    sections: list[Section] = []
    path: tuple[str, ...] = ()
    for page_index, (number, page_lines) in enumerate(zip(numbers, lines, strict=True)):
        here = starts.get(page_index, {})
        begin = 0
        started = False  # whether the path in effect was set by a heading on this page
        for i in range(len(page_lines) + 1):
            if i < len(page_lines) and i not in here:
                continue
            text = "\n".join(page_lines[begin:i]).strip()
            if text:
                # what is left of a contents or index page ("Index") inherits no heading:
                # the path would make it match that heading's queries; a heading that
                # starts on the page (its own "Index" bookmark) is its own, and is kept
                where = () if cleaned[page_index].listing and not started else path
                sections.append(Section(text, page=number, heading=where))
            if i < len(page_lines):
                path = here[i]
                begin = i
                started = True
        if not page_lines and here:  # a heading on a page left empty: it still holds
            path = here[max(here)]
    return sections


# --------------------------------------------------------------------------- bookmarks


def _bookmark_starts(
    numbers: Sequence[int],
    lines: Sequence[list[str]],
    bookmarks: Sequence[Bookmark],
    anchor_missing: bool = True,
) -> dict[int, dict[int, tuple[str, ...]]]:
    """``{page index: {line index: heading path}}`` for the bookmarks' headings.

    A heading not found on its page starts at the page's first line (chapters begin on
    a new page, and the page is what the bookmark names), or, without ``anchor_missing``,
    nowhere.
    """
    index_of = {number: i for i, number in enumerate(numbers)}
    by_page: dict[int, list[Bookmark]] = {}
    for mark in sorted(bookmarks, key=lambda b: b.page):  # stable: outline order kept
        if mark.page in index_of:
            by_page.setdefault(index_of[mark.page], []).append(mark)
    starts: dict[int, dict[int, tuple[str, ...]]] = {}
    for page_index, marks in by_page.items():
        page_lines = lines[page_index]
        here: dict[int, tuple[str, ...]] = {}
        placed: set[int] = set()  # lines where a heading was found as printed
        at = 0
        for mark in marks:
            found = _find_title(page_lines, mark.title, at)
            if found is None and (not anchor_missing or at in placed):
                # a heading not printed (an index's letter groups, dropped as entries)
                # does not take the line of one that is ("Index" above them)
                continue
            at = found if found is not None else at
            here[at] = mark.path  # several at one line: the last (deepest) one holds
            if found is not None:
                placed.add(at)
        if page_lines:
            starts[page_index] = here
    return starts


def _find_title(lines: Sequence[str], title: str, start: int) -> int | None:
    """The first line at or after ``start`` that is ``title`` (maybe numbered, maybe
    wrapped over two lines), compared on letters and digits only."""
    want = _letters(title)
    if not want:
        return None
    for i in range(start, len(lines)):
        line = _letters(lines[i])
        if _is_heading_of(lines[i], line, want):
            return i
        if i + 1 < len(lines) and len(line) < len(want):
            both = lines[i] + " " + lines[i + 1]
            if _is_heading_of(both, line + _letters(lines[i + 1]), want):
                return i
    return None


def _is_heading_of(raw: str, letters: str, want: str) -> bool:
    if letters == want:
        return True
    if not letters.endswith(want) or len(letters) - len(want) > 12:
        return False
    # what comes before the title must be a label such as "3.2" or "Chapter 4"
    cut = _cut_before(raw, want)
    return cut is not None and _LABEL_RE.match(cut.strip()) is not None


def _cut_before(raw: str, want: str) -> str | None:
    """The part of ``raw`` before the characters that spell ``want`` at its end."""
    count = 0
    for pos in range(len(raw) - 1, -1, -1):
        if raw[pos].isalnum():
            count += 1
            if count == len(want):
                return raw[:pos]
    return None


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


# --------------------------------------------------------------------------- numbering


def _numbered_starts(lines: Sequence[list[str]]) -> dict[int, dict[int, tuple[str, ...]]]:
    """Headings recognised by their numbering, accepted only in sequence."""
    starts: dict[int, dict[int, tuple[str, ...]]] = {}
    last: tuple[int, ...] = ()
    stack: list[tuple[tuple[int, ...], str]] = []  # (number, title) of the open headings
    for page_index, page_lines in enumerate(lines):
        for i, line in enumerate(page_lines):
            found = numbered_heading(line)
            if found is None or not follows(last, found[0]):
                continue
            if _LIST_ITEM_RE.match(line.strip()) and _in_list(page_lines, i, found[0][0]):
                continue  # "1. Unpack" next to "2. Assemble": a numbered list
            number, text = found
            while stack and len(stack[-1][0]) >= len(number):
                stack.pop()
            stack.append((number, text))
            last = number
            starts.setdefault(page_index, {})[i] = tuple(t for _, t in stack)
    return starts


def numbered_heading(line: str) -> tuple[tuple[int, ...], str] | None:
    """``(numbering, heading text)`` if ``line`` looks like a numbered heading.

    ``2.3 Title`` and ``2.3. Title`` (any depth), ``1 Title`` (one level: a capital or
    non-Latin letter first, at most eight words), ``1. Title`` (the same, at most six
    words: lists are numbered so too, which the caller tells apart by their neighbours),
    ``Chapter 4 Title`` and ``제 3 장 제목`` (level one). The text must not end a
    sentence or a clause.
    """
    line = line.strip()
    if not line or len(line) > MAX_HEADING_CHARS:
        return None
    chapter = _CHAPTER_RE.match(line) or _KOREAN_CHAPTER_RE.match(line)
    if chapter is not None:
        label = chapter.group(1)
        # lettered and roman labels (appendices, parts) follow no count we can check
        return ((int(label),), line) if label.isdigit() else None
    match = _NUMBERED_RE.match(line)
    if match is None:
        return None
    parts = tuple(int(p) for p in match.group(1).split("."))
    text = match.group(3).strip()
    if not any(ch.isalpha() for ch in text[:3]) or text.endswith(_SENTENCE_END):
        return None
    if len(parts) == 1:
        first = text[0]
        words = 6 if match.group(2) else 8
        if (first.isascii() and not first.isupper()) or len(text.split()) > words:
            return None
    return parts, line


def _in_list(lines: Sequence[str], i: int, number: int) -> bool:
    """Whether line ``i`` (item ``number``) has its list neighbours: item ``number - 1``
    just before it or item ``number + 1`` just after it."""
    for j, want in ((i - 1, number - 1), (i + 1, number + 1)):
        if 0 <= j < len(lines):
            found = _LIST_ITEM_RE.match(lines[j].strip())
            if found is not None and int(found.group(1)) == want:
                return True
    return False


def follows(last: tuple[int, ...], number: tuple[int, ...]) -> bool:
    """Whether ``number`` may come after heading ``last``: its first child (``2.3.1``
    after ``2.3``), or the next at its own or a higher level (``2.4``, ``3``), one
    missed heading allowed (``2.5`` after ``2.3``). The first heading is a 1 (or 0) at
    every level."""
    if not last:
        return all(n <= 1 for n in number)
    if number == (*last, 1):
        return True
    depth = len(number)
    if depth > len(last):
        return False
    return number[:-1] == last[: depth - 1] and 1 <= number[-1] - last[depth - 1] <= 2
