"""The HTTP server: ``snaprag serve`` and :func:`create_app` for ASGI hosts."""

from .app import create_app

__all__ = ["create_app"]
