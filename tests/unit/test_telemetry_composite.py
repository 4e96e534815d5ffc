"""CompositeTelemetry: every member gets every event, and a failing member costs nothing
but its own copy of the event."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from snaprag import Config, Engine
from snaprag.observe import CompositeTelemetry, NullTelemetry, RecordingTelemetry, Telemetry
from snaprag.testing import EchoGenerator, HashEmbedder
from snaprag.types import StageTimings


class Broken:
    """Raises on every event, as an exporter with a bug or a dead backend might."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        self.calls += 1
        raise RuntimeError("exporter down")

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        self.calls += 1
        raise RuntimeError("exporter down")

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        self.calls += 1
        metrics.clear()  # a member that changes what it was given
        raise RuntimeError("exporter down")

    def error(self, operation: str, error: BaseException) -> None:
        self.calls += 1
        raise RuntimeError("exporter down")

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("cannot close")


def test_fans_out_to_every_member_in_order() -> None:
    a, b = RecordingTelemetry(), RecordingTelemetry()
    both = CompositeTelemetry([a, b])
    assert isinstance(both, Telemetry)
    timings = StageTimings({"embed": 1.5})
    both.stage_timings("search", timings, 3)
    both.cache_event("retrieval", "memory", 1, 2)
    both.generator_metrics("echo", {"ttft_ms": 2.0})
    error = ValueError("bad")
    both.error("ask", error)
    for member in (a, b):
        assert member.timings == [("search", {"embed": 1.5}, None, 3)]
        assert member.cache == [("retrieval", "memory", 1, 2)]
        assert member.generators == [("echo", {"ttft_ms": 2.0})]
        assert member.errors == [("ask", error)]


def test_a_failing_member_never_raises_and_the_others_still_get_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, after = Broken(), RecordingTelemetry()
    both = CompositeTelemetry([broken, after])
    with caplog.at_level(logging.DEBUG, logger="snaprag.observe.telemetry"):
        for _ in range(3):
            both.stage_timings("search", StageTimings({"embed": 1.0}))
            both.cache_event("answer", "disk", 0, 1)
            both.generator_metrics("echo", {"completion_tokens": 5.0})
            both.error("search", RuntimeError("x"))
        both.close()
    assert broken.calls == 12 and broken.closed
    assert len(after.timings) == len(after.cache) == len(after.errors) == 3
    # each member gets its own copy: the broken one emptied its dict, not the next one's
    assert after.generators == [("echo", {"completion_tokens": 5.0})] * 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # once per member and event, then quietly: a dead exporter must not flood the log
    assert len(warnings) == 5
    assert "Broken failed in stage_timings" in warnings[0].getMessage()


def test_nesting_flattens_and_null_parts_are_dropped() -> None:
    a, b, c = RecordingTelemetry(), RecordingTelemetry(), RecordingTelemetry()
    nested = CompositeTelemetry([a, CompositeTelemetry([b, NullTelemetry()]), None, c])
    assert list(nested) == [a, b, c] and len(nested) == 3
    empty = CompositeTelemetry()
    empty.stage_timings("search", StageTimings())  # no members: nothing to do, no error
    empty.close()


def test_an_engine_reports_through_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.md").write_text("# Warranty\n\nThe frame has a ten year warranty.\n")
    seen = RecordingTelemetry()
    telemetry = CompositeTelemetry([Broken(), seen])
    engine = Engine(
        Config(index_dir=tmp_path / "index"),
        embedder=HashEmbedder(),
        generator=EchoGenerator(),
        telemetry=telemetry,
    )
    try:
        engine.ingest([docs])
        assert engine.search("warranty frame", k=2)
        assert "warranty" in engine.ask("How long is the warranty?").text.lower()
    finally:
        engine.close()
    assert seen.operations() == ["search", "ask"]
    assert seen.generators and seen.generators[0][0] == "echo"
    assert {(ns, tier) for ns, tier, _, _ in seen.cache} >= {("retrieval", "memory")}
