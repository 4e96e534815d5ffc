"""The web console: ``/`` (search and ask, the answer streamed in with its citations) and
``/dashboard`` (live charts of the server's metrics).

The pages are static files shipped in the package; their scripts and the vendored uPlot
come from the app's ``/static`` mount (no CDN: servers often have no internet). The pages
hold no data themselves: everything they show comes from the JSON API with the key the
user entered, so they show exactly what that key may read and nothing of other tenants.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGES = Path(__file__).parent / "static" / "console"

router = APIRouter(include_in_schema=False)

# revalidated on every load: after an upgrade the pages and their scripts match the API
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _page(name: str) -> HTMLResponse:
    return HTMLResponse((PAGES / name).read_text(encoding="utf-8"), headers=_HEADERS)


@router.get("/")
async def ask_page() -> HTMLResponse:
    """Search and ask: pick a collection, ask, watch the answer stream in."""
    return _page("ask.html")


@router.get("/dashboard")
async def dashboard_page() -> HTMLResponse:
    """Live charts of throughput, latency, stages, cache, queues, CPU and memory, with the
    active alerts and recommendations (needs an admin key when keys exist)."""
    return _page("dashboard.html")
