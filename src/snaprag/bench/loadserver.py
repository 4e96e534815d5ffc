"""The server side of ``snaprag bench load``: the index it serves and the server process.

The server is the real command (``python -m snaprag.cli serve``) on a free loopback port,
so the benchmark measures exactly what users run; its RSS and CPU are read from
``/proc``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import SnapragError

#: first start converts the embedding model (tens of seconds); later starts take ~1 s
START_TIMEOUT_S = 300.0
HOST = "127.0.0.1"
#: every server answers extractively with its query cache on and no Redis tier, whatever
#: the caller's settings say: the scenarios are defined by these, not by the shell they run
#: in, and a shared Redis would answer one scenario's "uncached" queries from another's
BASE_ENV = {"SNAPRAG_CACHE": "1", "SNAPRAG_LLM": "extractive", "SNAPRAG_REDIS_URL": ""}


def prepare_index(dataset: Path, index: Path | None, progress: bool) -> Path:
    """The index to serve: ``index`` as given, or ``dataset`` ingested into the cached
    index that ``snaprag eval`` also uses (built once, about 1.5 min for SciFact)."""
    if index is not None:
        index = index.expanduser().resolve()
        if not (index / "snaprag.db").exists():
            raise SnapragError(
                f"{index} is not a snaprag index (no snaprag.db); build one with "
                f"'snaprag ingest DOCS --index {index}' or leave out --index"
            )
        return index
    from ..config import Config
    from ..engine import Engine
    from ..index.retokenize import refresh_bm25_terms
    from .eval import eval_workdir, load_collection

    config = Config.from_env(cache=False)
    work = eval_workdir(dataset, config)
    corpus, _, _ = load_collection(dataset, "test", work / "collection")
    built = work / "index" / "snaprag.db"
    if progress and not built.exists():
        print(
            f"  indexing {dataset.name} once into {work} (SciFact: about 1.5 min) ...",
            file=sys.stderr,
            flush=True,
        )
    with Engine(config.with_(index_dir=work / "index")) as engine:
        report = engine.ingest([corpus])  # incremental: an unchanged corpus costs a hash
        if not report.ok:
            raise SnapragError(f"ingesting {corpus} failed: {report.failed[0].reason}")
    refresh_bm25_terms(work / "index" / "snaprag.db")
    return work / "index"


class Server:
    """``snaprag serve --index INDEX --port 0`` on 127.0.0.1, as a context manager."""

    def __init__(self, index: Path, env: dict[str, str], log: Path, workers: int = 1) -> None:
        self.index = index
        self.workers = workers
        self.env = {**BASE_ENV, **env}
        self.log = log
        self.host = HOST
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise SnapragError("the server is not running")
        return self.proc.pid

    def start(self) -> None:
        command = [sys.executable, "-m", "snaprag.cli", "serve", "--index", str(self.index)]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [*command, "--host", HOST, "--port", "0", "--workers", str(self.workers)],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env={**os.environ, **self.env},
            )
        line = self._first_line(START_TIMEOUT_S)
        prefix = f"serving http://{HOST}:"
        if not line.startswith(prefix) or not line.strip()[len(prefix) :].isdigit():
            self.stop()
            tail = " / ".join(self.log.read_text(errors="replace").strip().splitlines()[-3:])
            raise SnapragError(
                f"snaprag serve did not start (said {line.strip()!r}; {tail or 'no error'}); "
                f"try 'snaprag serve --index {self.index} --port 0' by hand"
            )
        self.port = int(line.strip()[len(prefix) :])

    def _first_line(self, timeout: float) -> str:
        """The server's first line of output, or '' if none came within ``timeout``."""
        assert self.proc is not None and self.proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def rss_mib(self) -> float | None:
        """The server's resident memory (``VmRSS``, its worker processes included) in MiB,
        None where unknown."""
        from ..system import child_pids

        total = None
        for pid in [self.pid, *child_pids(self.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total = (total or 0.0) + int(line.split()[1]) / 1024
        return None if total is None else round(total, 1)

    def cache_mib(self) -> float:
        """MiB held by the server's in-memory query caches (all collections)."""
        try:
            collections = self.stats()["collections"].values()
        except Exception:  # no stats: nothing subtracted
            return 0.0
        tiers = [c.get("cache", {}).get("tiers", {}) for c in collections]
        return round(sum(t.get("memory", {}).get("bytes", 0) for t in tiers) / 2**20, 1)

    def stats(self) -> dict[str, Any]:
        """``GET /v1/stats`` (the lanes' limits and counters)."""
        url = f"http://{self.host}:{self.port}/v1/stats"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())
