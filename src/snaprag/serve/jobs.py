"""Uploads are ingested as jobs, one at a time per server, on their own thread: queries
never wait behind an upload (ingestion is its own lane), and a client follows a job's
progress with ``GET /v1/jobs/{id}``."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import Engine
from .errors import to_http

#: finished jobs kept for GET /v1/jobs/{id}
KEEP = 1000


@dataclass
class Job:
    id: str
    collection: str
    files: list[Path]
    tenant: str | None = None
    state: str = "queued"  # queued, running, done, failed
    created: float = field(default_factory=time.time)
    finished: float | None = None
    done_files: int = 0
    chunks: int = 0
    report: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "state": self.state,
            "created": self.created,
            "finished": self.finished,
            "progress": {"files": len(self.files), "done": self.done_files, "chunks": self.chunks},
            "report": self.report,
            "error": self.error,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Engine] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="snaprag-ingest", daemon=True)
        self._thread.start()

    def submit(
        self, engine: Engine, collection: str, files: list[Path], tenant: str | None = None
    ) -> Job:
        job = Job(uuid.uuid4().hex, collection, files, tenant)
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > KEEP:  # forget the oldest finished ones
                for old in [j for j in self._jobs.values() if j.finished][: len(self._jobs) - KEEP]:
                    del self._jobs[old.id]
        self._queue.put((job, engine))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, engine = item
            job.state = "running"

            def progress(event: str, data: object, job: Job = job) -> None:
                if event == "source":
                    job.done_files += 1
                elif event == "chunks":
                    job.chunks += int(data)  # type: ignore[call-overload]

            try:
                report = engine.ingest(job.files, progress=progress)
                job.report = report.to_dict()
                job.state = "done" if report.ok else "failed"
            except Exception as exc:  # reported in the job, never lost
                error = to_http(exc)
                job.error = {"code": error.code, "message": error.message}
                job.state = "failed"
            job.finished = time.time()
