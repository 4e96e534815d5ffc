"""The app factory: one engine per collection, opened and warmed in the lifespan; every
route calls public Engine API through admission control and worker threads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..config import Config
from .collections import Collections
from .errors import HTTPError, body, to_http
from .middleware import Guard
from .state import State

log = logging.getLogger("snaprag.serve")
STATIC = Path(__file__).parent / "static"


async def _sample(state: State) -> None:
    from .resources import INTERVAL_S

    while True:
        await asyncio.sleep(INTERVAL_S)
        state.resources.sample()


def create_app(config: Config, index: Path | None = None, data: Path | None = None) -> FastAPI:
    """An ASGI app serving the index at ``index`` (as ``default``) or the collections
    under ``data``."""
    collections = Collections(config, index=index, data=data)
    state = State(config, collections)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.run(collections.warm_up)
        sampler = asyncio.ensure_future(_sample(state))
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            sampler.cancel()
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

    @app.exception_handler(HTTPError)
    async def http_error(request: Request, exc: HTTPError) -> JSONResponse:
        return JSONResponse(body(exc), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse(body(HTTPError(422, "bad_request", message)), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error = to_http(exc)
        return JSONResponse(body(error), status_code=error.status, headers=error.headers)

    app.add_middleware(Guard, max_body=config.server_max_body)

    from .documents import router as documents_router
    from .openai_routes import router as openai_router
    from .routes import router

    app.include_router(router)
    app.include_router(openai_router)
    app.include_router(documents_router)
    return app
