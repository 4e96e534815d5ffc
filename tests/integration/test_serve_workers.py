"""`snaprag serve --workers 2` over real HTTP: real worker processes on one loopback port,
the real embedding model over the bundled samples, a real Redis as L2.

A keep-alive connection stays with the worker that accepted it, so the tests pin one
client per worker (each response names its worker in ``X-Snaprag-Worker``) and send a
write through one worker and the reads through every worker.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serving import SAMPLES, sample_index

WORKER = "x-snaprag-worker"
ZEBRA = b"The zebra project launches on the ninth of March at the river office.\n"
ASK_ZEBRA = "When does the zebra project launch?"


def start(where: Path, *args: str, flag: str = "--data", env: dict[str, str] | None = None):
    """Start ``snaprag serve --workers 2`` on a free loopback port: (process, URL, stderr
    file). Its stderr goes to a file, so that the tests can read it while it runs."""
    err = where.parent / f"serve-{where.name}.stderr"
    command = ["serve", flag, str(where), "--port", "0", "--workers", "2", *args]
    proc = subprocess.Popen(
        [sys.executable, "-m", "snaprag.cli", *command],
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = proc.stdout.readline()  # printed once every worker is ready
    if not line.startswith("serving http://127.0.0.1:"):
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(f"server did not start: {line!r} {err.read_text()}")
    return proc, line.split()[1], err


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in (b"Z", b"X"):
            found.add(int(entry))
    return found


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :].split()[0] in (b"Z", b"X")


class Pinned:
    """One keep-alive client per worker process, so a request goes to a chosen worker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: dict[int, httpx.Client] = {}

    def client(self, pid: int) -> httpx.Client:
        held = self.clients.pop(pid, None)
        if held is not None:  # still on that worker? (an idle connection may be closed)
            if int(held.get("/healthz").headers[WORKER]) == pid:
                self.clients[pid] = held
                return held
            held.close()
        for _ in range(300):  # new connections land on the workers the kernel picks
            c = httpx.Client(base_url=self.url, timeout=120)
            landed = int(c.get("/healthz").headers[WORKER])
            if landed == pid:
                self.clients[pid] = c
                return c
            if landed in self.clients:
                c.close()
            else:
                self.clients[landed] = c
        raise AssertionError(f"no connection reached worker {pid}")

    def on(self, pid: int, method: str, path: str, **kw) -> httpx.Response:
        res = self.client(pid).request(method, path, **kw)
        assert int(res.headers[WORKER]) == pid, "the pinned connection moved to another worker"
        return res

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def wait_job(pinned: Pinned, pids: list[int], job_id: str) -> dict:
    """Poll a job through every worker in turn until it ends (all must agree on it)."""
    for i in range(1200):
        job = pinned.on(pids[i % len(pids)], "GET", f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            others = [pinned.on(p, "GET", f"/v1/jobs/{job_id}").json() for p in pids]
            assert all(o == job for o in others), others
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    from snaprag.cache.redis_server import RedisServer

    if os.environ.get("SNAPRAG_TESTS_NO_REDIS") == "1":
        pytest.skip("SNAPRAG_TESTS_NO_REDIS=1")
    with RedisServer() as server:
        server.start()
        yield server.url


@dataclass
class Served:
    proc: subprocess.Popen
    data: Path
    pinned: Pinned
    stderr: Path
    redis_url: str

    def workers(self) -> list[int]:
        pids = sorted(children(self.proc.pid))
        assert len(pids) == 2, pids
        return pids


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Served]:
    """Two workers over --data DIR: settings from a config file (Redis), an option (the
    echo generator) and the environment (a query length limit)."""

    root = tmp_path_factory.mktemp("workers")
    data = root / "data"
    sample_index(data / "manuals")
    config = root / "snaprag.toml"
    config.write_text(f'[cache]\nredis_url = "{redis_url}"\n')
    env = {"SNAPRAG_MAX_QUERY_CHARS": "500"}
    proc, url, err = start(data, "--config", str(config), "--llm", "echo", env=env)
    served = Served(proc, data, Pinned(url), err, redis_url)
    try:
        yield served
    finally:
        served.pinned.close()
        if proc.poll() is None:  # the last test stops it; this is for a failed run
            for pid in children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=30)


def ask(pinned: Pinned, pid: int, question: str, collection: str = "manuals") -> dict:
    res = pinned.on(pid, "POST", "/v1/ask", json={"question": question, "collection": collection})
    assert res.status_code == 200, res.text
    return res.json()


