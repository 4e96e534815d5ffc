"""`snaprag serve` over real HTTP: a real server process on a free loopback port, the real
embedding model over the bundled samples, the official openai client.

The answers come from the ``echo`` generator (with a pause per token), so that streaming
can be seen token by token and a burst can fill the queue; search is the real pipeline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from serving import sample_index, start, stop


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_index(tmp_path_factory.mktemp("serve") / "index")


@pytest.fixture(scope="module")
def server(index: Path):
    # the query cache off: a repeated question would be replayed as one piece of text
    proc, url = start(index, "--llm", "echo:0.02", env={"SNAPRAG_CACHE": "0"})
    yield url
    stop(proc)


def test_health_ready_and_openapi(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["collections"] == 1  # a count: no names
    spec = httpx.get(f"{server}/openapi.json").json()
    assert "/v1/search" in spec["paths"] and "/v1/chat/completions" in spec["paths"]
    page = httpx.get(f"{server}/docs").text
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    js = httpx.get(f"{server}/static/swagger-ui/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_search_contract_and_server_timing(server: str) -> None:
    res = httpx.post(f"{server}/v1/search", json={"query": "frame warranty years", "k": 3})
    assert res.status_code == 200, res.text
    data = res.json()
    assert len(data["hits"]) == 3
    assert set(data["hits"][0]) == {"id", "doc_id", "source", "page", "section", "score", "text"}
    assert data["hits"][0]["source"].endswith("warranty-and-service.pdf")
    assert "embed" in data["timings"] or data["timings"].get("cache") is not None
    assert "dur=" in res.headers["server-timing"]
    upper = httpx.post(f"{server}/v1/search", json={"query": "warranty", "mode": "BM25"})
    assert upper.status_code == 200  # modes are case-insensitive, as on the command line
    pdf = httpx.post(
        f"{server}/v1/search",
        json={"query": "warranty", "k": 5, "filters": {"type": "PDF"}},
    ).json()
    assert pdf["hits"] and all(h["source"].endswith(".pdf") for h in pdf["hits"])


def test_batch_search(server: str) -> None:
    res = httpx.post(
        f"{server}/v1/search/batch", json={"queries": ["frame warranty", "reset the desk"], "k": 2}
    )
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert len(results) == 2 and all(len(r["hits"]) == 2 for r in results)


def test_ask_json_and_streamed_events(server: str) -> None:
    res = httpx.post(f"{server}/v1/ask", json={"question": "How long is the frame warranty?"})
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["answer"] and data["citations"][0]["n"] == 1 and "total" in data["timings"]
    events: list[tuple[str, float]] = []
    with httpx.stream(
        "POST",
        f"{server}/v1/ask",
        json={"question": "How long is the frame warranty?", "stream": True},
        timeout=30,
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                events.append((line[7:], time.perf_counter()))
    kinds = [k for k, _ in events]
    assert kinds[0] == "hits" and kinds[-1] == "done" and kinds.count("token") > 5
    tokens = [t for k, t in events if k == "token"]
    assert tokens[-1] - tokens[0] > 0.05  # they arrived as generated, not all at once


def test_errors_are_json_4xx(server: str) -> None:
    cases = [
        ({"query": ""}, 422, "bad_query"),
        ({"k": 3}, 422, "bad_request"),
        ({"query": "x", "k": 0}, 422, "bad_request"),
        ({"query": "x", "collection": "nope"}, 404, "not_found"),
        ({"query": "x", "mode": "fuzzy"}, 422, "bad_request"),
        ({"query": "x", "filters": {"type": "exe"}}, 400, "bad_request"),
        ({"query": "x" * 9000}, 422, "bad_query"),
    ]
    for payload, status, code in cases:
        res = httpx.post(f"{server}/v1/search", json=payload)
        assert res.status_code == status, (payload, res.text)
        assert res.json()["error"]["code"] == code, payload
    raw = httpx.post(
        f"{server}/v1/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert raw.status_code == 422 and "error" in raw.json()
    big = httpx.post(f"{server}/v1/search", content=b"x" * 2_000_000)
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    assert httpx.get(f"{server}/v1/nothing").status_code == 404


def test_openai_client_chat_stream_embeddings_models(server: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    question = [{"role": "user", "content": "How long is the frame warranty?"}]
    reply = client.chat.completions.create(model="snaprag", messages=question)
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    assert reply.model_extra["snaprag"]["citations"][0]["n"] == 1
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model="default", messages=question, stream=True)
        if chunk.choices
    ]
    assert len([p for p in pieces if p]) > 5
    assert "".join(pieces) == reply.choices[0].message.content
    emb = client.embeddings.create(model="snaprag", input=["frame warranty", "desk"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 384
    assert {m.id for m in client.models.list()} == {"snaprag", "default"}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="other", messages=question)


def test_burst_beyond_the_queue_gets_429_with_retry_after(index: Path) -> None:
    env = {"SNAPRAG_SERVER_CONCURRENCY": "1", "SNAPRAG_SERVER_QUEUE": "1"}
    proc, url = start(index, "--llm", "echo:0.05", env=env)
    try:

        def ask(i: int) -> httpx.Response:
            return httpx.post(f"{url}/v1/ask", json={"question": f"frame warranty {i}"}, timeout=60)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(ask, range(8)))
        codes = sorted(r.status_code for r in results)
        assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
        assert set(codes) <= {200, 429}
        refused = next(r for r in results if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "overloaded"
        stats = httpx.get(f"{url}/v1/stats").json()
        assert stats["queues"]["ask"]["rejected"] >= 1
        assert stats["collections"]["default"]["chunks"] > 0
    finally:
        stop(proc)


def test_refuses_a_public_address_without_insecure(index: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "snaprag.cli", "serve", "--index", str(index), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "refusing to listen on 0.0.0.0" in res.stderr


def test_ask_stream_events_are_json(server: str) -> None:
    with httpx.stream(
        "POST", f"{server}/v1/ask", json={"question": "reset the desk", "stream": True}, timeout=30
    ) as stream:
        datas = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert datas[-1]["answer"] and datas[0]["event"] == "hits"


@pytest.mark.timeout(600)
def test_fuzzing_from_the_openapi_schema_finds_no_server_error(server: str) -> None:
    """Property-based requests generated from /openapi.json (bounded, fixed seed): every
    answer is a 2xx or a 4xx JSON error, never a 5xx."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=560,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "passed" in res.stdout


