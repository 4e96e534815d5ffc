"""Answer events from a worker thread to an async response, flushed as they happen."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio

from ..types import AnswerEvent

_END = object()


class Producers:
    """How many answer generations are running on worker threads right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.running += n


async def events_from_thread(
    make: Callable[[], Iterator[AnswerEvent]],
    limiter: anyio.CapacityLimiter,
    producers: Producers | None = None,
) -> AsyncIterator[AnswerEvent]:
    """Run ``make()`` (a blocking generator) on a worker thread; yield its events here as
    each arrives, so a client sees tokens as they are generated, not all at once.

    When the consumer stops early (the client went away, the deadline passed), the thread
    closes the generator at its next event, which stops the generation and frees the
    model's slot, instead of writing an answer nobody reads."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down)
            stop.set()

    def produce() -> None:
        if producers is not None:
            producers.add(1)
        events = make()
        try:
            for event in events:
                if stop.is_set():
                    break
                put(event)
        except BaseException as exc:  # delivered to the consumer, which turns it into JSON
            put(exc)
        finally:
            events.close()  # a local model stops at once; a remote stream is closed
            if producers is not None:
                producers.add(-1)
            put(_END)

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
        stop.set()
        if task.done():
            task.result()
        else:  # finishes by itself at the next event; nobody needs to wait for it
            task.add_done_callback(lambda t: t.cancelled() or t.exception())


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_data(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()
