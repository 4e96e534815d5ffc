"""The server's view of itself: Prometheus metrics, a JSON summary for the console, and
alerts. With API keys, only an ``admin`` key reads them (they cover every tenant)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .metrics import CONTENT_TYPE
from .routes import _caller, _state

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format (scrape it; with keys, send an admin key as a bearer token)."""
    who = _caller(request, "admin")
    state = _state(request)

    # with keys, a tenant's admin sees its own collections' gauges, never another's names
    def scrape() -> bytes:
        mine = None if who.tenant is None else set(state.collections.names(who))
        return state.observer.metrics(mine)

    return Response(await state.run(scrape), media_type=CONTENT_TYPE)


@router.get("/v1/metrics/summary")
async def summary(request: Request, window: Literal["1m", "15m", "24h"] = "1m") -> dict[str, Any]:
    """Throughput, p50/p95/p99 per route and stage, cache hit rates, queues, process
    gauges, active alerts and recommendations over the window, and a 15-minute timeline."""
    who = _caller(request, "admin")
    state = _state(request)
    out = await state.run(state.observer.report, window)
    out["queues"] = state.queues()
    if who.tenant is not None:  # another tenant's query text never shows
        out["slowest"] = [s for s in out["slowest"] if s["tenant"] == who.tenant]
    return out


@router.get("/v1/alerts")
async def alerts(request: Request) -> dict[str, Any]:
    """Active alerts, recent changes, the configured rules and the webhook's counts."""
    _caller(request, "admin")
    return _state(request).observer.alerts.report()
