"""Uploads are ingested as jobs on their own thread: queries never wait behind an upload
(ingestion is its own lane), and a client follows a job with ``GET /v1/jobs/{id}``.

Jobs are kept in a small SQLite file (``jobs.db`` under ``--data``, or in the ``--index``
directory), not in process memory, so that with ``--workers N`` any server process answers
for a job that another one accepted. Each process runs the jobs it accepted, one at a time;
writes into one collection are serialized across processes by the index's ingest lock
(a job waits its turn as ``queued``). A job whose process died (a crash, a kill) is
reported ``failed`` by whichever process is asked about it next; uploading the same files
again resumes the interrupted ingest (finished files are skipped).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import IndexBusyError
from ..index import layout
from .errors import to_http

log = logging.getLogger("snaprag.serve")
JOBS_DB = "jobs.db"
#: finished jobs kept for GET /v1/jobs/{id}
KEEP = 1000
#: seconds between tries while another writer holds the collection
WAIT_S = 0.1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    tenant TEXT,
    files TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    done_files INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    report TEXT,
    error TEXT,
    owner TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished);
"""
_ACTIVE = ("queued", "running")


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
    #: the process running it (host/pid:start time), to tell when it died
    owner: str = ""

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


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks after boot), so that a pid reused by another
    process is not taken for the first; None when it is gone (or a zombie). Without
    ``/proc`` (not Linux), the pid alone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        if not os.path.isdir("/proc/self"):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return ""
        return None
    except OSError:
        return ""
    fields = stat[stat.rindex(b")") + 2 :].split()  # the name in (...) may hold spaces
    if fields[0] in (b"Z", b"X"):  # exited, not yet reaped by its parent
        return None
    return fields[19].decode()


