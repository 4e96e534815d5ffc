"""The loader contract: one file in, a list of documents out, or a LoaderError."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..types import Document


class Loader(Protocol):
    """Reads one source file into documents.

    ``load`` raises :class:`~snaprag.errors.LoaderError` with a one-line, human reason
    (``"encrypted PDF (password required)"``, ``"not valid UTF-8 text"``...) for any file it
    cannot read. It must never raise anything else for bad input.
    """

    #: the ``type`` recorded for documents of this loader ("pdf", "html", ...)
    type: str
    #: lower-case file suffixes it handles, with the dot
    suffixes: tuple[str, ...]

    def load(self, path: Path, data: bytes) -> list[Document]: ...
