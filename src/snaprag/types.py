"""Plain data types that flow through the engine."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: the ``type`` of documents from each loader (see ``ingest/loaders``)
DOCUMENT_TYPES = ("docx", "html", "jsonl", "md", "pdf", "txt")
#: other names users give those types
TYPE_ALIASES = {"markdown": "md", "htm": "html", "text": "txt", "beir": "jsonl"}


@dataclass(frozen=True)
class Filters:
    """Which chunks a search may return; one typed object that every backend translates
    (a row mask for the in-memory indexes, an expression for a database).

    ``source`` is a glob of the source path (a plain string matches as a substring);
    ``type`` a document type (case-insensitive, a leading dot allowed: ``PDF``, ``.pdf``).
    """

    source: str | None = None
    type: str | None = None

    def __post_init__(self) -> None:
        if self.type is not None:
            kind = self.type.strip().lower().lstrip(".")
            kind = TYPE_ALIASES.get(kind, kind)
            if kind not in DOCUMENT_TYPES:
                from .errors import ConfigError

                raise ConfigError(
                    f"unknown document type {self.type!r}; types are {', '.join(DOCUMENT_TYPES)}"
                )
            object.__setattr__(self, "type", kind)
        if self.source is not None and not self.source.strip():
            object.__setattr__(self, "source", None)

    def __bool__(self) -> bool:
        return bool(self.source or self.type)

    @property
    def key(self) -> tuple[str | None, str | None] | None:
        """A plain, stable form for cache keys (None when nothing is filtered)."""
        return (self.source, self.type) if self else None


#: joins the headings of a section path, as hits and citations show it
SECTION_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text inside a document, with the page it sits on (1-based, PDFs only) and
    its heading path: the titles of the headings it sits under, outermost first
    (``("R Basics", "Why is it named R?")``); empty before the first heading and for
    formats without headings."""

    text: str
    page: int | None = None
    heading: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The heading path as one line (``R Basics > Why is it named R?``)."""
        return SECTION_SEPARATOR.join(self.heading)


@dataclass(frozen=True, slots=True)
class Document:
    """One logical document produced by a loader.

    A source file usually yields one document; a BEIR ``corpus.jsonl`` yields one per line.
    ``doc_id`` is stable: the BEIR ``_id`` where there is one, otherwise derived from the
    source path.
    """

    doc_id: str
    source: str
    type: str
    title: str
    sections: tuple[Section, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable piece of a document, with where it came from."""

    doc_id: str
    seq: int
    text: str
    source: str
    title: str
    page: int | None
    char_start: int
    char_end: int
    #: the heading path of the section it comes from (``A > B``), empty when none
    section: str = ""

    @property
    def id(self) -> str:
        return f"{self.doc_id}#{self.seq}"


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk and its fused score. ``section`` is the heading path of
    the chunk (``R Basics > Why is it named R?``), empty when its document has none."""

    id: str
    doc_id: str
    source: str
    page: int | None
    score: float
    text: str
    title: str = ""
    type: str = ""
    section: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "source": self.source,
            "page": self.page,
            "section": self.section,
            "score": round(float(self.score), 6),
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Citation:
    """Where an answer sentence came from (``section``: the heading path, may be empty)."""

    n: int
    source: str
    page: int | None
    doc_id: str
    chunk_id: str
    section: str = ""

    @property
    def label(self) -> str:
        name = self.source.rsplit("/", 1)[-1]
        return f"[{name} p.{self.page}]" if self.page is not None else f"[{name}]"

    @property
    def where(self) -> str:
        """File, section and page, for a list of sources (``manual.pdf, Setup > Reset,
        p.4``); the inline ``label`` stays short."""
        parts = [self.source.rsplit("/", 1)[-1]]
        if self.section:
            parts.append(self.section)
        if self.page is not None:
            parts.append(f"p.{self.page}")
        return ", ".join(parts)


@dataclass(slots=True)
class StageTimings:
    """Milliseconds spent per stage of one request (or one batch of queries).

    Search stages: ``normalize``, ``cache`` (the look-up; ``cache_tier`` names the tier
    that answered: ``memory``, ``redis``, ``disk``, ``semantic``, or None on a miss),
    ``load`` (snapshot), ``embed``, ``bm25_tokenize``, ``bm25``, ``dense``, ``fuse``,
    ``fetch``, ``rerank``; a server adds ``queue_wait``, ``probe_wait`` and ``probe`` (the
    gathered look-up in the slower cache tiers) and ``batch_wait``. Answer stages:
    ``retrieve``, ``load`` (model), ``context``, ``prefill`` (to the first token),
    ``decode``, ``answer`` (extractive), ``total``.
    """

    stages: dict[str, float] = field(default_factory=dict)
    cache_tier: str | None = None

    def add(self, stage: str, ms: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + ms

    def merge(self, other: StageTimings) -> None:
        for stage, ms in other.stages.items():
            self.add(stage, ms)
        self.cache_tier = self.cache_tier or other.cache_tier

    @property
    def total_ms(self) -> float:
        return sum(v for k, v in self.stages.items() if k != "total")

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.stages.items()}


class SearchHits(list):  # list[Hit]
    """The hits of one query (a plain list of :class:`Hit`) with the request's timings."""

    def __init__(self, hits: Iterable[Hit] = (), timings: StageTimings | None = None) -> None:
        super().__init__(hits)
        self.timings = timings if timings is not None else StageTimings()