def process_id(pid: int | None = None) -> str:
    """``host/pid:start`` of a process (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}:{_start_time(pid) or ''}"


def alive(owner: str) -> bool:
    """Whether the process named by :func:`process_id` still runs (one on another host is
    assumed to: nothing here can tell)."""
    host, _, rest = owner.rpartition("/")
    if host != socket.gethostname():
        return True
    pid, _, start = rest.partition(":")
    try:
        now = _start_time(int(pid))
    except ValueError:
        return False
    return now is not None and (not start or not now or now == start)


class JobStore:
    """The jobs table: one connection per process, one statement block at a time."""

    def __init__(self, path: Path | None) -> None:
        #: None: in memory (this process alone)
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def conn(self, create: bool = True) -> Iterator[sqlite3.Connection | None]:
        """The connection, in one transaction; None when the file does not exist yet and
        ``create`` is False (reading must not create files)."""
        with self._lock:
            if self._conn is None:
                if not create and self.path is not None and not self.path.exists():
                    yield None
                    return
                self._conn = self._connect()
            with self._conn:
                yield self._conn

    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        for attempt in range(5):
            conn = sqlite3.connect(target, timeout=10, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                return conn
            except sqlite3.OperationalError:  # another process creating it right now
                conn.close()
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def insert(self, job: Job) -> None:
        with self.conn() as conn:
            assert conn is not None
            conn.execute(
                "INSERT INTO jobs (id, collection, tenant, files, state, created, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.collection,
                    job.tenant,
                    json.dumps([str(f) for f in job.files]),
                    job.state,
                    job.created,
                    job.owner,
                ),
            )
            # forget the oldest finished jobs beyond KEEP
            conn.execute(
                "DELETE FROM jobs WHERE finished IS NOT NULL AND finished < (SELECT finished "
                "FROM jobs WHERE finished IS NOT NULL ORDER BY finished DESC LIMIT 1 OFFSET ?)",
                (KEEP - 1,),
            )

    def update(self, job_id: str, **values: Any) -> None:
        for name in ("report", "error"):
            if name in values:
                values[name] = None if values[name] is None else json.dumps(values[name])
        sets = ", ".join(f"{name} = ?" for name in values)
        with self.conn() as conn:
            assert conn is not None
            conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*values.values(), job_id))

    def get(self, job_id: str) -> Job | None:
        with self.conn(create=False) as conn:
            if conn is None:
                return None
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def fail_if_orphaned(self, job: Job, me: str) -> Job:
        """``job`` itself, or, when the process that owns it died before finishing it,
        the job marked failed (once: the first process to notice does it)."""
        if job.state not in _ACTIVE or job.owner == me or alive(job.owner):
            return job
        error = {
            "code": "worker_stopped",
            "message": "the server process running this job stopped before it finished; "
            "upload the same files again to finish it (files already ingested are skipped)",
        }
        with self.conn() as conn:
            assert conn is not None
            conn.execute(
                "UPDATE jobs SET state = 'failed', error = ?, finished = ? "
                "WHERE id = ? AND owner = ? AND state IN ('queued', 'running')",
                (json.dumps(error), time.time(), job.id, job.owner),
            )
        return self.get(job.id) or job

    def active(self) -> list[Job]:
        with self.conn(create=False) as conn:
            if conn is None:
                return []
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM jobs WHERE state IN ('queued', 'running')")
            return [_job(r) for r in rows.fetchall()]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        collection=row["collection"],
        files=[Path(f) for f in json.loads(row["files"])],
        tenant=row["tenant"],
        state=row["state"],
        created=row["created"],
        finished=row["finished"],
        done_files=row["done_files"],
        chunks=row["chunks"],
        report=json.loads(row["report"]) if row["report"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
        owner=row["owner"],
    )


#: a queued job: the job, the engine to ingest with, and whether its collection is still
#: the one the job was accepted for (None: it always is)
_Item = tuple[Job, Engine, Callable[[], bool] | None]


#: how much lower than queries the ingest thread runs (Unix niceness: 0 normal, 19 lowest)
INGEST_NICE = 10


class Jobs:
    """The jobs of one server process, kept in ``path`` (None: in memory, this process only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.store = JobStore(path)
        self.me = process_id()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._stopping = threading.Event()
        self.native_id: int | None = None
        # jobs left behind by a process that died are failed now, not "running" forever
        with contextlib.suppress(sqlite3.Error):
            for job in self.store.active():
                self.store.fail_if_orphaned(job, self.me)
        self._thread = threading.Thread(target=self._work, name="snaprag-ingest", daemon=True)
        self._thread.start()

    def submit(
        self,
        engine: Engine,
        collection: str,
        files: list[Path],
        tenant: str | None = None,
        current: Callable[[], bool] | None = None,
    ) -> Job:
        """Queue an ingest of ``files``; ``current()`` says, once the job holds the
        collection's ingest lock, whether the collection is still the one it was for."""
        job = Job(uuid.uuid4().hex, collection, files, tenant, owner=self.me)
        self.store.insert(job)
        self._queue.put((job, engine, current))
        return job

    def get(self, job_id: str) -> Job | None:
        job = self.store.get(job_id)
        return None if job is None else self.store.fail_if_orphaned(job, self.me)

    def pending(self) -> int:
        """Jobs this process accepted and has not started."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop after the running job (jobs not started yet are failed: their files stay,
        and uploading them again ingests them)."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._fail(item[0], "server_stopped", "the server stopped before this job ran")
        if not self._thread.is_alive():
            self.store.close()

    def _fail(self, job: Job, code: str, message: str) -> None:
        error = {"code": code, "message": f"{message}; upload the files again"}
        with contextlib.suppress(sqlite3.Error):
            self.store.update(job.id, state="failed", error=error, finished=time.time())

    def _work(self) -> None:
        self.native_id = threading.get_native_id()
        with contextlib.suppress(OSError, AttributeError):  # Linux: threads have their own
            os.setpriority(os.PRIO_PROCESS, self.native_id, INGEST_NICE)
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._run(*item)

    def priority(self) -> int | None:
        """The ingest thread's scheduling niceness as the OS has it (None: unknown)."""
        if self.native_id is None:
            return None
        try:
            return os.getpriority(os.PRIO_PROCESS, self.native_id)
        except (OSError, AttributeError):
            return None

    def _run(self, job: Job, engine: Engine, current: Callable[[], bool] | None) -> None:
        index_dir = engine.config.index_dir
        done = {"files": 0, "chunks": 0}

        def progress(event: str, data: object) -> None:
            if event == "source":
                done["files"] += 1
            elif event == "chunks":
                done["chunks"] += int(data)  # type: ignore[call-overload]
            else:
                return
            with contextlib.suppress(sqlite3.Error):  # progress is best effort
                self.store.update(job.id, done_files=done["files"], chunks=done["chunks"])

        while True:
            if self._stopping.is_set():
                self._fail(job, "server_stopped", "the server stopped before this job ran")
                return
            try:
                # one writer per collection, across processes: ingest and delete take this
                # lock; taken here (re-entrant) so that the check below cannot go stale
                with layout.ingest_lock(index_dir):
                    if current is not None and not current():
                        raise _Gone
                    self.store.update(job.id, state="running")
                    report = _ingest_low(engine, job.files, progress)
            except IndexBusyError:  # another writer has the collection: wait for our turn
                time.sleep(WAIT_S)
                continue
            except Exception as exc:  # reported in the job, never lost
                if isinstance(exc, _Gone) or not index_dir.is_dir():
                    message = f"the collection {job.collection!r} was deleted before this job ran"
                    self._fail(job, "collection_deleted", message)
                    return
                error = to_http(exc)
                failed = {"code": error.code, "message": error.message}
                with contextlib.suppress(sqlite3.Error):
                    self.store.update(job.id, state="failed", error=failed, finished=time.time())
                return
            break
        state = "done" if report.ok else "failed"
        try:
            self.store.update(job.id, state=state, report=report.to_dict(), finished=time.time())
        except sqlite3.Error as exc:  # the ingest itself is done: only its record is lost
            log.warning("could not record the end of job %s: %s", job.id, exc)


def _ingest_low(engine: Engine, files: list[Path], progress: Callable[..., None]) -> Any:
    """Ingest with a writer of its own: one ONNX thread, on this (niced) thread, so an
    upload takes the CPU that queries leave over instead of competing with them for the
    serving engine's threads. The serving engine sees the new version as it sees another
    process's writes: by the index generation, on its next search."""
    writer = Engine(engine.config.with_(threads=1))
    try:
        return writer.ingest(files, progress=progress)
    finally:
        writer.close()


class _Gone(Exception):
    """The job's collection was deleted (or replaced) before the job could run."""
