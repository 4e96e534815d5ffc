"""The sentences of a retrieved chunk, as an answer quotes them.

A chunk's text keeps the line breaks of its source: a PDF's text layer or a plain-text
file wraps a sentence over several lines, and a wrapped line may be short (the last
words before a column edge, a Korean line of some 30 syllables). Quoting line by line
would cut "프레임과 모터는 7년, 컨트롤 박스와 / 핸드셋, 전원 어댑터 ... 보증합니다." in
two, and drop the first half as a heading. So lines are first joined into blocks: a line
continues on the next one unless it ends a sentence, the next one starts a list item or
a table row, or it reads as a heading (short, with nothing that says it goes on). Each
block is then cut into sentences by punctuation, as the chunker does.

The chunker (:mod:`snaprag.ingest.chunking`) joins only long lines, since a chunk
boundary between two lines costs it nothing; an answer that quotes half a sentence does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..ingest.chunking import is_list_item, split_sentences

SentenceKind = Literal["sentence", "item", "row", "heading", "fragment"]

#: ends a sentence (closing quotes and brackets aside)
_TERMINAL = (".", "!", "?", "。", "！", "？", "…", ":", ";")
_CLOSERS = "\"')]”’」』"
#: a line at least this wide (display columns) that does not end a sentence was wrapped
_WRAPPED_WIDTH = 50
#: Korean endings that leave a clause open: case particles, connectives, conjunctions
_KOREAN_OPEN = re.compile(
    r"(?:와|과|을|를|은|는|이|가|의|에|에서|에게|로|으로|도|만|및|또는|고|며|면|서|지만|는데|"
    r"거나|든지|하여|해서|하고|하며|되어|되고|또|그리고|하지만|그러나)$"
)
_LATIN_WORD_END = re.compile(r"[a-z]$")
#: a table row: Markdown's leading bar, or cells that a loader joined with " | "
_TABLE_ROW = re.compile(r"\s*\||[^|\n]* \| [^|\n]* \| ")
_RULE = re.compile(r":?-{2,}:?")
_MD_HEADING = re.compile(r"\s*#{1,6}\s")
_HANGUL = re.compile(r"[가-힣]")
_NUMBERED = re.compile(r"\s*\d{1,3}[.)]\s")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One quotable piece of a chunk: its text (line breaks undone) and what it is.

    ``kind`` is ``sentence`` (ends with punctuation, or is long enough to read as one),
    ``item`` (a list item, all its sentences), ``row`` (a table row after the table's
    first), ``heading`` (a short line that ends nothing, or a table's first row) or
    ``fragment`` (the tail of a sentence cut off before the chunk began).
    """

    text: str
    kind: SentenceKind
    #: which block (paragraph or logical line) of the chunk it belongs to
    block: int


def chunk_sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` in order, each whole even when the source wrapped it."""
    out: list[Sentence] = []
    in_table = False
    for b, block in enumerate(_blocks(text)):
        joined = " ".join(block.split())
        if _TABLE_ROW.match(joined):
            cells = [c.strip() for c in joined.strip().strip("|").split("|")]
            if not all(_RULE.fullmatch(c) for c in cells):  # not Markdown's |---|---|
                row = " | ".join(cells)
                out.append(Sentence(row, "row" if in_table else "heading", b))
            in_table = True
            continue
        in_table = False
        if is_list_item(joined):  # an item stays whole, however many sentences it has
            out.append(Sentence(joined, "item", b))
            continue
        for start, end in split_sentences(joined):
            piece = joined[start:end].strip()
            if piece:
                out.append(Sentence(piece, _kind(piece, first=not out), b))
    # a numbered line among no other numbered items ("1. Warranty coverage", or "2. Not
    # covered" over a list of "- ..." bullets) that ends no sentence is a heading
    for i, s in enumerate(out):
        if s.kind != "item" or not _NUMBERED.match(s.text):
            continue
        lone = all(
            not (0 <= j < len(out)) or out[j].kind != "item" or not _NUMBERED.match(out[j].text)
            for j in (i - 1, i + 1)
        )
        if lone and not s.text.rstrip(_CLOSERS).endswith(_TERMINAL):
            out[i] = Sentence(s.text, "heading", s.block)
    return out


def _blocks(text: str) -> list[str]:
    """Lines joined where the source wrapped a sentence."""
    blocks: list[list[str]] = []
    prev = ""
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            prev = ""
            continue
        if prev and continues(prev, stripped):
            blocks[-1].append(stripped)
        else:
            blocks.append([stripped])
        prev = stripped
    return [" ".join(b) for b in blocks]


def continues(line: str, following: str) -> bool:
    """Whether ``line`` goes on in ``following`` (one sentence wrapped over two lines)."""
    if is_list_item(following) or _TABLE_ROW.match(following) or _MD_HEADING.match(following):
        return False
    if _TABLE_ROW.match(line) or _MD_HEADING.match(line):
        return False
    first = following[:1]
    lower = first.isascii() and first.isalpha() and first.islower()
    if line.endswith((":", ";")) and lower:
        return True  # "run a reset:" / "hold the DOWN button ..." is one sentence
    end = line.rstrip(_CLOSERS)
    if end.endswith(_TERMINAL) or end.endswith(("다", "요")):
        return False  # a Korean verb's final ending closes its sentence, full stop or not
    if line.endswith((",", "，", "、", "-", "–", "(", "/")):
        return True
    if _width(line) >= _WRAPPED_WIDTH:
        return True
    if lower:
        return True  # a heading is followed by a capital; a wrapped sentence goes on
    words = line.split()
    if is_list_item(line):
        words = words[1:]  # "3. 반품과 환불" is a numbered heading, not a clause
    if _HANGUL.search(line) and len(words) >= 3:
        # a comma inside, or a last word that leaves its clause open: a wrapped sentence
        return "," in line or bool(_KOREAN_OPEN.search(words[-1]))
    return bool(_LATIN_WORD_END.search(line)) and len(words) >= 6 and "," in line


def _kind(piece: str, first: bool) -> SentenceKind:
    if is_list_item(piece):
        return "item"
    lead = piece[:1]
    if first and lead.isascii() and lead.isalpha() and lead.islower():
        return "fragment"  # the chunk began in the middle of a sentence
    end = piece.rstrip(_CLOSERS)
    if end.endswith(_TERMINAL) or end.endswith(("다", "요")) or _width(piece) >= 60:
        return "sentence"
    return "heading"


def _width(line: str) -> int:
    """Display columns: Hangul counts double, so a Korean line wraps at the same width."""
    return len(line) + len(_HANGUL.findall(line))
