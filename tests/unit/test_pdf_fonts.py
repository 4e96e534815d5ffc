"""Headings of PDFs without an outline, recognised by font size (generated PDFs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from snaprag.ingest.loaders import PdfLoader
from snaprag.ingest.loaders.pdf_fonts import font_headings

NANUM = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")
BODY = (
    "Tables should have no vertical rules and few horizontal ones, and the rules that are "
    "left must be set apart from the text well enough to read the figures in each column."
)
#: (size, text) lines of each page; size 11 is the body text
Page = list[tuple[float, str]]


def make_pdf(pages: list[Page], outline: bool = False, font: Path | None = None) -> bytes:
    pdf = FPDF()
    if font is not None:
        pdf.add_font("nanum", fname=str(font))
    family = "nanum" if font is not None else "helvetica"
    for lines in pages:
        pdf.add_page()
        for size, text in lines:
            pdf.set_font(family, size=size)
            if outline and size > 11:
                pdf.start_section(text, level=0 if size >= 16 else 1)
            pdf.multi_cell(0, size * 0.6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def sections(tmp_path: Path, data: bytes) -> list[tuple[int, str, str]]:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    doc = PdfLoader().load(path, data)[0]
    return [(s.page or 0, s.path, s.text.split("\n")[0]) for s in doc.sections]


MANUAL: list[Page] = [
    [
        (24, "The Snapdesk Manual"),
        (11, BODY),
        (18, "Setting up"),
        (11, BODY),
        (14, "Unpacking"),
        (11, BODY),
    ],
    [(11, BODY), (14, "Assembling the frame"), (11, BODY), (18, "Warranty"), (11, BODY)],
]


def test_larger_lines_become_nested_headings(tmp_path: Path) -> None:
    got = sections(tmp_path, make_pdf(MANUAL))
    assert [(page, path) for page, path, _ in got] == [
        (1, ""),  # the title and the text before the first heading
        (1, "Setting up"),
        (1, "Setting up > Unpacking"),
        (2, "Setting up > Unpacking"),  # the page opens in the section that goes on
        (2, "Setting up > Assembling the frame"),
        (2, "Warranty"),
    ]
    assert [first for _, _, first in got][1:3] == ["Setting up", "Unpacking"]
    # the title page's one large line is the document's title, not a level above all


def test_an_outline_still_wins(tmp_path: Path) -> None:
    got = sections(tmp_path, make_pdf(MANUAL, outline=True))
    # the title has a bookmark: the text under it is in its section, as the outline says
    assert [path for _, path, _ in got][:3] == [
        "The Snapdesk Manual",
        "Setting up",
        "Setting up > Unpacking",
    ]


def test_body_text_sentences_and_running_headers_are_not_headings(tmp_path: Path) -> None:
    header = (14, "Snapdesk S2 service guide")  # a large running header on every page
    pages: list[Page] = [
        [header, (11, BODY), (14, "This line is large but ends a sentence."), (11, BODY)]
        for _ in range(5)
    ]
    got = sections(tmp_path, make_pdf(pages))
    paths = {path for _, path, _ in got}
    assert paths == {""}


def test_same_size_everywhere_falls_back_to_numbering(tmp_path: Path) -> None:
    pages: list[Page] = [[(11, "1 Introduction"), (11, BODY), (11, "2 Layout"), (11, BODY)]]
    got = sections(tmp_path, make_pdf(pages))
    assert [path for _, path, _ in got] == ["1 Introduction", "2 Layout"]


def test_wrapped_heading_is_one_heading() -> None:
    pages = [(1, [(BODY, 10.0), ("Installing the control box", 14.0), ("on older frames", 14.0)])]
    pages += [(2, [(BODY, 10.0), ("Claims", 14.0), (BODY, 10.0)])]
    got = [(h.page, h.path) for h in font_headings(pages)]
    assert got == [
        (1, ("Installing the control box on older frames",)),
        (2, ("Claims",)),
    ]


def test_small_print_does_not_make_body_text_a_heading() -> None:
    # mostly 10 pt body text, footnotes at 8 pt: the body is 10, nothing is a heading
    pages = [(1, [(BODY, 10.0), ("A short body line", 10.0), ("1 a footnote", 8.0)] * 5)]
    assert font_headings(pages) == []
    assert font_headings([]) == []


@pytest.mark.skipif(not NANUM.exists(), reason="fonts-nanum is not installed")
def test_korean_headings_by_size(tmp_path: Path) -> None:
    body = "스냅데스크 S2의 보증 기간은 프레임과 모터는 7년, 전자 부품은 3년입니다. " * 3
    pages: list[Page] = [
        [(18, "보증 안내"), (11, body), (14, "보증 기간"), (11, body)],
        [(14, "보증 수리 신청"), (11, body), (18, "고객 센터"), (11, body)],
    ]
    got = sections(tmp_path, make_pdf(pages, font=NANUM))
    assert [(p, path) for p, path, _ in got] == [
        (1, "보증 안내"),
        (1, "보증 안내 > 보증 기간"),
        (2, "보증 안내 > 보증 수리 신청"),
        (2, "고객 센터"),
    ]
