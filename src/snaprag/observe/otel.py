"""OpenTelemetry traces of searches and answers (the ``otel`` extra), sent with OTLP/HTTP.

Every ``search`` and ``ask`` becomes a span with a child span per stage, and an LLM answer
adds a span for the model call with the GenAI semantic conventions' attributes
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.provider.name``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``)::

    retrieval                   a search: gen_ai.operation.name=retrieval, snaprag.queries
    ├── normalize, cache        (cache look-ups are span events of the operation)
    ├── load
    ├── bm25_tokenize, bm25     beside embed and dense, as they run in parallel
    ├── embed, dense
    └── fuse, fetch, rerank

    ask
    ├── normalize, cache
    ├── retrieve                gen_ai.operation.name=retrieval; the search stages inside
    ├── context, prefill, decode
    └── chat MODEL              gen_ai.* attributes and token usage; prefill to decode

A failed operation is a span with an error status and ``error.type`` (its code).

The telemetry contract reports an operation once it is over, as milliseconds per stage,
so the spans are laid out afterwards: the operation ends when it is reported, and its
stages follow one another in pipeline order (BM25 beside embedding, as they run). The
durations are measured; the offsets between stages are reconstructed. Query and answer
text never go into a span (they may hold personal data).

The request's thread only queues what was measured (a few microseconds); the spans are
built on a thread of their own and exported in batches by the SDK's. A collector that is
slow or down costs dropped spans, never a failed or slower search.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..types import StageTimings
from .stage_layout import generator_attributes, layout_stages

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ..config import Config

log = logging.getLogger(__name__)

#: cache look-ups kept per thread until the operation they belong to is reported
_MAX_PENDING_CACHE_EVENTS = 64
#: stages a server reports on their own, after the engine reported the operation's work
_SERVER_WAITS = frozenset({"queue_wait", "probe_wait", "probe", "batch_wait"})


class _AskSpan:
    """Where an answer's span went, filled in by the builder, for its generation span."""

    __slots__ = ("context", "end", "start")

    def __init__(self) -> None:
        self.context: Any = None
        self.start = 0
        self.end = 0


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.cache_events: list[tuple[int, dict[str, Any]]] = []
        # the last answer reported on this thread, waiting for its generator_metrics
        self.last_ask: _AskSpan | None = None


