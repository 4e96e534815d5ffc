"""BEIR-style corpora: one JSON object per line, ``{"_id", "title", "text"}``."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import LoaderError
from ...types import Document, Section
from ._text import clean_title, decode_text, normalize_text


class JsonlLoader:
    """Reads a BEIR ``corpus.jsonl``: one :class:`Document` per line, ``doc_id`` = ``_id``.

    Strict on purpose: an evaluation corpus with a silently dropped line gives wrong scores,
    so the first bad line (invalid JSON, not an object, no ``_id``, a repeated ``_id``,
    ``title``/``text`` not strings) raises :class:`LoaderError` naming its line number and
    nothing from the file is loaded. Blank lines are skipped. A line whose text is empty
    uses its title as text; a line with neither is skipped, since there is nothing to find.
    """

    type: str = "jsonl"
    suffixes: tuple[str, ...] = (".jsonl",)

    def load(self, path: Path, data: bytes) -> list[Document]:
        source = str(path.resolve())
        documents: list[Document] = []
        seen: set[str] = set()
        # split on "\n" only: str.splitlines() would also break at U+2028 or U+0085, which
        # JSON allows unescaped inside strings
        for number, line in enumerate(decode_text(data).split("\n"), start=1):
            if not line.strip():
                continue
            doc = _parse_line(line, number, source, self.type)
            if doc.doc_id in seen:
                raise LoaderError(f"line {number}: duplicate _id '{doc.doc_id}'")
            seen.add(doc.doc_id)
            if doc.sections:
                documents.append(doc)
        if not documents:
            raise LoaderError("no documents (every line is blank or has no text)")
        return documents


def _parse_line(line: str, number: int, source: str, type_: str) -> Document:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise LoaderError(f"line {number}: invalid JSON") from None
    if not isinstance(record, dict):
        raise LoaderError(f"line {number}: expected a JSON object, got {type(record).__name__}")
    doc_id = record.get("_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or str(doc_id) == "":
        raise LoaderError(
            f"line {number}: missing '_id' (expected BEIR lines "
            '{"_id": ..., "title": ..., "text": ...})'
        )
    title, text = record.get("title") or "", record.get("text") or ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise LoaderError(f"line {number}: 'title' and 'text' must be strings")
    body = normalize_text(text) or normalize_text(title)
    return Document(
        doc_id=str(doc_id),
        source=source,
        type=type_,
        title=clean_title(title),
        sections=(Section(body),) if body else (),
    )
