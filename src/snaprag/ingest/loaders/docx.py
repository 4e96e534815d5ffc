"""Word ``.docx`` files: paragraphs and tables in reading order, read as a stream.

The main part (``word/document.xml``) is parsed incrementally, straight from the zip
member: each element is dropped as soon as it has been read, so memory holds the text
found so far and the open elements, never the whole tree (python-docx's tree took 8.5 GB
for 400 MB of XML and then failed). Peak memory for one file is bounded by the file's own
bytes plus a few times :data:`MAX_TEXT_CHARS`; text beyond that cap is refused with a
:class:`~snaprag.errors.LoaderError`, as are archives that would expand past
:data:`MAX_EXPANDED_BYTES`. Measured in a fresh process (imports included): 100 MB of XML
in tiny runs, 85 MB peak RSS, 15 s; 400 MB (17M runs, refused at the text cap after
reading it), 100 MB peak RSS, 86 s. Time is linear in the XML's size.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lxml import etree

from ...errors import LoaderError
from ...types import Document
from ._text import (
    clean_title,
    first_line,
    heading_sections,
    make_document,
    normalize_text,
    require_text,
)

#: refuse archives that would expand past this many bytes (a zip bomb, not a document)
MAX_EXPANDED_BYTES = 512 * 1024 * 1024
#: refuse documents with more text than this (characters): some 20,000 pages, and a bound
#: on the memory one file can take
MAX_TEXT_CHARS = 32 * 1024 * 1024

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
_MAIN_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
# run content and its text, as python-docx reads it (a page or column break is no text)
_RUN_TEXT = {f"{_W}tab": "\t", f"{_W}ptab": "\t", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}
# names that Word stores in lower case but shows capitalised
_UI_NAMES = {"caption": "Caption", "footer": "Footer", "header": "Header"} | {
    f"heading {n}": f"Heading {n}" for n in range(1, 10)
}


class DocxLoader:
    """Reads ``.docx`` files (Office Open XML word-processing documents).

    Body paragraphs (headings included, as their own paragraphs) and tables come out in
    document order; a table row becomes one line with cells joined by ``" | "`` (a merged
    cell once per row). Headers, footers, comments, text boxes and content controls are
    left out. The title is the core property ``title``, else the first Title/Heading
    paragraph, else the file stem. Memory stays bounded whatever the size of the XML (see
    the module notes).
    """

    type: str = "docx"
    suffixes: tuple[str, ...] = (".docx",)

    def load(self, path: Path, data: bytes) -> list[Document]:
        if not data.strip():
            raise LoaderError("empty file")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError):
            raise LoaderError("not a valid .docx (bad zip archive)") from None
        with archive:
            expanded = sum(info.file_size for info in archive.infolist())
            if expanded > MAX_EXPANDED_BYTES:
                raise LoaderError(
                    f"DOCX expands to {expanded} bytes (> {MAX_EXPANDED_BYTES}); refusing to unpack"
                )
            try:
                blocks, heading, title = _read_package(archive)
            except LoaderError:
                raise
            except (etree.LxmlError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
                raise LoaderError(
                    f"not a valid .docx ({type(exc).__name__}: {first_line(exc)})"
                ) from None
        require_text(normalize_text("\n\n".join(text for _, text in blocks)))
        title = clean_title(title) or clean_title(heading)
        return [make_document(path, self.type, title or path.stem, heading_sections(blocks))]


# --------------------------------------------------------------------------- package


def _read_package(archive: zipfile.ZipFile) -> tuple[list[tuple[int, str]], str, str]:
    """(``(heading level, text)`` blocks, first heading, core title) of an open DOCX
    archive; level 0 is body text."""
    names = set(archive.namelist())
    package_rels = _relationships(archive, "_rels/.rels", "")
    main = package_rels.get("officeDocument")
    if main is None or main not in names:
        raise LoaderError("not a valid .docx (no main document part)")
    content_type = _content_type(archive, main)
    if content_type != _MAIN_TYPE:
        raise LoaderError(f"not a valid .docx (not a Word document: {content_type or 'no type'})")
    base = posixpath.dirname(main)
    rels_name = posixpath.join(base, "_rels", posixpath.basename(main) + ".rels")
    styles_part = _relationships(archive, rels_name, base).get("styles")
    styles = _read_styles(archive, styles_part) if styles_part in names else _Styles()
    core = package_rels.get("core-properties")
    title = _core_title(archive, core) if core in names else ""
    with archive.open(main) as stream:
        reader = _BodyReader(styles)
        reader.read(stream)
    levels = reader.levels
    return [(levels.get(i, 0), b) for i, b in enumerate(reader.blocks)], reader.heading, title


# no DTDs, no entities, no network; comments and processing instructions never reach us
_SAFE = {
    "resolve_entities": False,
    "load_dtd": False,
    "no_network": True,
    "remove_comments": True,
    "remove_pis": True,
}


def _events(stream: IO[bytes], events: tuple[str, ...]) -> Iterator[tuple[str, etree._Element]]:
    """``iterparse`` with no DTDs, entities or network; every element is dropped from the
    tree once its end has been handled (the caller reads what it needs first)."""
    parser = etree.iterparse(
        stream, events=(*events, "end") if "end" not in events else events, **_SAFE
    )
    for event, elem in parser:
        if event in events:
            yield event, elem
        if event == "end":
            elem.clear(keep_tail=False)
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]


def _relationships(archive: zipfile.ZipFile, name: str, base: str) -> dict[str, str]:
    """Relationship type (last path segment) -> part name, for internal targets."""
    if name not in archive.namelist():
        return {}
    out: dict[str, str] = {}
    with archive.open(name) as stream:
        for _, elem in _events(stream, ("end",)):
            if elem.tag != _REL or elem.get("TargetMode") == "External":
                continue
            kind = (elem.get("Type") or "").rsplit("/", 1)[-1]
            target = elem.get("Target") or ""
            part = target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
            out.setdefault(kind, posixpath.normpath(part))
    return out


def _content_type(archive: zipfile.ZipFile, part: str) -> str:
    defaults: dict[str, str] = {}
    with archive.open("[Content_Types].xml") as stream:
        for _, elem in _events(stream, ("end",)):
            if elem.tag == f"{_CT}Override" and elem.get("PartName", "").lstrip("/") == part:
                return elem.get("ContentType", "")
            if elem.tag == f"{_CT}Default":
                defaults[elem.get("Extension", "").lower()] = elem.get("ContentType", "")
    return defaults.get(posixpath.splitext(part)[1].lstrip(".").lower(), "")


def _core_title(archive: zipfile.ZipFile, part: str) -> str:
    with archive.open(part) as stream:
        for _, elem in _events(stream, ("end",)):
            if elem.tag == _DC_TITLE:
                return elem.text or ""
    return ""


@dataclass
class _Styles:
    """Paragraph style names by id, and the default paragraph style's name."""

    names: dict[str, str] = field(default_factory=dict)
    default: str = ""
    default_id: str | None = None

    def name(self, style_id: str | None) -> str:
        if style_id and style_id in self.names:
            return self.names[style_id]
        return self.default  # a missing or dangling id means the default style


