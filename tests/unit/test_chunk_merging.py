"""Tiny chunks (a lone heading, a page's last lines) merged with a neighbour; chunks carry
their section's heading path."""

from __future__ import annotations

import re

from snaprag.ingest.chunking import Chunker, Piece, merge_small
from snaprag.types import Document, Section

_WORD = re.compile(r"\S+")


def word_count(texts):
    return [len(_WORD.findall(t)) for t in texts]


def word_offsets(text):
    return [m.span() for m in _WORD.finditer(text)]


def piece(start: int, tokens: int, page: int | None = 1, section: str = "") -> Piece:
    return Piece(start, start + 10, tokens, page, section)


def sentences(n: int, word: str = "word") -> str:
    return " ".join(f"{word} {word} {word} {word} end." for _ in range(n))


def doc(*sections: Section) -> Document:
    return Document("d", "/docs/d.pdf", "pdf", "Doc", tuple(sections))


def test_big_pieces_stay_as_they_are() -> None:
    pieces = [piece(0, 40), piece(10, 50), piece(20, 40)]
    assert merge_small(pieces, 24, 100) == pieces


def test_page_tail_joins_the_piece_before_it_in_its_section() -> None:
    pieces = [piece(0, 60, section="A"), piece(10, 5, section="A")]
    merged = merge_small(pieces, 24, 100)
    assert merged == [Piece(0, 20, 66, 1, "A")]


def test_lone_heading_joins_what_follows_and_takes_its_path() -> None:
    pieces = [piece(0, 60, section="A"), piece(10, 3, section="B"), piece(20, 50, section="B > C")]
    merged = merge_small(pieces, 24, 100)
    assert merged == [piece(0, 60, section="A"), Piece(10, 30, 54, 1, "B > C")]


def test_never_across_pages_and_never_over_the_limit() -> None:
    other_page = [piece(0, 60, page=1), piece(10, 5, page=2), piece(20, 60, page=3)]
    assert merge_small(other_page, 24, 100) == other_page
    too_big = [piece(0, 98, section="A"), piece(10, 5, section="A")]
    assert merge_small(too_big, 24, 100) == too_big


def test_last_resort_is_the_previous_piece_of_another_section() -> None:
    pieces = [piece(0, 30, section="A"), piece(10, 5, section="B")]
    assert merge_small(pieces, 24, 100) == [Piece(0, 20, 36, 1, "A")]


def test_several_scraps_in_a_row_end_up_together() -> None:
    pieces = [piece(0, 3, section="A"), piece(10, 4, section="A > B"), piece(20, 5, section="C")]
    merged = merge_small(pieces, 24, 100)
    assert len(merged) == 1 and merged[0].tokens == 14


def test_chunks_carry_the_heading_path_of_their_section() -> None:
    d = doc(
        Section(sentences(8), page=1, heading=("Intro",)),
        Section("Setup", page=2, heading=("Setup",)),
        Section(sentences(8), page=2, heading=("Setup", "Windows")),
    )
    chunks = Chunker(word_count, word_offsets, max_tokens=64, overlap=0, min_tokens=4).chunk(d)
    assert [(c.page, c.section) for c in chunks] == [(1, "Intro"), (2, "Setup > Windows")]
    assert chunks[1].text.startswith("Setup\n\nword")  # the lone heading joined its subsection
    for c in chunks:
        assert d.text[c.char_start : c.char_end] == c.text


def test_merge_limit_lets_a_scrap_ride_along_past_max_tokens() -> None:
    d = doc(Section(sentences(10) + " Last.", page=1, heading=("A",)))  # 10 x 6 tokens + 2
    strict = Chunker(word_count, word_offsets, max_tokens=60, overlap=0, min_tokens=8).chunk(d)
    assert [len(c.text.split()) for c in strict] == [50, 1]  # limit 60: no room, kept apart
    loose = Chunker(
        word_count, word_offsets, max_tokens=60, overlap=0, min_tokens=8, merge_limit=70
    ).chunk(d)
    assert [len(c.text.split()) for c in loose] == [51]
