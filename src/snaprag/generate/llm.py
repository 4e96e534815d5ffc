"""Answers written by an LLM: context, prompt, streamed completion, citations, metrics.

:class:`LLMAnswerer` implements the :class:`~.base.Generator` contract over any
:class:`~.base.LLMBackend` (the local GGUF model or an OpenAI-compatible server).

Stages (milliseconds, in ``Answer.timings``), after the retrieval's own:

* ``retrieve``: hybrid search (measured by the caller);
* ``load``: loading the model, only in the turn that had to (lazily, no ``warm_up``);
* ``context``: counting tokens, choosing and trimming chunks, building the prompt;
* ``prefill``: from sending the request to the first token (prompt processing);
* ``decode``: from the first token to the last;
* ``total``: from the question to the end of the answer.

``Answer.metrics``: ``ttft_ms`` (question in to first token out, all stages before it
included), ``tokens_per_s`` (decode speed: tokens after the first per decode second),
``prompt_tokens``, ``completion_tokens``, ``context_tokens``, ``context_chunks``,
``context_budget``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from ..errors import GenerationError
from ..types import Answer, AnswerEvent, Hit, StageTimings
from .base import Delta, Finish, LLMBackend
from .citations import map_citations
from .context import build_context
from .prompts import messages, template_for

#: tokens kept free between the prompt and the context limit (template rounding)
PROMPT_SLACK = 4


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


class LLMAnswerer:
    """The :class:`~.base.Generator` of LLM answers, over one backend."""

    def __init__(self, backend: LLMBackend) -> None:
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def requests(self) -> int:
        return self.backend.requests

    @property
    def fingerprint(self) -> str:
        return self.backend.fingerprint

    def load(self) -> None:
        self.backend.load()

    def close(self) -> None:
        self.backend.close()

    def answer(
        self, question: str, hits: Sequence[Hit], timings: StageTimings, started: float
    ) -> Iterator[AnswerEvent]:
        return _generated(self.backend, question, hits, timings, started)


def _generated(
    generator: LLMBackend,
    question: str,
    hits: Sequence[Hit],
    timings: StageTimings,
    started: float,
) -> Iterator[AnswerEvent]:
    template = template_for(question)
    if not hits:  # nothing to read: no reason to ask the model
        timings.stages["total"] = _ms(started)
        answer = Answer(question, template.no_answer, [], [], timings, generator.name)
        yield AnswerEvent("token", text=answer.text)
        yield AnswerEvent("done", text=answer.text, answer=answer)
        return
    t = time.perf_counter()
    generator.load()
    if _ms(t) >= 1.0:
        timings.add("load", _ms(t))

    t = time.perf_counter()
    overhead = generator.count_prompt(messages(template, question, ""))
    limit = generator.prompt_limit
    budget = generator.settings.context_tokens
    if limit is not None:
        if overhead + PROMPT_SLACK > limit:
            raise GenerationError(
                f"the question and instructions alone take {overhead} tokens, but the model's "
                f"context leaves {limit} for the prompt after reserving room for the answer; "
                "shorten the question, raise --llm-ctx or lower --max-tokens",
                "context_overflow",
            )
        budget = min(budget, limit - overhead - PROMPT_SLACK)
    context = build_context(hits, generator.count_tokens, budget, template.page)
    if not context.sources:
        raise GenerationError(
            f"none of the {len(hits)} retrieved passages fits the context budget of {budget} "
            "tokens; raise --context-tokens or --llm-ctx",
            "context_overflow",
        )
    prompt = messages(template, question, context.text)
    timings.add("context", _ms(t))

    t_request = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    finish = Finish(None)
    for item in generator.stream(prompt):
        if isinstance(item, Delta):
            if first is None:
                first = time.perf_counter()
            pieces.append(item.text)
            yield AnswerEvent("token", text=item.text)
        else:
            finish = item
    end = time.perf_counter()
    timings.add("prefill", ((first or end) - t_request) * 1000)
    timings.add("decode", (end - first) * 1000 if first is not None else 0.0)
    timings.stages["total"] = (end - started) * 1000

    text = "".join(pieces).strip()
    completion = finish.completion_tokens if finish.completion_tokens else len(pieces)
    decode_s = (end - first) if first is not None else 0.0
    metrics: dict[str, float] = {
        "prompt_tokens": float(finish.prompt_tokens or overhead + context.tokens),
        "completion_tokens": float(completion),
        "context_tokens": float(context.tokens),
        "context_chunks": float(len(context.sources)),
        "context_budget": float(budget),
    }
    if first is not None:
        metrics["ttft_ms"] = (first - started) * 1000
        if completion > 1 and decode_s > 0:
            metrics["tokens_per_s"] = (completion - 1) / decode_s
    answer = Answer(
        question,
        text,
        map_citations(text, context),
        list(hits),
        timings,
        generator.name,
        metrics,
        finish.finish_reason,
    )
    yield AnswerEvent("done", text=text, answer=answer)
