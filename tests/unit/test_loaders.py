"""Loaders against real files: generated PDFs and DOCX, broken files, odd encodings."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from snaprag.errors import LoaderError, UnsupportedFormatError
from snaprag.ingest.loaders import (
    LOADERS,
    SUPPORTED_SUFFIXES,
    load_source,
    loader_for,
    path_doc_id,
)
from snaprag.types import Document

LIMIT = 10_000_000
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


# --------------------------------------------------------------------------- helpers


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def load_one(path: Path) -> Document:
    docs, _ = load_source(path, LIMIT)
    assert len(docs) == 1
    return docs[0]


def expect_error(path: Path, *fragments: str, max_bytes: int = LIMIT) -> str:
    """Load ``path``, expect a LoaderError (and nothing else) whose message has ``fragments``."""
    with pytest.raises(LoaderError) as info:
        load_source(path, max_bytes)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    return message


def pdf_bytes(pages: list[str | None], title: str | None = None) -> bytes:
    """A PDF with one page per entry; ``None`` makes a page with a drawing and no text."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        if text is None:
            pdf.rect(20, 20, 80, 40, style="F")
            continue
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 8, text, align="L")
    return bytes(pdf.output())


def encrypted(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(title: str = "", with_heading: bool = True) -> bytes:
    document = docx.Document()
    document.core_properties.title = title
    if with_heading:
        document.add_heading("Rollout plan", level=1)
    document.add_paragraph("Forty-eight desks arrive in November.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Floor", "Desks"), ("3", "16")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("First item", style="List Bullet")
    document.add_paragraph("Second item", style="List Bullet")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------- registry


def test_supported_suffixes_and_loader_for() -> None:
    assert SUPPORTED_SUFFIXES == (
        ".docx",
        ".htm",
        ".html",
        ".jsonl",
        ".markdown",
        ".md",
        ".pdf",
        ".txt",
    )
    assert {loader.type for loader in LOADERS} == {"txt", "md", "html", "pdf", "docx", "jsonl"}
    assert loader_for(Path("A.PDF")).type == "pdf"
    assert loader_for(Path("notes.markdown")).type == "md"


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "sheet.xyz", "a,b\n")
    with pytest.raises(UnsupportedFormatError) as info:
        load_source(path, LIMIT)
    assert str(info.value) == (
        "unsupported file type '.xyz' (supported: .docx, .htm, .html, .jsonl, .markdown, "
        ".md, .pdf, .txt)"
    )
    assert isinstance(info.value, LoaderError)
    with pytest.raises(UnsupportedFormatError, match="no suffix: 'Makefile'"):
        loader_for(Path("Makefile"))


def test_too_large_is_checked_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "x" * 2048)
    assert expect_error(path, max_bytes=1000) == "file too large (2048 bytes > limit 1000)"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    expect_error(tmp_path / "gone.txt", "no such file or directory")
    (tmp_path / "dir.md").mkdir()
    expect_error(tmp_path / "dir.md", "not a regular file")


def test_doc_id_source_and_raw_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "note.txt", "Hello there.\n")
    docs, raw = load_source(path, LIMIT)
    resolved = str(path.resolve())
    expected_id = "d" + hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:16]
    assert raw == b"Hello there.\n"
    assert docs[0].doc_id == expected_id == path_doc_id(path)
    assert docs[0].source == resolved
    assert docs[0].type == "txt"
    # the same file reached through a relative path gets the same id
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert load_source(Path("../note.txt"), LIMIT)[0][0].doc_id == expected_id


def test_unexpected_parser_exception_becomes_loader_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.txt", "fine text")

    def boom(path: Path, data: bytes) -> list[Document]:
        raise ValueError("bad xref table\nsecond line")

    monkeypatch.setattr(loader_for(path), "load", boom)
    assert expect_error(path) == "ValueError: bad xref table"


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_never_crash(tmp_path: Path, suffix: str, seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    expect_error(write(tmp_path / f"junk{suffix}", data))


# --------------------------------------------------------------------------- text


def test_text_utf8_bom_and_normalisation(tmp_path: Path) -> None:
    raw = "\ufeffTitle line  \r\n\r\n\r\n\r\nSecond para\t\rthird line\n\n".encode()
    doc = load_one(write(tmp_path / "notes.txt", raw))
    assert doc.title == "notes"
    assert doc.text == "Title line\n\nSecond para\nthird line"
    assert [s.page for s in doc.sections] == [None]


def test_text_utf16_with_bom(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "u16.txt", "보증 기간은 7년입니다.".encode("utf-16")))
    assert doc.text == "보증 기간은 7년입니다."


