"""The load generator of `snaprag bench load` against a tiny scripted HTTP server: response
parsing (Content-Length, chunked, connection close), status accounting, retries of 429s
and the bounds of a run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from snaprag.bench.loadgen import build_request, percentiles, run_load, spec_timeout

Handler = Callable[[bytes, int], bytes]


def _reply(status: int, body: bytes = b"{}", *, headers: str = "", chunked: bool = False) -> bytes:
    reason = {200: "OK", 429: "Too Many Requests", 503: "Unavailable"}.get(status, "X")
    if chunked:
        half = len(body) // 2
        parts = [body[:half], body[half:]]
        payload = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts if p)
        payload += b"0\r\n\r\n"
        framing = "Transfer-Encoding: chunked\r\n"
    else:
        payload = body
        framing = f"Content-Length: {len(body)}\r\n"
    return f"HTTP/1.1 {status} {reason}\r\n{framing}{headers}\r\n".encode() + payload


async def _serve(handler: Handler, run: Callable[[int], Awaitable[Any]]) -> Any:
    """Run ``run(port)`` against a server answering each request with ``handler``."""
    seen = 0

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                seen += 1
                reply = handler(body, seen)
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await run(port)
    finally:
        server.close()
        await server.wait_closed()


def _spec(port: int, **extra: Any) -> dict[str, Any]:
    requests = [
        {"method": "POST", "path": "/v1/search", "body": {"query": f"q{i}"}} for i in range(5)
    ]
    return {"host": "127.0.0.1", "port": port, "requests": requests, **extra}


def test_build_request_is_keep_alive_json() -> None:
    raw = build_request("127.0.0.1", 8000, "POST", "/v1/search", {"query": "é"})
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /v1/search HTTP/1.1\r\n")
    assert b"Connection: keep-alive" in head
    assert f"Content-Length: {len(body)}".encode() in head and body.decode() == '{"query": "é"}'
    assert b"Content-Length" not in build_request("h", 1, "GET", "/healthz", None)


def test_percentiles_match_linear_interpolation() -> None:
    got = percentiles([float(v) for v in range(1, 101)])
    assert got["p50"] == pytest.approx(50.5) and got["p99"] == pytest.approx(99.01)
    assert got["max"] == 100.0 and percentiles([]) == {}


def test_counts_statuses_and_reads_both_body_framings() -> None:
    def handler(body: bytes, n: int) -> bytes:
        if n % 3 == 0:
            return _reply(503, b'{"error": {}}')
        return _reply(200, b'{"hits": []}' * 50, chunked=n % 2 == 0)

    result = asyncio.run(
        _serve(handler, lambda port: run_load(_spec(port, clients=3, max_requests=30)))
    )
    assert result["sent"] == 30 and result["completed"] == 30
    assert result["status"] == {"200": 20, "503": 10}
    assert result["errors"] == {} and result["ended"] == "requests"
    assert set(result["ok_latency_ms"]) == {"p50", "p95", "p99", "mean", "max"}
    assert result["cpu_s"] >= 0 and result["cores"] >= 0


def test_distinct_requests_run_out_and_refusals_are_retried() -> None:
    bodies: list[bytes] = []

    def handler(body: bytes, n: int) -> bytes:
        if n <= 2:  # the first two attempts are refused: they must be sent again
            return _reply(429, b"{}", headers="Retry-After: 1\r\n")
        bodies.append(body)
        return _reply(200)

    spec = {"clients": 2, "distinct": True, "retry_429": 0.01, "duration_s": 30}
    result = asyncio.run(_serve(handler, lambda port: run_load(_spec(port, **spec))))
    assert result["ended"] == "exhausted"
    assert result["status"] == {"200": 5, "429": 2}
    assert len(bodies) == len(set(bodies)) == 5  # each distinct request answered once


def test_connection_close_reconnects_and_warmup_is_not_counted() -> None:
    def handler(body: bytes, n: int) -> bytes:
        return _reply(200, headers="Connection: close\r\n")

    spec = {"clients": 2, "max_requests": 6, "warmup": [{"path": "/healthz", "method": "GET"}]}
    result = asyncio.run(_serve(handler, lambda port: run_load(_spec(port, **spec))))
    assert result["warmup_ok"] == 1
    assert result["status"] == {"200": 6} and result["errors"] == {}


def test_a_dead_server_is_counted_not_waited_for() -> None:
    async def nothing_listens() -> dict[str, Any]:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await run_load(_spec(port, clients=2, max_requests=4))

    result = asyncio.run(nothing_listens())
    assert result["errors"] == {"connect": 4} and result["completed"] == 0


def test_spec_timeout_covers_the_bounds() -> None:
    assert spec_timeout({"duration_s": 10, "timeout_s": 5}) == pytest.approx(10 + 10 + 30)
    assert spec_timeout({"max_requests": 5}) > 600  # no duration: the wall cap bounds it


def test_a_cycled_run_ends_at_its_duration() -> None:
    result = asyncio.run(
        _serve(lambda body, n: _reply(200), lambda port: run_load(_spec(port, duration_s=0.3)))
    )
    assert result["ended"] == "duration" and result["completed"] > 5  # cycled past the 5


def test_the_request_bound_holds_with_more_clients_than_requests() -> None:
    # every client starts before any has sent: the bound must be taken before connecting
    result = asyncio.run(
        _serve(
            lambda body, n: _reply(200),
            lambda port: run_load(_spec(port, clients=50, max_requests=3)),
        )
    )
    assert result["sent"] == 3 and result["status"] == {"200": 3}