def test_every_worker_is_ready_with_the_same_settings(served: Served) -> None:
    pinned = served.pinned
    for pid in served.workers():
        assert pinned.on(pid, "GET", "/readyz").json()["status"] == "ready"
        assert ask(pinned, pid, "How long is the frame warranty?")["generator"] == "echo"  # option
        query = {"query": "warranty " * 60, "collection": "manuals"}
        long = pinned.on(pid, "POST", "/v1/search", json=query)
        assert long.status_code == 422  # SNAPRAG_MAX_QUERY_CHARS=500 from the environment
    import redis

    assert redis.Redis.from_url(served.redis_url).dbsize() > 0  # the config file's L2


def _count(text: str, line: str) -> float:
    for row in text.splitlines():
        if row.startswith(line):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_every_worker(served: Served) -> None:
    """/metrics answers for all workers, whichever one the scrape reaches."""
    pinned = served.pinned
    a, b = served.workers()
    series = 'snaprag_http_requests_total{method="POST",route="/v1/search",status="200"}'
    before = [_count(pinned.on(p, "GET", "/metrics").text, series) for p in (a, b)]
    assert before[0] == before[1]
    for i in range(6):
        for pid in (a, b):
            query = {"query": f"desk {i} {pid}", "collection": "manuals"}
            assert pinned.on(pid, "POST", "/v1/search", json=query).status_code == 200
    texts = [pinned.on(p, "GET", "/metrics").text for p in (a, b)]
    assert [_count(t, series) for t in texts] == [before[0] + 12] * 2
    rss = [_count(t, "process_resident_memory_bytes") for t in texts]
    assert all(r > 100 * 2**20 for r in rss)  # two processes with a model each, summed


def test_upload_through_one_worker_seen_by_all_then_delete_leaves_no_cached_answer(
    served: Served,
) -> None:
    pinned = served.pinned
    a, b = served.workers()
    # asked on both workers before the upload: their caches (L1, Redis, disk) hold answers
    for pid in (a, b, a, b):
        assert "ninth of March" not in ask(pinned, pid, ASK_ZEBRA)["answer"]
    upload = pinned.on(
        a,
        "POST",
        "/v1/documents",
        files=[("files", ("zebra.txt", ZEBRA, "text/plain"))],
        data={"collection": "manuals"},
    )
    assert upload.status_code == 202, upload.text
    job = wait_job(pinned, [b, a], upload.json()["job_id"])
    assert job["state"] == "done" and job["progress"]["done"] == 1, job
    for pid in (a, b):  # the new version, not a cached answer from before it
        assert "ninth of March" in ask(pinned, pid, ASK_ZEBRA)["answer"]
        hits = pinned.on(
            pid,
            "POST",
            "/v1/search",
            json={"query": "zebra project launch", "collection": "manuals"},
        )
        assert hits.json()["hits"][0]["source"].endswith("zebra.txt")
    doc_id = hits.json()["hits"][0]["doc_id"]
    gone_doc = pinned.on(b, "DELETE", f"/v1/documents/{doc_id}", params={"collection": "manuals"})
    assert gone_doc.status_code == 200, gone_doc.text
    for pid in (a, b):  # the same question again: no worker answers from a cached answer
        assert "ninth of March" not in ask(pinned, pid, ASK_ZEBRA)["answer"]
        hits = pinned.on(
            pid,
            "POST",
            "/v1/search",
            json={"query": "zebra project launch", "collection": "manuals"},
        )
        assert not any(h["source"].endswith("zebra.txt") for h in hits.json()["hits"])


def test_collections_made_and_deleted_through_one_worker_are_seen_by_the_other(
    served: Served,
) -> None:
    pinned = served.pinned
    a, b = served.workers()
    assert pinned.on(a, "POST", "/v1/collections", json={"name": "notes"}).status_code == 201
    assert "notes" in pinned.on(b, "GET", "/v1/collections").json()["collections"]
    assert pinned.on(b, "POST", "/v1/collections", json={"name": "notes"}).status_code == 409
    upload = pinned.on(
        b,
        "POST",
        "/v1/documents",
        files=[("files", ("zebra.txt", ZEBRA, "text/plain"))],
        data={"collection": "notes"},
    )
    assert wait_job(pinned, [a, b], upload.json()["job_id"])["state"] == "done"
    assert "ninth of March" in ask(pinned, a, ASK_ZEBRA, "notes")["answer"]
    assert pinned.on(a, "DELETE", "/v1/collections/notes").json() == {"deleted": "notes"}
    for pid in (a, b):
        missing = pinned.on(pid, "POST", "/v1/search", json={"query": "x", "collection": "notes"})
        assert missing.status_code == 404
        assert "notes" not in pinned.on(pid, "GET", "/v1/collections").json()["collections"]
    # made again under the same name: the other worker serves the new, empty one
    assert pinned.on(b, "POST", "/v1/collections", json={"name": "notes"}).status_code == 201
    empty = pinned.on(a, "GET", "/v1/documents", params={"collection": "notes"})
    assert empty.status_code in (200, 404) and "zebra" not in empty.text


