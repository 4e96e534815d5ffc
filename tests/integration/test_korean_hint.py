"""The model of a new index, with the real models and the real CLI: Korean or mixed folders
get the multilingual model and say so; English ones keep the English model; a named model
wins, and Korean text indexed with the English-only model gets a note naming the other."""

from __future__ import annotations

from pathlib import Path

KOREAN = (
    "스냅데스크 S2의 보증 기간은 프레임과 모터는 7년, 전자 부품은 3년입니다.\n"
    "보증 수리를 받으려면 구입 영수증과 제품 번호가 필요합니다.\n"
)
ENGLISH = (
    "The Snapdesk S2 frame and motors are covered for seven years.\n"
    "To raise the desk, hold the up button on the control box.\n"
)


def folder(tmp_path: Path, **files: str) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def test_mixed_folder_gets_the_multilingual_model(run_cli, tmp_path: Path) -> None:
    docs = folder(tmp_path, **{"ko.txt": KOREAN, "en.txt": ENGLISH})
    shown = run_cli("ingest", docs, "--index", tmp_path / "idx", timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "multilingual model 'e5-small'" in shown.out_flat
    assert run_cli("stats", "--index", tmp_path / "idx", "--json").json()["model"] == "e5-small"
    # dense vectors that read Korean: a Korean paraphrase finds the Korean file by meaning
    found = run_cli(
        "search", "제품을 고치려면 무엇을 가져가야 하나요?", "--index", tmp_path / "idx",
        "--mode", "dense", "-k", "1", "--json",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert found.json()["hits"][0]["source"].endswith("ko.txt")
    # the index remembers its model: the next ingest chooses nothing and says nothing
    (docs / "en2.txt").write_text(ENGLISH.replace("seven", "eight"), encoding="utf-8")
    again = run_cli("ingest", docs, "--index", tmp_path / "idx", "--json").json()
    assert again["added"] == 1 and again["notes"] == [] and again["model"] == "e5-small"


def test_english_folder_keeps_the_english_model(run_cli, tmp_path: Path) -> None:
    docs = folder(tmp_path, **{"en.txt": ENGLISH})
    result = run_cli("ingest", docs, "--index", tmp_path / "idx", "--json")
    assert result.returncode == 0, result.stderr
    assert result.json()["notes"] == [] and result.json()["model"] == "minilm"
    assert run_cli("stats", "--index", tmp_path / "idx", "--json").json()["model"] == "minilm"


def test_named_english_model_on_korean_text_gets_the_hint(run_cli, tmp_path: Path) -> None:
    docs = folder(tmp_path, **{"ko.txt": KOREAN})
    result = run_cli("ingest", docs, "--index", tmp_path / "idx", "--model", "minilm", "--json")
    assert result.returncode == 0, result.stderr
    notes = result.json()["notes"]
    assert len(notes) == 1 and "Korean text indexed (1 chunks)" in notes[0]
    assert "English-only model 'minilm'" in notes[0] and "--model e5-small" in notes[0]
