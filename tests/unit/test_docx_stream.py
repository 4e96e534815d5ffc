"""The streaming DOCX reader: the same text as python-docx gives, in bounded memory."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from snaprag.errors import LoaderError
from snaprag.ingest.loaders import DocxLoader
from snaprag.ingest.loaders import docx as docx_loader
from snaprag.ingest.loaders._text import clean_title, normalize_text

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


# --------------------------------------------------------------------------- reference


def _reference(data: bytes) -> tuple[str, str]:
    """(text, title) the way the loader read documents with python-docx's object model."""
    document = docx.Document(io.BytesIO(data))

    def style(p: Paragraph) -> str:
        try:
            s = p.style
        except Exception:
            return ""
        return (s.name or "") if s is not None else ""

    def para(p: Paragraph) -> str:
        text = p.text.strip()
        return "- " + text if text and style(p).startswith("List") else text

    def table(t: Table) -> str:
        rows = []
        for row in t.rows:
            cells, seen = [], set()
            for cell in row.cells:
                if cell._tc in seen:
                    continue
                seen.add(cell._tc)
                inner = [
                    para(i) if isinstance(i, Paragraph) else table(i)
                    for i in cell.iter_inner_content()
                ]
                text = " ".join("\n".join(x for x in inner if x).split())
                if text:
                    cells.append(text)
            if cells:
                rows.append(" | ".join(cells))
        return "\n".join(rows)

    blocks: list[str] = []
    heading = ""
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = para(item)
            name = style(item)
            if text and not heading and (name == "Title" or name.startswith("Heading")):
                heading = text
        else:
            text = table(item)
        if not text:
            continue
        if blocks and text.startswith("- ") and blocks[-1].startswith("- "):
            blocks[-1] += "\n" + text
        else:
            blocks.append(text)
    title = clean_title(document.core_properties.title) or clean_title(heading)
    return normalize_text("\n\n".join(blocks)), title


def _saved(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _rich_document() -> bytes:
    d = docx.Document()
    d.core_properties.title = ""
    d.add_paragraph("Preface before any heading.")
    d.add_heading("Warranty terms", level=1)
    p = d.add_paragraph("The frame\tis covered ")
    p.add_run("for two").add_break()
    p.add_run("years.")
    p.add_run().add_break(docx.enum.text.WD_BREAK.PAGE)
    d.add_paragraph("First point", style="List Bullet")
    d.add_paragraph("Second point", style="List Number")
    d.add_paragraph("Between lists.")
    d.add_heading("Second heading", level=2)
    t = d.add_table(rows=3, cols=3)
    t.cell(0, 0).merge(t.cell(0, 2)).text = "Across the top"
    t.cell(1, 0).merge(t.cell(2, 0)).text = "Down the side"
    for r in (1, 2):
        for c in (1, 2):
            t.cell(r, c).text = f"r{r}c{c}"
    nested = t.cell(1, 1).add_table(rows=1, cols=2)
    nested.cell(0, 0).text = "inner a"
    nested.cell(0, 1).text = "inner b"
    t.cell(2, 2).add_paragraph("item in a cell", style="List Bullet")
    d.add_paragraph("  ")
    # a hyperlink, a tracked insertion and a text box-like nested paragraph (raw XML)
    p = d.add_paragraph("See ")
    link = p._p.makeelement(qn("w:hyperlink"), {})
    run = copy.deepcopy(p.runs[0]._r)
    run.find(qn("w:t")).text = "the manual"
    link.append(run)
    p._p.append(link)
    ins = p._p.makeelement(qn("w:ins"), {})
    hidden = copy.deepcopy(p.runs[0]._r)
    hidden.find(qn("w:t")).text = " (tracked)"
    ins.append(hidden)
    p._p.append(ins)
    d.add_paragraph("한국어 문단도 읽습니다.")
    return _saved(d)


@pytest.mark.parametrize(
    "make",
    [
        _rich_document,
        lambda: _saved(docx.Document()),  # empty body
    ],
    ids=["rich", "empty"],
)
def test_same_text_and_title_as_python_docx(tmp_path: Path, make) -> None:
    data = make()
    text, title = _reference(data)
    if not text:
        with pytest.raises(LoaderError, match="no extractable text"):
            DocxLoader().load(tmp_path / "doc.docx", data)
        return
    (doc,) = DocxLoader().load(tmp_path / "doc.docx", data)
    assert doc.text == text
    assert doc.title == (title or "doc")


def test_core_title_wins(tmp_path: Path) -> None:
    d = docx.Document()
    d.core_properties.title = "  Owner's   manual "
    d.add_heading("Heading title", level=1)
    d.add_paragraph("Body.")
    (doc,) = DocxLoader().load(tmp_path / "m.docx", _saved(d))
    assert doc.title == "Owner's manual" == _reference(_saved(d))[1]


def _package(document_xml: bytes, content_type: str = MAIN) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{content_type}"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="word/document.xml" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
            "</Relationships>",
        )
        z.writestr("word/document.xml", document_xml)
    return out.getvalue()


