"""Answer events from a worker thread to an async response, flushed as they happen."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio

from ..types import AnswerEvent

_END = object()


async def events_from_thread(
    make: Callable[[], Iterator[AnswerEvent]], limiter: anyio.CapacityLimiter
) -> AsyncIterator[AnswerEvent]:
    """Run ``make()`` (a blocking generator) on a worker thread; yield its events here as
    each arrives, so a client sees tokens as they are generated, not all at once."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def produce() -> None:
        try:
            for event in make():
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as exc:  # delivered to the consumer, which turns it into JSON
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    task = asyncio.ensure_future(anyio.to_thread.run_sync(produce, limiter=limiter))
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        await task


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_data(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()
