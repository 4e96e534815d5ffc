"""Token-aware chunking on paragraph and sentence boundaries, with overlap.

Sentences are found by punctuation (Latin, CJK and Korean full stops), never by
whitespace alone, so Korean and other scripts without spaces chunk correctly. A sentence
longer than the budget is cut at token boundaries (the tokenizer's character offsets).
Chunks never cross a page boundary, so each chunk has exactly one page number, nor a
section boundary, so each carries one heading path. A chunk smaller than ``min_tokens`` (a
lone heading, a page's last lines) is merged with a neighbour on the same page: such
scraps say little to the embedding model, and BM25's length normalisation ranks them
above the full chunks they were cut from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..types import Chunk, Document

#: end of a sentence: terminal punctuation (optionally closed by quotes/brackets) + space
_SENTENCE_END = re.compile(
    r"(?<=[.!?…])([\"'”’)\]]*)\s+"  # Latin-style: punctuation, then a space
    r"|(?<=[。！？])([\"'”’)\]」』]*)\s*"  # CJK full stops need no space after them
)
_TERMINAL = (".", "!", "?", "。", "！", "？", "…", ":", ";", '"', "'", "”", "’", ")")
_LIST_ITEM = re.compile(r"\s*(?:[-*•·▪–]|\d{1,3}[.)]|[a-zA-Z가-힣][.)])\s")
_ABBREVIATIONS = frozenset(
    [
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "prof.",
        "inc.",
        "ltd.",
        "co.",
        "corp.",
        "jr.",
        "sr.",
        "st.",
        "vs.",
        "etc.",
        "e.g.",
        "i.e.",
        "fig.",
        "figs.",
        "no.",
        "vol.",
        "pp.",
        "p.",
        "approx.",
        "dept.",
        "est.",
        "al.",
        "cf.",
        "eq.",
        "ca.",
        "u.s.",
        "a.m.",
        "p.m.",
    ]
)
#: a line at least this long that does not end a sentence was wrapped (PDF, plain text)
_WRAPPED_LINE = 50
_PARAGRAPH = re.compile(r"\n\s*\n")
_NON_SPACE = re.compile(r"\S")

CountTokens = Callable[[Sequence[str]], list[int]]
TokenOffsets = Callable[[str], list[tuple[int, int]]]


#: chunks below this many tokens are merged with a neighbour (see :func:`merge_small`)
MIN_CHUNK_TOKENS = 24
#: changes whenever the same document would be cut differently (part of the resume key,
#: so an interrupted document is never finished with chunks cut another way)
CHUNKER_VERSION = 2


@dataclass(frozen=True, slots=True)
class Piece:
    """A chunk before it is built: its span of the document text, its size in tokens and
    where it sits (page and heading path)."""

    start: int
    end: int
    tokens: int
    page: int | None
    section: str


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int  # character offsets in the document text
    end: int
    tokens: int
    paragraph_start: bool


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (whitespace trimmed).

    Lines are first joined into logical lines: a long line that does not end a sentence was
    wrapped (as in PDFs) and continues on the next one, unless that one starts a list item.
    Short unterminated lines (headings) and list items stand alone.
    """
    spans: list[tuple[int, int]] = []
    for start, end in _logical_lines(text):
        pos = start
        first = _first_non_space(text, pos, end)
        for m in _SENTENCE_END.finditer(text, start, end):
            if _is_abbreviation(text, first, m.start()):
                continue
            _add_trimmed(text, pos, m.end(1) if m.group(1) is not None else m.end(2), spans)
            pos = m.end()
            first = _first_non_space(text, pos, end)
        _add_trimmed(text, pos, end, spans)
    return spans


def _first_non_space(text: str, start: int, end: int) -> int:
    found = _NON_SPACE.search(text, start, end)
    return found.start() if found is not None else end


