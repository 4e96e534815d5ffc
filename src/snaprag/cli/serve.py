"""``snaprag serve``: the HTTP API over one index or a folder of collections."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer

from .options import LLM, Settings, with_settings
from .shell import error_message, fail


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@with_settings("index", "model", *LLM)
def serve(
    data: Annotated[
        Path | None, typer.Option("--data", help="Serve every index under DIR as a collection")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one)")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Server processes")] = 1,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Listen on a non-loopback address without keys")
    ] = False,
    *,
    settings: Settings,
) -> None:
    """Serve search and answers over HTTP (JSON, Server-Sent Events, OpenAI-compatible).

    Prints one line 'serving http://HOST:PORT' once the models are loaded and ready."""
    from ..config import Config

    overrides = dict(settings.overrides)
    index = overrides.pop("index_dir", None)
    if index is not None and data is not None:
        fail("give --index DIR or --data DIR, not both")
    if workers != 1:
        fail("--workers above 1 is not available yet; run one process per port")
    if not _loopback(host) and not insecure and not _has_keys(data):
        fail(
            f"refusing to listen on {host} without API keys: create one with 'snaprag keys "
            "create --data DIR --tenant NAME' (serve --data DIR), or pass --insecure"
        )
    if not 0 <= port <= 65535:
        fail(f"--port must be in 0..65535, got {port}")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        fail("snaprag serve needs the 'server' extra: pip install 'snaprag[server]'")
    try:
        config = Config.from_env(config_file=settings.config_file, **overrides)
        if index is None and data is None:
            index = config.index_dir
        from ..serve import create_app

        app = create_app(config, index=Path(index) if index else None, data=data)
    except Exception as exc:
        fail(error_message(exc))
    _run(app, host, port)


def _has_keys(data: Path | None) -> bool:
    if data is None:
        return False
    from ..serve.auth import KeyStore

    try:
        return KeyStore(data).active
    except Exception:  # an unreadable keys file: the server reports it when it starts
        return False


def _run(app: object, host: str, port: int) -> None:
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: a response's header and body writes must not wait
    # for the client's delayed ACK (40 ms per keep-alive request otherwise)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)

    async def announce_when_started() -> None:
        import asyncio

        while not server.started:
            await asyncio.sleep(0.01)
        shown = f"[{host}]" if ":" in host else host
        print(f"serving http://{shown}:{bound}", flush=True)

    async def main() -> None:
        import asyncio

        task = asyncio.ensure_future(announce_when_started())
        await server.serve(sockets=[sock])
        task.cancel()

    import asyncio

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    sys.stdout.flush()
