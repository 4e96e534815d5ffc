"""PDF manuals shaped like real ones, for tests of structure and boilerplate: a table of
contents with dot leaders, numbered chapters and sections (bookmarked, or not), a running
header and footer on every page, and a back-of-book index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.outline import OutlineSection

NANUM = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")


@dataclass(frozen=True)
class Chapter:
    title: str
    sections: Sequence[tuple[str, str]]  # (section title, body text)


class _Manual(FPDF):
    def __init__(self, title: str, font: Path | None) -> None:
        super().__init__(format="A4")
        self.manual = title
        if font is not None:
            self.add_font("body", "", str(font))
            self.body_font = "body"
        else:
            self.body_font = "helvetica"
        self.set_auto_page_break(True, margin=20)
        self.set_title(title)

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_font(self.body_font, "", 8)
            self.cell(0, 6, f"{self.manual}    {self.page_no()}", align="R")
            self.ln(10)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(self.body_font, "", 8)
        self.cell(0, 6, "Example Corp. Confidential", align="C")


def _toc(pdf: FPDF, outline: list[OutlineSection]) -> None:
    pdf.set_font(pdf.body_font, "", 14)
    pdf.cell(0, 10, "Contents", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.body_font, "", 10)
    for entry in outline:
        label, number = entry.name, str(entry.page_number)
        width = pdf.epw - 6 * entry.level
        room = width - pdf.get_string_width(label + number) - 4
        dots = " ." * max(2, int(room / pdf.get_string_width(" .")))
        pdf.set_x(pdf.l_margin + 6 * entry.level)
        pdf.cell(width, 6, f"{label}{dots} {number}", new_x="LMARGIN", new_y="NEXT")


def make_manual(
    path: Path,
    title: str,
    chapters: Sequence[Chapter],
    *,
    bookmarks: bool = True,
    index_terms: Sequence[str] = (),
    korean: bool = False,
) -> dict[str, int]:
    """Write the manual; returns the page each section title starts on (1-based).

    Chapters start on a new page; section headings are numbered ("2.1 Title") and, with
    ``bookmarks``, each chapter and section is a bookmark. ``index_terms`` become a
    back-of-book index on the last page (each term with the pages it appears on).
    ``korean`` uses the NanumGothic font (Debian/Ubuntu ``fonts-nanum``).
    """
    pdf = _Manual(title, NANUM if korean else None)
    pdf.add_page()
    pdf.set_font(pdf.body_font, "", 20)
    pdf.multi_cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
    if bookmarks:  # the contents on page 2, drawn once the chapters are laid out
        pdf.add_page()
        pdf.insert_toc_placeholder(_toc, pages=1, allow_extra_pages=True)
    pages: dict[str, int] = {}
    found: dict[str, set[int]] = {}
    for c, chapter in enumerate(chapters, start=1):
        if c > 1 or not bookmarks:  # the placeholder already opened the first one
            pdf.add_page()
        pdf.set_font(pdf.body_font, "", 16)
        if bookmarks:
            pdf.start_section(chapter.title, level=0)
        pages[chapter.title] = pdf.page_no()
        pdf.multi_cell(0, 10, f"{c} {chapter.title}", new_x="LMARGIN", new_y="NEXT")
        for s, (heading, body) in enumerate(chapter.sections, start=1):
            pdf.set_font(pdf.body_font, "", 13)
            if pdf.will_page_break(30):
                pdf.add_page()
            if bookmarks:
                pdf.start_section(heading, level=1)
            pages[heading] = pdf.page_no()
            pdf.multi_cell(0, 8, f"{c}.{s} {heading}", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(pdf.body_font, "", 10)
            first = pdf.page_no()
            pdf.multi_cell(0, 6, body, align="L", new_x="LMARGIN", new_y="NEXT")
            for term in index_terms:
                if term in body:
                    found.setdefault(term, set()).update(range(first, pdf.page_no() + 1))
    if index_terms:
        pdf.add_page()
        pdf.set_font(pdf.body_font, "", 14)
        pdf.cell(0, 10, "Index", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(pdf.body_font, "", 9)
        for term in sorted(found):
            numbers = ", ".join(str(p) for p in sorted(found[term]))
            pdf.cell(0, 5, f"{term}, {numbers}", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return pages
