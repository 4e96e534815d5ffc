"""``snaprag serve --workers N``: N server processes answering on one listening socket.

The parent binds the socket (so ``--port 0`` gets one real port), starts N worker
processes (fresh interpreters, never forks of a process that has threads) and hands each
the socket, the resolved settings and a pipe to say "ready" on. It prints ``serving URL``
once every worker's ``/readyz`` would answer 200, restarts a worker that dies (saying so
on stderr), and on Ctrl-C or SIGTERM stops them all. The workers share what lives on disk
or in Redis: the indexes, the L2 and L3 query caches (keyed by index generation, so a
write by one worker makes the others' cached answers unreachable), the upload jobs
(``jobs.db``) and the ingest lock that makes one writer per collection.

A worker runs ``python -m snaprag.serve.worker SOCKET_FD STATUS_FD`` and reads its settings
from stdin; the parent keeps that stdin open, so a worker whose parent is gone (even
killed with SIGKILL) sees end-of-file and stops: no orphan keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: response header naming the worker process that answered
WORKER_HEADER = b"x-snaprag-worker"
#: failed starts in a row after which the parent gives up on a worker slot
MAX_FAILED_STARTS = 5
#: seconds a worker gets to finish its requests after SIGTERM before it is killed
STOP_GRACE_S = 30.0

_READY = b"ready\n"


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    status: int  # read end of the worker's status pipe
    ready: bool = False
    buffer: bytes = b""


class Supervisor:
    """The parent process of ``snaprag serve --workers N``."""

    def __init__(self, settings: dict[str, Any], sock: socket.socket, workers: int) -> None:
        self.settings = pickle.dumps(settings)
        self.sock = sock
        self.count = workers
        self.workers: list[_Worker] = []
        self.failed_starts = 0
        self._stop: int | None = None  # the signal that asked to stop
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # every worker writes its metrics here; any of them answers /metrics for all
        self.metrics_dir = tempfile.mkdtemp(prefix="snaprag-metrics-")

    # ------------------------------------------------------------------ processes
    def _start(self) -> _Worker:
        status_r, status_w = os.pipe()
        package = Path(__file__).resolve().parents[2]  # this very snaprag, whatever sys.path
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package), env.get("PYTHONPATH")]))
        env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        fd = self.sock.fileno()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "snaprag.serve.worker", str(fd), str(status_w)],
                stdin=subprocess.PIPE,
                pass_fds=(fd, status_w),
                env=env,
                # its own process group: Ctrl-C reaches the parent, which stops the workers
                # in order, instead of every process at once mid-start-up
                start_new_session=True,
            )
        finally:
            os.close(status_w)
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died at once: the loop reports it
            proc.stdin.write(self.settings)
            proc.stdin.flush()  # kept open: its end-of-file tells the worker the parent is gone
        return _Worker(proc, status_r)

    def _forget(self, worker: _Worker) -> None:
        """Close the parent's ends of a worker's pipes (once)."""
        if worker.status >= 0:
            os.close(worker.status)
            worker.status = -1
        if worker.proc.stdin is not None and not worker.proc.stdin.closed:
            with contextlib.suppress(OSError):
                worker.proc.stdin.close()

    def _signal(self, signum: int, frame: object) -> None:
        if self._stop is None:
            self._stop = signum
        with contextlib.suppress(OSError):  # a full pipe already wakes the loop
            os.write(self._wake_w, b"x")

    # ------------------------------------------------------------------ main loop
    def run(self, announce: Callable[[], None]) -> int:
        """Start the workers, ``announce()`` once all are ready, supervise them until a
        signal says stop; the exit code."""
        old = {s: signal.signal(s, self._signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.workers = [self._start() for _ in range(self.count)]
            code = self._supervise(announce)
        finally:
            self._stop_all()
            for s, handler in old.items():
                signal.signal(s, handler)
        return code

    def _supervise(self, announce: Callable[[], None]) -> int:
        announced = False
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        for worker in self.workers:
            selector.register(worker.status, selectors.EVENT_READ, worker)
        while self._stop is None:
            for key, _ in selector.select(timeout=0.5):
                if key.data is None:
                    os.read(self._wake_r, 64)
                    continue
                self._read_status(key.data)
            if not announced and all(w.ready for w in self.workers):
                announce()
                announced = True
            for i, worker in enumerate(self.workers):
                code = worker.proc.poll()
                if code is None or self._stop is not None:
                    continue
                selector.unregister(worker.status)
                self._forget(worker)
                if not announced:
                    _say(
                        f"a server process stopped while starting ({_exit(code)}); see the "
                        "messages above, fix the cause and start again"
                    )
                    return 2
                if not worker.ready:
                    self.failed_starts += 1
                    if self.failed_starts >= MAX_FAILED_STARTS:
                        _say(
                            f"a server process failed to start {MAX_FAILED_STARTS} times in a "
                            "row; stopping (see the messages above)"
                        )
                        return 2
                    # no tight crash loop; a signal still ends the wait at once
                    select.select([self._wake_r], [], [], min(2.0**self.failed_starts, 30.0))
                    if self._stop is not None:
                        break
                _say(f"server process {worker.proc.pid} stopped ({_exit(code)}); starting another")
                _forget_metrics(self.metrics_dir, worker.proc.pid)
                self.workers[i] = self._start()
                selector.register(self.workers[i].status, selectors.EVENT_READ, self.workers[i])
        selector.close()
        return 130 if self._stop == signal.SIGINT else 0

    def _read_status(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.status, 64)
        except OSError:
            return
        worker.buffer += data
        if _READY in worker.buffer and not worker.ready:
            worker.ready = True
            self.failed_starts = 0

    def _stop_all(self) -> None:
        """SIGTERM to every worker (they finish their requests), SIGKILL after the grace."""
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"server process {worker.proc.pid} did not stop in time; killing it")
                worker.proc.kill()
                worker.proc.wait()
            self._forget(worker)
        self.workers = []
        os.close(self._wake_r)
        os.close(self._wake_w)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _forget_metrics(folder: str, pid: int) -> None:
    """A dead worker's in-flight gauges stop counting (its counters keep their totals)."""
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, folder)


