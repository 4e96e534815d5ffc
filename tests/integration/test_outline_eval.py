"""Real generated PDFs (tables of contents, running headers, indexes, outlines or none):
sections in hits, boilerplate kept out of the top, and ``snaprag eval --outline``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pdf_manuals import NANUM, Chapter, make_manual

from snaprag.config import default_cache_dir

BIKE = [
    Chapter(
        "Assembly",
        [
            (
                "Attaching the handlebar",
                "Slide the handlebar stem into the fork steerer and tighten the two stem "
                "bolts to five newton metres, alternating between them so the gap stays even. " * 3,
            ),
            (
                "Fitting the pedals",
                "The left pedal has a reverse thread. Grease both pedal threads and turn the "
                "right pedal clockwise and the left pedal anticlockwise into the cranks. " * 3,
            ),
        ],
    ),
    Chapter(
        "Maintenance",
        [
            (
                "Cleaning the chain",
                "Wipe the chain with a dry rag every two weeks, then apply one drop of chain "
                "oil per roller and wipe off the excess after ten minutes. " * 3,
            ),
            (
                "Tyre pressure",
                "Check tyre pressure weekly. The pressure range is printed on the sidewall; "
                "heavier riders should stay near its upper end to avoid pinch flats. " * 3,
            ),
        ],
    ),
    Chapter(
        "Warranty",
        [
            (
                "Frame warranty",
                "The aluminium frame is covered against manufacturing defects for seven years "
                "from the date of purchase, provided the bicycle was registered. " * 3,
            ),
            (
                "Making a claim",
                "To make a claim, send the proof of purchase and photographs of the defect to "
                "the dealer; the dealer forwards the claim within five working days. " * 3,
            ),
        ],
    ),
]
DESK = [
    Chapter(
        "Setting up",
        [
            (
                "Connecting the control box",
                "Plug the motor cables into the ports marked M1 and M2 on the control box and "
                "clip the cable tray under the desktop before switching on. " * 3,
            ),
            (
                "Calibrating the height",
                "Hold both arrow keys for five seconds until the display flashes; the desk "
                "lowers to its lowest point and stores it as the reference. " * 3,
            ),
        ],
    ),
    Chapter(
        "Troubleshooting",
        [
            (
                "Error code E04",
                "E04 means the two legs drifted apart in height. Lower the desk fully and "
                "hold the down key for ten seconds to reset both motors. " * 3,
            ),
            (
                "The desk stops while moving",
                "Anti-collision stops the desk when it meets resistance. Remove obstacles "
                "under the desktop and lower the sensitivity in the settings menu. " * 3,
            ),
        ],
    ),
]
TERMS = ["chain", "pedal", "tyre", "claim", "frame", "motor", "desk", "reset"]


@pytest.fixture
def manuals(tmp_path: Path) -> tuple[Path, dict[tuple[str, str], int]]:
    """Two bookmarked manuals and one without an outline, in one folder."""
    folder = tmp_path / "manuals"
    folder.mkdir()
    pages: dict[tuple[str, str], int] = {}
    for name, chapters, marks in (("bike", BIKE, True), ("desk", DESK, True), ("old", DESK, False)):
        path = folder / f"{name}.pdf"
        found = make_manual(
            path, f"The {name} manual", chapters, bookmarks=marks, index_terms=TERMS
        )
        pages.update({(str(path), title): page for title, page in found.items()})
    return folder, pages


def test_hits_carry_sections_and_tables_of_contents_stay_out(run_cli, manuals, tmp_path) -> None:
    folder, pages = manuals
    index = tmp_path / "idx"
    assert run_cli("ingest", folder, "--index", index).returncode == 0
    found = run_cli("search", "Making a claim", "-k", "10", "--json", "--index", index)
    assert found.returncode == 0, found.stderr
    hits = found.json()["hits"]
    bike = str(folder / "bike.pdf")
    assert (hits[0]["source"], hits[0]["page"]) == (bike, pages[(bike, "Making a claim")])
    assert hits[0]["section"] == "Warranty > Making a claim"
    # the contents page (2) and the index page (last) list the title too, but not as
    # content: what is left of them ("Contents", "Index") only fills the list's tail
    last = max(p for (s, _), p in pages.items() if s == bike) + 1
    listings = [i for i, h in enumerate(hits) if h["source"] == bike and h["page"] in (2, last)]
    assert all(i >= 3 for i in listings)
    assert all(hits[i]["text"] in ("Contents", "Index") for i in listings)
    # a PDF without an outline gets its sections from its numbered headings
    old = run_cli(
        "search",
        "legs drifted apart E04",
        "--json",
        "--type",
        "pdf",
        "--source",
        "old.pdf",
        "--index",
        index,
    )
    assert old.json()["hits"][0]["section"] == "2 Troubleshooting > 2.1 Error code E04"


def test_eval_outline_on_an_index_and_on_a_folder(run_cli, manuals, tmp_path) -> None:
    folder, pages = manuals
    index = tmp_path / "idx"
    assert run_cli("ingest", folder, "--index", index).returncode == 0
    on_index = run_cli("eval", "--outline", index, "--json", timeout=300)
    assert on_index.returncode == 0, on_index.stderr
    summary = on_index.json_lines()[-1]
    assert list(summary) == ["queries", "default", "baseline", "modes"]
    assert set(summary["modes"]) == {"hybrid", "dense", "bm25"}
    marked = [title for (source, title) in pages if not source.endswith("old.pdf")]
    assert summary["queries"] == len(marked)
    for scores in [summary["default"], summary["baseline"], *summary["modes"].values()]:
        assert set(scores) == {"recall@10", "mrr@10"}
        assert 0.0 <= scores["mrr@10"] <= scores["recall@10"] <= 1.0
    assert summary["default"]["recall@10"] == 1.0
    # the whole-page baseline is drawn to the contents and index pages; the pipeline is not
    assert summary["default"]["mrr@10"] > summary["baseline"]["mrr@10"]

    cache = tmp_path / "cache"  # the folder form ingests into a cached index of its own
    cache.mkdir()
    (cache / "models").symlink_to(default_cache_dir() / "models", target_is_directory=True)
    on_folder = run_cli(
        "eval", "--outline", folder, "--json", env={"SNAPRAG_CACHE_DIR": str(cache)}, timeout=300
    )
    assert on_folder.returncode == 0, on_folder.stderr
    assert on_folder.json_lines()[-1] == summary
    table = run_cli("eval", "--outline", folder, env={"SNAPRAG_CACHE_DIR": str(cache)})
    assert "baseline" in table.out_flat and "page Recall@10" in table.out_flat


def test_eval_outline_without_bookmarks_says_what_it_needs(run_cli, tmp_path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    make_manual(folder / "old.pdf", "Old", DESK, bookmarks=False)
    index = tmp_path / "idx"
    assert run_cli("ingest", folder, "--index", index).returncode == 0
    result = run_cli("eval", "--outline", index)
    assert result.returncode == 2
    assert "outline" in result.err_flat and "bookmarks" in result.err_flat


@pytest.mark.skipif(not NANUM.exists(), reason="fonts-nanum is not installed")
def test_korean_manual_sections_and_boilerplate(run_cli, tmp_path) -> None:
    chapters = [
        Chapter(
            "설치",
            [
                (
                    "제어 상자 연결",
                    "모터 케이블을 제어 상자의 M1과 M2 포트에 꽂고 전원을 켭니다. " * 6,
                ),
                (
                    "높이 보정",
                    "두 화살표 키를 5초 동안 누르면 책상이 가장 낮은 위치로 내려갑니다. " * 6,
                ),
            ],
        ),
        Chapter(
            "보증",
            [
                (
                    "프레임 보증",
                    "프레임과 모터는 구입일로부터 7년 동안 제조 결함을 보증합니다. " * 6,
                ),
                ("보증 청구", "구입 증명서와 결함 사진을 판매점에 보내면 청구가 접수됩니다. " * 6),
            ],
        ),
    ]
    folder = tmp_path / "ko"
    folder.mkdir()
    pages = make_manual(
        folder / "desk-ko.pdf",
        "책상 설명서",
        chapters,
        korean=True,
        index_terms=["모터", "프레임", "보증"],
    )
    index = tmp_path / "idx"
    assert run_cli("ingest", folder, "--index", index).returncode == 0
    hits = run_cli("search", "보증 청구", "--json", "--index", index).json()["hits"]
    assert hits[0]["page"] == pages["보증 청구"]
    assert hits[0]["section"] == "보증 > 보증 청구"
