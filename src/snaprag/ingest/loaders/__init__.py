"""Loaders, one per file format, and the factory that picks one by file suffix.

``load_source`` is the single entry point the ingest job uses: it enforces the size
limit, reads the file once and turns any failure, including an unexpected exception from
a third-party parser, into a one-line :class:`~snaprag.errors.LoaderError`, so that one
bad file can never stop a run.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import LoaderError, UnsupportedFormatError
from ...types import Document
from ..base import Loader
from ._text import first_line, path_doc_id
from .docx import DocxLoader
from .html import HtmlLoader
from .jsonl import JsonlLoader
from .markdown import MarkdownLoader
from .pdf import PdfLoader
from .text import TextLoader

__all__ = [
    "LOADERS",
    "SUPPORTED_SUFFIXES",
    "DocxLoader",
    "HtmlLoader",
    "JsonlLoader",
    "MarkdownLoader",
    "PdfLoader",
    "TextLoader",
    "content_key",
    "load_source",
    "loader_for",
    "path_doc_id",
]

#: one instance of every loader; loaders hold no state, so they are shared
LOADERS: tuple[Loader, ...] = (
    TextLoader(),
    MarkdownLoader(),
    HtmlLoader(),
    PdfLoader(),
    DocxLoader(),
    JsonlLoader(),
)

_BY_SUFFIX: dict[str, Loader] = {s: loader for loader in LOADERS for s in loader.suffixes}

#: every file suffix some loader handles, sorted, with the dot (".docx", ".htm", ...)
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(_BY_SUFFIX))


#: formats whose loader now reads the same file into other documents than it used to (2:
#: headings, boilerplate); the version is part of the source's stored content key, so the
#: next ingest reads such files again instead of skipping them as unchanged
LOADER_VERSIONS: dict[str, int] = {"docx": 2, "html": 2, "md": 2, "pdf": 2}


def content_key(sha256: str, path: str | Path) -> str:
    """What the index stores as a source's content hash: the SHA-256 of its bytes, with
    the version of its format's loader when that is above 1."""
    loader = _BY_SUFFIX.get(Path(path).suffix.lower())
    version = LOADER_VERSIONS.get(loader.type, 1) if loader is not None else 1
    return sha256 if version == 1 else f"{sha256}:v{version}"


def loader_for(path: Path) -> Loader:
    """The loader for ``path``'s suffix (case-insensitive).

    Raises :class:`UnsupportedFormatError` naming the suffix and the supported ones.
    """
    suffix = path.suffix.lower()
    loader = _BY_SUFFIX.get(suffix)
    if loader is None:
        what = f"'{suffix}'" if suffix else f"(no suffix: '{path.name}')"
        raise UnsupportedFormatError(
            f"unsupported file type {what} (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    return loader


def load_source(path: Path, max_bytes: int) -> tuple[list[Document], bytes]:
    """Load one file into documents; return them with the file's raw bytes (for hashing).

    Raises :class:`LoaderError` (and only that) when the file has an unsupported suffix,
    is larger than ``max_bytes``, cannot be read, or its loader rejects or chokes on it.
    """
    from ..files import read_regular  # never blocks on a FIFO swapped in meanwhile

    loader = loader_for(path)
    try:
        data = read_regular(path, max_bytes)
    except OSError as exc:
        raise LoaderError(f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    try:
        documents = loader.load(path, data)
    except LoaderError:
        raise
    except Exception as exc:  # a parser bug or an exotic file: report it, never crash
        raise LoaderError(f"{type(exc).__name__}: {first_line(exc)}") from exc
    if not documents:
        raise LoaderError("no extractable text")
    return documents, data
