"""An index built by an older tokenizer is brought up to date when it is opened."""

from __future__ import annotations

from pathlib import Path

from snaprag import Engine
from snaprag.index.store import Store
from snaprag.index.tokenize import TOKENIZER_VERSION


def test_old_terms_are_rebuilt_once_and_search_matches(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "plan.txt").write_text("The review meeting is held on 2월 15일 every year.\n")
    index = tmp_path / "index"
    with Engine.open(index, cache=False) as engine:
        engine.ingest([docs])
        fresh = [h.id for h in engine.search("2월 회의", k=3, mode="bm25")]
    # simulate an index written by the previous tokenizer: stale terms, old version
    store = Store(index / "snaprag.db")
    with store.transaction() as conn:
        conn.execute("UPDATE chunks SET tokens = 'stale'")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'tokenizer_version'")
    version = store.version
    store.close()
    with Engine.open(index, cache=False) as engine:
        assert [h.id for h in engine.search("2월 회의", k=3, mode="bm25")] == fresh
        assert engine.stats()["version"] == version + 1
    store = Store(index / "snaprag.db")
    assert store.get_meta("tokenizer_version") == str(TOKENIZER_VERSION)
    assert "stale" not in {t for (t,) in store._conn().execute("SELECT tokens FROM chunks")}
    store.close()
    with Engine.open(index, cache=False) as engine:  # once only
        engine.search("2월 회의", k=3, mode="bm25")
        assert engine.stats()["version"] == version + 1
