"""A small HTTP/1.1 keep-alive load generator, run as its own process.

General-purpose clients (httpx, aiohttp) spend more CPU per request than a search server
on a 2-core machine does, so they measure themselves. This one sends request bytes built
once up front over N persistent connections (one request in flight per connection, the way
browsers and SDKs use HTTP/1.1), reads each response by its status line, headers and
``Content-Length`` (or chunked) body, and records the latency and status of every request.

It runs in a process of its own so that its CPU time can be measured and reported: on a
small machine the load generator is part of the budget.

Protocol: a JSON spec on stdin, one JSON result on stdout. ``python -m
snaprag.bench.loadgen < spec.json``. Spec fields:

``host``, ``port``
    the server (loopback).
``requests``
    ``[{"method", "path", "body"}]``; ``body`` is any JSON value.
``warmup``
    requests sent one by one on one connection before the clock starts (not recorded).
``clients``
    concurrent connections.
``max_requests``, ``duration_s``, ``max_wall_s``
    bounds: the run stops at whichever comes first (at least one is always in force:
    ``max_wall_s`` defaults to 600 s).
``distinct``
    true: each request is sent once (the run ends when they are used up); false: cycled.
``retry_429``
    ``"retry-after"`` (wait what the server asked, at most ``retry_cap_s``, preferring
    ``retry-after-ms`` to ``Retry-After`` as the official OpenAI client does),
    ``"retry-after-seconds"`` (read only ``Retry-After``, whole seconds, as most HTTP
    clients do), a number of seconds, or null (take the next request at once). The
    refused request is sent again, so a refusal never uses up a distinct request.
``timeout_s``
    the longest a single request may take; past it the connection is dropped and counted.
``marker``
    optional: a string whose presence in a 2xx body is counted (``marked``), e.g. a
    timing stage that only work done for the request reports.
``server_pid``
    optional: the server's process, whose CPU time over the measured window is reported
    alongside the generator's own (Linux ``/proc``).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..system import child_pids, cpu_seconds

DEFAULT_MAX_WALL_S = 600.0


def spec_timeout(spec: dict[str, Any]) -> float:
    """How long the parent waits for a generator running ``spec`` before killing it:
    its time bound, the warm-up and the last requests in flight, and start-up."""
    bound = float(spec.get("max_wall_s") or DEFAULT_MAX_WALL_S)
    if spec.get("duration_s"):
        bound = min(bound, float(spec["duration_s"]))
    timeout = float(spec.get("timeout_s", 60.0))
    return bound + timeout * (2 + len(spec.get("warmup", ()))) + 30.0


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds so far of process ``pid`` and its children (a server's
    worker processes; None where unknown)."""
    if not pid:
        return None
    seen = [cpu_seconds(each) for each in [pid, *child_pids(pid)]]
    known = [c for c in seen if c is not None]
    return sum(known) if known else None


class ProtocolError(Exception):
    """The server's reply was not a well-formed HTTP/1.1 response."""


def build_request(host: str, port: int, method: str, path: str, body: Any) -> bytes:
    """The bytes of one keep-alive request with a JSON body (or none)."""
    payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    head = (
        f"{method} {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Connection: keep-alive\r\n"
        "Accept: application/json\r\n"
    )
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode("ascii") + payload


