"""The pieces of `snaprag eval --answers`: reading questions, halves, matching gold text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snaprag.bench.answers import (
    Question,
    contains,
    halves,
    read_out_of_corpus,
    read_questions,
)
from snaprag.errors import QueryError


def _squad(path: Path, articles: list[list[tuple[str, list[str], bool]]]) -> Path:
    data = []
    for a, qas in enumerate(articles):
        items = [
            {"id": f"{a}-{n}", "question": q, "answers": [{"text": g} for g in golds],
             **({"is_impossible": True} if impossible else {})}
            for n, (q, golds, impossible) in enumerate(qas)
        ]  # fmt: skip
        data.append({"title": f"t{a}", "paragraphs": [{"context": "text", "qas": items}]})
    path.write_text(json.dumps({"data": data}), encoding="utf-8")
    return path


def test_questions_with_their_gold_texts_and_articles(tmp_path: Path) -> None:
    path = _squad(
        tmp_path / "s.json",
        [[("How long?", ["7 years", "seven years"], False)], [("Capital?", [], True)]],
    )
    assert read_questions(path) == [
        Question("How long?", ("7 years", "seven years"), 0),
        Question("Capital?", (), 1),  # SQuAD 2.0: no answer in the documents
    ]


@pytest.mark.parametrize("content", ["not json", '{"data": [{"paragraphs": [{"qas": [{}]}]}]}'])
def test_a_file_that_is_not_squad_says_what_is_expected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QueryError, match="SQuAD-format"):
        read_questions(path)


def test_a_file_without_questions_says_where_they_go(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no questions"):
        read_questions(_squad(tmp_path / "empty.json", [[]]))


def test_halves_are_cut_at_an_article_boundary() -> None:
    qs = [Question("q", ("a",), a) for a in (0, 0, 0, 1, 1, 2)]
    assert halves(qs) == 3
    qs = [Question("q", ("a",), a) for a in (0, 1, 1, 1, 2, 2)]
    assert halves(qs) == 4  # the middle (3) falls inside article 1


def test_gold_text_matches_across_case_and_line_breaks() -> None:
    assert contains("Frame and lifting\nmotors: 7  Years. [p.1]", "7 years")
    assert not contains("No answer found.", "7 years")


def test_out_of_corpus_questions_from_each_format(tmp_path: Path) -> None:
    (tmp_path / "beir").mkdir()
    (tmp_path / "beir" / "queries.jsonl").write_text(
        '{"_id": "1", "text": "Vitamin D lowers risk."}\n\n', encoding="utf-8"
    )
    (tmp_path / "q.txt").write_text("What is the capital of France?\n\n", encoding="utf-8")
    squad = _squad(tmp_path / "s.json", [[("Who won?", ["x"], False)]])
    assert read_out_of_corpus(tmp_path / "beir") == ["Vitamin D lowers risk."]
    assert read_out_of_corpus(tmp_path / "q.txt") == ["What is the capital of France?"]
    assert read_out_of_corpus(squad) == ["Who won?"]
    with pytest.raises(QueryError, match="one question per line"):
        read_out_of_corpus(tmp_path / "missing.txt")
