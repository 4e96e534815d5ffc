"""Text handling shared by the loaders: decoding bytes, normalising text, building documents."""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ...errors import LoaderError
from ...types import Document, Section

#: how much of a file the binary sniffing looks at
SNIFF_BYTES = 8192
#: share of control bytes in the sniffed prefix above which a file counts as binary
MAX_CONTROL_RATIO = 0.10

# C0 controls other than tab, newline, vertical tab, form feed, carriage return, plus DEL.
# ESC (0x1b) counts too: terminal logs with colour codes are rare in a document corpus.
_CONTROL_BYTES = frozenset(set(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D}) | {0x7F}
# The same set as characters, for scrubbing text that came out of a parser.
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# stripped from the end of every line with str.rstrip, not with "[ \t]+$" (multi-line): a
# search for that restarts at every space of a long run that does not end a line, so
# "a" + 100,000 spaces + "b" took 20 s
_TRAILING_SPACE = " \t\u00a0\u3000"
_BLANK_RUN_RE = re.compile(r"\n{3,}")


def decode_text(data: bytes) -> str:
    """Decode the bytes of a text file, refusing binary content.

    Order: a UTF-8 BOM or UTF-16 BOM decides the codec; otherwise the first
    :data:`SNIFF_BYTES` must not look binary, then strict UTF-8, then CP949 (which covers
    EUC-KR, common for Korean files) but only when the result reads as Korean text, since
    CP949 accepts many byte sequences that are really Latin-1 or random data.
    """
    if not data.strip():
        raise LoaderError("empty file")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8")
        except UnicodeDecodeError:
            raise LoaderError("not valid UTF-8 text (despite a UTF-8 BOM)") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoaderError("not valid UTF-16 text (despite a UTF-16 BOM)") from None
    if looks_binary(data):
        raise LoaderError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        raise LoaderError("not valid UTF-8 text") from None
    if not _mostly_hangul(text):
        raise LoaderError("not valid UTF-8 text")
    return text


def looks_binary(data: bytes) -> bool:
    """True when the start of ``data`` has NUL bytes or too many control bytes."""
    head = data[:SNIFF_BYTES]
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b in _CONTROL_BYTES)
    return controls / len(head) > MAX_CONTROL_RATIO


def _mostly_hangul(text: str) -> bool:
    """Whether the non-ASCII characters of a CP949 decoding are mostly Hangul syllables."""
    non_ascii = [c for c in text if ord(c) > 0x7F]
    if not non_ascii:
        return False
    hangul = sum(1 for c in non_ascii if "\uac00" <= c <= "\ud7a3")
    return hangul / len(non_ascii) >= 0.5


def normalize_text(text: str) -> str:
    """Tidy extracted text so every loader hands the chunker the same shape.

    NFC (Korean from PDFs and macOS files often arrives as decomposed jamo), ``\\n``
    newlines, no control characters, no trailing spaces, at most one blank line between
    paragraphs, and no leading or trailing blank lines. Linear time in the length of the text.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\f", "\n\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = text.replace("\ufeff", "")
    text = _CONTROL_CHARS_RE.sub("", text)
    text = "\n".join(line.rstrip(_TRAILING_SPACE) for line in text.split("\n"))
    text = _BLANK_RUN_RE.sub("\n\n", text)
    return text.strip("\n").rstrip()


def heading_sections(blocks: Iterable[tuple[int, str]], page: int | None = None) -> list[Section]:
    """Sections from ``(level, text)`` blocks in document order: level 0 is body text,
    1 to 9 a heading of that depth. Each heading starts a section that opens with the
    heading's own line and carries the path of the headings above it and itself (a
    heading closes every open one at its depth or deeper). Text is normalised per
    section; empty sections are left out."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    parts: list[str] = []

    def flush() -> None:
        text = normalize_text("\n\n".join(parts))
        if text.strip():
            sections.append(Section(text, page, tuple(t for _, t in stack)))
        parts.clear()

    for level, text in blocks:
        if level > 0 and text.strip():
            flush()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, clean_title(text)))
        parts.append(text)
    flush()
    return sections


def require_text(text: str, reason: str = "no extractable text") -> str:
    """Return ``text`` unless it is blank, in which case raise :class:`LoaderError`."""
    if not text.strip():
        raise LoaderError(reason)
    return text


def path_doc_id(path: Path) -> str:
    """A stable document id for a file: a hash of its resolved absolute path."""
    return "d" + hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:16]


def make_document(path: Path, type_: str, title: str, sections: Iterable[Section]) -> Document:
    """Build the :class:`Document` for a one-document file (every format but BEIR jsonl)."""
    return Document(
        doc_id=path_doc_id(path),
        source=str(path.resolve()),
        type=type_,
        title=clean_title(title) or path.stem,
        sections=tuple(sections),
    )


def clean_title(title: str | None) -> str:
    """A title on one line with single spaces; empty when there is none."""
    if not title:
        return ""
    return " ".join(unicodedata.normalize("NFC", str(title)).split())


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, for one-line error reasons."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip()[:limit] if lines else type(exc).__name__