def test_writes_into_one_collection_wait_for_the_writer(served: Served) -> None:
    """While another writer holds the collection (here: this test, through the ingest
    lock), an upload's job stays queued and a delete waits; both go on once it is free."""
    pinned, data = served.pinned, served.data
    a, b = served.workers()
    note = b"The walrus committee meets on the second floor every Tuesday.\n"
    with open(data / "manuals" / "ingest.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        upload = pinned.on(
            a,
            "POST",
            "/v1/documents",
            files=[("files", ("walrus.txt", note, "text/plain"))],
            data={"collection": "manuals"},
        )
        job_id = upload.json()["job_id"]
        time.sleep(1)
        assert pinned.on(b, "GET", f"/v1/jobs/{job_id}").json()["state"] == "queued"
        with ThreadPoolExecutor(1) as pool:
            doc = "/no/such/source.txt"
            delete = pool.submit(
                pinned.on, b, "DELETE", f"/v1/documents{doc}", params={"collection": "manuals"}
            )
            time.sleep(1)
            assert not delete.done()  # waiting for the writer, not refused
            fcntl.flock(lock, fcntl.LOCK_UN)
            assert delete.result(timeout=120).status_code == 404  # its turn: nothing to delete
    assert wait_job(pinned, [b, a], job_id)["state"] == "done"
    hits = pinned.on(
        b, "POST", "/v1/search", json={"query": "walrus committee", "collection": "manuals"}
    ).json()["hits"]
    assert hits[0]["source"].endswith("walrus.txt")


def test_uploads_into_one_collection_through_both_workers_at_once(served: Served) -> None:
    pinned = served.pinned
    a, b = served.workers()
    notes = {
        a: ("puffin.txt", b"Puffins nest in burrows on the northern cliffs.\n"),
        b: ("badger.txt", b"Badgers dig their setts under the old oak wood.\n"),
    }
    for pid in notes:  # both connections warm before the race
        pinned.client(pid)
    with ThreadPoolExecutor(2) as pool:
        sent = {
            pid: pool.submit(
                pinned.on,
                pid,
                "POST",
                "/v1/documents",
                files=[("files", (name, text, "text/plain"))],
                data={"collection": "manuals"},
            )
            for pid, (name, text) in notes.items()
        }
        jobs = {pid: f.result(timeout=120).json()["job_id"] for pid, f in sent.items()}
    for job_id in jobs.values():
        job = wait_job(pinned, [a, b], job_id)
        assert job["state"] == "done" and job["report"]["added"] == 1, job
    for query, name in (("puffins nest", "puffin.txt"), ("badger setts", "badger.txt")):
        for pid in (a, b):
            body = {"query": query, "collection": "manuals"}
            hits = pinned.on(pid, "POST", "/v1/search", json=body).json()["hits"]
            assert hits[0]["source"].endswith(name)


