"""Build the binary sample documents (PDF, DOCX) from the text in this script.

Usage::

    python samples/make_samples.py [--out DIR] [--font PATH_TO_HANGUL_TTF]

Writes ``warranty-and-service.pdf`` (3 pages, English), ``as-service-ko.pdf`` (2 pages,
Korean) and ``office-rollout-plan.docx`` next to this script unless ``--out`` says
otherwise. The output is byte-for-byte reproducible: dates are fixed, so re-running the
script does not change the committed files.

The Korean PDF needs a TrueType font with Hangul, by default NanumGothic
(Debian/Ubuntu: ``apt-get install fonts-nanum``). fpdf2 embeds only the glyphs used,
so the file stays small. Without the font the other files are still built and the script
exits with status 1 and says what to install.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import docx
from fpdf import FPDF

HERE = Path(__file__).resolve().parent
# fontTools reports every TrueType table it drops while subsetting; none matter here.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
FIXED_DATE = datetime(2024, 3, 15, 9, 0, 0, tzinfo=UTC)
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),
    Path("/usr/share/fonts/nanum/NanumGothic.ttf"),
    Path("/usr/local/share/fonts/NanumGothic.ttf"),
    Path("/Library/Fonts/NanumGothic.ttf"),
    Path.home() / "Library/Fonts/NanumGothic.ttf",
)

# Each page: (heading, paragraphs). Core PDF fonts are Latin-1 only: keep this text ASCII.
WARRANTY_PAGES: list[tuple[str, list[str]]] = [
    (
        "1. Warranty coverage",
        [
            "Snapdesk Inc. warrants the Snapdesk S2 against defects in materials and "
            "workmanship for the following periods, counted from the date of delivery:",
            "- Frame and lifting motors: 7 years.",
            "- Electronics (control box, handset, power supply): 3 years.",
            "- Desktop surface, including edges and laminate: 2 years.",
            "The warranty covers the original purchaser and is not transferable when the "
            "desk is sold. Keep your order confirmation as proof of the delivery date.",
            "During the warranty period we repair or replace the defective part free of "
            "charge, including shipping of the part to you.",
        ],
    ),
    (
        "2. How to make a warranty claim",
        [
            "1. Find the serial number on the label of the control box under the desktop. "
            "It has 9 characters and starts with SD2, for example SD2481730.",
            "2. Take a short video or photos that show the problem. For error codes, film "
            "the handset display while you press a button.",
            "3. Send the serial number, your order number and the video to "
            "support@snapdesk.example, or open a claim in the Snapdesk app under "
            "Settings > Support.",
            "We answer every claim within 2 business days. Replacement parts usually ship "
            "within 5 business days and most parts can be fitted in 15 minutes with the "
            "4 mm hex key from the box. In the USA, a technician visit can be booked for "
            "frame or motor replacements at no cost while the warranty is valid.",
        ],
    ),
    (
        "3. Exclusions and out-of-warranty repairs",
        [
            "The warranty does not cover:",
            "- damage from loads above the rated 120 kg;",
            "- parts that were modified, drilled or taken apart by the user;",
            "- liquid damage to the electronics;",
            "- commercial use with more than 12 hours of desk movement per day.",
            "Out-of-warranty repairs cost a flat service fee of USD 89 plus parts. "
            "Spare parts stay available for at least 7 years after a model is "
            "discontinued.",
            "Phone support: +1 555 0142, Monday to Friday, 9:00 to 17:00 Eastern Time.",
        ],
    ),
]

KO_SERVICE_PAGES: list[tuple[str, list[str]]] = [
    (
        "1. A/S 접수 방법",
        [
            "스냅데스크 A/S는 고객센터 전화(1600-1234), 이메일(support@snapdesk.example), "
            "스냅데스크 앱의 [설정 > 고객지원] 메뉴 가운데 편한 방법으로 접수할 수 있습니다.",
            "접수할 때는 다음 내용을 준비해 주세요.",
            "- 컨트롤 박스 라벨에 적힌 시리얼 번호 (SD2로 시작하는 9자리)",
            "- 증상을 보여 주는 사진이나 짧은 동영상 "
            "(오류 코드가 보이면 화면이 나오게 찍어 주세요)",
            "- 주문 번호 또는 제품을 받은 날짜",
            "접수가 끝나면 1영업일 안에 담당 기사가 전화로 방문 일정을 잡아 드립니다.",
        ],
    ),
    (
        "2. 출장 수리 비용과 처리 기간",
        [
            "보증 기간 안에 생긴 고장은 출장비와 부품비 모두 무료입니다.",
            "보증 기간이 지난 경우 출장비는 서울, 경기, 인천 지역 3만 원, 그 밖의 지역 5만 원이며 "
            "부품비는 따로 받습니다.",
            "수리는 접수한 날부터 평균 5영업일 안에 끝납니다. 부품을 해외에서 들여와야 할 때는 "
            "최대 15영업일이 걸릴 수 있으며, 이 경우 미리 알려 드립니다.",
            "교체용 부품은 제품 단종 후에도 7년 동안 보관합니다.",
        ],
    ),
]

ROLLOUT_TITLE = "Snapdesk Office Rollout Plan - Acme Analytics"
ROLLOUT_SCHEDULE = [
    ("Floor", "Desks", "Install date", "Installer team"),
    ("3", "16", "4 November 2024", "Team A"),
    ("4", "20", "6 November 2024", "Team A and Team B"),
    ("5", "12", "8 November 2024", "Team B"),
]


def build_warranty_pdf(out: Path) -> Path:
    pdf = _new_pdf("Snapdesk Warranty and Service Guide")
    for number, (heading, paragraphs) in enumerate(WARRANTY_PAGES, start=1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 16)
        pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font("helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        footer = f"Snapdesk Warranty and Service Guide - page {number} of {len(WARRANTY_PAGES)}"
        _footer(pdf, footer, "helvetica")
    path = out / "warranty-and-service.pdf"
    path.write_bytes(bytes(pdf.output()))
    return path


def build_korean_pdf(out: Path, font: Path) -> Path:
    pdf = _new_pdf("스냅데스크 A/S 서비스 안내")
    pdf.add_font("NanumGothic", fname=str(font))
    for number, (heading, paragraphs) in enumerate(KO_SERVICE_PAGES, start=1):
        pdf.add_page()
        pdf.set_font("NanumGothic", size=16)
        pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font("NanumGothic", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 7, paragraph, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        footer = f"스냅데스크 A/S 서비스 안내 - {number}/{len(KO_SERVICE_PAGES)}쪽"
        _footer(pdf, footer, "NanumGothic")
    path = out / "as-service-ko.pdf"
    path.write_bytes(bytes(pdf.output()))
    return path


def build_rollout_docx(out: Path) -> Path:
    document = docx.Document()
    props = document.core_properties
    props.title = ROLLOUT_TITLE
    props.author = "Acme Analytics Facilities"
    props.created = props.modified = props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    document.add_heading(ROLLOUT_TITLE, level=0)
    document.add_heading("Scope", level=1)
    document.add_paragraph(
        "Acme Analytics replaces 48 fixed desks with Snapdesk S2 sit-stand desks "
        "(140 x 70 cm, white frame, oak desktop) on floors 3 to 5 of the Riverside office. "
        "The old desks are collected for recycling by GreenCycle on 15 November 2024."
    )
    document.add_heading("Schedule", level=1)
    table = document.add_table(rows=0, cols=len(ROLLOUT_SCHEDULE[0]))
    table.style = "Table Grid"
    for row in ROLLOUT_SCHEDULE:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.add_heading("Before installation day", level=1)
    for item in (
        "Clear your desk completely by 5 pm on the day before your floor's install date.",
        "Label personal monitors and docks with your name; IT moves them back on the day.",
        "Every desk needs a free power socket within 1.5 m; Facilities checks this by 1 November.",
    ):
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("Contacts", level=1)
    document.add_paragraph(
        "Facilities lead: Mina Park, extension 4417. Snapdesk project manager: "
        "Daniel Ortiz, daniel.ortiz@snapdesk.example. Report problems after installation "
        "through the Facilities desk, not directly to Snapdesk, during the first 30 days."
    )
    buffer = io.BytesIO()
    document.save(buffer)
    path = out / "office-rollout-plan.docx"
    path.write_bytes(_fixed_zip_dates(buffer.getvalue()))
    return path


def find_hangul_font(explicit: Path | None) -> Path | None:
    """The Hangul TTF to embed: ``--font`` if given, else the first NanumGothic found."""
    if explicit is not None:
        return explicit if explicit.is_file() else None
    return next((p for p in FONT_CANDIDATES if p.is_file()), None)


def _new_pdf(title: str) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("Snapdesk Inc.")
    pdf.set_creator("samples/make_samples.py")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 20, 20)
    return pdf


def _footer(pdf: FPDF, text: str, family: str) -> None:
    # inside the bottom margin: without this the footer would trigger a page break
    pdf.set_auto_page_break(auto=False)
    pdf.set_y(-18)
    pdf.set_font(family, size=8)
    pdf.cell(0, 8, text, align="C")
    pdf.set_auto_page_break(auto=True, margin=20)


def _fixed_zip_dates(data: bytes) -> bytes:
    """Rewrite a zip with fixed entry dates so the .docx is reproducible."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    parser.add_argument("--font", type=Path, default=None, help="TTF with Hangul glyphs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    written = [build_warranty_pdf(args.out), build_rollout_docx(args.out)]
    font = find_hangul_font(args.font)
    if font is not None:
        written.append(build_korean_pdf(args.out, font))
    for path in written:
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    if font is None:
        where = args.font or ", ".join(str(p) for p in FONT_CANDIDATES)
        print(
            f"error: no Hangul font found (looked for {where}); as-service-ko.pdf was NOT "
            "built. Install one (Debian/Ubuntu: apt-get install fonts-nanum) or pass "
            "--font PATH_TO_TTF.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