class _SpanBuilder:
    """Builds the spans of reported events on a thread of its own, in report order: a
    search's ten spans cost about 0.3 ms of SDK work, several percent of an uncached search
    if the request waited for it. A full queue drops events."""

    def __init__(self, tracer: Tracer, trace_api: Any, max_queue: int = 4096) -> None:
        self.tracer = tracer
        self.trace = trace_api
        self.max_queue = max_queue
        self.dropped = 0
        self._queue: deque[tuple[Any, ...]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, item: tuple[Any, ...]) -> None:
        with self._cond:
            if self._stopping or len(self._queue) >= self.max_queue:
                self.dropped += 1
                return
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="snaprag-otel-spans", daemon=True
                )
                self._thread.start()
                atexit.register(self.stop)  # spans still queued at exit go out
            self._cond.notify()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued event is built; True when that happened in time."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return not (self._queue or self._busy)
                self._cond.wait(left)
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                getattr(self, item[0])(*item[1:])
            except Exception:  # one bad event must not stop the thread
                log.debug("OpenTelemetry: dropped a %s span", item[0], exc_info=True)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    # ---- one method per kind of event (the item's first element names it)
    def operation(
        self,
        operation: str,
        stages: dict[str, float],
        cache_tier: str | None,
        n: int,
        end: int,
        events: list[tuple[int, dict[str, Any]]],
        attributes: dict[str, Any],
        parent: Any,
        ask: _AskSpan | None,
    ) -> None:
        placed, length_ms = layout_stages(stages)
        start = end - int(length_ms * 1e6)
        attrs: dict[str, Any] = {**attributes, "snaprag.operation": operation}
        if operation == "search":
            attrs["gen_ai.operation.name"] = "retrieval"
            attrs["snaprag.queries"] = n
        attrs["snaprag.cache.hit"] = cache_tier is not None
        if cache_tier is not None:
            attrs["snaprag.cache.tier"] = cache_tier
        name = "retrieval" if operation == "search" else operation
        span = self.tracer.start_span(name, context=parent, start_time=start, attributes=attrs)
        _add_events(span, events, start, end)
        context = self.trace.set_span_in_context(span)
        parents: dict[str | None, Any] = {None: context}
        source = attributes.get("gen_ai.data_source.id")
        for stage in placed:  # an enclosing stage comes before the stages inside it
            stage_attrs: dict[str, Any] = {"snaprag.stage": stage.stage}
            if stage.stage == "retrieve":
                stage_attrs["gen_ai.operation.name"] = "retrieval"
                if source is not None:
                    stage_attrs["gen_ai.data_source.id"] = source
            child = self.tracer.start_span(
                stage.stage,
                context=parents.get(stage.parent, context),
                start_time=start + int(stage.start_ms * 1e6),
                attributes=stage_attrs,
            )
            if stage.stage == "retrieve":
                parents["retrieve"] = self.trace.set_span_in_context(child)
            child.end(end_time=start + int(stage.end_ms * 1e6))
        span.end(end_time=end)
        if ask is not None:  # where the model's span goes, if generator metrics follow
            window = [s for s in placed if s.stage in ("prefill", "decode")]
            ask.context = context
            ask.start = start + int(min((s.start_ms for s in window), default=0.0) * 1e6)
            ask.end = start + int(max((s.end_ms for s in window), default=length_ms) * 1e6)

    def generation(
        self,
        generator: str,
        metrics: dict[str, float],
        ask: _AskSpan | None,
        now: int,
        attributes: dict[str, Any],
        parent: Any,
    ) -> None:
        if ask is not None and ask.context is not None:
            context, start, end = ask.context, ask.start, ask.end
        else:  # reported without its answer: a span of its own, ending when reported
            context, end = parent, now
            start = end - int(float(metrics.get("ttft_ms", 0.0)) * 1e6)
        attrs: dict[str, Any] = generator_attributes(generator)
        if "gen_ai.data_source.id" in attributes:
            attrs["gen_ai.data_source.id"] = attributes["gen_ai.data_source.id"]
        for key, attr in (
            ("prompt_tokens", "gen_ai.usage.input_tokens"),
            ("completion_tokens", "gen_ai.usage.output_tokens"),
            ("context_tokens", "snaprag.llm.context_tokens"),
            ("context_chunks", "snaprag.llm.context_chunks"),
        ):
            if key in metrics:
                attrs[attr] = int(metrics[key])
        if "ttft_ms" in metrics:
            attrs["gen_ai.response.time_to_first_chunk"] = float(metrics["ttft_ms"]) / 1000
        if "tokens_per_s" in metrics:
            attrs["snaprag.llm.tokens_per_s"] = float(metrics["tokens_per_s"])
        from opentelemetry.trace import SpanKind

        # a model behind HTTP is a client call; one in this process is internal work
        remote = generator.startswith("openai:")
        span = self.tracer.start_span(
            f"chat {attrs['gen_ai.request.model']}",
            context=context,
            kind=SpanKind.CLIENT if remote else SpanKind.INTERNAL,
            start_time=start,
            attributes=attrs,
        )
        span.end(end_time=max(end, start))

    def failure(
        self,
        operation: str,
        error_type: str,
        error_class: str,
        now: int,
        events: list[tuple[int, dict[str, Any]]],
        attributes: dict[str, Any],
        parent: Any,
    ) -> None:
        from opentelemetry.trace import Status, StatusCode

        attrs = {**attributes, "snaprag.operation": operation, "error.type": error_type}
        span = self.tracer.start_span(operation, context=parent, start_time=now, attributes=attrs)
        # the class, not the message: a message may quote the query
        span.set_status(Status(StatusCode.ERROR, error_class))
        _add_events(span, events, now, now)
        span.end(end_time=now)


def _add_events(span: Span, events: list[tuple[int, dict[str, Any]]], start: int, end: int) -> None:
    for at, attributes in events:
        # the stages' start is reconstructed: keep the look-ups inside the span
        span.add_event("cache.lookup", attributes, timestamp=min(max(at, start), end))