def test_a_job_whose_worker_died_is_failed_and_uploading_again_finishes_it(
    served: Served,
) -> None:
    pinned, data, proc = served.pinned, served.data, served.proc
    a, b = served.workers()
    note = b"The heron survey counts birds along the east canal each spring.\n"
    files = [("files", ("heron.txt", note, "text/plain"))]
    form = {"collection": "manuals"}
    with open(data / "manuals" / "ingest.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the job cannot start
        job_id = pinned.on(a, "POST", "/v1/documents", files=files, data=form).json()["job_id"]
        os.kill(a, signal.SIGKILL)
        for _ in range(600):
            if gone(a):
                break
            time.sleep(0.05)
        job = pinned.on(b, "GET", f"/v1/jobs/{job_id}").json()
        assert job["state"] == "failed" and job["error"]["code"] == "worker_stopped", job
    for _ in range(1200):  # the parent starts another worker in its place
        if len(children(proc.pid)) == 2 and a not in children(proc.pid):
            break
        time.sleep(0.05)
    assert (
        f"server process {a} stopped (killed by SIGKILL); starting another"
        in served.stderr.read_text()
    )
    for _ in range(2):  # uploaded again, twice: one source, not copies
        again = pinned.on(b, "POST", "/v1/documents", files=files, data=form).json()["job_id"]
        assert wait_job(pinned, [b], again)["state"] == "done"
    sources = pinned.on(b, "GET", "/v1/documents", params=form).json()["documents"]
    assert len([s for s in sources if s["path"].endswith("heron.txt")]) == 1


def test_sigterm_stops_every_worker(served: Served) -> None:
    workers = served.workers()
    served.proc.terminate()
    assert served.proc.wait(timeout=60) == 0
    assert all(gone(pid) for pid in workers)  # none left behind


def test_index_mode_and_ctrl_c(tmp_path: Path) -> None:
    """--index DIR with two workers (jobs kept in the index directory); SIGINT (Ctrl-C)
    stops every worker and exits 130."""
    from snaprag import Engine

    index = tmp_path / "index"
    with Engine.open(index) as e:
        assert e.ingest([SAMPLES / "faq.html"]).ok
    proc, url, _err = start(index, flag="--index")
    pinned = Pinned(url)
    try:
        a, b = sorted(children(proc.pid))
        note = [("files", ("otter.txt", b"Otters hold hands while they sleep.\n", "text/plain"))]
        job_id = pinned.on(a, "POST", "/v1/documents", files=note).json()["job_id"]
        assert wait_job(pinned, [b, a], job_id)["state"] == "done"
        assert (index / "jobs.db").exists()
        hits = pinned.on(b, "POST", "/v1/search", json={"query": "otters sleep"}).json()["hits"]
        assert hits[0]["source"].endswith("otter.txt")
    finally:
        pinned.close()
        workers = children(proc.pid)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            raise
    assert proc.returncode == 130
    assert len(workers) == 2 and all(gone(pid) for pid in workers)


def _hammer_disk_cache(path: str, seed: int, rounds: int) -> tuple[int, int, list[str]]:
    """One worker's use of the shared L3 file: puts, gets and trims (a small bound) of
    the same keys as the other. Returns (hits, errors, wrong values)."""
    import hashlib

    from snaprag.cache.disk import CacheDB, DiskCache

    disk = DiskCache(CacheDB(Path(path)), max_bytes=64 * 1024)
    hits, wrong = 0, []
    for i in range(rounds):
        keys = [f"k{(i * 7 + seed * 13 + j) % 120}" for j in range(4)]
        value = {k: hashlib.sha256(k.encode()).digest() * 40 for k in keys}  # per key, fixed
        disk.put_many([(k, value[k], 60.0) for k in keys])
        for k, got in zip(keys, disk.get_many(keys), strict=True):
            if got is not None:
                hits += 1
                if got != value[k]:
                    wrong.append(k)
    disk.db.close()
    return hits, disk.errors, wrong


def test_two_processes_share_one_disk_cache_file_safely(tmp_path: Path) -> None:
    """Two processes writing, reading and trimming one ``cache.db`` at once (as workers
    do): SQLite's locking keeps it whole; every value read is the one written for its key."""
    import multiprocessing

    from snaprag.cache.disk import CacheDB

    path = tmp_path / "cache.db"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_hammer_disk_cache, [(str(path), 0, 400), (str(path), 1, 400)])
    for hits, _errors, wrong in results:
        assert hits > 0 and wrong == []  # errors (a busy file) only ever become misses
    db = CacheDB(path)
    db.verify()  # a damaged file would be moved aside
    assert db.recoveries == 0 and not list(tmp_path.glob("cache.db.damaged-*"))
    db.close()


def test_collections_follow_the_disk_as_another_process_changes_it(tmp_path: Path) -> None:
    """Two workers' views of one --data folder (no model is loaded): a collection made
    through one, with its model, is found by the other; deleted, it is gone from both;
    made again, the other opens the new one instead of keeping the old."""
    from snaprag.config import Config
    from snaprag.serve.collections import Collections
    from snaprag.serve.errors import HTTPError

    config = Config(index_dir=tmp_path / "unused")
    a = Collections(config, data=tmp_path / "data")
    b = Collections(config, data=tmp_path / "data")
    made = a.create("notes", model="hash")
    seen = b.get("notes")
    assert b.names() == ["notes"] and seen.config.model == "hash"  # the model it was made for
    with pytest.raises(HTTPError) as taken:
        b.create("notes")
    assert taken.value.status == 409
    assert a.current("notes", made) and b.current("notes", seen)
    a.remove("notes")
    with pytest.raises(HTTPError) as missing:
        b.get("notes")
    assert missing.value.status == 404 and b.names() == [] and not b.current("notes", seen)
    b.create("notes")
    again = a.get("notes")
    assert again is not made and again.config.model is None  # the new one, default model
    a.close()
    b.close()