def _wait_job(url: str, job_id: str) -> dict:
    for _ in range(600):
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_collections_uploads_while_searching_and_delete(tmp_path: Path) -> None:
    """--data: a collection created over the API, a document uploaded and ingested as a job
    while 20 concurrent searches of another collection keep answering, then deleted: no
    cached answer about it survives."""

    data = tmp_path / "data"
    sample_index(data / "manuals")
    proc, url = start(data, flag="--data")
    try:
        assert httpx.get(f"{url}/v1/collections").json() == {"collections": ["manuals"]}
        created = httpx.post(f"{url}/v1/collections", json={"name": "notes"})
        assert created.status_code == 201
        again = httpx.post(f"{url}/v1/collections", json={"name": "notes"})
        assert again.status_code == 409
        bad = httpx.post(f"{url}/v1/collections", json={"name": "../etc"})
        assert bad.status_code == 422
        note = b"The zebra project launches on the ninth of March at the river office.\n"
        with ThreadPoolExecutor(20) as pool:
            searches = [
                pool.submit(
                    httpx.post,
                    f"{url}/v1/search",
                    json={"query": f"warranty frame {i}", "collection": "manuals"},
                    timeout=60,
                )
                for i in range(20)
            ]
            upload = httpx.post(
                f"{url}/v1/documents",
                files=[("files", ("zebra.txt", note, "text/plain"))],
                data={"collection": "notes"},
                timeout=60,
            )
            assert [f.result().status_code for f in searches] == [200] * 20
        assert upload.status_code == 202, upload.text
        job = _wait_job(url, upload.json()["job_id"])
        assert job["state"] == "done" and job["progress"]["done"] == 1, job
        # uploads run below the queries' priority (the OS's niceness of the ingest thread)
        assert httpx.get(f"{url}/v1/stats").json()["queues"]["ingest"]["nice"] == 10
        ask = {"question": "When does the zebra project launch?", "collection": "notes"}
        first = httpx.post(f"{url}/v1/ask", json=ask).json()
        assert "ninth of March" in first["answer"]
        assert "ninth of March" in httpx.post(f"{url}/v1/ask", json=ask).json()["answer"]
        docs = httpx.get(f"{url}/v1/documents", params={"collection": "notes"}).json()
        doc_id = httpx.post(
            f"{url}/v1/search", json={"query": "zebra", "collection": "notes"}
        ).json()["hits"][0]["doc_id"]
        assert len(docs["documents"]) == 1
        gone = httpx.delete(f"{url}/v1/documents/{doc_id}", params={"collection": "notes"})
        assert gone.status_code == 200 and gone.json()["deleted"] in ("document", "source")
        after = httpx.post(f"{url}/v1/ask", json=ask).json()
        assert "ninth of March" not in after["answer"]  # the cached answer is unreachable
        wrong = httpx.post(
            f"{url}/v1/documents",
            files=[("files", ("tool.exe", b"MZ", "application/octet-stream"))],
            data={"collection": "notes"},
        )
        assert wrong.status_code == 415 and wrong.json()["error"]["code"] == "unsupported_type"
        assert httpx.get(f"{url}/v1/jobs/nope").status_code == 404
        assert httpx.delete(f"{url}/v1/collections/notes").json() == {"deleted": "notes"}
        assert not (data / "notes").exists()
        missing = httpx.post(f"{url}/v1/search", json={"query": "x", "collection": "notes"})
        assert missing.status_code == 404
    finally:
        stop(proc)


