"""The generation contracts.

:class:`Generator` is what writes an answer from a question and its retrieved hits; the
answer pipeline (:mod:`.rag`) and the answer cache know only this contract. Backends, one
file each, built by name in :mod:`.factory`:

* :class:`~.extractive.ExtractiveGenerator`: sentences from the hits, no LLM;
* :class:`~.llm.LLMAnswerer` over an :class:`LLMBackend`: context, prompt, streamed
  completion and citations, for the local GGUF backend (:mod:`.local`) and any
  OpenAI-compatible server (:mod:`.openai`);
* :class:`~.echo.EchoGenerator`: a deterministic fake for tests.

Common rules: cheap to construct; ``load`` does the heavy part (weights, or checking the
server) once and is safe to call twice; every other method loads on first use;
thread-safe; ``fingerprint`` names everything that changes the text written (model
identity, prompt version, sampling, context budget), so answers can be cached under it.
Failures are :class:`~snaprag.errors.GenerationError` with a stable ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..config import Config
    from ..types import AnswerEvent, Filters, Hit, StageTimings

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Delta:
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of a completion, with what the backend reported about it."""

    finish_reason: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: the backend's own timings when it sends them (llama.cpp: prompt_ms, predicted_ms...)
    backend_timings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationSettings:
    """What every LLM backend shares: answer length, sampling and the context budget."""

    #: longest answer, in tokens
    max_tokens: int = 256
    #: 0: greedy, so the same question gets the same answer
    temperature: float = 0.0
    #: tokens of retrieved text in one prompt (counted with the backend's own tokenizer)
    context_tokens: int = 1024

    @classmethod
    def from_config(cls, config: Config) -> GenerationSettings:
        return cls(config.llm_max_tokens, config.llm_temperature, config.context_tokens)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Generator(Protocol):
    """Writes the answer to a question from its retrieved hits."""

    #: what goes into ``Answer.generator``, e.g. ``extractive``
    name: str
    #: answers requested so far (a benchmark uses it to tell cache hits apart)
    requests: int

    @property
    def fingerprint(self) -> str: ...

    def load(self) -> None: ...

    def answer(
        self, question: str, hits: Sequence[Hit], timings: StageTimings, started: float
    ) -> Iterator[AnswerEvent]:
        """``token`` events, then one ``done`` event whose answer carries ``timings`` (the
        retrieval's, completed with the generation stages); ``started`` is when the
        question came in (``time.perf_counter()``). Failures raise a SnapragError."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Answerer(Protocol):
    """Retrieval and generation as one stream of events (:class:`~.rag.RagAnswerer`;
    :class:`~snaprag.cache.layer.CachedAnswerer` wraps one with the answer cache)."""

    def ask_events(
        self, question: str, k: int = 5, filters: Filters | None = None
    ) -> Iterator[AnswerEvent]:
        """``hits``, ``token``..., then one ``done`` or ``error`` event (never raises)."""
        ...


@runtime_checkable
class LLMBackend(Protocol):
    """What :class:`~.llm.LLMAnswerer` needs from an LLM: token counting and streamed chat
    completions (:class:`Delta` pieces ending with one :class:`Finish`)."""

    #: what goes into ``Answer.generator``, e.g. ``gguf:SmolLM2-135M-Instruct.Q4_1.gguf``
    name: str
    #: generation requests sent so far (a benchmark uses it to tell cache hits apart)
    requests: int
    settings: GenerationSettings

    @property
    def fingerprint(self) -> str: ...

    @property
    def prompt_limit(self) -> int | None:
        """Most prompt tokens a request may carry (context minus answer), None if unknown."""
        ...

    def load(self) -> None: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def count_prompt(self, messages: list[Message]) -> int:
        """Tokens of the whole prompt, chat template included."""
        ...

    def stream(self, messages: list[Message]) -> Iterator[Delta | Finish]: ...

    def close(self) -> None: ...


def fingerprint(kind: str, identity: dict[str, Any], settings: dict[str, Any]) -> str:
    """A stable, readable fingerprint: ``kind:{identity}|{settings}`` with sorted keys."""
    ident = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sets = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return f"{kind}:{ident}|{sets}"