def test_text_cp949_korean(tmp_path: Path) -> None:
    text = "스냅데스크 보증 기간은 프레임 7년, 전자 부품 3년입니다.\n고객센터 1600-1234"
    doc = load_one(write(tmp_path / "ko.txt", text.encode("cp949")))
    assert doc.text == text


def test_text_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.txt", "café crème, résumé".encode("latin-1"))
    assert expect_error(path) == "not valid UTF-8 text"


def test_text_binary(tmp_path: Path) -> None:
    png_like = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    assert expect_error(write(tmp_path / "image.txt", png_like)) == "binary file, not text"
    controls = bytes([1, 2, 3, 4, 5, 6, 14, 15]) * 20 + b"some text"
    assert expect_error(write(tmp_path / "ctl.txt", controls)) == "binary file, not text"


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_text_empty(tmp_path: Path, content: bytes) -> None:
    assert expect_error(write(tmp_path / "empty.txt", content)) == "empty file"


# --------------------------------------------------------------------------- markdown


def test_markdown_strips_markup(tmp_path: Path) -> None:
    source = (
        "---\nlayout: page\n---\n"
        "Intro with a [link](https://example.com/x) and ![logo](logo.png).\n\n"
        "# Snapdesk *Manual* #\n\n"
        "Some **bold** text, `inline_code()` and snake_case_words.\n\n"
        "## Steps\n\n"
        "* first\n+ second\n1. numbered\n\n"
        "> quoted line\n\n"
        "| Code | Meaning |\n|------|:-------:|\n| E01 | Overload |\n\n"
        "```python\n# not a heading\nprint('kept')\n```\n\n"
        "---\n\n"
        "See [the docs][ref].\n\n[ref]: https://example.com/docs\n"
    )
    doc = load_one(write(tmp_path / "manual.md", source))
    assert doc.type == "md"
    assert doc.title == "Snapdesk Manual"
    assert doc.text == (
        "Intro with a link and logo.\n\n"
        "Snapdesk Manual\n\n"
        "Some bold text, inline_code() and snake_case_words.\n\n"
        "Steps\n\n"
        "- first\n- second\n1. numbered\n\n"
        "quoted line\n\n"
        "Code | Meaning\nE01 | Overload\n\n"
        "# not a heading\nprint('kept')\n\n"
        "See the docs."
    )


def test_markdown_title_falls_back(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "plain.markdown", "## Only h2\n\ntext")).title == "plain"
    front = '---\ntitle: "Front Title"\n---\n# Heading\n\nbody'
    assert load_one(write(tmp_path / "f.md", front)).title == "Front Title"
    setext = "Setext Title\n============\n\nbody"
    assert load_one(write(tmp_path / "s.md", setext)).title == "Setext Title"


def test_markdown_without_text(tmp_path: Path) -> None:
    assert expect_error(write(tmp_path / "rule.md", "---\n\n***\n")) == "no extractable text"


# --------------------------------------------------------------------------- html


