"""The app factory: one engine per collection, opened and warmed in the lifespan; every
route calls public Engine API through admission control and worker threads."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Config
from ..errors import SnapragError
from .collections import Collections
from .errors import HTTPError, body, to_http
from .metrics import Observer, StateCollector
from .middleware import Guard
from .state import State

log = logging.getLogger("snaprag.serve")
STATIC = Path(__file__).parent / "static"


def _one_blas_thread() -> None:
    """One BLAS thread per server process: concurrent requests already use the cores, and
    OpenBLAS's threads spin after each product (an uncached search cost ~45 ms of CPU
    under load with two, 8 ms with one)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # installed without the server extra: the default stands
        return
    threadpool_limits(1, user_api="blas")


async def _sample(state: State) -> None:
    """Twice a second: CPU and memory; every second: the live gauges; every
    ``alert_interval``: the alerts; every 10 s: completed minutes to disk."""
    from .resources import INTERVAL_S

    observer = state.observer
    ticks = 0
    every_alert = max(1, round(state.config.alert_interval / INTERVAL_S))
    while True:
        await asyncio.sleep(INTERVAL_S)
        ticks += 1
        try:
            state.resources.sample()
            if ticks % 2 == 0:
                waiting = sum(lane.depth for lane in state.lanes.values())
                observer.sample(observer.live_gauges(state.resources, waiting))
            if ticks % every_alert == 0:
                observer.evaluate()
            if ticks % 20 == 0:
                await state.run(observer.flush)
        except Exception:  # measuring must never stop the server
            log.exception("sampling the server's metrics failed")


def create_app(config: Config, index: Path | None = None, data: Path | None = None) -> FastAPI:
    """An ASGI app serving the index at ``index`` (as ``default``) or the collections
    under ``data``."""
    folder = data if data is not None else index
    observer = Observer(config, Path(folder) if folder is not None else None)
    collections = Collections(config, index=index, data=data, telemetry=observer.engine_telemetry)
    state = State(config, collections, observer)
    observer.collectors.append(StateCollector(state))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _one_blas_thread()
        await state.run(collections.warm_up)
        sampler = asyncio.ensure_future(_sample(state))
        # what is loaded by now lives as long as the server: frozen, the garbage
        # collector's full passes stop rescanning it (each such pass held the GIL for
        # ms to tens of ms, in the middle of requests)
        gc.collect()
        gc.freeze()
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            sampler.cancel()
            await state.run(observer.close)
            state.jobs.close()
            collections.close()

    # the API page's assets ship in the package (no CDN: servers often have no internet)
    app = FastAPI(
        title="snaprag", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.snaprag = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="snaprag API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    def reply(request: Request, error: HTTPError) -> JSONResponse:
        route = request.scope.get("route")
        observer.error(getattr(route, "path", None), error.code)
        return JSONResponse(body(error), status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPError)
    async def http_error(request: Request, exc: HTTPError) -> JSONResponse:
        return reply(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":  # its location is a character offset
            at = [*first.get("loc", ()), None, None][1]
            message = f"the request body is not valid JSON (error at character {at})"
            return reply(request, HTTPError(422, "bad_request", message))
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return reply(request, HTTPError(422, "bad_request", message))

    @app.exception_handler(StarletteHTTPException)  # unknown routes, wrong methods, bodies
    async def framework_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        detail = exc.detail if isinstance(exc.detail, str) else "bad request"
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}; the API is listed at /docs"
        error = HTTPError(exc.status_code, codes.get(exc.status_code, "bad_request"), detail)
        error.headers = dict(exc.headers or {})
        return reply(request, error)

    @app.exception_handler(SnapragError)  # here, not at the outermost layer: counted
    async def engine_error(request: Request, exc: SnapragError) -> JSONResponse:
        return reply(request, to_http(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return reply(request, to_http(exc))

    app.add_middleware(
        Guard,
        max_body=config.server_max_body,
        max_upload=config.server_max_upload,
        observer=observer,
    )

    from .console import router as console_router
    from .documents import router as documents_router
    from .observe_routes import router as observe_router
    from .openai_routes import router as openai_router
    from .routes import router

    app.include_router(router)
    app.include_router(openai_router)
    app.include_router(documents_router)
    app.include_router(observe_router)
    app.include_router(console_router)
    return app
