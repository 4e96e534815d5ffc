"""Alerts: thresholds from the config, evaluated continuously with hysteresis.

A rule fires after its condition held for ``alert_for`` evaluations in a row and clears
after it was back inside the threshold, with a 10 % margin, for as many: a value hovering
at the threshold does not flap. Each change is logged, kept for ``GET /v1/alerts`` and,
with ``alert_webhook`` set, POSTed there as JSON (``{"alert", "state", "value",
"threshold", "message", "at"}``) from a background thread, so a slow receiver never slows
a request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ConfigError
from .windows import retrieval_hits

log = logging.getLogger("snaprag.alerts")
#: margin inside the threshold a value must reach before its alert clears
MARGIN = 0.10


@dataclass
class Rule:
    name: str
    #: the measured value, from a window summary and the live gauges (None: no data)
    measure: Callable[[dict[str, Any]], float | None]
    threshold: float
    above: bool = True  # fires above the threshold (False: below, e.g. cache hit rate)
    unit: str = ""

    def beyond(self, value: float) -> bool:
        return value > self.threshold if self.above else value < self.threshold

    def back(self, value: float) -> bool:
        if self.above:
            return value <= self.threshold * (1 - MARGIN)
        return value >= self.threshold * (1 + MARGIN)


#: the routes a latency alert can name (the API's work routes)
ROUTES = ("search", "batch", "ask", "chat", "embeddings", "documents")


def parse_routes(spec: str) -> dict[str, float]:
    """``"300"`` (every route) or ``"search=50,ask=3000"`` -> {route: ms}."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=") if "=" in part else ("*", "", part)
        name = name.strip()
        try:
            ms = float(value)
        except ValueError:
            ms = float("nan")
        if not (ms > 0 and math.isfinite(ms)) or (name != "*" and name not in ROUTES):
            raise ConfigError(
                f"alert_p95_ms: {part!r} is not ROUTE=MS or MS with MS > 0 and ROUTE one of "
                f"{', '.join(ROUTES)} (e.g. 'search=50,ask=3000')"
            )
        out[name] = ms
    return out


def rules_from_config(config: Config, routes: list[str]) -> list[Rule]:
    """The rules the config asks for; ``routes`` are the route names that can be measured."""
    rules: list[Rule] = []
    p95 = parse_routes(config.alert_p95_ms)
    for route in routes:
        limit = p95.get(route, p95.get("*"))
        if limit:
            rules.append(Rule(f"p95_latency:{route}", _route_p95(route), limit, unit="ms"))
    if config.alert_error_rate:
        rules.append(Rule("error_rate", _error_rate, config.alert_error_rate))
    if config.alert_memory_mb:
        rules.append(Rule("memory", _gauge("memory_mb"), config.alert_memory_mb, unit="MiB"))
    if config.alert_cpu_percent:
        rules.append(Rule("cpu", _gauge("cpu_percent"), config.alert_cpu_percent, unit="%"))
    if config.alert_queue_length:
        rules.append(Rule("queue_length", _gauge("queue_length"), config.alert_queue_length))
    if config.alert_disk_free_mb:
        free = config.alert_disk_free_mb
        rules.append(Rule("disk_free", _gauge("disk_free_mb"), free, above=False, unit="MiB"))
    if config.alert_cache_hit_rate:
        rate = config.alert_cache_hit_rate
        rules.append(Rule("cache_hit_rate", _hit_rate, rate, above=False))
    return rules


def _route_p95(route: str) -> Callable[[dict[str, Any]], float | None]:
    def measure(s: dict[str, Any]) -> float | None:
        row = s["series"].get(f"route:{route}")
        return row["p95_ms"] if row and row["count"] else None

    return measure


def _error_rate(s: dict[str, Any]) -> float | None:
    rows = [v for k, v in s["series"].items() if k.startswith("route:")]
    total = sum(r["count"] for r in rows)
    return sum(r["errors"] for r in rows) / total if total else None


