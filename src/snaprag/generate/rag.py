"""One answer turn after retrieval: the events every generator's answer is streamed as.

:func:`answer_events` is what the answer pipeline runs once the hits are known. It yields
``hits``, then the generator's ``token`` events as text arrives, then one ``done`` event
with the final :class:`~snaprag.types.Answer` — or one ``error`` event carrying the
:class:`~snaprag.errors.SnapragError` that stopped it (nothing is raised to the consumer).
The generator is any :class:`~.base.Generator`; this module does not know which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import GenerationError, SnapragError
from ..types import AnswerEvent, Filters, Hit, StageTimings
from .base import Generator


def answer_events(
    generator: Generator,
    question: str,
    hits: Sequence[Hit],
    timings: StageTimings,
    started: float,
) -> Iterator[AnswerEvent]:
    """The events of one answer; ``timings`` holds the retrieval's stages (``retrieve``
    among them); ``started`` is when the question came in (``time.perf_counter()``)."""
    yield AnswerEvent("hits", hits=tuple(hits))
    try:
        yield from generator.answer(question, hits, timings, started)
    except SnapragError as exc:
        yield AnswerEvent("error", error=exc)
    except Exception as exc:  # a bug or an unforeseen library error: still an event
        error = GenerationError(f"the answer failed: {type(exc).__name__}: {exc}", "internal")
        error.__cause__ = exc
        yield AnswerEvent("error", error=error)


class RagAnswerer:
    """Retrieval, then the generator's answer, as one stream of events (no cache)."""

    def __init__(self, searcher: Any, generator: Callable[[], Generator]) -> None:
        self.searcher = searcher
        self._generator = generator

    def ask_events(
        self, question: str, k: int = 5, filters: Filters | None = None
    ) -> Iterator[AnswerEvent]:
        started = time.perf_counter()
        try:
            result = self.searcher.search_many([question], k, filters)
            generator = self._generator()
        except SnapragError as exc:
            yield AnswerEvent("error", error=exc)
            return
        timings = StageTimings()
        timings.merge(result.timings)
        timings.stages["retrieve"] = (time.perf_counter() - started) * 1000
        yield from answer_events(generator, question, result[0], timings, started)


#: said with the no-answer reply when a question has nothing to search for
NO_TERMS = "(The question has no searchable terms: no letters or digits.)"


def no_terms_events(question: str, generator: str) -> Iterator[AnswerEvent]:
    """The answer to a question with no searchable term: the no-answer reply, saying why,
    with no retrieval and no model call."""
    from ..types import Answer
    from .prompts import template_for

    text = f"{template_for(question).no_answer} {NO_TERMS}"
    answer = Answer(question, text, [], [], generator=generator)
    answer.metrics["no_searchable_terms"] = 1.0
    yield AnswerEvent("hits")
    yield AnswerEvent("token", text=text)
    yield AnswerEvent("done", text=text, answer=answer)