def _logical_lines(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = pos = 0
    prev = ""
    for line in text.split("\n"):
        stripped = line.strip()
        wrapped = (
            (_width(prev) >= _WRAPPED_LINE or prev.endswith((",", "，", "、")))
            and not prev.endswith(_TERMINAL)
            and stripped
            and not _LIST_ITEM.match(line)
        )
        if pos and not wrapped:
            out.append((start, pos - 1))
            start = pos
        prev = stripped
        pos += len(line) + 1
    out.append((start, len(text)))
    return out


def _width(line: str) -> int:
    """Display columns: Hangul and CJK characters take two, so a wrapped Korean line (some
    30 syllables) counts as long as a wrapped English one (some 60 letters)."""
    if line.isascii():
        return len(line)
    return len(line) + sum(1 for ch in line if unicodedata.east_asian_width(ch) in "WF")


def _is_abbreviation(text: str, sentence_first: int, end: int) -> bool:
    """Whether the full stop ending at ``end`` closes an abbreviation or a list number.

    ``sentence_first`` is where the sentence's text begins (its first non-space). Only a
    few characters before ``end`` are read: a sentence that runs on through many
    abbreviations ("J. J. J. ...") must not be read again at each one.
    """
    if text[end - 1] != ".":
        return False
    word = text[max(sentence_first, end - 12) : end].split()[-1:] or [""]
    w = word[0]
    if w.lower() in _ABBREVIATIONS:
        return True
    # "1." / "a." opening a line (the whole sentence so far), or an initial such as "J."
    opens = sentence_first == end - len(w)
    return (len(w) <= 4 and w[:-1].isdigit() and opens) or (len(w) == 2 and w[0].isupper())


def is_list_item(sentence: str) -> bool:
    return bool(_LIST_ITEM.match(sentence + " "))


def _add_trimmed(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append((start, end))


class Chunker:
    """Packs sentences into chunks of at most ``max_tokens`` model tokens.

    ``count_tokens`` and ``token_offsets`` come from the embedding model's tokenizer, so a
    chunk always fits the model's window.
    """

    def __init__(
        self,
        count_tokens: CountTokens,
        token_offsets: TokenOffsets,
        max_tokens: int = 256,
        overlap: int = 32,
        min_tokens: int = MIN_CHUNK_TOKENS,
        merge_limit: int | None = None,
    ) -> None:
        """``min_tokens``: smaller chunks are merged with a neighbour when the two together
        stay within ``merge_limit`` tokens (default ``max_tokens``; the caller may allow a
        little more, up to what the embedding model reads)."""
        self.count_tokens = count_tokens
        self.token_offsets = token_offsets
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.min_tokens = min_tokens
        self.merge_limit = max(max_tokens, merge_limit or max_tokens)

    def chunk(self, doc: Document) -> list[Chunk]:
        pieces: list[Piece] = []
        text = doc.text
        offset = 0
        for section in doc.sections:
            units = self._units(text, offset, offset + len(section.text))
            path = section.path
            for start, end, tokens in self._pack(units):
                pieces.append(Piece(start, end, tokens, section.page, path))
            offset += len(section.text) + 2  # sections are joined by "\n\n"
        pieces = merge_small(pieces, self.min_tokens, self.merge_limit)
        return [
            Chunk(
                doc_id=doc.doc_id,
                seq=seq,
                text=text[p.start : p.end],
                source=doc.source,
                title=doc.title,
                page=p.page,
                char_start=p.start,
                char_end=p.end,
                section=p.section,
            )
            for seq, p in enumerate(pieces)
        ]

    # ------------------------------------------------------------------ internals
    def _units(self, text: str, start: int, end: int) -> list[_Unit]:
        spans: list[tuple[int, int, bool]] = []
        pos = start
        for m in [*_PARAGRAPH.finditer(text, start, end), None]:
            p_end = m.start() if m else end
            first = True
            for s, e in split_sentences(text[pos:p_end]):
                spans.append((pos + s, pos + e, first))
                first = False
            pos = m.end() if m else end
        counts = self.count_tokens([text[s:e] for s, e, _ in spans])
        units: list[_Unit] = []
        for (s, e, para), n in zip(spans, counts, strict=True):
            if n <= self.max_tokens:
                units.append(_Unit(s, e, n, para))
            else:
                units.extend(self._split_long(text, s, e, para))
        return units

    def _split_long(self, text: str, start: int, end: int, para: bool) -> list[_Unit]:
        """Cut an over-long sentence into windows of ``max_tokens`` tokens."""
        offsets = self.token_offsets(text[start:end])
        # a cut can fall inside a word, whose pieces may count one token more on their own
        step = max(1, self.max_tokens - 2)
        out: list[_Unit] = []
        for i in range(0, len(offsets), step):
            window = offsets[i : i + step]
            s = start + window[0][0]
            e = start + window[-1][1] if i + step < len(offsets) else end
            out.append(_Unit(s, e, len(window), para and i == 0))
        return out

    def _pack(self, units: list[_Unit]) -> list[tuple[int, int, int]]:
        """``(start, end, tokens)`` of the chunks of one section's units."""
        out: list[tuple[int, int, int]] = []
        current: list[_Unit] = []
        size = 0
        for unit in units:
            # +1 per unit: joining sentences may add a token at the seam
            if current and size + unit.tokens + 1 > self.max_tokens:
                out.append((current[0].start, current[-1].end, size))
                current, size = self._overlap_tail(current)
                if size + unit.tokens + 1 > self.max_tokens:  # no room for the overlap
                    current, size = [], 0
            current.append(unit)
            size += unit.tokens + 1
        if current:
            span = (current[0].start, current[-1].end, size)
            if not out or span[:2] != out[-1][:2]:
                out.append(span)
        return out

    def _overlap_tail(self, units: list[_Unit]) -> tuple[list[_Unit], int]:
        """The trailing whole sentences of a chunk that fit in the overlap budget."""
        tail: list[_Unit] = []
        size = 0
        for unit in reversed(units):
            if size + unit.tokens + 1 > self.overlap:
                break
            tail.insert(0, unit)
            size += unit.tokens + 1
        if len(tail) == len(units):  # never repeat a whole chunk
            return [], 0
        return tail, size


def merge_small(pieces: Sequence[Piece], min_tokens: int, limit: int) -> list[Piece]:
    """``pieces`` with each one under ``min_tokens`` merged into a neighbour on its page.

    Where it goes, in order of preference: the previous piece when it is of the same
    section (a page's or section's last lines); the next one (a lone heading belongs to
    what follows it); the previous one of another section. Only when the two fit within
    ``limit`` tokens. The merged piece spans both and keeps the heading path of the larger
    (a lone heading joins its first subsection, whose path includes it).
    """
    out = list(pieces)
    i = 0
    while i < len(out):
        piece = out[i]
        if piece.tokens >= min_tokens or len(out) == 1:
            i += 1
            continue
        prev = out[i - 1] if i > 0 else None
        after = out[i + 1] if i + 1 < len(out) else None
        if prev is not None and _joins(prev, piece, limit) and prev.section == piece.section:
            out[i - 1 : i + 1] = [_merged(prev, piece)]
            i -= 1  # the merged piece may still be small
        elif after is not None and _joins(piece, after, limit):
            out[i : i + 2] = [_merged(piece, after)]
        elif prev is not None and _joins(prev, piece, limit):
            out[i - 1 : i + 1] = [_merged(prev, piece)]
            i -= 1
        else:
            i += 1
    return out


def _joins(first: Piece, second: Piece, limit: int) -> bool:
    return first.page == second.page and first.tokens + second.tokens + 1 <= limit


def _merged(first: Piece, second: Piece) -> Piece:
    section = first.section if first.tokens > second.tokens else second.section
    return Piece(
        min(first.start, second.start),
        max(first.end, second.end),
        first.tokens + second.tokens + 1,
        first.page,
        section,
    )
