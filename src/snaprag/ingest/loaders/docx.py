"""Word ``.docx`` files: paragraphs and tables in reading order."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from ...errors import LoaderError
from ...types import Document, Section
from ._text import clean_title, first_line, make_document, normalize_text, require_text

#: refuse archives that would expand past this many bytes (a zip bomb, not a document)
MAX_EXPANDED_BYTES = 512 * 1024 * 1024


class DocxLoader:
    """Reads ``.docx`` files with python-docx.

    Body paragraphs (headings included, as their own paragraphs) and tables come out in
    document order; a table row becomes one line with cells joined by ``" | "``. Headers,
    footers, comments and text boxes are left out. The title is the core property
    ``title``, else the first Title/Heading paragraph, else the file stem.
    """

    type: str = "docx"
    suffixes: tuple[str, ...] = (".docx",)

    def load(self, path: Path, data: bytes) -> list[Document]:
        if not data.strip():
            raise LoaderError("empty file")
        document = _open(data)
        blocks: list[str] = []
        heading = ""
        for paragraph_or_table in document.iter_inner_content():
            if isinstance(paragraph_or_table, Paragraph):
                text = _paragraph_text(paragraph_or_table)
                if text and not heading and _is_heading(paragraph_or_table):
                    heading = text
            else:
                text = _table_text(paragraph_or_table)
            if not text:
                continue
            if blocks and text.startswith("- ") and blocks[-1].startswith("- "):
                blocks[-1] += "\n" + text  # consecutive list items: one block
            else:
                blocks.append(text)
        text = require_text(normalize_text("\n\n".join(blocks)))
        title = clean_title(document.core_properties.title) or clean_title(heading)
        return [make_document(path, self.type, title or path.stem, [Section(text)])]


def _open(data: bytes) -> DocxDocument:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError):
        raise LoaderError("not a valid .docx (bad zip archive)") from None
    if expanded > MAX_EXPANDED_BYTES:
        raise LoaderError(
            f"DOCX expands to {expanded} bytes (> {MAX_EXPANDED_BYTES}); refusing to unpack"
        )
    try:
        return docx.Document(io.BytesIO(data))
    except Exception as exc:  # missing parts, wrong content type, broken XML...
        raise LoaderError(f"not a valid .docx ({type(exc).__name__}: {first_line(exc)})") from None


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except Exception:  # a style id that points nowhere
        return ""
    return (style.name or "") if style is not None else ""


def _is_heading(paragraph: Paragraph) -> bool:
    name = _style_name(paragraph)
    return name == "Title" or name.startswith("Heading")


def _paragraph_text(paragraph: Paragraph) -> str:
    text = paragraph.text.strip()
    if text and _style_name(paragraph).startswith("List"):
        return "- " + text
    return text


def _table_text(table: Table) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[object] = set()
        for cell in row.cells:
            # merged cells come back once per grid column they span
            if cell._tc in seen:
                continue
            seen.add(cell._tc)
            text = " ".join(_cell_text(cell).split())
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _cell_text(cell: _Cell) -> str:
    return "\n".join(_cell_blocks(cell))


def _cell_blocks(cell: _Cell) -> Iterator[str]:
    for item in cell.iter_inner_content():
        text = _paragraph_text(item) if isinstance(item, Paragraph) else _table_text(item)
        if text:
            yield text
