"""Answers through the cache: replayed as the same events, never stale, keyed by generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from snaprag import Engine

Q = "How long is the warranty on the frame?"


@pytest.fixture
def corpus(make, tmp_path: Path) -> tuple[Path, Path]:
    docs = make.warranty_docs(tmp_path / "docs", 2)
    index = tmp_path / "index"
    with Engine.open(index) as engine:
        engine.ingest([docs])
    return docs, index


def test_second_ask_is_served_from_cache_as_the_same_events(corpus) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        first = engine.ask(Q)
        assert "2-year" in first.text and "cached" not in first.metrics
        events = list(engine.ask_events("how long is the warranty on the FRAME"))
        assert [e.kind for e in events] == ["hits", "token", "done"]
        again = events[-1].answer
        assert again is not None and again.metrics["cached"] == 1.0
        assert again.text == first.text
        assert [c.label for c in again.citations] == [c.label for c in first.citations]
        assert [h.id for h in again.hits] == [h.id for h in first.hits]
        assert "cache" in again.timings.stages
        counts = engine.cache.stats.snapshot()
        assert counts[("memory", "answer")] == [1, 1]


def test_changed_document_gives_the_new_answer_in_every_tier(make, corpus) -> None:
    docs, index = corpus
    with Engine.open(index) as engine:
        assert "2-year" in engine.ask(Q).text
        assert "2-year" in engine.ask(Q).text
        make.warranty_docs(docs, 6)
        engine.ingest([docs])
        assert "6-year" in engine.ask(Q).text
    with Engine.open(index) as engine:  # restarted: L3 only, new answer
        answer = engine.ask(Q)
        assert "6-year" in answer.text and answer.metrics.get("cached") == 1.0


def test_generator_is_part_of_the_answer_key(corpus) -> None:
    _, index = corpus
    keys = set()
    # the bundled GGUF's fingerprint is its file identity and settings: no model load
    for settings in ({}, {"llm": "smollm2"}, {"llm": "smollm2", "llm_max_tokens": 64}):
        with Engine.open(index, **settings) as engine:
            keys.add(engine.answerer.answer_key(Q, 5, None))
            assert engine.answerer.answer_key(Q, 4, None) not in keys
    assert len(keys) == 3


def test_failed_answers_are_not_cached(corpus) -> None:
    """A server that is down: an error event each time, never a cached one."""
    _, index = corpus
    settings = {"llm": "openai:http://127.0.0.1:9/v1", "llm_model": "m", "llm_retries": 0}
    with Engine.open(index, llm_timeout=2, **settings) as engine:
        # the key needs no server (configured model): the lookup runs and misses, then the
        # generation fails; nothing is stored, so the next ask tries the server again
        events = list(engine.ask_events(Q))
        assert events[-1].kind == "error" and events[-1].code == "connection_refused"
        events = list(engine.ask_events(Q))
        assert events[-1].kind == "error"  # not replayed from a cache
        assert engine.cache.stats.snapshot()[("memory", "answer")] == [0, 2]
        assert engine.cache.stats.snapshot()[("disk", "answer")] == [0, 2]


def test_logged_questions_are_warmed(corpus, run_cli) -> None:
    _, index = corpus
    with Engine.open(index) as engine:
        engine.ask(Q)
        engine.ask(Q)
        engine.cache.clear()
    warm = run_cli("cache", "warm", "--index", index, "--json")
    assert warm.returncode == 0, warm.stderr
    assert [q["kind"] for q in warm.json()["queries"]] == ["ask"]
    with Engine.open(index) as engine:
        assert engine.ask(Q).metrics.get("cached") == 1.0


def test_semantic_cache_serves_rephrased_questions_across_processes(corpus, run_cli) -> None:
    """A new CLI process finds the semantic entries an earlier one wrote to cache.db."""
    _, index = corpus
    env = {"SNAPRAG_SEMANTIC_CACHE": "1"}
    first = run_cli("ask", Q, "--index", index, "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert "cached" not in first.json()["metrics"]
    rephrased = run_cli(
        "ask", "Is it true that the warranty on the frame is how long?", "--index", index,
        "--json", env=env,
    )  # fmt: skip
    negated = run_cli(
        "search", "How long is the warranty not on the frame?", "--index", index, "--json",
        env=env,
    )  # fmt: skip
    assert negated.returncode == 0
    assert rephrased.returncode == 0, rephrased.stderr
    # word order differs from Q ("warranty ... how long"): a guarded miss, generated anew
    assert "cached" not in rephrased.json()["metrics"]
    framed = run_cli("ask", "Please tell me how long is the warranty on the frame", "--index",
                     index, "--json", env=env)  # fmt: skip
    assert framed.returncode == 0, framed.stderr
    assert framed.json()["metrics"].get("cached") == 1.0
    assert framed.json()["answer"] == first.json()["answer"]
    with Engine.open(index) as engine:
        report = engine.cache.report()
        rows = {(r["tier"], r["namespace"]): r for r in report["stats"]}
        assert rows[("semantic", "answer")]["hits"] == 1