class OtelTelemetry:
    """Telemetry (see ``base.py``) that turns operations into OpenTelemetry spans.

    ``endpoint``: an OTLP/HTTP collector (base URL or full ``/v1/traces`` URL); spans go
    there through a tracer provider of this object's own. Or pass ``tracer_provider`` (an
    application's own, or one with an in-memory exporter in tests); with neither, the
    global provider is used. ``attributes`` are set on every operation span. A span that
    is current when an event is reported (an HTTP server span, say) becomes the parent.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        timeout: float = 5.0,
    ) -> None:
        try:
            from opentelemetry import context, trace
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "OpenTelemetry traces need the otel extra: pip install 'snaprag[otel]'"
            ) from exc
        self._owned: Any = None
        if endpoint:
            if tracer_provider is not None:
                raise ConfigError("pass an OTLP endpoint or a tracer_provider, not both")
            tracer_provider = self._owned = _otlp_provider(endpoint, timeout)
        provider = tracer_provider or trace.get_tracer_provider()
        from .. import __version__

        self._provider = provider
        self._current_context = context.get_current
        self._builder = _SpanBuilder(provider.get_tracer("snaprag", __version__), trace)
        self._attributes: dict[str, Any] = dict(attributes or {})
        self._state = _ThreadState()

    @classmethod
    def from_config(cls, config: Config) -> OtelTelemetry | None:
        """Traces to ``config.otel_endpoint``; None when it is empty (tracing off)."""
        if not config.otel_endpoint:
            return None
        return cls(config.otel_endpoint)

    def for_collection(self, name: str) -> OtelTelemetry:
        """The same exporter, with spans naming the collection (``gen_ai.data_source.id``):
        one per collection of a server."""
        other = object.__new__(OtelTelemetry)
        other._provider, other._builder = self._provider, self._builder
        other._current_context = self._current_context
        other._owned = None  # the original owns (and shuts down) the provider
        other._attributes = {**self._attributes, "gen_ai.data_source.id": name}
        other._state = _ThreadState()
        return other

    @property
    def dropped(self) -> int:
        """Events dropped because spans could not be built as fast as they came."""
        return self._builder.dropped

    # ------------------------------------------------------------------ contract
    def stage_timings(self, operation: str, timings: StageTimings, n: int = 1) -> None:
        if timings.stages and timings.stages.keys() <= _SERVER_WAITS:
            # snaprag serve reports its queue and batch waits apart from the work: a span
            # of waits alone, in a trace of its own, would only be noise (metrics keep them)
            return
        try:
            state = self._state
            events, state.cache_events = state.cache_events, []
            ask = None
            if operation == "ask":
                ask = state.last_ask = _AskSpan()
            self._builder.submit(
                (
                    "operation",
                    operation,
                    dict(timings.stages),
                    timings.cache_tier,
                    n,
                    time.time_ns(),
                    events,
                    self._attributes,
                    self._current_context(),
                    ask,
                )
            )
        except Exception:  # a failing exporter must not fail a search
            log.debug("OpenTelemetry: dropped a %s event", operation, exc_info=True)

    def cache_event(self, namespace: str, tier: str, hits: int, misses: int) -> None:
        try:
            events = self._state.cache_events
            if len(events) < _MAX_PENDING_CACHE_EVENTS:  # bounded on threads that never report
                attributes = {
                    "snaprag.cache.namespace": namespace,
                    "snaprag.cache.tier": tier,
                    "snaprag.cache.hits": int(hits),
                    "snaprag.cache.misses": int(misses),
                }
                events.append((time.time_ns(), attributes))
        except Exception:
            log.debug("OpenTelemetry: dropped a cache event", exc_info=True)

    def generator_metrics(self, generator: str, metrics: dict[str, float]) -> None:
        try:
            ask, self._state.last_ask = self._state.last_ask, None
            if metrics.get("cached"):
                return  # a cached answer: no model was called
            now = time.time_ns()
            context = self._current_context()
            item = ("generation", generator, dict(metrics), ask, now, self._attributes, context)
            self._builder.submit(item)
        except Exception:
            log.debug("OpenTelemetry: dropped a generation event", exc_info=True)

    def error(self, operation: str, error: BaseException) -> None:
        try:
            events, self._state.cache_events = self._state.cache_events, []
            kind = str(getattr(error, "code", "") or type(error).__name__)
            self._builder.submit(
                (
                    "failure",
                    operation,
                    kind,
                    type(error).__name__,
                    time.time_ns(),
                    events,
                    self._attributes,
                    self._current_context(),
                )
            )
        except Exception:
            log.debug("OpenTelemetry: dropped an error event", exc_info=True)

    # ------------------------------------------------------------------ lifecycle
    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Build the spans of every event reported so far and send them; True when all
        went out in time."""
        try:
            built = self._builder.flush(timeout_s)
            flush = getattr(self._provider, "force_flush", None)
            return built and (bool(flush(int(timeout_s * 1000))) if flush else True)
        except Exception:
            log.debug("OpenTelemetry: flush failed", exc_info=True)
            return False

    def close(self) -> None:
        """Send what is queued and stop the exporter this object made (an injected
        provider is flushed and left to its owner)."""
        self.force_flush()
        if self._owned is not None:
            self._builder.stop()
            try:
                self._owned.shutdown()
            except Exception:
                log.debug("OpenTelemetry: shutdown failed", exc_info=True)
            self._owned = None


def _otlp_provider(endpoint: str, timeout: float) -> TracerProvider:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "otel_endpoint is set but the OpenTelemetry SDK or its OTLP/HTTP exporter is "
            "missing: pip install 'snaprag[otel]'"
        ) from exc
    from .. import __version__

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):  # a collector's base URL, as OTLP endpoints are given
        url += "/v1/traces"
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or "snaprag",
            "service.version": __version__,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=timeout)))
    return provider
