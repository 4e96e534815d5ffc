"""The outermost layer of every request, as plain ASGI (Starlette's ``@app.middleware``
wraps each request in extra tasks and streams, a large share of a cached search's cost):
bodies over the limit get 413 before they are read, and an exception nothing else handled
becomes a JSON error, never a trace on the wire."""

from __future__ import annotations

import json
import time
from typing import Any

from .errors import HTTPError, body, to_http

Scope = dict[str, Any]


async def _send_error(send: Any, error: HTTPError) -> None:
    payload = json.dumps(body(error)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


#: the route whose bodies are uploads (limit: ``server_max_upload``)
UPLOADS = "/v1/documents"


class Guard:
    def __init__(
        self, app: Any, max_body: int, observer: Any = None, max_upload: int | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload or max_body
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"] == UPLOADS else self.max_body
        too_large = HTTPError(413, "too_large", f"request body over {limit} bytes")
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _send_error(send, too_large)
                if self.observer is not None:
                    self.observer.request(None, scope["method"], 413, 0.0)
                return
        received = 0

        async def counted() -> dict[str, Any]:
            """The body as it arrives, refused once past the limit (a chunked body has no
            Content-Length to check first)."""
            nonlocal received, overflow
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                overflow = True
                raise too_large
            return message

        overflow = False
        started = False
        status = 500
        t0 = time.perf_counter()

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started, status
            if overflow:  # whatever the body parser made of it: the answer is 413
                if not started:
                    started, status = True, 413
                    await _send_error(send, too_large)
                return
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
            await send(message)

        observer = self.observer
        if observer is not None:
            observer.in_flight.inc()
        try:
            await self.app(scope, counted, tracked)
        except Exception as exc:  # anything the handlers missed: JSON, never a trace
            error = to_http(exc)
            if observer is not None:
                observer.error(getattr(scope.get("route"), "path", None), error.code)
            if not started:
                status = error.status
                await _send_error(send, error)
        finally:
            if observer is not None:
                observer.in_flight.dec()
                route = scope.get("route")  # set by the router: a template, never the path
                path = getattr(route, "path", None)
                observer.request(path, scope["method"], status, time.perf_counter() - t0)
