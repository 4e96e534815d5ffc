"""Rolling windows, history on disk, alert hysteresis, recommendations and metric labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from snaprag.observe.advice import recommend
from snaprag.observe.alerts import Alerts, Rule, parse_routes
from snaprag.observe.history import History
from snaprag.observe.prometheus import PrometheusTelemetry
from snaprag.observe.windows import Windows, summarize
from snaprag.types import StageTimings

T0 = 1_800_000_000.0  # a fixed clock: minute-aligned


def test_percentiles_are_within_a_bucket_of_the_truth() -> None:
    w = Windows(now=T0)
    for i in range(1, 1001):
        w.observe("route:search", float(i), now=T0 + 1)
    s = w.summary("1m", now=T0 + 5)["series"]["route:search"]
    assert s["count"] == 1000 and s["mean_ms"] == pytest.approx(500.5)
    assert s["p50_ms"] == pytest.approx(500, rel=0.06)
    assert s["p95_ms"] == pytest.approx(950, rel=0.06)
    assert s["p99_ms"] == pytest.approx(990, rel=0.06)


def test_windows_see_only_their_time_span() -> None:
    w = Windows(now=T0)
    w.observe("route:search", 10.0, now=T0)
    w.observe("route:search", 20.0, now=T0 + 300)
    w.observe("route:search", 30.0, now=T0 + 1000)
    now = T0 + 1010
    assert w.summary("1m", now=now)["series"]["route:search"]["count"] == 1
    assert w.summary("15m", now=now)["series"]["route:search"]["count"] == 2
    assert w.summary("24h", now=now)["series"]["route:search"]["count"] == 3
    later = T0 + 90_000  # over a day later: everything has aged out
    assert "route:search" not in w.summary("24h", now=later)["series"]


def test_history_keeps_minutes_across_processes_and_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Windows(now=T0)
    for ms in (1.0, 2.0, 3.0):
        first.observe("route:search", ms, now=T0 + 10)
    first.count("cache:retrieval:requests", 3, now=T0 + 10)
    first.slow("search", 3.0, "slow query", now=T0 + 10)
    second = Windows(now=T0)
    second.observe("route:search", 100.0, now=T0 + 20)
    second.observe("route:ask", 500.0, now=T0 + 70)  # the next minute, still running
    history = History(tmp_path)
    history.write(first.take_unsaved(now=T0 + 61))
    monkeypatch.setattr("os.getpid", lambda: 99999)  # another server process
    unsaved = second.take_unsaved(now=T0 + 75)
    assert [m for m, _ in unsaved] == [T0]  # only the completed minute
    history.write(unsaved)
    history.write(second.take_unsaved(now=T0 + 80, final=True))  # stopping: the rest
    slot, seconds, rows = History(tmp_path).read(T0 - 60, T0 + 600)
    summary = summarize(slot, seconds)
    assert summary["series"]["route:search"]["count"] == 4 and rows == 3
    assert summary["series"]["route:ask"]["count"] == 1
    assert summary["counters"]["cache:retrieval:requests"] == 3
    assert summary["slowest"][0]["query"] == "slow query"
    assert seconds == 120.0


def _rule(threshold: float = 100.0, above: bool = True) -> Rule:
    return Rule("p95_latency:search", lambda s: s["v"], threshold, above, "ms")


def test_alerts_fire_and_clear_with_hysteresis() -> None:
    alerts = Alerts([_rule()], needed=3)
    seen = [alerts.evaluate({"v": v}, now=i) for i, v in enumerate([150, 150, 90, 150, 150])]
    assert not any(seen)  # interrupted streak: no alert
    fired = alerts.evaluate({"v": 150}, now=10)
    assert [e["state"] for e in fired] == ["firing"] and alerts.active
    # hovering just under the threshold does not clear it (margin: 10 %)
    for i in range(10):
        assert alerts.evaluate({"v": 95}, now=11 + i) == []
    cleared = [alerts.evaluate({"v": 80}, now=30 + i) for i in range(3)]
    assert [e["state"] for e in cleared[-1]] == ["resolved"] and not alerts.active
    assert [e["state"] for e in alerts.report()["history"]] == ["resolved", "firing"]


def test_alerts_below_a_threshold_and_without_data() -> None:
    alerts = Alerts([_rule(0.5, above=False)], needed=1)
    assert alerts.evaluate({"v": None}) == []  # no data says nothing
    assert alerts.evaluate({"v": 0.2})[0]["state"] == "firing"
    assert alerts.evaluate({"v": 0.52}) == []  # inside the margin
    assert alerts.evaluate({"v": 0.6})[0]["state"] == "resolved"


def test_route_thresholds_parse() -> None:
    assert parse_routes("300") == {"*": 300.0}
    assert parse_routes("search=50, ask=3000") == {"search": 50.0, "ask": 3000.0}
    with pytest.raises(Exception, match="ROUTE=MS"):
        parse_routes("search=fast")


def _summary(**counters: float) -> dict:
    w = Windows(now=T0)
    for _ in range(100):
        w.observe("route:search", 5.0, now=T0 + 1)
        w.observe("stage:search.embed", 4.0, now=T0 + 1)
        w.observe("stage:search.bm25", 0.5, now=T0 + 1)
    for name, value in counters.items():
        w.count(name.replace("__", ":"), value, now=T0 + 1)
    return w.summary("1m", now=T0 + 2)


def test_recommendations_cite_their_numbers() -> None:
    advice = {r["rule"]: r for r in recommend(_summary())}
    because = advice["embed_dominates"]["because"]
    assert because == "embed is 89% of search stage time over 100 searches"
    low = _summary(
        cache__retrieval__requests=100, cache__retrieval__memory__hit=10, queries__repeated=60
    )
    rule = {r["rule"]: r for r in recommend(low)}["cache_hit_rate"]
    assert "hit rate 10% of 100 look-ups" in rule["because"] and "60%" in rule["because"]
    refused = {r["rule"] for r in recommend(_summary(rejected__search=5))}
    assert "rejections" in refused


def test_no_advice_without_enough_data() -> None:
    w = Windows(now=T0)
    w.observe("stage:search.embed", 40.0, now=T0 + 1)
    assert recommend(w.summary("1m", now=T0 + 2)) == []


def test_metric_labels_stay_bounded() -> None:
    from prometheus_client import generate_latest

    t = PrometheusTelemetry()
    timings = StageTimings({"embed": 2.0, "tenant-chosen-stage": 1.0})
    t.stage_timings("search", timings)
    t.cache_event("retrieval", "memory", 3, 1)
    t.cache_event("tenant namespace", "tier x", 1, 0)
    t.generator_metrics("gguf:/home/me/secret-model.gguf", {"ttft_ms": 50, "prompt_tokens": 9})
    t.error("search", ValueError("boom"))
    text = generate_latest(t.registry).decode()
    assert 'stage="other"' in text and "tenant" not in text and "secret" not in text
    assert (
        'snaprag_cache_requests_total{namespace="retrieval",result="hit",tier="memory"} 3.0' in text
    )
    assert 'snaprag_llm_prompt_tokens_total{generator="gguf"} 9.0' in text
    assert 'snaprag_errors_total{code="other",operation="search"} 1.0' in text


def test_a_firing_alert_clears_when_its_data_stops() -> None:
    alerts = Alerts([_rule()], needed=2)
    alerts.evaluate({"v": 150}, now=1)
    assert alerts.evaluate({"v": 150}, now=2)[0]["state"] == "firing"
    assert alerts.evaluate({"v": None}, now=3) == []
    cleared = alerts.evaluate({"v": None}, now=4)
    assert cleared[0]["state"] == "resolved" and cleared[0]["value"] is None
    assert "no data" in cleared[0]["message"] and not alerts.active
    # a gap without data breaks a streak: two readings around it are not "in a row"
    alerts.evaluate({"v": 150}, now=5)
    alerts.evaluate({"v": None}, now=6)
    assert alerts.evaluate({"v": 150}, now=7) == []


def test_alert_settings_that_cannot_work_are_refused() -> None:
    from snaprag.config import Config
    from snaprag.errors import ConfigError

    for bad in ({"alert_p95_ms": "serch=50"}, {"alert_p95_ms": "ask=abc=3"},
                {"alert_error_rate": 5}, {"alert_cache_hit_rate": 3}):  # fmt: skip
        with pytest.raises(ConfigError):
            Config(**bad)


def test_a_batchs_stages_count_once_per_query() -> None:
    from snaprag.observe.telemetry import WindowTelemetry

    w = Windows(now=T0)
    WindowTelemetry(w).stage_timings("search", StageTimings({"embed": 8.0}), n=4)
    row = w.summary("1m")["series"]["stage:search.embed"]
    assert row["count"] == 4 and row["mean_ms"] == 8.0  # each query waited the whole stage
