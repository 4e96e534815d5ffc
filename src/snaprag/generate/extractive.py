"""Extractive answers: the sentences of the top chunks that best answer the question.

Each candidate sentence is scored by cosine similarity to the question (one batched
embedding call) plus the share of the question's BM25 terms it contains, with a small
prior for higher-ranked chunks. The best few, above a floor, form the answer, each
followed by a citation such as ``[manual.pdf p.3]``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..embed.base import Embedder
from ..index.tokenize import tokenize, tokenize_many
from ..ingest.chunking import is_list_item, split_sentences
from ..types import Answer, AnswerEvent, Citation, Hit, StageTimings

NO_ANSWER = "No answer found in the indexed documents."


class ExtractiveAnswerer:
    def __init__(
        self,
        embedder: Embedder,
        max_sentences: int = 3,
        max_chunks: int = 5,
        min_score: float = 0.25,
    ) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.max_chunks = max_chunks
        self.min_score = min_score

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        candidates: list[tuple[int, str]] = []  # (hit index, sentence)
        for i, hit in enumerate(hits[: self.max_chunks]):
            for s, e in split_sentences(hit.text):
                sentence = hit.text[s:e].strip()
                if _is_fragment(sentence):
                    continue  # the tail of a sentence cut at a chunk or page boundary
                if _is_statement(sentence) or is_list_item(sentence):
                    candidates.append((i, sentence))
        if not candidates:
            return Answer(question, NO_ANSWER, [], list(hits))
        sentences = [s for _, s in candidates]
        # a sentence that introduces a list is judged together with the list
        scored = [self._expand(candidates, j) for j in range(len(candidates))]
        qvec = self.embedder.embed_queries([question])[0]
        svec = self.embedder.embed_passages(scored)
        cosine = svec @ qvec
        # bigram mode for Korean: no analyser to load just to compare words
        qterms = set(tokenize(question, korean="bigram"))
        overlap = np.array(
            [
                len(qterms & set(t)) / len(qterms) if qterms else 0.0
                for t in tokenize_many(scored, korean="bigram")
            ]
        )
        prior = np.array([0.05 / (1 + i) for i, _ in candidates])
        score = cosine + 0.3 * overlap + prior
        chosen: list[int] = []
        seen: set[str] = set()
        for j in np.argsort(-score, kind="stable"):
            if len(chosen) == self.max_sentences:
                break
            key = " ".join(sentences[j].casefold().split())
            if not _is_statement(sentences[j]) or any(key in k or k in key for k in seen):
                continue  # the same sentence again (or one contained in a chosen one)
            if score[j] < self.min_score:
                continue
            seen.add(key)
            chosen.append(int(j))
            if sentences[j].endswith(":"):  # the list it introduces comes with it
                seen.update(x.casefold() for x in self._list_after(candidates, int(j)))
        if not chosen:
            return Answer(question, NO_ANSWER, [], list(hits))
        citations: list[Citation] = []
        by_hit: dict[int, Citation] = {}
        parts = []
        for j in chosen:
            i = candidates[j][0]
            if i not in by_hit:
                h = hits[i]
                by_hit[i] = Citation(len(by_hit) + 1, h.source, h.page, h.doc_id, h.id, h.section)
                citations.append(by_hit[i])
            text = " ".join(scored[j].split())  # undo line wrapping
            parts.append(f"{text} {by_hit[i].label}")
        return Answer(question, " ".join(parts), citations, list(hits))

    @staticmethod
    def _list_after(candidates: list[tuple[int, str]], j: int, limit: int = 8) -> list[str]:
        """The list items that directly follow sentence ``j`` in the same chunk."""
        items = []
        for i, sentence in candidates[j + 1 : j + 1 + limit]:
            if i != candidates[j][0] or not is_list_item(sentence):
                break
            items.append(sentence)
        return items

    def _expand(self, candidates: list[tuple[int, str]], j: int) -> str:
        sentence = candidates[j][1]
        if sentence.endswith(":"):
            items = self._list_after(candidates, j)
            if items:
                return sentence + " " + " ".join(items)
        return sentence


def _is_fragment(sentence: str) -> bool:
    """Starts with a lower-case Latin letter: not the start of a sentence."""
    first = sentence[:1]
    return first.isascii() and first.isalpha() and first.islower()


def _is_statement(sentence: str) -> bool:
    """A real sentence, not a heading, list number or table fragment."""
    if len(sentence) < 12 or not any(ch.isalnum() for ch in sentence):
        return False
    ends = sentence.rstrip("\"')]”’").endswith((".", "!", "?", "。", "다", "요", ":"))
    return ends or len(sentence) >= 60


EXTRACTIVE_VERSION = "2"


class ExtractiveGenerator:
    """The extractive answerer behind the generator interface (no LLM, no prompt).

    The embedder is fetched when the first answer is made, so that building the engine's
    generator loads nothing.
    """

    name = "extractive"

    def __init__(
        self,
        embedder: Callable[[], Embedder],
        model_name: Callable[[], str],
        max_sentences: int = 3,
        max_chunks: int = 5,
        min_score: float = 0.25,
    ) -> None:
        self._embedder = embedder
        self._model_name = model_name
        self._settings = (max_sentences, max_chunks, min_score)
        self._answerer: ExtractiveAnswerer | None = None
        self._lock = threading.Lock()
        self.requests = 0

    @property
    def fingerprint(self) -> str:
        sentences, chunks, floor = self._settings
        return (
            f"extractive:{self._model_name()}|v{EXTRACTIVE_VERSION},sentences={sentences},"
            f"chunks={chunks},min_score={floor}"
        )

    def load(self) -> None:
        """Nothing beyond the embedder, which the retriever loads anyway."""

    def answer(
        self, question: str, hits: Sequence[Hit], timings: StageTimings, started: float
    ) -> Iterator[AnswerEvent]:
        with self._lock:
            if self._answerer is None:
                self._answerer = ExtractiveAnswerer(self._embedder(), *self._settings)
            self.requests += 1
        t = time.perf_counter()
        answer = self._answerer.answer(question, hits)
        answer.timings = timings
        timings.add("answer", (time.perf_counter() - t) * 1000)
        timings.stages["total"] = (time.perf_counter() - started) * 1000
        yield AnswerEvent("token", text=answer.text)
        yield AnswerEvent("done", text=answer.text, answer=answer)

    def close(self) -> None:
        """Nothing to release."""