def _exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _say(message: str) -> None:
    print(f"snaprag serve: {message}", file=sys.stderr, flush=True)


def serve_workers(settings: dict[str, Any], sock: socket.socket, workers: int, url: str) -> int:
    """Run ``workers`` server processes on ``sock``; print ``serving URL`` once all are
    ready. ``settings``: ``config`` (the resolved Config), ``index``, ``data``."""
    sock.set_inheritable(True)

    def announce() -> None:
        print(f"serving {url}", flush=True)

    return Supervisor(settings, sock, workers).run(announce)


# ---------------------------------------------------------------------- the worker side
class WorkerHeader:
    """ASGI middleware: every HTTP response says which worker process answered it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (WORKER_HEADER, self.pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid)


def _worker_main(sock_fd: int, status_fd: int) -> int:
    import uvicorn

    from ..cli.shell import error_message
    from . import create_app
    from .loop import run_loop

    settings = pickle.load(sys.stdin.buffer)
    try:
        app = create_app(settings["config"], index=settings["index"], data=settings["data"])
    except Exception as exc:
        print(f"error: {error_message(exc)}", file=sys.stderr, flush=True)
        return 2
    sock = socket.socket(fileno=sock_fd)
    config = uvicorn.Config(WorkerHeader(app), log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)

    def parent_gone() -> None:
        # the parent keeps our stdin open for its whole life: end-of-file means it is gone
        while sys.stdin.buffer.read(4096):
            pass
        server.should_exit = True

    threading.Thread(target=parent_gone, name="snaprag-parent", daemon=True).start()

    async def tell_when_ready() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        os.write(status_fd, _READY)

    async def main() -> None:
        task = asyncio.ensure_future(tell_when_ready())
        await server.serve(sockets=[sock])
        task.cancel()

    run_loop(main())
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(int(sys.argv[1]), int(sys.argv[2])))