@dataclass
class Response:
    status: int
    body: bytes
    close: bool  # the server will close the connection after this response
    retry_after: float | None  # seconds, from Retry-After
    retry_after_ms: float | None = None  # milliseconds, from retry-after-ms


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One response: status line, headers, then a Content-Length or chunked body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    close = parts[0] == "HTTP/1.0"
    retry_after: float | None = None
    retry_after_ms: float | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            close = value.lower() == "close"
        elif name in ("retry-after", "retry-after-ms"):
            try:
                number = float(value)
            except ValueError:
                continue
            if name == "retry-after":
                retry_after = number
            else:
                retry_after_ms = number
    if chunked:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected: the final CRLF
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
        data = bytes(body)
    elif length is not None:
        data = await reader.readexactly(length)
    elif status in (204, 304) or 100 <= status < 200:
        data = b""
    else:  # no length: the body runs until the server closes the connection
        data = await reader.read()
        close = True
    return Response(status, data, close, retry_after, retry_after_ms)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation, as numpy's default), mean and max, in ms."""
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        pos = (len(ordered) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return {
        "p50": round(at(0.50), 3),
        "p95": round(at(0.95), 3),
        "p99": round(at(0.99), 3),
        "mean": round(sum(ordered) / len(ordered), 3),
        "max": round(ordered[-1], 3),
    }


@dataclass
class Run:
    """The shared state of one run: what is left to send, and what was seen."""

    payloads: list[bytes]
    distinct: bool
    max_requests: int | None
    deadline: float
    next_index: int = 0
    sent: int = 0
    status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency_ok: list[float] = field(default_factory=list)
    latency_all: list[float] = field(default_factory=list)
    marker: bytes | None = None
    marked: int = 0
    ended: str = ""

    def may_send(self) -> bool:
        """Whether another attempt fits the bounds (and records why the run ends)."""
        if self.max_requests is not None and self.sent >= self.max_requests:
            self.ended = self.ended or "requests"
            return False
        if time.monotonic() >= self.deadline:
            self.ended = self.ended or "duration"
            return False
        return True

    def take(self) -> bytes | None:
        """The next request to send, or None when distinct requests are used up."""
        if self.distinct and self.next_index >= len(self.payloads):
            self.ended = self.ended or "exhausted"
            return None
        payload = self.payloads[self.next_index % len(self.payloads)]
        self.next_index += 1
        return payload


async def _client(
    run: Run, host: str, port: int, timeout_s: float, retry_429: Any, retry_cap_s: float
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    pending: bytes | None = None  # a refused request, sent again
    try:
        while run.may_send():
            payload = pending if pending is not None else run.take()
            pending = None
            if payload is None:
                return
            run.sent += 1  # counted before any await, so other clients see the bound
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError:
                    run.errors["connect"] += 1
                    await asyncio.sleep(0.05)  # a refused connect returns at once: no spin
                    continue
            assert reader is not None
            start = time.perf_counter()
            try:
                async with asyncio.timeout(timeout_s):
                    writer.write(payload)
                    response = await read_response(reader)
            except TimeoutError:
                run.errors["timeout"] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                run.errors["closed"] += 1
            except (ProtocolError, ValueError):
                run.errors["protocol"] += 1
            else:
                ms = (time.perf_counter() - start) * 1000.0
                run.status[response.status] += 1
                run.latency_all.append(ms)
                if 200 <= response.status < 300:
                    run.latency_ok.append(ms)
                    if run.marker is not None and run.marker in response.body:
                        run.marked += 1
                if response.status == 429 and retry_429 is not None:
                    pending = payload
                    if retry_429 in ("retry-after", "retry-after-seconds"):
                        asked = response.retry_after
                        if retry_429 == "retry-after" and response.retry_after_ms is not None:
                            asked = response.retry_after_ms / 1000
                        wait = min(asked or retry_cap_s, retry_cap_s)
                    else:
                        wait = float(retry_429)
                    await asyncio.sleep(max(0.0, min(wait, run.deadline - time.monotonic())))
                if not response.close:
                    continue
            writer.close()  # a failed or closing connection: open a fresh one next time
            writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def _warm_up(host: str, port: int, payloads: list[bytes], timeout_s: float) -> int:
    """Send the warm-up requests one by one; how many were answered 2xx."""
    if not payloads:
        return 0
    reader, writer = await asyncio.open_connection(host, port)
    ok = 0
    try:
        for payload in payloads:
            async with asyncio.timeout(timeout_s):
                writer.write(payload)
                response = await read_response(reader)
            ok += 200 <= response.status < 300
            if response.close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()
    return ok


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load phase as ``spec`` describes; the result as a JSON-ready dict."""
    host, port = spec["host"], int(spec["port"])
    timeout_s = float(spec.get("timeout_s", 60.0))

    def encode(items: list[dict[str, Any]]) -> list[bytes]:
        return [
            build_request(host, port, r.get("method", "POST"), r["path"], r.get("body"))
            for r in items
        ]

    payloads = encode(spec["requests"])
    if not payloads:
        raise ValueError("the spec holds no requests")
    warmed = await _warm_up(host, port, encode(spec.get("warmup", [])), timeout_s)
    wall_cap = float(spec.get("max_wall_s") or DEFAULT_MAX_WALL_S)
    duration = spec.get("duration_s")
    limit = min(wall_cap, float(duration)) if duration else wall_cap
    max_requests = spec.get("max_requests")
    clients = max(1, int(spec.get("clients", 1)))
    server_pid = spec.get("server_pid")
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    server0 = process_cpu_s(server_pid)
    start = time.perf_counter()
    run = Run(
        payloads=payloads,
        distinct=bool(spec.get("distinct", False)),
        max_requests=int(max_requests) if max_requests else None,
        deadline=time.monotonic() + limit,
        marker=spec["marker"].encode("utf-8") if spec.get("marker") else None,
    )
    await asyncio.gather(
        *(
            _client(
                run,
                host,
                port,
                timeout_s,
                spec.get("retry_429"),
                float(spec.get("retry_cap_s", 1.0)),
            )
            for _ in range(clients)
        )
    )
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    server1 = process_cpu_s(server_pid)
    server_cpu = server1 - server0 if server0 is not None and server1 is not None else None
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    completed = sum(run.status.values())
    if run.ended == "duration" and not duration:
        run.ended = "wall-limit"
    return {
        "clients": clients,
        "warmup_ok": warmed,
        "sent": run.sent,
        "completed": completed,
        "distinct_used": run.next_index,
        "status": {str(code): n for code, n in sorted(run.status.items())},
        "errors": dict(run.errors),
        "wall_s": round(wall, 3),
        "req_per_s": round(completed / wall, 1) if wall > 0 else 0.0,
        "latency_ms": percentiles(run.latency_all),
        "ok_latency_ms": percentiles(run.latency_ok),
        "marked": run.marked,
        "cpu_s": round(cpu, 3),
        "cores": round(cpu / wall, 3) if wall > 0 else 0.0,
        "server_cpu_s": round(server_cpu, 3) if server_cpu is not None else None,
        "server_cores": round(server_cpu / wall, 3) if server_cpu is not None and wall else None,
        "ended": run.ended or "done",
    }


def main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(run_load(spec))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