def _read_styles(archive: zipfile.ZipFile, part: str) -> _Styles:
    styles = _Styles()
    style_id: str | None = None  # of the paragraph style being read
    with archive.open(part) as stream:
        for _, elem in _events(stream, ("start",)):
            if elem.tag == f"{_W}style":
                style_id = None
                if elem.get(f"{_W}type") == "paragraph":
                    style_id = elem.get(f"{_W}styleId") or ""
                    styles.names.setdefault(style_id, "")
                    if elem.get(f"{_W}default") in ("1", "true", "on"):
                        styles.default_id = style_id  # the last default wins, as in Word
            elif elem.tag == f"{_W}name" and style_id is not None:
                raw = elem.get(f"{_W}val") or ""
                if not styles.names[style_id]:
                    styles.names[style_id] = _UI_NAMES.get(raw, raw)
    styles.default = styles.names.get(styles.default_id or "", "")
    return styles


# --------------------------------------------------------------------------- body


@dataclass
class _Table:
    rows: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)  # of the row being read
    column: int = 0  # grid column of the next cell in the row
    above: dict[int, str] = field(default_factory=dict)  # text of vertical-merge roots


@dataclass
class _Cell:
    blocks: list[str] = field(default_factory=list)
    span: int = 1
    merge: str | None = None  # w:vMerge: "restart", "continue" or None