def test_html_drops_scripts_and_keeps_paragraphs(tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title> Snapdesk
      FAQ </title><style>p { color: red }</style>
      <script>var secret = "tracking";</script></head>
      <body><nav><a href="/">Home</a></nav>
      <h1>Questions</h1>
      <p>Returns are accepted
         within <b>30 days</b>.</p><p>Shipping is free over $300.</p>
      <ul><li>One</li><li>Two</li></ul>
      <table><tr><th>Code</th><th>Meaning</th></tr><tr><td>E01</td><td>Overload</td></tr></table>
      <div>line one<br>line two</div>
      <pre>  indented
    code</pre>
      <noscript>Enable JavaScript</noscript>
      <p>&copy; 2024 &amp; beyond</p></body></html>"""
    doc = load_one(write(tmp_path / "faq.html", page))
    assert doc.type == "html"
    assert doc.title == "Snapdesk FAQ"
    assert doc.text == (
        "Questions\n\n"
        "Returns are accepted within 30 days.\n\n"
        "Shipping is free over $300.\n\n"
        "- One\n- Two\n\n"
        "Code | Meaning\nE01 | Overload\n\n"
        "line one\nline two\n\n"
        "  indented\n    code\n\n"
        "© 2024 & beyond"
    )
    for dropped in ("secret", "color", "Home", "JavaScript"):
        assert dropped not in doc.text


def test_html_title_from_h1_then_stem(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "page.htm", "<body><h1>Main <i>Heading</i></h1><p>x</p>"))
    assert doc.title == "Main Heading"
    assert load_one(write(tmp_path / "bare.html", "<p>just text</p>")).title == "bare"


def test_html_declared_charset(tmp_path: Path) -> None:
    page = '<html><head><meta charset="windows-1252"></head><p>café</p></html>'
    assert load_one(write(tmp_path / "w.html", page.encode("cp1252"))).text == "café"


def test_html_without_text(tmp_path: Path) -> None:
    page = "<html><head><title>T</title><script>x()</script></head><body> </body></html>"
    assert expect_error(write(tmp_path / "empty.html", page)) == "no extractable text"


def test_html_deep_nesting_does_not_overflow(tmp_path: Path) -> None:
    page = "<div>" * 5000 + "deep text" + "</div>" * 5000
    assert load_one(write(tmp_path / "deep.html", page)).text == "deep text"


# --------------------------------------------------------------------------- pdf


def test_pdf_pages_and_title(tmp_path: Path) -> None:
    data = pdf_bytes(
        ["Warranty: frame 7 years.", "Claims: answered within 2 days.", "Fee: USD 89."],
        title="Warranty Guide",
    )
    doc = load_one(write(tmp_path / "guide.pdf", data))
    assert doc.type == "pdf"
    assert doc.title == "Warranty Guide"
    assert [(s.page, s.text) for s in doc.sections] == [
        (1, "Warranty: frame 7 years."),
        (2, "Claims: answered within 2 days."),
        (3, "Fee: USD 89."),
    ]


def test_pdf_blank_page_keeps_numbering_and_stem_title(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "scan-mix.pdf", pdf_bytes(["first", None, "third"])))
    assert doc.title == "scan-mix"
    assert [(s.page, s.text) for s in doc.sections] == [(1, "first"), (3, "third")]


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.pdf", pdf_bytes([None, None]))
    assert expect_error(path) == "PDF has no text layer (scanned?); OCR is not supported"


def test_pdf_encrypted_with_password(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.pdf", encrypted(pdf_bytes(["hidden"]), "s3cret"))
    assert expect_error(path) == "encrypted PDF (password required)"


def test_pdf_encrypted_with_empty_user_password_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "protected.pdf", encrypted(pdf_bytes(["open to all"]), ""))
    doc = load_one(path)
    assert [(s.page, s.text) for s in doc.sections] == [(1, "open to all")]


def test_pdf_truncated(tmp_path: Path) -> None:
    data = pdf_bytes(["one " * 50, "two " * 50, "three " * 50], title="T")
    path = write(tmp_path / "cut.pdf", data[: len(data) // 2])
    assert expect_error(path).startswith("corrupt")


def test_pdf_random_bytes(tmp_path: Path) -> None:
    junk = write(tmp_path / "junk.pdf", random.Random(1).randbytes(3000))
    assert expect_error(junk) == "not a PDF file (no %PDF- header)"
    fake = write(tmp_path / "fake.pdf", b"%PDF-1.7\n" + random.Random(2).randbytes(3000))
    assert expect_error(fake).startswith("corrupt")


def test_pdf_empty(tmp_path: Path) -> None:
    assert expect_error(write(tmp_path / "e.pdf", b"")) == "empty file"


def test_pdf_korean_page(tmp_path: Path) -> None:
    font = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")
    assert font.is_file(), "install the Debian package fonts-nanum (.ci/run does)"
    pdf = FPDF()
    pdf.add_font("Nanum", fname=str(font))
    pdf.set_title("보증 안내")
    for text in ("보증 기간은 7년입니다.", "반품은 30일 안에 신청하세요."):
        pdf.add_page()
        pdf.set_font("Nanum", size=12)
        pdf.multi_cell(0, 8, text, align="L")
    doc = load_one(write(tmp_path / "ko.pdf", bytes(pdf.output())))
    assert doc.title == "보증 안내"
    assert [(s.page, s.text) for s in doc.sections] == [
        (1, "보증 기간은 7년입니다."),
        (2, "반품은 30일 안에 신청하세요."),
    ]


# --------------------------------------------------------------------------- docx


def test_docx_paragraphs_tables_and_title(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "plan.docx", docx_bytes(title="Office Rollout")))
    assert doc.type == "docx"
    assert doc.title == "Office Rollout"
    assert doc.text == (
        "Rollout plan\n\n"
        "Forty-eight desks arrive in November.\n\n"
        "Floor | Desks\n3 | 16\n\n"
        "- First item\n- Second item"
    )


def test_docx_title_from_heading_then_stem(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "a.docx", docx_bytes())).title == "Rollout plan"
    plain = load_one(write(tmp_path / "no-heading.docx", docx_bytes(with_heading=False)))
    assert plain.title == "no-heading"


def test_docx_merged_cells_once(tmp_path: Path) -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 2))
    merged.text = "Header across"
    for c, value in enumerate(("a", "b", "c")):
        table.cell(1, c).text = value
    out = io.BytesIO()
    document.save(out)
    assert load_one(write(tmp_path / "m.docx", out.getvalue())).text == "Header across\na | b | c"


def test_docx_corrupt(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.docx", b"PK\x03\x04 this is not really a zip" * 10)
    assert expect_error(bad) == "not a valid .docx (bad zip archive)"
    data = docx_bytes()
    expect_error(write(tmp_path / "half.docx", data[: len(data) // 2]), "not a valid .docx")
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    expect_error(write(tmp_path / "other.docx", other.getvalue()), "not a valid .docx")


def test_docx_empty_document(tmp_path: Path) -> None:
    out = io.BytesIO()
    docx.Document().save(out)
    assert expect_error(write(tmp_path / "blank.docx", out.getvalue())) == "no extractable text"


# --------------------------------------------------------------------------- jsonl


def beir_lines(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_jsonl_beir_corpus(tmp_path: Path) -> None:
    path = write(
        tmp_path / "corpus.jsonl",
        beir_lines(
            {"_id": "4983", "title": "Microstructural development", "text": "Alterations..."},
            {"_id": "5836", "title": "", "text": "Induction of myelodysplasia."},
            {"_id": 77, "title": "Title only", "text": ""},
            {"_id": "sep", "title": "", "text": "one\u2028two\u0085three"},
            {"_id": "empty", "title": "", "text": ""},
        )
        + "\n",
    )
    docs, _ = load_source(path, LIMIT)
    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("4983", "Microstructural development", "Alterations..."),
        ("5836", "", "Induction of myelodysplasia."),
        ("77", "Title only", "Title only"),
        ("sep", "", "one\ntwo\u0085three"),
    ]
    assert {d.type for d in docs} == {"jsonl"}
    assert {d.source for d in docs} == {str(path.resolve())}


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("{not json", "line 2: invalid JSON"),
        ("[1, 2]", "line 2: expected a JSON object, got list"),
        ('{"title": "t", "text": "x"}', "line 2: missing '_id'"),
        ('{"_id": "a", "text": "again"}', "line 2: duplicate _id 'a'"),
        ('{"_id": "b", "text": 5}', "line 2: 'title' and 'text' must be strings"),
    ],
)
def test_jsonl_bad_line_is_rejected(tmp_path: Path, bad_line: str, reason: str) -> None:
    good = beir_lines({"_id": "a", "title": "", "text": "fine"})
    path = write(tmp_path / "corpus.jsonl", good + bad_line + "\n" + good.replace('"a"', '"c"'))
    expect_error(path, reason)


def test_jsonl_no_documents(tmp_path: Path) -> None:
    assert expect_error(write(tmp_path / "c.jsonl", "\n\n")) == "empty file"
    blank = beir_lines({"_id": "x", "title": "", "text": ""})
    expect_error(write(tmp_path / "d.jsonl", blank), "no documents")


# --------------------------------------------------------------------------- samples


def test_bundled_samples_load() -> None:
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix in SUPPORTED_SUFFIXES)
    loaded = {p.name: load_one(p) for p in files}
    assert {d.type for d in loaded.values()} >= {"md", "html", "txt", "pdf", "docx"}
    guide = loaded["warranty-and-service.pdf"]
    assert [s.page for s in guide.sections] == [1, 2, 3]
    assert "Frame and lifting motors: 7 years." in guide.sections[0].text
    assert "프레임과 모터는 7년" in loaded["warranty-policy-ko.txt"].text
