"""The contract of an LLM generator, shared by the local GGUF and the HTTP backends.

A generator is cheap to construct; :meth:`LLMGenerator.load` does the heavy part (loading
weights, or checking the server and resolving its model) once, and every other method
loads on first use. It streams chat completions as :class:`Delta` pieces ending with one
:class:`Finish`, and raises :class:`~snaprag.errors.GenerationError` for every failure.

Its ``fingerprint`` names everything that changes the text it writes (model identity,
prompt-template version, sampling parameters, context budget), so answers can be cached
under it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class LLMGenerator(Protocol):
    """What the answer pipeline needs from an LLM backend."""

    #: what goes into ``Answer.generator``, e.g. ``gguf:SmolLM2-135M-Instruct.Q4_1.gguf``
    name: str
    #: generation requests sent so far (a benchmark uses it to tell cache hits apart)
    requests: int

    @property
    def fingerprint(self) -> str: ...

    @property
    def prompt_limit(self) -> int | None:
        """Most prompt tokens a request may carry (context minus answer), None if unknown."""
        ...

    @property
    def context_tokens(self) -> int:
        """Token budget for retrieved text in one prompt."""
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
