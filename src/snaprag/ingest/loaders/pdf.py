"""PDF files: sections per page (so answers can cite page numbers) and per heading."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, EmptyFileError, FileNotDecryptedError, PdfReadError

from ...errors import LoaderError
from ...types import Document
from ._text import clean_title, first_line, make_document, normalize_text
from .pdf_fonts import LineSizes, SizedLines, font_headings
from .pdf_outline import read_outline
from .pdf_structure import pdf_sections

# pypdf logs every defect it works around ("EOF marker not found", odd xref offsets, and
# at ERROR level an unknown font encoding it replaces), and raises for what it cannot
# read. This loader already turns the latter into a LoaderError, so the log lines would
# only bury the useful output of an ingest run.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

#: how far into the file the ``%PDF-`` header may sit (some writers prepend junk)
_HEADER_WINDOW = 1024
_TOOL_PREFIXES = ("Microsoft Word - ", "Microsoft PowerPoint - ")
# justified text comes out with runs of spaces between words; indentation is left alone
_INNER_SPACES_RE = re.compile(r"(?<=\S) {2,}(?=\S)")


class PdfLoader:
    """Reads ``.pdf`` files with pypdf.

    Each page with text becomes one or more :class:`Section` s carrying its 1-based page
    number and heading path: from the outline (bookmarks) where there is one, else from
    headings set in a larger font, else from numbered headings in the text; tables of
    contents, indexes, dot-leader lines and running headers and footers are left out (see
    :mod:`.pdf_structure`). The title is the
    metadata ``/Title``, else the file stem. Encrypted files are read when the
    empty user password opens them (common for "print protected" PDFs). Pages that fail to
    parse are skipped when other pages still give text.
    """

    type: str = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)

    def load(self, path: Path, data: bytes) -> list[Document]:
        if not data.strip():
            raise LoaderError("empty file")
        if b"%PDF-" not in data[:_HEADER_WINDOW]:
            raise LoaderError("not a PDF file (no %PDF- header)")
        reader = open_pdf(data)
        bookmarks = read_outline(reader)
        sized: list[tuple[int, SizedLines]] | None = None if bookmarks else []
        pages = page_texts(reader, sized)
        sections = pdf_sections(pages, bookmarks, font_headings(sized) if sized else ())
        return [make_document(path, self.type, _title(reader) or path.stem, sections)]


def open_pdf(data: bytes) -> PdfReader:
    """A reader for the PDF in ``data``, or a :class:`LoaderError` that says why not."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError("encrypted PDF (password required)")
        # walking the page tree here surfaces a broken structure as a load error
        if len(reader.pages) == 0:
            raise LoaderError("PDF has no pages")
    except LoaderError:
        raise
    except FileNotDecryptedError:
        raise LoaderError("encrypted PDF (password required)") from None
    except DependencyError as exc:
        raise LoaderError(f"encrypted PDF needs an extra package: {first_line(exc)}") from None
    except EmptyFileError:
        raise LoaderError("empty file") from None
    except PdfReadError as exc:
        raise LoaderError(f"corrupt or truncated PDF: {first_line(exc)}") from None
    except Exception as exc:  # pypdf raises plain KeyError/ValueError/... on broken files
        raise LoaderError(f"corrupt PDF ({type(exc).__name__}: {first_line(exc)})") from None
    return reader


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        raw = meta.title if meta is not None else None
    except Exception:  # a broken /Info dictionary should not cost the whole file
        return ""
    title = clean_title(raw if isinstance(raw, str) else None)
    for prefix in _TOOL_PREFIXES:
        title = title.removeprefix(prefix)
    return "" if title.lower() in {"untitled", "untitled document"} else title


def page_texts(
    reader: PdfReader, sized: list[tuple[int, SizedLines]] | None = None
) -> list[tuple[int, str]]:
    """``(1-based page number, text)`` of every page with text, as its text layer reads;
    with ``sized``, each such page's lines with their text sizes are appended to it too.

    Raises :class:`LoaderError` when no page gives text.
    """
    pages: list[tuple[int, str]] = []
    first_error: Exception | None = None
    for number, page in enumerate(reader.pages, start=1):
        visitor = LineSizes() if sized is not None else None
        try:
            raw = page.extract_text(visitor_text=visitor) or ""
            text = _INNER_SPACES_RE.sub(" ", normalize_text(raw))
        except Exception as exc:  # one broken content stream: keep the other pages
            first_error = first_error or exc
            continue
        if text:
            pages.append((number, text))
            if visitor is not None and sized is not None:
                sized.append((number, visitor.finish()))
    if pages:
        return pages
    if first_error is not None:
        raise LoaderError(
            f"corrupt PDF: no page could be read ({type(first_error).__name__}: "
            f"{first_line(first_error)})"
        )
    raise LoaderError("PDF has no text layer (scanned?); OCR is not supported")
