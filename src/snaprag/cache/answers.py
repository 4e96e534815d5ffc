"""Answers in the cache: what is stored, and the answer rebuilt from it on a hit."""

from __future__ import annotations

from typing import Any

from ..types import Answer, Citation, Hit, StageTimings


def dump_answer(answer: Answer) -> dict[str, Any]:
    """Everything of an answer but its timings (those belong to the request)."""
    return {
        "text": answer.text,
        "citations": [[c.n, c.source, c.page, c.doc_id, c.chunk_id] for c in answer.citations],
        "hits": [
            [h.id, h.doc_id, h.source, h.page, h.score, h.text, h.title, h.type]
            for h in answer.hits
        ],
        "generator": answer.generator,
        "finish_reason": answer.finish_reason,
        "generated_ms": round(answer.timings.stages.get("total", 0.0), 3),
    }


def load_answer(data: Any) -> dict[str, Any]:
    """Validate a cached answer (L1 keeps this dict; every hit builds a new Answer)."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("not a cached answer")
    for key in ("citations", "hits"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"cached answer without {key}")
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
