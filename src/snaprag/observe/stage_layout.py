"""Stage timings laid out on a timeline, and the GenAI names of a generator: what a trace
exporter needs to draw an operation from its :class:`~snaprag.types.StageTimings`.

The pipeline reports each stage once it is over, as a duration; this places the stages in
pipeline order, with the stages that run in parallel side by side. No OpenTelemetry
import here: the layout is plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: pipeline order of the stages outside retrieval (see StageTimings)
_BEFORE = ("queue_wait", "probe_wait", "probe", "batch_wait", "normalize", "cache")
_AFTER = ("context", "prefill", "decode", "answer")
#: retrieval: BM25 runs on a pool thread while the query is embedded and searched densely
_LEXICAL = ("bm25_tokenize", "bm25")
_DENSE = ("embed", "dense")
#: generator kinds (the part of ``Answer.generator`` before ``:``) -> gen_ai.provider.name
_PROVIDERS = {"openai": "openai", "gguf": "llama.cpp", "echo": "snaprag.echo"}


@dataclass(frozen=True, slots=True)
class PlacedStage:
    """A stage's place in its operation: milliseconds from the operation's start."""

    stage: str
    start_ms: float
    duration_ms: float
    parent: str | None = None  # an enclosing stage (``retrieve``), or None: the operation

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_ms


def layout_stages(stages: Mapping[str, float]) -> tuple[list[PlacedStage], float]:
    """Place measured stage durations on a timeline: pipeline order, BM25 beside the dense
    branch, the search stages of an answer inside its ``retrieve``; stages this layout does
    not know come last, in their order. Returns the stages and the timeline's length
    (``total``, when measured and longer, is the length instead)."""
    todo = {k: float(v) for k, v in stages.items() if k != "total" and v >= 0}
    placed: list[PlacedStage] = []

    def run(names: tuple[str, ...], at: float, parent: str | None = None) -> float:
        for name in names:
            if name in todo:
                duration = todo.pop(name)
                placed.append(PlacedStage(name, at, duration, parent))
                at += duration
        return at

    def retrieval(at: float, parent: str | None) -> float:
        at = run(("load",), at, parent)
        at = max(run(_LEXICAL, at, parent), run(_DENSE, at, parent))
        return run(("fuse", "fetch", "rerank"), at, parent)

    at = run(_BEFORE, 0.0)
    if "retrieve" in todo:  # an answer: its retrieval's stages happened inside it
        duration = todo.pop("retrieve")
        placed.append(PlacedStage("retrieve", at, duration))
        retrieval(at, "retrieve")
        at += duration
    else:
        at = retrieval(at, None)
    at = run(_AFTER, at)
    at = run(tuple(todo), at)
    total = float(stages.get("total") or 0.0)
    return placed, max(at, total)


def generator_attributes(generator: str) -> dict[str, str]:
    """GenAI attributes of ``Answer.generator`` (``gguf:FILE``, ``openai:MODEL``, ``echo``)."""
    kind, _, model = generator.partition(":")
    provider = _PROVIDERS.get(kind, kind)
    return {
        "gen_ai.operation.name": "chat",  # every LLM backend is sent chat messages
        "gen_ai.request.model": model or kind,
        "gen_ai.provider.name": provider,
        # the name before gen_ai.provider.name; backends built on older conventions read it
        "gen_ai.system": provider,
    }
