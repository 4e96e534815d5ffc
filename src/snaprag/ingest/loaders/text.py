"""Plain text files."""

from __future__ import annotations

from pathlib import Path

from ...types import Document, Section
from ._text import decode_text, make_document, normalize_text, require_text


class TextLoader:
    """Reads ``.txt`` files; the title is the file name without its suffix."""

    type: str = "txt"
    suffixes: tuple[str, ...] = (".txt",)

    def load(self, path: Path, data: bytes) -> list[Document]:
        text = require_text(normalize_text(decode_text(data)), "empty file")
        return [make_document(path, self.type, path.stem, [Section(text)])]