class SearchBatch(list):  # list[list[Hit]]
    """One hit list per query, in order (plain lists of :class:`Hit`), with the timings of
    the whole batch (its queries are embedded and scored together)."""

    def __init__(self, hits: Iterable[list[Hit]] = (), timings: StageTimings | None = None) -> None:
        super().__init__(hits)
        self.timings = timings if timings is not None else StageTimings()

    @property
    def hits(self) -> list[list[Hit]]:
        return self


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    """One event of a (possibly streamed) answer.

    ``kind`` is one of:

    * ``hits``: retrieval is done; ``hits`` holds the chunks the answer is built from;
    * ``token``: ``text`` is the next piece of the answer (one or more tokens);
    * ``done``: ``answer`` is the final :class:`Answer` (text, citations, timings, metrics);
      ``text`` repeats its text;
    * ``error``: the answer failed; ``error`` is the exception (a ``SnapragError``),
      ``message`` its one-line text and ``code`` a stable reason such as ``timeout``.

    A stream ends with exactly one ``done`` or ``error`` event.
    """

    kind: str
    text: str = ""
    hits: tuple[Hit, ...] = ()
    answer: Answer | None = None
    error: Exception | None = None

    @property
    def message(self) -> str:
        return str(self.error) if self.error is not None else ""

    @property
    def code(self) -> str:
        if self.error is None:
            return ""
        return str(getattr(self.error, "code", type(self.error).__name__))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (one line per event in ``snaprag ask --stream --json``)."""
        if self.kind == "hits":
            return {"event": "hits", "hits": [h.to_dict() for h in self.hits]}
        if self.kind == "done" and self.answer is not None:
            return {"event": "done", "answer": self.answer.to_dict()}
        if self.kind == "error":
            return {"event": "error", "code": self.code, "message": self.message}
        return {"event": self.kind, "text": self.text}


@dataclass(slots=True)
class Answer:
    """An answer with its citations and the hits it was built from.

    ``events()`` yields the same content as a stream, so that generators that produce
    text token by token can share one shape with the extractive answerer.

    ``generator`` names what wrote the text (``extractive``, or an LLM such as
    ``gguf:SmolLM2-135M-Instruct.Q4_1.gguf``). ``metrics`` holds measurements of an LLM
    answer: ``ttft_ms`` (question in to first token out), ``tokens_per_s`` (decode speed),
    ``prompt_tokens``, ``completion_tokens``, ``context_tokens`` and ``context_chunks``.
    ``finish_reason`` is the model's (``stop``: done, ``length``: cut at max tokens).
    """

    question: str
    text: str
    citations: list[Citation]
    hits: list[Hit]
    timings: StageTimings = field(default_factory=StageTimings)
    generator: str = "extractive"
    metrics: dict[str, float] = field(default_factory=dict)
    finish_reason: str | None = None

    def events(self) -> Iterator[AnswerEvent]:
        yield AnswerEvent("hits", hits=tuple(self.hits))
        yield AnswerEvent("token", text=self.text)
        yield AnswerEvent("done", text=self.text, answer=self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [
                {
                    "n": c.n,
                    "source": c.source,
                    "page": c.page,
                    "section": c.section,
                    "doc_id": c.doc_id,
                    "chunk_id": c.chunk_id,
                }
                for c in self.citations
            ],
            "hits": [h.to_dict() for h in self.hits],
            "timings_ms": {k: round(v, 3) for k, v in self.timings.stages.items()},
            "generator": self.generator,
            "metrics": {k: round(float(v), 3) for k, v in self.metrics.items()},
            "finish_reason": self.finish_reason,
        }
