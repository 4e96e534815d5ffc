"""A PDF's outline (its bookmarks): titles, the pages they point to and their nesting.

Used twice: the PDF loader turns bookmarks into the heading path of each chunk, and
``snaprag eval --outline`` turns them into queries whose answer is the bookmarked page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

from ._text import clean_title

# pypdf logs at WARNING for every odd destination it works around; the loader already
# keeps its log quiet, and an outline that cannot be read just means no headings
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

#: bookmarks read at most: a real outline has hundreds or a few thousand; a broken or
#: hostile one must not hold the loader for long
MAX_BOOKMARKS = 20_000
#: nesting deeper than this is cut off (real outlines nest 3 to 6 levels)
MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Bookmark:
    """One outline entry: its ``title``, the 1-based ``page`` it points to, its ``depth``
    (0 for top-level entries) and ``path``, the titles from the top level down to it."""

    title: str
    page: int
    depth: int
    path: tuple[str, ...]


def read_outline(reader: PdfReader) -> list[Bookmark]:
    """The bookmarks of ``reader``'s document in outline order.

    Entries without a title or whose destination names no page of this document are
    left out (their children are kept, one level up). A broken outline gives the entries
    read before the break; this never raises.
    """
    try:
        root = reader.outline
    except Exception:  # a damaged /Outlines tree: no headings rather than no document
        return []
    out: list[Bookmark] = []
    n_pages = len(reader.pages)
    # (items, index into them, path above them); an explicit stack: outlines can be deep
    stack: list[tuple[list[Any], int, tuple[str, ...]]] = [(list(root), 0, ())]
    last_path: tuple[str, ...] = ()
    while stack and len(out) < MAX_BOOKMARKS:
        items, i, above = stack.pop()
        if i >= len(items):
            continue
        stack.append((items, i + 1, above))
        item = items[i]
        if isinstance(item, list):  # the children of the entry just before it
            if len(last_path) <= MAX_DEPTH:
                stack.append((item, 0, last_path))
            continue
        title = _title(item)
        page = _page(reader, item, n_pages)
        if not title or page is None:
            last_path = above
            continue
        last_path = (*above, title)
        out.append(Bookmark(title, page, len(above), last_path))
    return out


def _title(item: Any) -> str:
    try:
        raw = item.title
    except Exception:
        return ""
    return clean_title(raw if isinstance(raw, str) else None)


def _page(reader: PdfReader, item: Any, n_pages: int) -> int | None:
    try:
        index = reader.get_destination_page_number(item)
    except Exception:
        return None
    if index is None or not 0 <= index < n_pages:
        return None
    return int(index) + 1
