"""The OpenAI-compatible client against a real server process on loopback.

The server is llama.cpp's (the ``xllamacpp`` wheel) serving the bundled SmolLM2 GGUF in a
separate Python process. Failure modes use real sockets too: a closed port, a socket that
accepts and never answers, one that sends half an SSE stream and hangs up, a server
process killed mid-answer, and a forwarding proxy that fails the first requests.
"""

from __future__ import annotations

import http.server
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from snaprag import Engine
from snaprag.config import default_cache_dir
from snaprag.errors import GenerationError
from snaprag.generate.base import Delta, Finish, GenerationSettings
from snaprag.generate.local import bundled_model_path
from snaprag.generate.openai import OpenAIGenerator

pytest.importorskip("xllamacpp")

SERVER = r"""
import sys
import xllamacpp

p = xllamacpp.CommonParams()
p.model.path = sys.argv[1]
p.n_ctx = int(sys.argv[2])
p.n_parallel = 1
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 2
p.cpuparams.poll = p.cpuparams_batch.poll = 0
p.verbosity = -1
p.hostnames = ["127.0.0.1"]
p.port = 0
server = xllamacpp.Server(p)
print(server.listening_address, flush=True)
sys.stdin.read()  # serve until the test closes stdin (or kills this process)
"""
N_CTX = 1024
MESSAGES = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


