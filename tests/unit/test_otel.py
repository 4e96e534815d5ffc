"""OtelTelemetry: the stage layout, the span tree and its GenAI attributes (in-memory
exporter; the OTLP/HTTP export is tested against a real receiver in the integration tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from snaprag.observe.stage_layout import PlacedStage, generator_attributes, layout_stages
from snaprag.types import StageTimings

# --------------------------------------------------------------------------- layout (pure)


def test_search_stages_follow_the_pipeline_with_bm25_beside_the_dense_branch() -> None:
    stages = {"fetch": 1.0, "normalize": 0.5, "embed": 3.0, "bm25_tokenize": 0.5, "bm25": 1.0}
    stages |= {"cache": 0.5, "load": 1.0, "dense": 2.0, "fuse": 0.5}
    placed, length = layout_stages(stages)
    at = {p.stage: p for p in placed}
    assert [p.stage for p in placed][:3] == ["normalize", "cache", "load"]
    assert at["load"].start_ms == 1.0
    # both branches start when the snapshot is loaded; fusion waits for the longer one
    assert at["bm25_tokenize"].start_ms == at["embed"].start_ms == 2.0
    assert at["bm25"].start_ms == 2.5 and at["dense"].start_ms == 5.0
    assert at["fuse"].start_ms == 7.0 and at["fetch"].end_ms == length == 8.5
    assert all(p.parent is None for p in placed)


def test_an_answers_search_stages_sit_inside_retrieve() -> None:
    stages = {"normalize": 0.1, "cache": 0.4, "embed": 2.0, "dense": 1.0, "bm25": 1.0}
    stages |= {"retrieve": 4.0, "context": 0.5, "prefill": 10.0, "decode": 20.0, "total": 40.0}
    placed, length = layout_stages(stages)
    at = {p.stage: p for p in placed}
    assert at["retrieve"] == PlacedStage("retrieve", 0.5, 4.0, None)
    assert at["embed"].parent == at["bm25"].parent == "retrieve"
    assert at["embed"].start_ms == at["bm25"].start_ms == 0.5
    assert at["context"].start_ms == 4.5 and at["prefill"].start_ms == 5.0
    assert at["decode"].end_ms == 35.0
    assert length == 40.0  # the measured total, longer than the stages
    names = [p.stage for p in placed]
    assert names.index("retrieve") < names.index("embed")  # parents before children


def test_unknown_stages_come_last_and_nothing_is_lost() -> None:
    stages = {"queue_wait": 2.0, "custom": 1.0, "embed": 1.0, "other": 0.5, "negative": -1.0}
    placed, length = layout_stages(stages)
    assert [p.stage for p in placed] == ["queue_wait", "embed", "custom", "other"]
    assert length == 4.5
    assert layout_stages({}) == ([], 0.0)


@pytest.mark.parametrize(
    ("generator", "model", "provider"),
    [
        ("gguf:SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf", "llama.cpp"),
        ("openai:qwen2.5-7b", "qwen2.5-7b", "openai"),
        ("echo", "echo", "snaprag.echo"),
    ],
)
def test_generator_attributes(generator: str, model: str, provider: str) -> None:
    attrs = generator_attributes(generator)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == model
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == provider


# --------------------------------------------------------------------------- spans


@pytest.fixture()
def traced() -> Any:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from snaprag.observe.otel import OtelTelemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = OtelTelemetry(tracer_provider=provider)

    def spans() -> list[Any]:
        assert telemetry.force_flush(10)
        return list(exporter.get_finished_spans())

    telemetry.spans = spans  # type: ignore[attr-defined]
    yield telemetry
    telemetry.close()
    provider.shutdown()


def by_name(spans: list[Any]) -> dict[str, Any]:
    return {s.name: s for s in spans}


def test_a_search_is_a_retrieval_span_with_a_child_per_stage(traced: Any) -> None:
    traced.cache_event("retrieval", "memory", 0, 1)
    traced.cache_event("retrieval", "disk", 0, 1)
    stages = {"normalize": 0.2, "cache": 0.3, "load": 0.5, "bm25": 1.0, "embed": 2.0}
    traced.stage_timings("search", StageTimings(dict(stages)), 4)
    spans = traced.spans()
    root = by_name(spans)["retrieval"]
    assert root.parent is None
    assert root.attributes["gen_ai.operation.name"] == "retrieval"
    assert root.attributes["snaprag.operation"] == "search"
    assert root.attributes["snaprag.queries"] == 4
    assert root.attributes["snaprag.cache.hit"] is False
    assert [(e.name, e.attributes["snaprag.cache.tier"]) for e in root.events] == [
        ("cache.lookup", "memory"),
        ("cache.lookup", "disk"),
    ]
    children = [s for s in spans if s is not root]
    assert sorted(s.name for s in children) == sorted(stages)
    for child in children:
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert child.attributes["snaprag.stage"] == child.name
        assert (child.end_time - child.start_time) == pytest.approx(stages[child.name] * 1e6, 1)
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    # the next operation starts with no look-ups of its own
    traced.stage_timings("search", StageTimings({"cache": 0.1}, cache_tier="memory"))
    hit = [s for s in traced.spans() if s.name == "retrieval"][-1]
    assert len(hit.events) == 0
    assert hit.attributes["snaprag.cache.hit"] is True
    assert hit.attributes["snaprag.cache.tier"] == "memory"


def test_an_answer_has_retrieval_and_a_chat_span_with_genai_usage(traced: Any) -> None:
    stages = {"normalize": 0.1, "cache": 0.2, "embed": 2.0, "retrieve": 3.0, "context": 0.5}
    stages |= {"prefill": 40.0, "decode": 60.0, "total": 110.0}
    traced.stage_timings("ask", StageTimings(stages))
    metrics = {"ttft_ms": 40.5, "tokens_per_s": 50.0, "prompt_tokens": 812.0}
    metrics |= {"completion_tokens": 31.0, "context_tokens": 700.0, "context_chunks": 5.0}
    traced.generator_metrics("gguf:SmolLM2-135M-Instruct.Q4_1.gguf", metrics)
    spans = by_name(traced.spans())
    ask, retrieve = spans["ask"], spans["retrieve"]
    chat = spans["chat SmolLM2-135M-Instruct.Q4_1.gguf"]  # "{operation} {model}"
    assert ask.parent is None and ask.attributes["snaprag.operation"] == "ask"
    assert retrieve.attributes["gen_ai.operation.name"] == "retrieval"
    assert spans["embed"].parent.span_id == retrieve.context.span_id
    assert chat.parent.span_id == ask.context.span_id
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert chat.attributes["gen_ai.provider.name"] == "llama.cpp"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 812
    assert chat.attributes["gen_ai.usage.output_tokens"] == 31
    assert chat.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.0405)
    # the model's span covers prefill and decode
    assert chat.start_time == spans["prefill"].start_time
    assert chat.end_time == spans["decode"].end_time
    assert (ask.end_time - ask.start_time) == pytest.approx(110.0 * 1e6, 1)


def test_a_cached_answer_has_no_model_span(traced: Any) -> None:
    traced.stage_timings("ask", StageTimings({"normalize": 0.1, "cache": 0.2}, "memory"))
    traced.generator_metrics("gguf:m.gguf", {"cached": 1.0, "generated_ms": 900.0})
    assert [s.name for s in traced.spans()] == ["normalize", "cache", "ask"]


def test_a_servers_wait_only_report_makes_no_span_of_its_own(traced: Any) -> None:
    traced.stage_timings("ask", StageTimings({"prefill": 5.0, "decode": 5.0}))
    traced.stage_timings("ask", StageTimings({"queue_wait": 2.0}))  # reported apart, later
    traced.generator_metrics("echo", {"completion_tokens": 4.0})
    spans = by_name(traced.spans())
    assert sorted(spans) == ["ask", "chat echo", "decode", "prefill"]
    assert spans["chat echo"].parent.span_id == spans["ask"].context.span_id


def test_errors_are_error_spans_without_the_message(traced: Any) -> None:
    from opentelemetry.trace import StatusCode

    from snaprag.errors import GenerationError, QueryError

    traced.error("search", QueryError("the query 'my secret plan' is too long"))
    traced.error("ask", GenerationError("model at http://x down", code="connection_refused"))
    search, ask = traced.spans()
    assert search.status.status_code is StatusCode.ERROR
    assert search.attributes["error.type"] == "QueryError"
    assert ask.attributes["error.type"] == "connection_refused"
    assert "secret" not in str(search.status.description) + str(dict(search.attributes))


def test_spans_name_the_collection_and_join_the_current_trace(traced: Any) -> None:
    docs = traced.for_collection("docs")
    tracer = traced._provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/search") as server:
        docs.stage_timings("search", StageTimings({"embed": 1.0}))
    spans = by_name(traced.spans())
    assert spans["retrieval"].attributes["gen_ai.data_source.id"] == "docs"
    assert spans["retrieval"].parent.span_id == server.get_span_context().span_id


def test_a_broken_tracer_never_fails_the_caller(traced: Any) -> None:
    class Exploding:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("tracer broke")

    traced._builder.tracer = Exploding()
    traced.cache_event("retrieval", "memory", 1, 0)
    traced.stage_timings("search", StageTimings({"embed": 1.0}))
    traced.stage_timings("ask", StageTimings({"decode": 1.0}))
    traced.generator_metrics("echo", {"completion_tokens": 3.0})
    traced.error("ask", RuntimeError("x"))
    assert traced.spans() == []  # nothing built, nothing raised, the thread still runs
    assert traced._builder._thread.is_alive()


def test_from_config_is_off_without_an_endpoint(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from snaprag.config import Config
    from snaprag.observe.otel import OtelTelemetry

    assert OtelTelemetry.from_config(Config(index_dir=tmp_path)) is None
