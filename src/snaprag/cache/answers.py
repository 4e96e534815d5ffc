"""Answers in the cache: what is stored, and the answer rebuilt from it on a hit."""

from __future__ import annotations

from typing import Any

from ..types import Answer, Citation, Hit, StageTimings


def dump_answer(answer: Answer) -> dict[str, Any]:
    """Everything of an answer but its timings (those belong to the request)."""
    return {
        "text": answer.text,
        "citations": [
            [c.n, c.source, c.page, c.doc_id, c.chunk_id, c.section] for c in answer.citations
        ],
        "hits": [hit_to_row(h) for h in answer.hits],
        "generator": answer.generator,
        "finish_reason": answer.finish_reason,
        "generated_ms": round(answer.timings.stages.get("total", 0.0), 3),
    }


_HIT_TYPES = (str, str, str, (int, type(None)), (int, float), str, str, str, str)
_CITATION_TYPES = (int, str, (int, type(None)), str, str, str)


def _check_row(row: Any, types: tuple[Any, ...], what: str) -> list[Any]:
    if not isinstance(row, list) or len(row) != len(types):
        raise ValueError(f"cached {what} has the wrong shape")
    for value, typ in zip(row, types, strict=True):
        if not isinstance(value, typ) or isinstance(value, bool):
            raise ValueError(f"cached {what} has a field of the wrong type")
    return row


def hit_to_row(hit: Hit) -> list[Any]:
    """A hit as its cached row (the inverse of :func:`hit_from_row`)."""
    return [
        hit.id,
        hit.doc_id,
        hit.source,
        hit.page,
        hit.score,
        hit.text,
        hit.title,
        hit.type,
        hit.section,
    ]


def hit_from_row(row: Any) -> Hit:
    """A :class:`Hit` from its cached row, or ValueError (the entry counts as damaged)."""
    return Hit(*_check_row(row, _HIT_TYPES, "hit"))


def load_answer(data: Any) -> dict[str, Any]:
    """Validate a cached answer (L1 keeps this dict; every hit builds a new Answer)."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("not a cached answer")
    for key in ("citations", "hits"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"cached answer without {key}")
    for row in data["citations"]:
        _check_row(row, _CITATION_TYPES, "citation")
    for row in data["hits"]:
        _check_row(row, _HIT_TYPES, "hit")
    return data


def answer_from_cache(data: dict[str, Any], question: str, elapsed_ms: float) -> Answer:
    timings = StageTimings()
    timings.add("cache", elapsed_ms)
    timings.stages["total"] = elapsed_ms
    return Answer(
        question=question,
        text=data["text"],
        citations=[Citation(*c) for c in data["citations"]],
        hits=[Hit(*h) for h in data["hits"]],
        timings=timings,
        generator=data.get("generator", "extractive"),
        metrics={"cached": 1.0, "generated_ms": float(data.get("generated_ms", 0.0))},
        finish_reason=data.get("finish_reason"),
    )