def test_keys_and_tenant_isolation_on_every_route(tmp_path: Path) -> None:
    """Two tenants' keys: each sees only its own collections; another tenant's collection
    is answered exactly like a missing one (404) on every route; scopes are enforced; no
    key (or a revoked one) is 401 once keys exist."""
    data = tmp_path / "data"
    data.mkdir()
    cli = [sys.executable, "-m", "snaprag.cli", "keys"]

    def make_key(tenant: str, scopes: str) -> str:
        res = subprocess.run(
            [*cli, "create", "--data", str(data), "--tenant", tenant, "--scopes", scopes, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["tenant"] == tenant and out["scopes"] == scopes.split(",")
        return out["key"]

    alice = make_key("alice", "read,write,admin")
    bob = make_key("bob", "read,write")
    bob_reader = make_key("bob", "read")
    stored = (data / "keys.json").read_text()
    assert alice not in stored and bob not in stored  # hashes only
    listed = subprocess.run(
        [*cli, "list", "--data", str(data), "--json"], capture_output=True, text=True, timeout=60
    )
    assert {k["tenant"] for k in json.loads(listed.stdout)} == {"alice", "bob"}
    proc, url = start(data, flag="--data")

    def h(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    try:
        assert httpx.get(f"{url}/v1/collections").status_code == 401
        assert httpx.get(f"{url}/v1/collections", headers=h("snr_x_y")).status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200  # probes need no key
        assert (
            httpx.post(f"{url}/v1/collections", json={"name": "acme"}, headers=h(alice)).status_code
            == 201
        )
        assert (
            httpx.post(f"{url}/v1/collections", json={"name": "bobs"}, headers=h(bob)).status_code
            == 201
        )
        denied = httpx.post(f"{url}/v1/collections", json={"name": "x"}, headers=h(bob_reader))
        assert denied.status_code == 403
        upload = httpx.post(
            f"{url}/v1/documents",
            files=[("files", ("secret.txt", b"Alice's launch code is tangerine.\n", "text/plain"))],
            data={"collection": "acme"},
            headers=h(alice),
            timeout=60,
        )
        assert upload.status_code == 202, upload.text
        job_id = upload.json()["job_id"]
        for _ in range(600):
            job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=h(alice)).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert job["state"] == "done", job
        ok = httpx.post(
            f"{url}/v1/search",
            json={"query": "launch code", "collection": "acme"},
            headers=h(alice),
        )
        assert ok.status_code == 200 and "tangerine" in ok.json()["hits"][0]["text"]
        # bob: alice's collection looks exactly like one that does not exist
        probes = [
            ("POST", "/v1/search", {"json": {"query": "launch code", "collection": "acme"}}),
            ("POST", "/v1/search/batch", {"json": {"queries": ["x"], "collection": "acme"}}),
            ("POST", "/v1/ask", {"json": {"question": "launch code?", "collection": "acme"}}),
            (
                "POST",
                "/v1/chat/completions",
                {"json": {"model": "acme", "messages": [{"role": "user", "content": "code?"}]}},
            ),
            ("POST", "/v1/embeddings", {"json": {"model": "acme", "input": "x"}}),
            ("GET", "/v1/documents", {"params": {"collection": "acme"}}),
            ("DELETE", "/v1/documents/whatever", {"params": {"collection": "acme"}}),
            ("DELETE", "/v1/collections/acme", {}),
            ("GET", f"/v1/jobs/{job_id}", {}),
        ]
        for method, path, kw in probes:
            theirs = httpx.request(method, f"{url}{path}", headers=h(bob), timeout=60, **kw)
            missing = httpx.request(
                method,
                f"{url}{path.replace('acme', 'nope').replace(job_id, 'nope')}",
                headers=h(bob),
                timeout=60,
                **{k: json.loads(json.dumps(v).replace("acme", "nope")) for k, v in kw.items()},
            )
            assert theirs.status_code == missing.status_code, (path, theirs.text)
            assert theirs.status_code in (403, 404), (path, theirs.status_code)
            assert "tangerine" not in theirs.text
        models = httpx.get(f"{url}/v1/models", headers=h(bob)).json()
        assert {m["id"] for m in models["data"]} == {"bobs"}
        assert httpx.get(f"{url}/v1/collections", headers=h(bob)).json() == {
            "collections": ["bobs"]
        }
        stats = httpx.get(f"{url}/v1/stats", headers=h(bob)).json()
        assert set(stats["collections"]) == {"bobs"}
        # what the server measures: admin keys only, and no other tenant's query text
        note = ("files", ("plan.txt", b"The merger closes in May.\n", "text/plain"))
        sent = httpx.post(
            f"{url}/v1/documents", files=[note], data={"collection": "bobs"}, headers=h(bob)
        )
        for _ in range(600):
            job = httpx.get(f"{url}/v1/jobs/{sent.json()['job_id']}", headers=h(bob)).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        secret = {"query": "bob's quiet merger with zebracorp", "collection": "bobs"}
        assert httpx.post(f"{url}/v1/search", json=secret, headers=h(bob)).status_code == 200
        for path in ("/metrics", "/v1/metrics/summary", "/v1/alerts"):
            assert httpx.get(f"{url}{path}", headers=h(bob)).status_code == 403, path
        summary = httpx.get(f"{url}/v1/metrics/summary", headers=h(alice))
        assert summary.status_code == 200 and summary.json()["series"]["route:search"]["count"]
        assert "zebracorp" not in summary.text
        assert any("launch code" in q["query"] for q in summary.json()["slowest"])  # her own
        scraped = httpx.get(f"{url}/metrics", headers=h(alice)).text
        assert "zebracorp" not in scraped and 'collection="bobs"' not in scraped
        assert 'snaprag_index_chunks{collection="acme"}' in scraped
        revoke = subprocess.run(
            [*cli, "revoke", bob_reader.split("_")[1], "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoke.returncode == 0, revoke.stderr
        assert httpx.get(f"{url}/v1/collections", headers=h(bob_reader)).status_code == 401
    finally:
        stop(proc)


def test_api_page_renders_in_a_real_browser_without_internet(server: str, tmp_path: Path) -> None:
    """Headless Chromium (background networking off, as on a closed machine) renders /docs
    from the assets shipped in the package: every route shows up."""
    import shutil

    chromium = shutil.which("chromium")
    assert chromium, "the browser test needs Debian's chromium (.ci/run installs it)"
    res = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=8000",
            "--dump-dom",
            f"{server}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = res.stdout
    for path in ("/v1/search", "/v1/ask", "/v1/chat/completions", "/v1/documents"):
        assert f'data-path="{path}"' in dom, res.stderr[-2000:]
