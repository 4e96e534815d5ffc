"""OpenTelemetry traces over real OTLP/HTTP: a receiver on a loopback port decodes what the
exporter POSTs to /v1/traces (protobuf, as a collector would) while an engine searches
and answers with ``otel_endpoint`` pointing at it."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http", reason="the otel extra is not installed"
)
trace_service = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="opentelemetry-proto is not installed",
)

from snaprag import Config, Engine  # noqa: E402
from snaprag.errors import QueryError  # noqa: E402
from snaprag.observe import CompositeTelemetry, RecordingTelemetry  # noqa: E402
from snaprag.observe.otel import OtelTelemetry  # noqa: E402
from snaprag.testing import EchoGenerator, HashEmbedder  # noqa: E402


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint that keeps every request it is sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], Any]] = []  # (lower-cased headers, body)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) of every span received."""
        out = []
        with self.lock:
            requests = list(self.requests)
        for _, request in requests:
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, request))
        reply = trace_service.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP KeyValue list -> dict of plain values."""
    out = {}
    for kv in kvs:
        value = kv.value
        out[kv.key] = (
            getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None
        )
    return out


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def engine_with(tmp_path: Path, config: Config, telemetry: Any) -> Engine:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "warranty.md").write_text(
        "# Warranty\n\nThe frame has a ten year warranty. Claims go to the dealer.\n"
    )
    engine = Engine(config, embedder=HashEmbedder(), generator=EchoGenerator(), telemetry=telemetry)
    engine.ingest([docs])
    return engine


def test_searches_and_answers_arrive_as_otlp_spans(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the exporter's standard variables still apply: a collector's API key, the service name
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret-token")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "snaprag-test")
    config = Config(index_dir=tmp_path / "index", otel_endpoint=receiver.url)
    otel = OtelTelemetry.from_config(config)
    assert otel is not None
    recorder = RecordingTelemetry()
    telemetry = CompositeTelemetry([recorder, otel.for_collection("kb")])
    engine = engine_with(tmp_path, config, telemetry)
    try:
        assert engine.search("warranty frame", k=2)
        answer = engine.ask("How long is the warranty?")
        with pytest.raises(QueryError):
            engine.search("x" * (config.max_query_chars + 1))
    finally:
        engine.close()
        otel.close()  # flushes: every span is at the receiver when it returns

    assert receiver.requests, "the exporter sent nothing"
    headers = receiver.requests[0][0]
    assert headers.get("content-type") == "application/x-protobuf"
    assert headers.get("x-api-key") == "secret-token"
    received = receiver.spans()
    resource = received[0][0]
    assert resource["service.name"] == "snaprag-test"
    assert resource["service.version"]
    spans = [span for _, span in received]
    by_id = {span.span_id: span for span in spans}
    named = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)

    # search: a retrieval span and its stages, in one trace
    (search,) = [s for s in named["retrieval"] if not s.parent_span_id]
    attrs = attributes(search.attributes)
    assert attrs["gen_ai.operation.name"] == "retrieval"
    assert attrs["gen_ai.data_source.id"] == "kb"
    assert attrs["snaprag.queries"] == 1
    stages = {
        s.name
        for s in spans
        if s.parent_span_id == search.span_id and s.trace_id == search.trace_id
    }
    assert {"normalize", "cache", "embed", "dense", "bm25", "fuse", "fetch"} <= stages
    assert any(event.name == "cache.lookup" for event in search.events)

    # ask: retrieve (with the search stages inside) and the model's chat span
    (ask,) = named["ask"]
    (chat,) = named["chat echo"]
    assert chat.parent_span_id == ask.span_id and chat.trace_id == ask.trace_id
    chat_attrs = attributes(chat.attributes)
    assert chat_attrs["gen_ai.operation.name"] == "chat"
    assert chat_attrs["gen_ai.request.model"] == "echo"
    assert chat_attrs["gen_ai.usage.output_tokens"] == int(answer.metrics["completion_tokens"])
    retrieve = [s for s in named["retrieve"] if s.parent_span_id == ask.span_id]
    assert len(retrieve) == 1
    assert attributes(retrieve[0].attributes)["gen_ai.operation.name"] == "retrieval"
    embed_parents = {by_id[s.parent_span_id].name for s in named["embed"]}
    assert embed_parents == {"retrieval", "retrieve"}  # the search's and the answer's

    # the refused query: an error span that names the error, not the query
    (failed,) = [s for s in named["search"] if s.status.code == s.status.STATUS_CODE_ERROR]
    assert attributes(failed.attributes)["error.type"] == "QueryError"
    assert "xxxx" not in str(failed)

    # the recorder beside it saw the same operations: the composite fed both
    assert recorder.operations() == ["search", "ask"]


def test_a_collector_that_is_down_never_slows_or_fails_a_search(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as closed:
        port = closed.server_address[1]  # nothing listens here once it is closed
    config = Config(index_dir=tmp_path / "index", otel_endpoint=f"http://127.0.0.1:{port}")
    otel = OtelTelemetry(config.otel_endpoint, timeout=1.0)
    engine = engine_with(tmp_path, config, otel)
    try:
        for _ in range(20):  # the export runs on other threads: every search answers
            assert engine.search("warranty", k=1)
    finally:
        engine.close()
        otel.close()  # gives up on the dead collector (the test's timeout bounds it)


def test_a_server_with_otel_endpoint_exports_spans_named_by_collection(
    tmp_path: Path, receiver: Receiver
) -> None:
    """`snaprag serve` reads otel_endpoint: a real server's search arrives as spans that
    carry the collection's name, flushed when the server stops."""
    import httpx
    from serving import sample_index, start, stop

    sample_index(tmp_path / "index")
    proc, url = start(tmp_path / "index", env={"SNAPRAG_OTEL_ENDPOINT": receiver.url})
    try:
        res = httpx.post(f"{url}/v1/search", json={"query": "frame warranty years"}, timeout=30)
        assert res.status_code == 200
    finally:
        stop(proc)
    spans = [span for _, span in receiver.spans()]
    assert spans, "no span reached the collector"
    found = [attributes(s.attributes) for s in spans]
    assert any(a.get("gen_ai.data_source.id") == "default" for a in found), found
