"""HTML pages, reduced to their readable text with paragraphs kept apart."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ...errors import LoaderError
from ...types import Document
from ._text import (
    clean_title,
    decode_text,
    heading_sections,
    make_document,
    normalize_text,
    require_text,
)

#: elements whose content is never document text
SKIP_TAGS = frozenset(
    {
        "script",
        "style",
        "nav",
        "noscript",
        "template",
        "svg",
        "iframe",
        "object",
        "head",
        "canvas",
        "select",
        "button",
    }
)
#: elements that start a new paragraph
BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "details",
        "dialog",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "ul",
    }
)
#: elements that start a new line but not a new paragraph
LINE_TAGS = frozenset({"br", "dd", "dt", "li", "tr", "option"})
_CELL_TAGS = frozenset({"td", "th"})

# Placeholders used while walking the tree, resolved by _layout: a table-cell boundary, a
# line break, a paragraph break, a <br>, and the space/newline/tab of <pre> text.
_CELL, _LINE, _PARA, _BR = "\x01", "\x02", "\x03", "\x07"
_PRE = str.maketrans({" ": "\x04", "\n": "\x05", "\t": "\x06"})
_UNPRE = str.maketrans({"\x04": " ", "\x05": "\n", "\x06": "\t"})
_SPACE_RE = re.compile(r"[ \t\n\r\f\v]+")
# a heading's level, marked at its start while laying out (a control character no text
# keeps: normalize_text removes them)
_HEADING = "\x0e"
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HEADING_MARK_RE = re.compile(r"\x0e([1-6])\x0e")
# Both start only where a run of spaces starts (the look-behind) and take it possessively:
# a plain "[ \t]*X" is tried again from every space of a long run that X does not follow,
# quadratic time.
_BREAKS_RE = re.compile(r"(?<![ \t])[ \t]*+[\x02\x03\x07][\x02\x03\x07 \t]*")
_CELLS_RE = re.compile(r"(?<![ \t])[ \t]*+(?:\x01[ \t]*+)+")
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class HtmlLoader:
    """Reads ``.html`` / ``.htm`` files with selectolax (lexbor).

    Scripts, styles, navigation and other non-content elements are dropped; block elements
    are separated by blank lines, list items and table rows by newlines, table cells by
    ``" | "``. The title is ``<title>``, else the first ``<h1>``, else the file stem.
    """

    type: str = "html"
    suffixes: tuple[str, ...] = (".html", ".htm")

    def load(self, path: Path, data: bytes) -> list[Document]:
        tree = LexborHTMLParser(_decode_html(data))
        title = _node_text(tree.css_first("title")) or _node_text(tree.css_first("h1"))
        root = tree.body or tree.root
        marked = html_to_text(root, mark_headings=True) if root is not None else ""
        require_text(normalize_text(_HEADING_MARK_RE.sub("", marked)))
        sections = heading_sections(_blocks(marked))
        return [make_document(path, self.type, title or path.stem, sections)]


def _blocks(marked: str) -> list[tuple[int, str]]:
    """``(level, text)`` paragraphs of text laid out with heading marks."""
    blocks = []
    for paragraph in marked.split("\n\n"):
        found = _HEADING_MARK_RE.match(paragraph.lstrip())
        if found is not None:
            text = _HEADING_MARK_RE.sub("", paragraph).strip()
            blocks.append((int(found.group(1)), " ".join(text.split())))
        else:
            blocks.append((0, _HEADING_MARK_RE.sub("", paragraph)))
    return blocks


def html_to_text(root: LexborNode, mark_headings: bool = False) -> str:
    """Lay out the text under ``root``; iterative, so deeply nested pages cannot overflow.

    With ``mark_headings``, each ``<h1>`` to ``<h6>`` paragraph starts with a mark of its
    level (:data:`_HEADING_MARK_RE`) for the loader to find.
    """
    parts: list[str] = []
    pre_depth = 0
    table_depth = 0  # a heading inside a table cell is cell text, not a section
    # (node, entering): entering pushes the exit marker and the children in reverse order
    stack: list[tuple[LexborNode, bool]] = [(root, True)]
    while stack:
        node, entering = stack.pop()
        tag = node.tag or ""
        if not entering:
            if tag == "pre":
                pre_depth -= 1
            elif tag == "table":
                table_depth -= 1
            parts.append(_break_for(tag))
            continue
        if node.is_text_node:
            raw = node.text_content or ""
            parts.append(raw.translate(_PRE) if pre_depth else _SPACE_RE.sub(" ", raw))
            continue
        if not node.is_element_node or tag in SKIP_TAGS or "hidden" in node.attributes:
            continue
        if tag == "br":
            parts.append(_BR if pre_depth == 0 else "\x05")
            continue
        if tag == "pre":
            pre_depth += 1
        elif tag == "table":
            table_depth += 1
        parts.append(_CELL if tag in _CELL_TAGS else _break_for(tag))
        if mark_headings and tag in _HEADINGS and not table_depth:
            parts.append(f"{_HEADING}{tag[1]}{_HEADING}")
        if tag == "li":
            parts.append("- ")
        stack.append((node, False))
        children: list[LexborNode] = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, True) for c in reversed(children))
    return _layout("".join(parts))


def _break_for(tag: str) -> str:
    if tag in BLOCK_TAGS:
        return _PARA
    if tag in LINE_TAGS:
        return _LINE
    return ""


def _layout(text: str) -> str:
    # A run of breaks is one paragraph break if any of them is one (or two <br> in a row),
    # else one line break.
    text = _BREAKS_RE.sub(
        lambda m: "\n\n" if _PARA in m.group() or m.group().count(_BR) > 1 else "\n", text
    )
    lines = []
    for line in text.split("\n"):
        line = _CELLS_RE.sub(" | ", line).strip(" \t")
        if line.startswith("| "):
            line = line[2:]
        lines.append(line.removesuffix(" |").translate(_UNPRE))
    return "\n".join(lines)


def _node_text(node: LexborNode | None) -> str:
    return clean_title(node.text(deep=True)) if node is not None else ""


def _decode_html(data: bytes) -> str:
    """UTF-8 / CP949 like any text file, else the charset the page declares in ``<meta>``."""
    try:
        return decode_text(data)
    except LoaderError as exc:
        declared = _META_CHARSET_RE.search(data[:4096])
        if declared is None or "binary" in str(exc) or "empty" in str(exc):
            raise
        name = declared.group(1).decode("ascii", "replace")
        try:
            codecs.lookup(name)
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            raise exc from None
