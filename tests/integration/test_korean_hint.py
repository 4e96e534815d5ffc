"""Korean text indexed with the English-only default model: ingest says which model to use."""

from __future__ import annotations

from pathlib import Path

KOREAN = "스냅데스크 S2의 보증 기간은 프레임과 모터는 7년, 전자 부품은 3년입니다.\n"
ENGLISH = "The Snapdesk S2 frame and motors are covered for seven years.\n"


def test_ingest_points_korean_users_to_the_multilingual_model(run_cli, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ko.txt").write_text(KOREAN, encoding="utf-8")
    (docs / "en.txt").write_text(ENGLISH, encoding="utf-8")
    shown = run_cli("ingest", docs, "--index", tmp_path / "idx")
    assert shown.returncode == 0, shown.stderr
    assert "English-only model 'minilm'" in shown.out_flat
    assert "--model e5-small" in shown.out_flat
    as_json = run_cli("ingest", docs / "ko.txt", "--index", tmp_path / "idx2", "--json")
    notes = as_json.json()["notes"]
    assert len(notes) == 1 and "Korean text indexed (1 chunks)" in notes[0]


def test_english_documents_get_no_note(run_cli, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "en.txt").write_text(ENGLISH, encoding="utf-8")
    result = run_cli("ingest", docs, "--index", tmp_path / "idx", "--json")
    assert result.json()["notes"] == []