def _body(inner: str) -> bytes:
    return f'<w:document xmlns:w="{W}"><w:body>{inner}</w:body></w:document>'.encode()


def test_minimal_package_without_styles(tmp_path: Path) -> None:
    data = _package(_body("<w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t> world</w:t></w:r></w:p>"))
    (doc,) = DocxLoader().load(tmp_path / "min.docx", data)
    assert doc.text == "Hello world" and doc.title == "min"


def test_not_a_word_document(tmp_path: Path) -> None:
    data = _package(_body("<w:p/>"), content_type="application/xml")
    with pytest.raises(LoaderError, match=r"^not a valid \.docx \(not a Word document"):
        DocxLoader().load(tmp_path / "x.docx", data)


def test_broken_xml_is_a_loader_error(tmp_path: Path) -> None:
    data = _package(b"<w:document><w:body><w:p>")
    with pytest.raises(LoaderError, match=r"^not a valid \.docx \(XMLSyntaxError"):
        DocxLoader().load(tmp_path / "x.docx", data)


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    )
    data = _package(laughs + _body("<w:p><w:r><w:t>x &b; y</w:t></w:r></w:p>"))
    try:
        (doc,) = DocxLoader().load(tmp_path / "x.docx", data)
    except LoaderError:
        return
    assert "aaaaaaaaaa" not in doc.text


def test_too_much_text_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docx_loader, "MAX_TEXT_CHARS", 1000)
    data = _package(_body("<w:p>" + "<w:r><w:t>abcd</w:t></w:r>" * 300 + "</w:p>"))
    with pytest.raises(LoaderError, match="more than 1,000 characters of text"):
        DocxLoader().load(tmp_path / "big.docx", data)


# --------------------------------------------------------------------------- memory

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from snaprag.errors import LoaderError
    from snaprag.ingest.loaders import load_source
    try:
        (doc,), _ = load_source(Path(sys.argv[1]), 1 << 30)
        out = {"chars": len(doc.text)}
    except LoaderError as exc:
        out = {"error": str(exc)}
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a big test
    # process would report its parent's peak
    with open("/proc/self/status") as fh:
        hwm = next(line for line in fh if line.startswith("VmHWM:"))
    out["max_rss_kb"] = int(hwm.split()[1])
    print(json.dumps(out))
    """
)


def _bomb(path: Path, xml_bytes: int, paragraphs: bool) -> Path:
    """A DOCX whose document.xml is ``xml_bytes`` of tiny runs (deflated to well under 1 MB):
    one endless paragraph, or a paragraph every 1,000 runs."""
    run = b"<w:r><w:t>ab</w:t></w:r>"
    chunk = run * 1000 + (b"</w:p><w:p>" if paragraphs else b"")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/word/document.xml" ContentType="{MAIN}"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="word/document.xml" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
            "</Relationships>",
        )
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(f'<w:document xmlns:w="{W}"><w:body><w:p>'.encode())
            block = chunk * 40
            for _ in range(xml_bytes // len(block)):
                f.write(block)
            f.write(b"</w:p></w:body></w:document>")
    return path


@pytest.mark.timeout(600)
@pytest.mark.parametrize("paragraphs", [False, True], ids=["one-paragraph", "paragraphs"])
def test_xml_bomb_loads_in_bounded_memory(tmp_path: Path, paragraphs: bool) -> None:
    """120 MB of XML took python-docx's tree some 2.5 GB; here it must fit in 2 GB of
    address space (imports included) and end with text or the documented refusal."""
    path = _bomb(tmp_path / "bomb.docx", 120 * 2**20, paragraphs)
    assert path.stat().st_size < 2**20
    limit = 2 * 2**30
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        assert "characters of text" in result["error"], result
    else:
        assert result["chars"] > 10_000_000
    assert result["max_rss_kb"] < 1024 * 1024, result  # well under the cap, in fact
