"""A deterministic fake generator for tests: no model, answers in microseconds.

Its answer quotes the start of each of the first hits it is given, cites them ``[1]``,
``[2]`` ... and streams the text word by word, so code around answers (streaming, caching,
citations, a server's event stream) can be tested fast and exactly. Select it with
``llm="echo"`` or inject it: ``Engine(config, generator=EchoGenerator())``.
``delay_s`` pauses before each token (to test streaming and timeouts); ``fail_with`` makes
every answer fail with a :class:`~snaprag.errors.GenerationError` of that code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

from ..errors import GenerationError
from ..types import Answer, AnswerEvent, Citation, Hit, StageTimings


class EchoGenerator:
    name = "echo"

    def __init__(
        self, max_hits: int = 3, words: int = 12, delay_s: float = 0.0, fail_with: str = ""
    ) -> None:
        self.max_hits = max_hits
        self.words = words
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        return f"echo:v1|hits={self.max_hits},words={self.words},fail={self.fail_with}"

    def load(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""

    def answer(
        self, question: str, hits: Sequence[Hit], timings: StageTimings, started: float
    ) -> Iterator[AnswerEvent]:
        with self._lock:
            self.requests += 1
        if self.fail_with:
            raise GenerationError(f"echo generator told to fail ({self.fail_with})", self.fail_with)
        t = time.perf_counter()
        used = list(hits[: self.max_hits])
        parts = [" ".join(h.text.split()[: self.words]) + f" [{n}]" for n, h in enumerate(used, 1)]
        text = " ".join(parts) if parts else "No passage answers this question."
        first: float | None = None
        for i, word in enumerate(text.split(" ")):
            if self.delay_s:
                time.sleep(self.delay_s)
            if first is None:
                first = time.perf_counter()
            yield AnswerEvent("token", text=word if i == 0 else " " + word)
        citations = [
            Citation(n, h.source, h.page, h.doc_id, h.id, h.section) for n, h in enumerate(used, 1)
        ]
        end = time.perf_counter()
        timings.add("decode", (end - t) * 1000)
        timings.stages["total"] = (end - started) * 1000
        metrics = {"completion_tokens": float(len(text.split(" ")))}
        if first is not None:
            metrics["ttft_ms"] = (first - started) * 1000
        answer = Answer(question, text, citations, list(hits), timings, self.name, metrics, "stop")
        yield AnswerEvent("done", text=text, answer=answer)
