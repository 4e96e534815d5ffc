"""Korean PDFs with outlines, made from a SQuAD-format file, for ``snaprag eval --outline``.

One PDF per article, laid out like a real manual so that retrieval meets what it meets in
real documents: a title, a table of contents with dot leaders and page numbers, one
numbered section per paragraph (its heading is a short topic: the answer to the
paragraph's first question; a bookmark points to it), a running header (article title
and page number) and footer on every page, and a back-of-book index of the answers with
their pages.

    python scripts/make_outline_pdfs.py ../shared/datasets/korquad/KorQuAD_v1.0_dev.json \
        /tmp/korquad-pdfs --part dev      # even-numbered articles; --part heldout: odd ones

Never tune on ``--part heldout``. Needs fpdf2 (in the ``test`` extra) and a Korean TTF
font (Debian/Ubuntu: ``apt-get install fonts-nanum``; or ``--font PATH``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from fpdf import FPDF
from fpdf.outline import OutlineSection

FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")
FONT_BOLD = Path("/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf")
FOOTER = "KorQuAD 1.0 (CC BY-ND 2.0 KR)"
# font subsetting reports every table it leaves out and every glyph the font lacks
logging.getLogger("fontTools").setLevel(logging.ERROR)
logging.getLogger("fpdf").setLevel(logging.ERROR)


class ArticlePdf(FPDF):
    def __init__(self, title: str, font: Path, bold: Path) -> None:
        super().__init__(format="A4")
        self.article = title
        self.add_font("body", "", str(font))
        self.add_font("body", "B", str(bold if bold.exists() else font))
        self.set_auto_page_break(True, margin=20)
        self.set_title(title)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("body", "", 8)
        self.cell(0, 6, f"{self.article}    {self.page_no()}", align="R")
        self.ln(10)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("body", "", 8)
        self.cell(0, 6, FOOTER, align="C")


def render_toc(pdf: FPDF, outline: list[OutlineSection]) -> None:
    pdf.set_font("body", "B", 14)
    pdf.cell(0, 10, "목차", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("body", "", 10)
    for section in outline:
        indent = 6 * section.level
        label = section.name
        number = str(section.page_number)
        width = pdf.epw - indent
        # dot leaders between the title and its page number, as typeset manuals print them
        room = width - pdf.get_string_width(label) - pdf.get_string_width(number) - 4
        dots = " ." * max(2, int(room / pdf.get_string_width(" .")))
        pdf.set_x(pdf.l_margin + indent)
        pdf.cell(width, 6, f"{label}{dots} {number}", new_x="LMARGIN", new_y="NEXT")


def build(article: dict, out: Path, font: Path, bold: Path) -> int:
    """Write one article's PDF; returns its number of bookmarks."""
    title = article["title"].strip()
    pdf = ArticlePdf(title, font, bold)
    pdf.add_page()
    pdf.set_font("body", "B", 20)
    pdf.multi_cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    # the table of contents is drawn here once the sections are laid out; the sections
    # start on the page after it
    pdf.insert_toc_placeholder(render_toc, pages=1, allow_extra_pages=True)
    index: dict[str, set[int]] = {}
    marks = 0
    pdf.start_section(title, level=0)
    marks += 1
    for n, paragraph in enumerate(article["paragraphs"], start=1):
        heading = f"{n}. {_heading(paragraph)}"
        pdf.set_font("body", "B", 13)
        if pdf.will_page_break(30):
            pdf.add_page()
        pdf.start_section(heading, level=1)
        marks += 1
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("body", "", 10)
        page = pdf.page_no()
        text = paragraph["context"].strip()
        pdf.multi_cell(0, 6, text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        for qa in paragraph["qas"]:
            for answer in qa["answers"][:1]:
                term = " ".join(answer["text"].split())
                if 1 < len(term) <= 20:
                    index.setdefault(term, set()).update(range(page, pdf.page_no() + 1))
    pdf.add_page()
    pdf.set_font("body", "B", 14)
    pdf.cell(0, 10, "찾아보기", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("body", "", 9)
    for term in sorted(index):
        pages = ", ".join(str(p) for p in sorted(index[term]))
        pdf.cell(0, 5, f"{term}, {pages}", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(out))
    return marks


def _heading(paragraph: dict) -> str:
    """A short topic for the paragraph, as real section headings are: the answer to its
    first question that is a phrase (2 to 30 characters), else the start of the text."""
    for qa in paragraph["qas"]:
        for answer in qa["answers"]:
            text = " ".join(answer["text"].split())
            if 2 <= len(text) <= 30:
                return text
    return " ".join(paragraph["context"].split())[:30]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path, help="SQuAD-format JSON (e.g. KorQuAD 1.0 dev)")
    parser.add_argument("out", type=Path, help="folder for the PDFs")
    parser.add_argument(
        "--part",
        choices=("dev", "heldout", "all"),
        default="dev",
        help="dev: even-numbered articles, heldout: odd-numbered ones",
    )
    parser.add_argument("--font", type=Path, default=FONT)
    parser.add_argument("--bold-font", type=Path, default=FONT_BOLD)
    args = parser.parse_args()
    if not args.font.exists():
        raise SystemExit(f"{args.font} not found: apt-get install fonts-nanum, or give --font")
    articles = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    args.out.mkdir(parents=True, exist_ok=True)
    total = files = 0
    for i, article in enumerate(articles):
        if args.part != "all" and (i % 2 == 0) != (args.part == "dev"):
            continue
        total += build(article, args.out / f"korquad-{i:03d}.pdf", args.font, args.bold_font)
        files += 1
    print(f"{files} PDFs, {total} bookmarks in {args.out}")


if __name__ == "__main__":
    main()