class _BodyReader:
    """Turns the events of ``document.xml`` into blocks of text, as python-docx would read
    the document: only paragraphs and tables that are body content or cell content count,
    and only the runs (and hyperlinks' runs) directly in such a paragraph."""

    def __init__(self, styles: _Styles) -> None:
        self.styles = styles
        self.blocks: list[str] = []
        #: heading level of the blocks that are headings (``Title`` 1, ``Heading N`` N)
        self.levels: dict[int, int] = {}
        self.heading = ""
        self.size = 0  # characters of text so far
        self._tables: list[_Table] = []
        self._cells: list[_Cell] = []
        self._text = io.StringIO()  # of the paragraph being read
        self._style: str | None = None

    def read(self, stream: IO[bytes]) -> None:
        # the loop of _events inlined: this one sees every element of the document
        kinds: list[str] = []  # what each open element is to this reader ("" = ignored)
        kinds_of, start, end = _KINDS.get, self._start, self._end
        for event, elem in etree.iterparse(stream, events=("start", "end"), **_SAFE):
            if event == "start":
                kind = kinds_of((kinds[-1] if kinds else "root", elem.tag), "")
                kinds.append(kind)
                if kind:
                    start(kind, elem)
                continue
            kind = kinds.pop()
            if kind:
                end(kind, elem)
            # drop what has been read: the element's content and its earlier siblings
            elem.clear(keep_tail=False)
            previous = elem.getprevious()
            if previous is not None:
                parent = elem.getparent()
                while previous is not None:
                    del parent[0]
                    previous = elem.getprevious()

    def _start(self, kind: str, elem: etree._Element) -> None:
        if kind == "p":
            self._text, self._style = io.StringIO(), None
        elif kind == "style":
            self._style = elem.get(f"{_W}val")
        elif kind == "tbl":
            self._tables.append(_Table())
        elif kind == "tr":
            table = self._tables[-1]
            table.cells, table.column = [], 0
        elif kind == "before":
            self._tables[-1].column = _int(elem.get(f"{_W}val"), 0)
        elif kind == "tc":
            self._cells.append(_Cell())
        elif kind == "span":
            self._cells[-1].span = max(1, _int(elem.get(f"{_W}val"), 1))
        elif kind == "vmerge":
            self._cells[-1].merge = elem.get(f"{_W}val") or "continue"

    def _end(self, kind: str, elem: etree._Element) -> None:
        if kind == "t":
            self._add(elem.text or "")
        elif kind == "text":
            self._add(_RUN_TEXT.get(elem.tag, ""))
        elif kind == "br":
            self._add("\n" if elem.get(f"{_W}type", "textWrapping") == "textWrapping" else "")
        elif kind == "p":
            self._paragraph()
        elif kind == "tc":
            self._cell()
        elif kind == "tr":
            table = self._tables[-1]
            if table.cells:
                table.rows.append(" | ".join(table.cells))
        elif kind == "tbl":
            self._block("\n".join(self._tables.pop().rows))

    def _add(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_TEXT_CHARS:
            raise LoaderError(
                f"DOCX has more than {MAX_TEXT_CHARS:,} characters of text; split it into "
                "smaller documents"
            )
        self._text.write(text)

    def _paragraph(self) -> None:
        text = self._text.getvalue().strip()
        self._text = io.StringIO()
        name = self.styles.name(self._style)
        if text and name.startswith("List"):
            text = "- " + text
        at_top = not self._cells  # headings are looked for in the body, not in tables
        if name.lower().startswith("toc "):
            return  # a table of contents typed out as paragraphs ("TOC 1" styles)
        level = _heading_level(name) if text and at_top else 0
        if level and not self.heading:
            self.heading = text
        if level:
            self.levels[len(self.blocks)] = level
            self.blocks.append(text)  # alone, even after a list item
        else:
            self._block(text)

    def _cell(self) -> None:
        cell = self._cells.pop()
        table = self._tables[-1]
        if cell.merge == "continue":  # the rest of a vertically merged cell: its root's text
            text = table.above.get(table.column, "")
        else:
            text = " ".join("\n".join(cell.blocks).split())
            for column in range(table.column, table.column + cell.span):
                table.above[column] = text
        table.column += cell.span
        if text:
            table.cells.append(text)

    def _block(self, text: str) -> None:
        if not text:
            return
        if self._cells:  # inside a table cell
            self._cells[-1].blocks.append(text)
        elif self.blocks and text.startswith("- ") and self.blocks[-1].startswith("- "):
            self.blocks[-1] += "\n" + text  # consecutive list items: one block
        else:
            self.blocks.append(text)


def _heading_level(style: str) -> int:
    """1 for ``Title``, N for ``Heading N`` (Word's built-in heading styles), else 0."""
    if style == "Title":
        return 1
    if style.startswith("Heading "):
        number = style[len("Heading ") :]
        return int(number) if number.isdigit() and 1 <= int(number) <= 9 else 0
    return 0


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


# (kind of the parent, tag) -> kind of the element; anything else is ignored with all it holds
_KINDS: dict[tuple[str, str], str] = {
    ("root", f"{_W}document"): "document",
    ("document", f"{_W}body"): "body",
    ("body", f"{_W}p"): "p",
    ("body", f"{_W}tbl"): "tbl",
    ("tc", f"{_W}p"): "p",
    ("tc", f"{_W}tbl"): "tbl",
    ("tbl", f"{_W}tr"): "tr",
    ("tr", f"{_W}trPr"): "trpr",
    ("trpr", f"{_W}gridBefore"): "before",
    ("tr", f"{_W}tc"): "tc",
    ("tc", f"{_W}tcPr"): "tcpr",
    ("tcpr", f"{_W}gridSpan"): "span",
    ("tcpr", f"{_W}vMerge"): "vmerge",
    ("p", f"{_W}pPr"): "ppr",
    ("ppr", f"{_W}pStyle"): "style",
    ("p", f"{_W}r"): "r",
    ("p", f"{_W}hyperlink"): "link",
    ("link", f"{_W}r"): "r",
    ("r", f"{_W}t"): "t",
    ("r", f"{_W}br"): "br",
} | {("r", tag): "text" for tag in _RUN_TEXT}
