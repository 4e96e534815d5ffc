"""The Prometheus and Grafana files in deploy/: valid for the tools that read them, and
written against the metric names snaprag exports (a renamed metric fails here, not on an
operator's dashboard).

promtool (Debian package ``prometheus``) checks the scrape config, the alert rules and
their unit tests (deploy/prometheus/alerts_test.yml), and parses every dashboard query.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "snaprag.json"

#: every metric snaprag serve exports at /metrics, by type (the contract of these files)
METRICS: dict[str, str] = {
    "snaprag_http_requests_total": "counter",
    "snaprag_http_request_duration_seconds": "histogram",
    "snaprag_http_requests_in_flight": "gauge",
    "snaprag_http_errors_total": "counter",
    "snaprag_stage_duration_seconds": "histogram",
    "snaprag_cache_requests_total": "counter",
    "snaprag_queue_depth": "gauge",
    "snaprag_queue_running": "gauge",
    "snaprag_queue_wait_seconds": "histogram",
    "snaprag_queue_rejections_total": "counter",
    "snaprag_batch_size": "histogram",
    "snaprag_llm_time_to_first_token_seconds": "histogram",
    "snaprag_llm_tokens_per_second": "histogram",
    "snaprag_llm_prompt_tokens_total": "counter",
    "snaprag_llm_completion_tokens_total": "counter",
    "snaprag_errors_total": "counter",
    "snaprag_index_chunks": "gauge",
    "snaprag_index_documents": "gauge",
    "snaprag_index_bytes": "gauge",
    "snaprag_index_version": "gauge",
    "snaprag_build_info": "gauge",
    # prometheus_client's process collector
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
}
#: series Prometheus itself adds to every target
SCRAPE_SERIES = {"up"}
#: words of PromQL that are neither functions nor metrics
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
#: Grafana's variables, replaced by values that make a query plain PromQL
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$instance": ".*",
    "$route": ".*",
    "$operation": ".*",
}


def series_names() -> set[str]:
    """The names a query may select: histograms expose _bucket, _sum and _count."""
    names = set(SCRAPE_SERIES)
    for name, kind in METRICS.items():
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings may hold any word
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges such as [5m] or [$__rate_interval]
    # label lists of grouping and matching clauses
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = match.group(0)
        before = expr[match.start() - 1] if match.start() else ""
        if before.isdigit() or before == ".":  # a unit or exponent: 4e9, 1.5e3
            continue
        if re.match(r"\s*\(", expr[match.end() :]):  # a function or an aggregation
            continue
        if word.lower() not in _KEYWORDS:
            found.add(word)
    return found


def test_the_metric_list_is_what_the_server_exports(tmp_path: Path) -> None:
    """METRICS, against the server's own registry and its scrape-time collector: a metric
    renamed or retyped there fails here, and then the files below are checked against it."""
    metrics = pytest.importorskip("snaprag.serve.metrics", reason="the server extra is missing")
    from snaprag.config import Config

    observer = metrics.Observer(Config(index_dir=tmp_path / "index"), None)
    # the gauges read from the server's state at each scrape: lanes, ingest jobs, collections
    state = SimpleNamespace(
        lanes={"search": SimpleNamespace(depth=0, running=0)},
        jobs=SimpleNamespace(pending=lambda: 0),
        collections=SimpleNamespace(engines={}),
    )
    families = [*observer.registry.collect(), *metrics.StateCollector(state).collect()]
    for collector in observer.collectors:  # process metrics, read at scrape time
        families.extend(collector.collect())
    observer.close()
    exported = {}
    for family in families:
        # prometheus_client names a counter's family without the _total of its samples
        name = family.name + ("_total" if family.type == "counter" else "")
        exported[name] = family.type
    wrong = {name: (kind, exported.get(name)) for name, kind in METRICS.items()}
    wrong = {name: kinds for name, kinds in wrong.items() if kinds[0] != kinds[1]}
    assert not wrong, f"(listed, exported) types differ or the metric is gone: {wrong}"


def test_metric_names_of_an_expression() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(snaprag_x_bucket{route=~"a|b"}'
        "[$__rate_interval]))) > 0.5 and on (job) up unless ignoring (le) snaprag_y"
    )
    assert metric_names(expr) == {"snaprag_x_bucket", "up", "snaprag_y"}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for panel in dash["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in dashboard_panels(dash)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def variable_queries(dash: dict[str, Any]) -> list[str]:
    """The queries of the dashboard's query variables (``label_values(metric, label)``)."""
    out = []
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            out.append(query["query"] if isinstance(query, dict) else query)
    return out


def to_promql(expr: str) -> str:
    for name, value in sorted(_GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


# --------------------------------------------------------------------------- Grafana


def test_dashboard_has_panels_with_queries() -> None:
    dash = dashboard()
    assert dash["title"] and dash["uid"]
    queries = dashboard_queries(dash)
    assert len(queries) >= 20
    for panel in dashboard_panels(dash):
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel.get('title')!r} has no query"
            # the Prometheus data source is a variable, so the file imports anywhere
            assert panel["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dashboard_panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_queries_use_only_exported_metrics() -> None:
    dash = dashboard()
    known = series_names()
    used: set[str] = set()
    for title, expr in dashboard_queries(dash):
        names = metric_names(to_promql(expr))
        assert names, f"panel {title!r}: no metric in {expr!r}"
        unknown = names - known
        assert not unknown, f"panel {title!r} queries metrics snaprag does not export: {unknown}"
        used |= names
    for query in variable_queries(dash):
        match = re.fullmatch(r"label_values\(\s*([a-zA-Z_:][\w:]*)(\{.*\})?\s*,\s*\w+\s*\)", query)
        assert match, f"unexpected variable query {query!r}"
        assert match.group(1) in known, f"variable query {query!r}: unknown metric"
    # every family has a panel (the index's documents, bytes and version share one)
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    missing = set(METRICS) - families - {"snaprag_build_info"}
    assert not missing, f"metrics without a panel: {sorted(missing)}"


def test_alert_rules_use_only_exported_metrics() -> None:
    known = series_names()
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {
        "SnapragSearchLatencyHigh",
        "SnapragErrorRateHigh",
        "SnapragRequestsRejected",
        "SnapragCacheHitRateLow",
        "SnapragMemoryHigh",
        "SnapragQueueBacklog",
    }
    for rule in rules:
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"alert {rule['alert']} uses metrics snaprag does not export: {unknown}"


# --------------------------------------------------------------------------- promtool


def promtool(*args: str | Path, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    proc = subprocess.run(
        [exe, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{proc.stdout}{proc.stderr}"
    return proc


def test_promtool_checks_the_scrape_config() -> None:
    out = promtool("check", "config", "prometheus.yml").stdout
    assert "1 rule files found" in out  # alerts.yml is found from the config


def test_promtool_checks_the_alert_rules() -> None:
    promtool("check", "rules", "alerts.yml")


def test_promtool_alert_unit_tests_pass() -> None:
    """alerts_test.yml: the latency, rejection, error, queue, memory, cache and down rules
    fire on synthetic series, and not before their ``for`` has passed."""
    out = promtool("test", "rules", "alerts_test.yml").stdout
    assert "SUCCESS" in out


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel's query, its Grafana variables filled in, as a recording rule: promtool
    parses the PromQL (a typo or a bad matcher fails here, not in Grafana)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": to_promql(expr)}
        for i, (_, expr) in enumerate(dashboard_queries(dashboard()))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = promtool("check", "rules", path, cwd=tmp_path).stdout
    assert f"{len(rules)} rules found" in out