def _gauge(name: str) -> Callable[[dict[str, Any]], float | None]:
    def measure(s: dict[str, Any]) -> float | None:
        return s.get("live", {}).get(name)

    return measure


#: fewer look-ups than this in the window say nothing about the hit rate
MIN_LOOKUPS = 20


def _hit_rate(s: dict[str, Any]) -> float | None:
    c = s["counters"]
    hits = retrieval_hits(c)
    requests = c.get("cache:retrieval:requests", 0)
    return hits / requests if requests >= MIN_LOOKUPS else None


class Alerts:
    def __init__(self, rules: list[Rule], needed: int = 3, webhook: str = "") -> None:
        self.rules = rules
        self.needed = max(1, needed)
        self.webhook = webhook
        self.active: dict[str, dict[str, Any]] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=200)
        self._streak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self.sent = 0
        self.failed = 0
        self._sender: threading.Thread | None = None
        if webhook:
            self._sender = threading.Thread(target=self._send, name="snaprag-alerts", daemon=True)
            self._sender.start()

    def evaluate(self, summary: dict[str, Any], now: float | None = None) -> list[dict]:
        """Check every rule against ``summary`` (a window summary plus ``live`` gauges);
        returns the alerts that fired or cleared now."""
        now = time.time() if now is None else now
        changes = []
        with self._lock:
            for rule in self.rules:
                value = rule.measure(summary)
                firing = rule.name in self.active
                if value is None:  # no data: nothing is beyond; a firing alert may clear
                    if not firing:
                        self._streak[rule.name] = 0
                        continue
                    moving = True
                    value = float("nan")
                else:
                    moving = rule.back(value) if firing else rule.beyond(value)
                self._streak[rule.name] = self._streak.get(rule.name, 0) + 1 if moving else 0
                if self._streak[rule.name] < self.needed:
                    if firing and not math.isnan(value):
                        self.active[rule.name]["value"] = round(value, 3)
                    continue
                self._streak[rule.name] = 0
                event = self._event(rule, value, "resolved" if firing else "firing", now)
                if firing:
                    del self.active[rule.name]
                else:
                    self.active[rule.name] = event
                self.history.appendleft(event)
                changes.append(event)
        for event in changes:
            log.warning("alert %s %s: %s", event["alert"], event["state"], event["message"])
            if self.webhook:
                try:
                    self._outbox.put_nowait(event)
                except queue.Full:
                    self.failed += 1
        return changes

    @staticmethod
    def _event(rule: Rule, value: float, state: str, now: float) -> dict[str, Any]:
        side = "above" if rule.above else "below"
        unit = f" {rule.unit}" if rule.unit else ""
        message = f"{rule.name} is {value:.3g}{unit}, {side} the threshold {rule.threshold:g}{unit}"
        if state == "resolved":
            message = f"{rule.name} is back to {value:.3g}{unit} (threshold {rule.threshold:g})"
            if math.isnan(value):
                message = f"{rule.name} has no data any more (threshold {rule.threshold:g})"
        return {
            "alert": rule.name,
            "state": state,
            "value": None if math.isnan(value) else round(value, 3),
            "threshold": rule.threshold,
            "message": message,
            "at": now,
        }

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "active": list(self.active.values()),
                "history": list(self.history)[:50],
                "rules": [
                    {"alert": r.name, "threshold": r.threshold, "above": r.above}
                    for r in self.rules
                ],
                "webhook": {"configured": bool(self.webhook), "sent": self.sent,
                            "failed": self.failed},
            }  # fmt: skip

    def _send(self) -> None:
        while True:
            event = self._outbox.get()
            if event is None:
                return
            request = urllib.request.Request(
                self.webhook,
                data=json.dumps(event).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                self.sent += 1
            except OSError as exc:  # logged and counted; the alert itself stands
                self.failed += 1
                log.warning("alert webhook %s failed: %s", self.webhook, exc)

    def close(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(queue.Full):  # a full outbox: the daemon thread ends
                self._outbox.put_nowait(None)
            self._sender.join(timeout=6)