def start_server() -> tuple[subprocess.Popen[str], str]:
    model = bundled_model_path(default_cache_dir())
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model), str(N_CTX)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 90)
    address = proc.stdout.readline().strip() if ready else ""
    if not address.startswith("http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"the llama.cpp server did not start (said {address!r})")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(address + "/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the llama.cpp server never became healthy")
            time.sleep(0.2)
    return proc, address


def stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, address = start_server()
    yield address + "/v1"
    stop_server(proc)


def client(base_url: str, max_tokens: int = 8, **kw) -> OpenAIGenerator:
    kw.setdefault("timeout", 30.0)
    return OpenAIGenerator(base_url, settings=GenerationSettings(max_tokens=max_tokens), **kw)


def collect(gen: OpenAIGenerator, messages=MESSAGES) -> tuple[str, Finish, int]:
    text, finish, pieces = "", None, 0
    for item in gen.stream(messages):
        if isinstance(item, Delta):
            text += item.text
            pieces += 1
        else:
            finish = item
    assert finish is not None
    return text, finish, pieces


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- real server


def test_streams_from_a_real_server(server: str) -> None:
    gen = client(server)
    gen.load()
    assert gen.model.endswith(".gguf")  # resolved from GET /v1/models
    assert gen.tokenizer == "server"  # llama.cpp's /tokenize
    assert gen.prompt_limit == N_CTX - 8  # from /props
    text, finish, pieces = collect(gen)
    assert text.strip() and pieces >= 2
    assert finish.finish_reason in ("stop", "length")
    assert 1 <= (finish.completion_tokens or 0) <= 8
    # the prompt estimate (contents + per-message allowance) never undercounts
    assert 0 < (finish.prompt_tokens or 0) <= gen.count_prompt(MESSAGES)
    assert gen.count_tokens(["Hello world"]) == [2]  # the model's own tokenizer
    assert gen.requests == 1


def test_non_streaming_matches_streaming(server: str) -> None:
    gen = client(server)
    text, finish = gen.complete(MESSAGES)
    streamed, _, _ = collect(gen)
    assert text and text == streamed  # greedy decoding: the same text either way
    assert finish.completion_tokens and finish.completion_tokens <= 8


def test_server_context_overflow(server: str) -> None:
    gen = client(server, retries=2, backoff=6.0)  # one retry would wait >= 6 s
    long = [{"role": "user", "content": "word " * (N_CTX * 2)}]
    t = time.monotonic()
    with pytest.raises(GenerationError) as info:
        collect(gen, long)
    assert info.value.code == "context_overflow"
    assert time.monotonic() - t < 5  # a 400 is not retried


def test_engine_answers_through_the_server(server: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.md").write_text(
        "# Warranty\n\nThe frame and motors are covered for seven years. "
        "Electronics are covered for three years.\n"
    )
    (docs / "reset.txt").write_text("To reset the desk, hold DOWN for ten seconds.\n")
    with Engine.open(
        tmp_path / "index",
        cache=False,
        llm=f"openai:{server}",
        llm_max_tokens=8,
        context_tokens=150,
    ) as eng:
        eng.ingest([docs])
        events = list(eng.ask_events("How long is the frame covered?", k=2))
        assert events[0].kind == "hits" and events[-1].kind == "done"
        answer = events[-1].answer
        assert answer.generator.startswith("openai:") and answer.text
        assert answer.metrics["ttft_ms"] > 0 and answer.timings.stages["prefill"] > 0
        assert answer.metrics["context_chunks"] >= 1
        fp = eng.generator.fingerprint
        assert server in fp and eng.generator.backend.model in fp and '"prompt":"1"' in fp


def test_server_killed_mid_stream() -> None:
    proc, address = start_server()
    try:
        gen = client(address + "/v1", max_tokens=400, timeout=20, retries=2)
        story = [{"role": "user", "content": "Write a very long story about a desk."}]
        got: list[str] = []
        t = time.monotonic()
        with pytest.raises(GenerationError) as info:
            for item in gen.stream(story):
                if isinstance(item, Delta):
                    got.append(item.text)
                    if len(got) == 3:
                        os.kill(proc.pid, signal.SIGKILL)
        assert len(got) >= 3
        assert info.value.code == "stream_dropped"
        assert "streamed pieces" in str(info.value)  # no retry once text has arrived
        assert time.monotonic() - t < 20
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- failure modes


def test_refused_connection_retried_with_backoff() -> None:
    port = free_port()  # bound, then closed: nothing listens there
    gen = client(f"http://127.0.0.1:{port}/v1", model="m", retries=2, backoff=0.1)
    t = time.monotonic()
    with pytest.raises(GenerationError) as info:
        collect(gen)
    elapsed = time.monotonic() - t
    assert info.value.code == "connection_refused"
    assert "tried 3 times" in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
    assert 0.3 <= elapsed < 3  # 0.1 + 0.2 s of backoff (plus jitter)


def test_refused_connection_is_an_error_event(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The frame is covered for seven years.\n")
    url = f"http://127.0.0.1:{free_port()}/v1"
    with Engine.open(tmp_path / "i", cache=False, llm=f"openai:{url}", llm_retries=0) as eng:
        eng.ingest([docs])
        events = list(eng.ask_events("How long is the frame covered?"))
        assert [e.kind for e in events] == ["hits", "error"]
        assert events[-1].code == "connection_refused"
        with pytest.raises(GenerationError, match="connection refused"):
            eng.ask("How long is the frame covered?")


class SilentServer:
    """Accepts connections and reads requests, but never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_timeout_when_the_server_never_answers() -> None:
    silent = SilentServer()
    try:
        gen = client(
            f"http://127.0.0.1:{silent.port}/v1", model="m", timeout=0.5, retries=1, backoff=0.1
        )
        t = time.monotonic()
        with pytest.raises(GenerationError) as info:
            collect(gen)
        elapsed = time.monotonic() - t
    finally:
        silent.close()
    assert info.value.code == "timeout" and "0.5 s" in str(info.value)
    assert silent.accepted == 2  # the first try and one retry
    assert 1.0 <= elapsed < 5


def test_partial_stream_then_hang_up() -> None:
    """A loopback server sends two SSE events, then closes without finishing."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            for piece in ("Sev", "en years"):
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                conn.sendall(f"data: {json.dumps(chunk)}\n\n".encode())
                time.sleep(0.05)

    threading.Thread(target=serve, daemon=True).start()
    gen = client(f"http://127.0.0.1:{port}/v1", model="m", retries=3)
    got: list[str] = []
    try:
        with pytest.raises(GenerationError) as info:
            for item in gen.stream(MESSAGES):
                if isinstance(item, Delta):
                    got.append(item.text)
    finally:
        sock.close()
    assert got == ["Sev", "en years"]
    assert info.value.code == "stream_dropped"
    assert "after 2 streamed pieces" in str(info.value)


class FlakyProxy:
    """Forwards to the real server after answering the first ``fail`` requests with 503."""

    def __init__(self, upstream: str, fail: int, status: int = 503) -> None:
        self.upstream = upstream
        self.fail = fail
        self.times: list[float] = []
        self.auth: list[str | None] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.times.append(time.monotonic())
                proxy.auth.append(self.headers.get("Authorization"))
                if len(proxy.times) <= proxy.fail:
                    payload = json.dumps({"error": {"message": "busy, try later"}}).encode()
                    self.send_response(status)
                    self.send_header("Retry-After", "0.3")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                req = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=30) as up:
                    self.send_response(up.status)
                    self.send_header("Content-Type", up.headers["Content-Type"])
                    self.end_headers()
                    for line in up:
                        self.wfile.write(line)
                        self.wfile.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_retries_with_backoff_then_success(server: str, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    direct, _, _ = collect(client(server, model="m"))
    proxy = FlakyProxy(server.removesuffix("/v1"), fail=2)
    try:
        # own backoff 10 ms: the gaps below come from the server's Retry-After (0.3 s)
        text, finish, _ = collect(client(proxy.url, model="m", retries=2, backoff=0.01))
    finally:
        proxy.close()
    assert text == direct and finish.finish_reason
    assert len(proxy.times) == 3
    gaps = [b - a for a, b in zip(proxy.times, proxy.times[1:], strict=False)]
    assert all(g >= 0.3 for g in gaps)  # Retry-After was honoured
    assert proxy.auth == ["Bearer sk-from-env"] * 3


def test_retries_exhausted(server: str) -> None:
    proxy = FlakyProxy(server.removesuffix("/v1"), fail=99)
    try:
        with pytest.raises(GenerationError) as info:
            collect(client(proxy.url, model="m", retries=1))
    finally:
        proxy.close()
    assert info.value.code == "server_error"
    assert "HTTP 503" in str(info.value) and "busy, try later" in str(info.value)
    assert "tried 2 times" in str(info.value) and len(proxy.times) == 2


def test_auth_error_is_not_retried(server: str) -> None:
    proxy = FlakyProxy(server.removesuffix("/v1"), fail=99, status=401)
    try:
        with pytest.raises(GenerationError) as info:
            collect(client(proxy.url, model="m", retries=3, api_key="wrong"))
    finally:
        proxy.close()
    assert len(proxy.times) == 1 and proxy.auth == ["Bearer wrong"]
    assert "API key" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
