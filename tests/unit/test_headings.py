"""Heading paths from each format: Markdown, HTML, DOCX heading styles, PDF outlines and
numbered PDF headings; and how the path enters the indexed text."""

from __future__ import annotations

import io
from pathlib import Path

import docx
from fpdf import FPDF

from snaprag.index.tokenize import indexed_text
from snaprag.ingest.loaders import DocxLoader, HtmlLoader, MarkdownLoader, PdfLoader
from snaprag.ingest.loaders._text import heading_sections
from snaprag.types import Document


def load(loader, path: Path, data: bytes | str) -> Document:
    raw = data.encode() if isinstance(data, str) else data
    path.write_bytes(raw)
    return loader.load(path, raw)[0]


def paths(document: Document) -> list[tuple[str, str]]:
    return [(s.path, s.text.split("\n")[0]) for s in document.sections]


def test_heading_sections_nest_by_level() -> None:
    blocks = [
        (0, "Preamble."),
        (1, "A"),
        (0, "a text"),
        (2, "A.1"),
        (0, "x"),
        (3, "A.1.a"),
        (0, "y"),
        (2, "A.2"),
        (1, "B"),
        (0, "b text"),
    ]
    got = [(s.path, s.text) for s in heading_sections(blocks)]
    assert got == [
        ("", "Preamble."),
        ("A", "A\n\na text"),
        ("A > A.1", "A.1\n\nx"),
        ("A > A.1 > A.1.a", "A.1.a\n\ny"),
        ("A > A.2", "A.2"),
        ("B", "B\n\nb text"),
    ]


def test_markdown_headings_atx_and_setext(tmp_path: Path) -> None:
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### On *Windows*\nUse it.\n\n"
    text += "Notes\n-----\nA wrapped\nparagraph\n---\n\n```\n# not a heading\n```\n"
    got = paths(load(MarkdownLoader(), tmp_path / "g.md", text))
    assert got == [
        ("Guide", "Guide"),
        ("Guide > Install", "Install"),
        ("Guide > Install > On Windows", "On Windows"),
        ("Guide > Notes", "Notes"),
    ]


def test_html_headings_outside_tables(tmp_path: Path) -> None:
    page = (
        "<html><head><title>FAQ</title></head><body><h1>Questions</h1><p>Intro</p>"
        "<section><h2>Orders</h2><p>Ship in 3 days.</p><h3>How much?</h3><p>Free.</p></section>"
        "<table><tr><td><h2>cell heading</h2></td></tr></table><h2>Returns</h2><p>30 days.</p>"
        "</body></html>"
    )
    got = paths(load(HtmlLoader(), tmp_path / "f.html", page))
    assert got == [
        ("Questions", "Questions"),
        ("Questions > Orders", "Orders"),
        ("Questions > Orders > How much?", "How much?"),
        ("Questions > Returns", "Returns"),
    ]


def test_docx_heading_styles_and_typed_out_contents(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Rollout", level=1)
    document.add_paragraph("Forty-eight desks.")
    document.add_paragraph("Scope\t3", style=document.styles.add_style("TOC 1", 1))
    document.add_heading("Floors", level=2)
    document.add_paragraph("Floor 3 first.")
    document.add_heading("Contacts", level=1)
    document.add_paragraph("Mina Park.")
    out = io.BytesIO()
    document.save(out)
    d = load(DocxLoader(), tmp_path / "plan.docx", out.getvalue())
    assert paths(d) == [
        ("Rollout", "Rollout"),
        ("Rollout > Floors", "Floors"),
        ("Contacts", "Contacts"),
    ]
    assert "Scope\t3" not in d.text


def _pdf(pages: list[list[str]], outline: list[tuple[int, int, str]] | None) -> bytes:
    """One page per list of lines; ``outline``: (page index, level, title) bookmarks."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for i, lines in enumerate(pages):
        pdf.add_page()
        for line in lines:
            for p, level, title in outline or ():
                if p == i and line.endswith(title):
                    pdf.start_section(title, level=level)
            pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def test_pdf_outline_gives_heading_paths(tmp_path: Path) -> None:
    body = "The desk frame carries a seven year warranty against defects in materials."
    pages = [
        ["1 Warranty", body, "1.1 Frame and motors", body],
        [body, "1.2 Claims", "Write to support with your order number."],
    ]
    outline = [(0, 0, "Warranty"), (0, 1, "Frame and motors"), (1, 1, "Claims")]
    d = load(PdfLoader(), tmp_path / "w.pdf", _pdf(pages, outline))
    got = [(s.page, s.path, s.text.split("\n")[0]) for s in d.sections]
    assert got == [
        (1, "Warranty", "1 Warranty"),
        (1, "Warranty > Frame and motors", "1.1 Frame and motors"),
        (2, "Warranty > Frame and motors", body),
        (2, "Warranty > Claims", "1.2 Claims"),
    ]


def test_pdf_without_outline_uses_numbered_headings(tmp_path: Path) -> None:
    body = "Tables should have no vertical rules and few horizontal ones, set apart well."
    pages = [
        ["Publication quality tables", "1 Introduction", body],
        ["1. a numbered list item", "1.1 A note on terminology", body, "2 Layout", body],
    ]
    d = load(PdfLoader(), tmp_path / "t.pdf", _pdf(pages, None))
    got = [(s.page, s.path) for s in d.sections]
    assert got == [
        (1, ""),
        (1, "1 Introduction"),
        (2, "1 Introduction"),
        (2, "1 Introduction > 1.1 A note on terminology"),
        (2, "2 Layout"),
    ]


def test_indexed_text_adds_the_path_once() -> None:
    assert indexed_text("Manual", "Text.", "") == "Manual\nText."
    assert indexed_text("Manual", "Text.", "Setup > Windows") == "Manual\nSetup > Windows\nText."
    # the chunk opens with its own heading (numbered or not): only the ancestors are added
    assert indexed_text("Manual", "2.1 Windows\nText.", "Setup > Windows") == (
        "Manual\nSetup\n2.1 Windows\nText."
    )
    # a heading that repeats the title is not added again
    assert indexed_text("Guide", "Text.", "Guide > Install") == "Guide\nInstall\nText."
    long = " > ".join(f"heading number {i}" for i in range(40))
    assert len(indexed_text("", "Text.", long)) < 220


def test_korean_model_note_only_for_english_only_models(tmp_path: Path) -> None:
    from snaprag.embed.models import korean_model_note

    note = korean_model_note("minilm", 21, tmp_path / "idx")
    assert "Korean text indexed (21 chunks)" in note and "--model e5-small" in note
    assert str(tmp_path / "idx-ko") in note
    assert korean_model_note("minilm", 0, tmp_path) == ""
    assert korean_model_note("e5-small", 21, tmp_path) == ""
    assert korean_model_note("/models/custom", 21, tmp_path) == ""  # unknown: say nothing
