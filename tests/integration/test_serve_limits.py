"""The server under concurrency, over real HTTP with the real model: micro-batched
searches return exactly the hits each query gets alone; above a memory threshold new work
gets 503 while health checks still answer; a local GGUF model's slots bound its lane."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from serving import sample_index, start, stop

from snaprag.serve.state import SEARCHES_PER_SLOT

QUERIES = [
    "frame warranty years",
    "how do I reset the desk height",
    "motor overheating error code",
    "cleaning the desktop surface",
    "maximum load of the frame",
    "return policy for damaged parts",
    "cable tray installation",
    "what does E01 mean",
    "child lock on the control panel",
    "anti collision sensitivity",
    "replacement legs order",
    "assembly tools needed",
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_index(tmp_path_factory.mktemp("limits") / "index")


def _hits(res: httpx.Response) -> list[tuple[str, float]]:
    assert res.status_code == 200, res.text
    return [(h["id"], h["score"]) for h in res.json()["hits"]]


def test_micro_batched_searches_get_exactly_their_own_hits(index: Path) -> None:
    # no query cache (every request is searched); batches held open up to 30 ms under load;
    # no latency budget (every concurrent request is admitted, to share batches)
    env = {
        "SNAPRAG_CACHE": "0",
        "SNAPRAG_SERVER_BATCH_WAIT_MS": "30",
        "SNAPRAG_SERVER_LATENCY_BUDGET": "0",
    }
    proc, url = start(index, env=env)
    try:
        with httpx.Client(timeout=60) as client:
            alone = {
                q: _hits(client.post(f"{url}/v1/search", json={"query": q, "k": 5}))
                for q in QUERIES
            }
        stats = httpx.get(f"{url}/v1/stats").json()["queues"]["search"]["batching"]
        assert stats["largest"] == 1  # one at a time: nothing to share

        def one(q: str) -> tuple[str, httpx.Response]:
            return q, httpx.post(f"{url}/v1/search", json={"query": q, "k": 5}, timeout=60)

        for _ in range(3):  # bounded: concurrent rounds until some requests shared a batch
            with ThreadPoolExecutor(len(QUERIES)) as pool:
                results = list(pool.map(one, QUERIES * 2))
            for q, res in results:
                together = _hits(res)
                assert [i for i, _ in together] == [i for i, _ in alone[q]], q
                for (_, a), (_, b) in zip(together, alone[q], strict=True):
                    assert a == pytest.approx(b, abs=1e-5)
                assert "batch_wait" in res.json()["timings"]
            stats = httpx.get(f"{url}/v1/stats").json()["queues"]["search"]["batching"]
            if stats["largest"] > 1:
                break
        assert stats["largest"] > 1, stats
        assert stats["batches"] < stats["queries"]
    finally:
        stop(proc)


def test_sustained_load_beyond_the_latency_budget_gets_429_long_before_the_queue_is_full(
    index: Path,
) -> None:
    """With a budget of 1x the unloaded latency, a second request in the lane is already
    over it: once the lane has stood busy for a window, sustained concurrent load gets
    429s (with Retry-After and retry-after-ms) although the queue has room for all."""
    env = {"SNAPRAG_CACHE": "0", "SNAPRAG_SERVER_LATENCY_BUDGET": "1"}
    proc, url = start(index, env=env)
    try:
        with httpx.Client(timeout=60) as client:
            for q in QUERIES:  # one at a time: the lane learns its unloaded latency
                assert client.post(f"{url}/v1/search", json={"query": q}).status_code == 200
            lane = client.get(f"{url}/v1/stats").json()["queues"]["search"]
        assert lane["unloaded_ms"] > 0 and lane["latency_budget"] == 1
        assert lane["limiting"] is False and lane["rejected"] == 0
        assert lane["concurrency"] + lane["queue_limit"] >= 2 * len(QUERIES)

        def client_loop(q: str) -> list[httpx.Response]:  # bounded: 10 requests each
            with httpx.Client(timeout=60) as client:
                return [
                    client.post(f"{url}/v1/search", json={"query": f"{q} {i}"}) for i in range(10)
                ]

        with ThreadPoolExecutor(len(QUERIES)) as pool:
            answers = [r for rs in pool.map(client_loop, QUERIES) for r in rs]
        assert {r.status_code for r in answers} <= {200, 429}
        refusals = [r for r in answers if r.status_code == 429]
        lane = httpx.get(f"{url}/v1/stats").json()["queues"]["search"]
        assert refusals and lane["over_budget"] == lane["rejected"] == len(refusals)
        res = refusals[0]
        assert int(res.headers["Retry-After"]) >= 1 and int(res.headers["retry-after-ms"]) > 0
        assert res.json()["error"]["code"] == "overloaded"
        assert "latency budget" in res.json()["error"]["message"]
    finally:
        stop(proc)


def test_over_the_memory_threshold_new_work_gets_503(index: Path) -> None:
    proc, url = start(index, "--llm", "echo", env={"SNAPRAG_SERVER_MAX_MEMORY_MB": "1"})
    try:
        assert httpx.get(f"{url}/healthz").status_code == 200
        for method, path, body in [
            ("POST", "/v1/search", {"query": "frame warranty"}),
            ("POST", "/v1/search/batch", {"queries": ["frame warranty"]}),
            ("POST", "/v1/ask", {"question": "How long is the frame warranty?"}),
            ("POST", "/v1/ask", {"question": "How long is the warranty?", "stream": True}),
            ("POST", "/v1/chat/completions", {"model": "snaprag", "messages": [
                {"role": "user", "content": "frame warranty?"}]}),
            ("POST", "/v1/embeddings", {"model": "snaprag", "input": "frame"}),
        ]:  # fmt: skip
            res = httpx.request(method, f"{url}{path}", json=body, timeout=30)
            assert res.status_code == 503, (path, res.status_code, res.text)
            assert res.json()["error"]["code"] == "overloaded"
            assert "memory" in res.json()["error"]["message"]
            assert int(res.headers["retry-after"]) >= 1
        stats = httpx.get(f"{url}/v1/stats").json()
        assert stats["queues"]["resources"]["refused"] >= 6
        assert stats["queues"]["resources"]["memory_mb"] > 1
    finally:
        stop(proc)


def test_a_local_model_lane_has_as_many_slots_as_the_model(index: Path) -> None:
    env = {"SNAPRAG_LLM_PARALLEL": "1", "SNAPRAG_SERVER_CONCURRENCY": "4"}
    proc, url = start(index, "--llm", "smollm2", env=env)
    try:
        queues = httpx.get(f"{url}/v1/stats").json()["queues"]
        assert queues["ask"]["concurrency"] == 1 and queues["chat"]["concurrency"] == 1
        assert queues["search"]["concurrency"] == 4 * SEARCHES_PER_SLOT  # not bound by the model
        assert queues["ask"]["queue_limit"] == 1  # the default: as many as work at once
    finally:
        stop(proc)


def _generating(url: str) -> int:
    return httpx.get(f"{url}/v1/stats").json()["queues"]["ask"]["generating"]


def _until_idle(url: str) -> int:
    """Poll (bounded) until no answer is being generated; the last count seen."""
    for _ in range(50):
        if (count := _generating(url)) == 0:
            return 0
        time.sleep(0.1)
    return count


def test_a_client_that_leaves_or_a_deadline_stops_the_generation(index: Path) -> None:
    # ~40 tokens, half a second each: an answer left running would go on for ~20 s
    env = {"SNAPRAG_CACHE": "0", "SNAPRAG_SERVER_TIMEOUT": "2"}
    proc, url = start(index, "--llm", "echo:0.5", env=env)
    try:
        question = {"question": "How long is the frame warranty?", "stream": True}
        with httpx.stream("POST", f"{url}/v1/ask", json=question, timeout=30) as stream:
            for line in stream.iter_lines():
                if line == "event: token":
                    break  # the client goes away after its first token
        assert _until_idle(url) == 0
        late = httpx.post(f"{url}/v1/ask", json={"question": "frame warranty?"}, timeout=30)
        assert late.status_code == 504 and late.json()["error"]["code"] == "deadline"
        assert _until_idle(url) == 0
        chat = {"model": "snaprag", "messages": [{"role": "user", "content": "frame warranty?"}]}
        late = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=30)
        assert late.status_code == 504
        assert _until_idle(url) == 0
        # streamed: the deadline arrives as an error event, and the generation stops
        events: list[str] = []
        streamed = {"question": "frame warranty?", "stream": True}
        with httpx.stream("POST", f"{url}/v1/ask", json=streamed, timeout=30) as stream:
            events = [line for line in stream.iter_lines() if line.startswith(("event", "data"))]
        assert "event: error" in events and '"deadline"' in events[-1], events[-3:]
        assert "event: done" not in events
        assert _until_idle(url) == 0
    finally:
        stop(proc)


def test_bodies_over_the_limit_are_413_however_they_are_sent(index: Path) -> None:
    proc, url = start(index, env={"SNAPRAG_SERVER_MAX_BODY": "4096"})
    try:

        def chunked():  # no Content-Length: the size is only known while reading
            yield b'{"query": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        for body in (chunked(), b'{"query": "' + b"y" * 10_000 + b'"}'):
            res = httpx.post(
                f"{url}/v1/search", content=body, headers={"content-type": "application/json"}
            )
            assert res.status_code == 413 and res.json()["error"]["code"] == "too_large"
        ok = httpx.post(f"{url}/v1/search", json={"query": "frame warranty"})
        assert ok.status_code == 200
        bad = httpx.post(
            f"{url}/v1/search", content=b"not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 422 and "not valid JSON" in bad.json()["error"]["message"]
        missing = httpx.get(f"{url}/nowhere")
        assert missing.status_code == 404 and "/docs" in missing.json()["error"]["message"]
    finally:
        stop(proc)


def test_per_route_limits_and_a_bounded_upload_queue(tmp_path: Path) -> None:
    """server_lanes sets a route's concurrency and queue; uploads beyond the ingest queue
    get 429 while the collection's writer is busy (held here through its lock)."""
    import fcntl

    data = tmp_path / "data"
    sample_index(data / "manuals")
    env = {"SNAPRAG_SERVER_LANES": "ask=1:3,ingest=1:1"}
    proc, url = start(data, env=env, flag="--data")
    try:
        queues = httpx.get(f"{url}/v1/stats").json()["queues"]
        assert (queues["ask"]["concurrency"], queues["ask"]["queue_limit"]) == (1, 3)
        assert httpx.post(f"{url}/v1/collections", json={"name": "empty"}).status_code == 201
        empty = httpx.post(f"{url}/v1/search", json={"query": "x", "collection": "empty"})
        assert empty.status_code == 404 and "POST /v1/documents" in empty.text
        assert str(data) not in empty.text  # no server path
        assert queues["ingest"]["queue_limit"] == 1
        with open(data / "manuals" / "ingest.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the writer cannot start
            codes = []
            for i in range(3):
                note = ("files", (f"n{i}.txt", f"note number {i}\n".encode(), "text/plain"))
                res = httpx.post(
                    f"{url}/v1/documents", files=[note], data={"collection": "manuals"}
                )
                codes.append(res.status_code)
                if res.status_code == 429:
                    assert res.json()["error"]["code"] == "overloaded"
                    assert int(res.headers["retry-after"]) >= 1
                for _ in range(100):  # bounded: the first job reaches the (held) writer
                    pending = httpx.get(f"{url}/v1/stats").json()["queues"]["ingest"]
                    if i or pending["pending_jobs"] == 0:
                        break
                    time.sleep(0.05)
            fcntl.flock(lock, fcntl.LOCK_UN)
        assert codes[:2] == [202, 202] and codes[2] == 429, codes
    finally:
        stop(proc)
