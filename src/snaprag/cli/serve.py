"""``snaprag serve``: the HTTP API over one index or a folder of collections."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .options import LLM, Settings, with_settings
from .shell import error_message, fail

if TYPE_CHECKING:
    from ..config import Config


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
    workers: Annotated[
        int, typer.Option("--workers", help="Server processes sharing the port, caches and jobs")
    ] = 1,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Listen on a non-loopback address without keys", metavar=""
        ),
    ] = False,
    *,
    settings: Settings,
) -> None:
    """Serve search and answers over HTTP (JSON, Server-Sent Events, OpenAI-compatible).

    Prints one line 'serving http://HOST:PORT' once the models are loaded and ready (with
    --workers N: once every process is)."""
    from ..config import Config

    overrides = dict(settings.overrides)
    index = overrides.pop("index_dir", None)
    if index is not None and data is not None:
        fail("give --index DIR or --data DIR, not both")
    if workers < 1:
        fail(f"--workers must be 1 or more, got {workers}")
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
        where = {"index": Path(index) if index else None, "data": data}
        if workers == 1:
            from ..serve import create_app

            app = create_app(config, **where)
        else:
            _check(config, **where)  # a bad setting fails here once, not in N processes
    except Exception as exc:
        fail(error_message(exc))
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    if workers == 1:
        _run(app, sock, url)
        return
    from ..serve.worker import serve_workers

    code = serve_workers({"config": config, **where}, sock, workers, url)
    if code:
        raise typer.Exit(code)


def _check(config: Config, index: Path | None, data: Path | None) -> None:
    """What the workers will open, opened (cheaply) once here: a bad path, setting or keys
    file is one error line instead of one per worker."""
    from ..serve.collections import Collections

    Collections(config, index=index, data=data).close()
    if data is not None:
        from ..serve.auth import KeyStore

        KeyStore(data)


def _has_keys(data: Path | None) -> bool:
    if data is None:
        return False
    from ..serve.auth import KeyStore

    try:
        return KeyStore(data).active
    except Exception:  # an unreadable keys file: the server reports it when it starts
        return False


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here (also for --workers: every worker accepts on it,
    and --port 0 gets one real port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on every accepted connection, and set
    # here too (Linux passes it on): a response's header and body writes must not wait for
    # the client's delayed ACK (40 ms per keep-alive request otherwise)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


def _run(app: object, sock: socket.socket, url: str) -> None:
    import asyncio

    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)

    async def announce_when_started() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"serving {url}", flush=True)

    async def main() -> None:
        task = asyncio.ensure_future(announce_when_started())
        await server.serve(sockets=[sock])
        task.cancel()

    try:
        from ..serve.loop import run_loop

        run_loop(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    sys.stdout.flush()
