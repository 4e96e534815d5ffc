"""Every error is JSON ``{"error": {"code", "message"}}`` with a status that fits it; a bug
is a 500 with a generic message (logged with its trace), never a stack trace on the wire."""

from __future__ import annotations

import logging

from ..errors import (
    ConfigError,
    GenerationError,
    IndexStateError,
    LoaderError,
    QueryError,
    SnapragError,
)

log = logging.getLogger("snaprag.serve")


class HTTPError(Exception):
    """An error with its HTTP status, stable code and headers (e.g. ``Retry-After``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


#: GenerationError codes that are the upstream's fault, not the client's
_UPSTREAM = {"connection_refused", "connection_failed", "server_error", "stream_dropped"}


def to_http(exc: BaseException) -> HTTPError:
    """The HTTP form of any exception raised while serving a request."""
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, QueryError):
        return HTTPError(422, "bad_query", str(exc))
    if isinstance(exc, ConfigError):
        return HTTPError(400, "bad_request", str(exc))
    if isinstance(exc, IndexStateError):
        if str(exc).startswith("no index at "):  # the CLI's advice and a server path: not here
            message = "this collection has no documents yet; upload some with POST /v1/documents"
            return HTTPError(404, "index_unavailable", message)
        return HTTPError(409 if "running" in str(exc) else 404, "index_unavailable", str(exc))
    if isinstance(exc, GenerationError):
        if exc.code == "timeout":
            return HTTPError(504, "generation_timeout", str(exc))
        status = 502 if exc.code in _UPSTREAM else 503
        return HTTPError(status, exc.code, str(exc))
    if isinstance(exc, LoaderError):
        return HTTPError(422, "bad_document", str(exc))
    if isinstance(exc, SnapragError):
        return HTTPError(400, "bad_request", str(exc))
    log.exception("unexpected error while serving a request", exc_info=exc)
    return HTTPError(500, "internal", "internal error (logged by the server)")


def body(error: HTTPError) -> dict[str, dict[str, str]]:
    return {"error": {"code": error.code, "message": error.message}}
