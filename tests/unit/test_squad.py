"""SQuAD-format files read as retrieval collections, unmodified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snaprag.bench.squad import read_squad
from snaprag.errors import QueryError


def test_paragraphs_become_documents_and_duplicates_merge(tmp_path: Path) -> None:
    data = {
        "data": [
            {
                "title": "서울",
                "paragraphs": [
                    {
                        "context": "서울은 한국의 수도이다.",
                        "qas": [{"id": "q1", "question": "한국의 수도는?"}],
                    },
                    {
                        "context": "한강은 서울을 흐른다.",
                        "qas": [{"id": "q2", "question": "서울을 흐르는 강은?"}],
                    },
                ],
            },
            {
                "title": "수도",
                "paragraphs": [
                    {
                        "context": "서울은 한국의 수도이다.",
                        "qas": [{"id": "q3", "question": "수도는 어디?"}],
                    },
                ],
            },
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    corpus, queries, qrels = read_squad(path)
    assert len(corpus) == 2  # the repeated paragraph is one document
    assert {c["title"] for c in corpus} == {"서울"}
    assert [q for q, _ in queries] == ["q1", "q2", "q3"]
    assert qrels["q1"] == qrels["q3"]
    assert qrels["q1"] != qrels["q2"]


def test_not_squad_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    with pytest.raises(QueryError, match="SQuAD"):
        read_squad(path)
