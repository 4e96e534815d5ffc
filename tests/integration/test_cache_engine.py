"""The query cache inside the engine, embedded default (L1 memory + L3 disk, no Redis).

The central property: a cached result never outlives the documents it came from --
after a change, every tier (and a restarted process) answers from the new content.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snaprag import Engine

Q = "How long is the warranty on the frame?"


def _counts(engine: Engine) -> dict[tuple[str, str], list[int]]:
    assert engine.cache is not None
    return engine.cache.stats.snapshot()


def _top_text(engine: Engine, query: str = Q) -> str:
    return engine.search(query, k=1)[0].text


@pytest.fixture
def corpus(make, tmp_path: Path) -> tuple[Path, Path]:
    docs = make.warranty_docs(tmp_path / "docs")
    index = tmp_path / "index"
    with Engine.open(index) as engine:
        engine.ingest([docs])
    return docs, index


def test_repeated_and_normalized_queries_hit_memory(corpus) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        first = engine.search(Q, k=3)
        again = engine.search("  how LONG is the warranty on the frame ", k=3)
        assert again == first
        counts = _counts(engine)
        assert counts[("memory", "retrieval")] == [1, 1]
        # a different k is another entry, but the query embedding is reused
        engine.search(Q, k=2)
        counts = _counts(engine)
        assert counts[("memory", "retrieval")] == [1, 2]
        assert counts[("memory", "embedding")][0] == 1
        assert (index / "cache.db").is_file()


@pytest.mark.parametrize("tier", ["memory", "disk"])
def test_changed_document_is_never_served_stale(make, corpus, tier: str) -> None:
    docs, index = corpus
    with Engine.open(index) as engine:
        assert "2-year" in _top_text(engine)
        assert "2-year" in _top_text(engine)  # now cached
        make.warranty_docs(docs, years=5)
        report = engine.ingest([docs])
        assert [r.status for r in report.results if r.status == "updated"] == ["updated"]
        if tier == "disk":  # the new answer must come through L3 alone
            engine.cache.tiered.memory.clear()
        assert "5-year" in _top_text(engine)
    # a restarted process reads L3 written by the previous one: new content only
    with Engine.open(index) as engine:
        assert "5-year" in _top_text(engine)
        assert _counts(engine)[("disk", "retrieval")] == [1, 0]


def test_change_made_by_another_process_is_seen(make, corpus, run_cli) -> None:
    docs, index = corpus
    with Engine.open(index) as reader:
        assert "2-year" in _top_text(reader)
        make.warranty_docs(docs, years=7)
        done = run_cli("ingest", docs, "--index", index)
        assert done.returncode == 0, done.stderr
        assert "7-year" in _top_text(reader)  # the long-lived reader sees the new version


def test_deleted_document_disappears_from_cached_results(corpus) -> None:
    docs, index = corpus
    with Engine.open(index) as engine:
        assert any("warranty.txt" in h.source for h in engine.search(Q, k=5))
        (docs / "warranty.txt").unlink()
        engine.ingest([docs], prune=True)
        assert not any("warranty.txt" in h.source for h in engine.search(Q, k=5))


def test_settings_that_change_results_are_part_of_the_key(corpus) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        engine.search(Q, k=3)
    with Engine.open(index, fusion="rrf") as engine:
        engine.search(Q, k=3)
        assert _counts(engine)[("disk", "retrieval")] == [0, 1]  # not the weighted entry
    with Engine.open(index, fusion="rrf", threads=1) as engine:
        engine.search(Q, k=3)  # threads never change a result: same entry
        assert _counts(engine)[("disk", "retrieval")] == [1, 0]


def test_filters_and_modes_are_part_of_the_key(corpus) -> None:
    from snaprag.search.retriever import Filters

    _, index = corpus
    with Engine.open(index) as engine:
        all_hits = engine.search(Q, k=5)
        only_care = engine.search(Q, k=5, filters=Filters(source="*care*"))
        assert {h.source for h in only_care} == {h.source for h in all_hits if "care" in h.source}
        bm25 = engine.search(Q, k=5, mode="bm25")
        assert _counts(engine)[("memory", "retrieval")] == [0, 3]
        assert bm25 == engine.search(Q, k=5, mode="bm25")


def test_batched_search_mixes_hits_and_misses(corpus) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        one = engine.search(Q, k=3)
        many = engine.search_many([Q, "chain cleaning", Q.upper()], k=3)
        assert many[0] == one and many[2] == one
        assert _counts(engine)[("memory", "retrieval")] == [2, 2]
        assert engine.search("chain cleaning", k=3) == many[1]


def test_cache_off_writes_no_cache_file(make, tmp_path: Path) -> None:
    docs = make.warranty_docs(tmp_path / "docs")
    with Engine.open(tmp_path / "index", cache=False) as engine:
        engine.ingest([docs])
        engine.search(Q)
        assert engine.cache is None
    assert not (tmp_path / "index" / "cache.db").exists()


def test_damaged_cache_file_does_not_break_search(corpus) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        expected = engine.search(Q, k=3)
    (index / "cache.db").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (index / f"cache.db{suffix}").unlink(missing_ok=True)
    with Engine.open(index) as engine:
        assert engine.search(Q, k=3) == expected
    assert list(index.glob("cache.db.damaged-*"))


def test_query_log_warm_and_stats_cli(corpus, run_cli) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        for _ in range(3):
            engine.search(Q, k=4)
        engine.search("chain cleaning", k=4)
        engine.cache.clear()  # the entries go, the query log stays
    warm = run_cli("cache", "warm", "--top", "1", "--index", index, "--json")
    assert warm.returncode == 0, warm.stderr
    data = warm.json()
    assert data["warmed"] == 1 and data["queries"][0]["text"] == Q
    assert data["queries"][0]["count"] == 3
    with Engine.open(index) as engine:
        engine.search(Q, k=4)
        engine.search("chain cleaning", k=4)
        assert _counts(engine)[("disk", "retrieval")] == [1, 1]  # only the warmed one
        top = engine.cache.top_queries(5)
        assert top[0]["count"] == 4  # warming itself is not counted as a query
    stats = run_cli("cache", "stats", "--index", index, "--json")
    assert stats.returncode == 0, stats.stderr
    report = stats.json()
    assert "memory" in report["tiers"] and "disk" in report["tiers"]
    rows = {(r["tier"], r["namespace"]): r for r in report["stats"]}
    assert rows[("memory", "retrieval")]["hits"] >= 2
    assert rows[("disk", "retrieval")]["hits"] >= 1
    table = run_cli("cache", "stats", "--index", index)
    assert table.returncode == 0 and "retrieval" in table.stdout
    cleared = run_cli("cache", "clear", "--index", index, "--json")
    assert cleared.returncode == 0 and cleared.json()["disk"] >= 1


def test_warm_up_precomputes_top_queries(corpus) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        engine.search(Q, k=4)
        engine.cache.clear()
    with Engine.open(index, cache_warm_top=5) as engine:
        engine.warm_up()
        engine.search(Q, k=4)
        assert _counts(engine)[("memory", "retrieval")][0] == 1


def test_semantic_cache_hits_rephrasings_but_not_other_questions(corpus) -> None:
    _, index = corpus
    with Engine.open(index, semantic_cache=True) as engine:
        first = engine.search(Q, k=3)
        assert engine.search("Tell me how long the warranty on the frame is", k=3) == first
        counts = _counts(engine)
        assert counts[("semantic", "retrieval")] == [1, 1]  # the first lookup found nothing
        for other in (
            "How long is the warranty on the wheels?",
            "How long is the warranty not on the frame?",
            "How long is the warranty on the frame after 2 years?",
        ):
            engine.search(other, k=3)
        assert _counts(engine)[("semantic", "retrieval")] == [1, 4]
        # Korean with the English-only model: exact keys only, no embedding comparison
        engine.search("프레임 보증 기간은?", k=3)
        assert _counts(engine)[("semantic", "retrieval")] == [1, 4]
    with Engine.open(index) as engine:  # off by default
        engine.search("Please tell me how long the warranty on the frame is", k=3)
        assert ("semantic", "retrieval") not in _counts(engine)


def test_concurrent_searches_during_an_ingest_never_go_back_to_old_content(make, corpus) -> None:
    """Threads share one engine (and its cache) while the document changes under them."""
    import threading

    docs, index = corpus
    queries = [Q, "chain cleaning", "tyre pressure", "warranty against defects"]
    errors: list[BaseException] = []
    changed = threading.Event()
    seen_after: list[str] = []
    with Engine.open(index) as engine:

        def worker(n: int) -> None:
            try:
                i = after_count = 0
                while after_count < 12:  # until well after the change is committed
                    q = queries[(n + i) % len(queries)]
                    after = changed.is_set()
                    top = engine.search(q, k=1)[0].text
                    if after:
                        after_count += 1
                        if q == Q:
                            seen_after.append(top)
                    i += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        make.warranty_docs(docs, years=4)
        engine.ingest([docs])
        changed.set()
        for t in threads:
            t.join()
        assert not errors
        assert seen_after and all("2-year" not in text for text in seen_after)
        assert "4-year" in engine.search(Q, k=1)[0].text


def test_damaged_values_that_still_decode_are_misses(corpus) -> None:
    """A cut vector and an answer with a malformed citation: recomputed, never a crash."""
    import json
    import sqlite3
    import struct
    import time as clock

    _, index = corpus
    with Engine.open(index) as engine:
        expected = engine.search(Q, k=3)
        first = engine.ask(Q)
    db = sqlite3.connect(index / "cache.db")
    header = struct.pack("<d", clock.time() + 3600)
    for key, value in db.execute("SELECT key, value FROM entries").fetchall():
        if key.startswith("e:"):  # a float32 vector one value short
            db.execute("UPDATE entries SET value = ? WHERE key = ?", (bytes(value)[:-4], key))
        elif key.startswith("a:"):
            bad = {"text": "stale", "citations": [[1, "x"]], "hits": []}
            data = header + b"j" + json.dumps(bad).encode()
            db.execute("UPDATE entries SET value = ? WHERE key = ?", (data, key))
        elif key.startswith("r:"):
            db.execute("DELETE FROM entries WHERE key = ?", (key,))  # force an embedding
    db.commit()
    db.close()
    with Engine.open(index) as engine:
        assert engine.search(Q, k=3) == expected
        answer = engine.ask(Q)
        assert answer.text == first.text and answer.text != "stale"
