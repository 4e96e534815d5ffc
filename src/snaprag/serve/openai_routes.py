"""OpenAI-compatible endpoints, so chat front ends and the official client work unchanged.

``model`` names the collection (``snaprag`` is the default one); the last user message is
the question; the answer's citations also travel in a ``snaprag`` field.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..types import Answer
from .collections import ALIAS, DEFAULT
from .errors import HTTPError, body, to_http
from .routes import _caller, _state, answer_body
from .schemas import ChatIn, EmbeddingsIn
from .state import timed_json
from .streaming import sse_data

router = APIRouter()


def _question(req: ChatIn) -> str:
    for message in reversed(req.messages):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):  # content parts: keep the text ones
                content = " ".join(
                    str(p.get("text", "")) for p in content if p.get("type") == "text"
                )
            if content and str(content).strip():
                return str(content)
    raise HTTPError(422, "bad_request", "the messages hold no user message with text")


def _usage(answer: Answer) -> dict[str, int]:
    prompt = int(answer.metrics.get("prompt_tokens", 0))
    completion = int(answer.metrics.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _snaprag(answer: Answer) -> dict[str, Any]:
    data = answer_body(answer)
    return {"citations": data["citations"], "timings": data["timings"]}


@router.post("/v1/chat/completions", response_model=None)
async def chat(req: ChatIn, request: Request) -> JSONResponse | StreamingResponse:
    state = _state(request)
    who = _caller(request)
    engine = state.collections.get(req.model, who)
    question = _question(req)
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not req.stream:
        answer = await state.answer("chat", engine, question, tenant=who.tenant)
        return timed_json(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": req.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text},
                        "finish_reason": "length" if answer.finish_reason == "length" else "stop",
                    }
                ],
                "usage": _usage(answer),
                "snaprag": _snaprag(answer),
            },
            answer.timings,
        )

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        data = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": req.model,
            "choices": [choice],
            **extra,
        }
        return sse_data(data)

    async def stream() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        make = lambda: engine.ask_events(question)  # noqa: E731
        try:
            async for event in state.stream("chat", make, question, who.tenant):
                if event.kind == "token" and event.text:
                    yield chunk({"content": event.text})
                elif event.kind == "done" and event.answer is not None:
                    finish = "length" if event.answer.finish_reason == "length" else "stop"
                    yield chunk({}, finish, snaprag=_snaprag(event.answer))
                elif event.kind == "error" and event.error is not None:
                    yield sse_data(body(to_http(event.error)))
        except Exception as exc:  # after the headers: the error travels in the stream
            yield sse_data(body(to_http(exc)))
        yield sse_data("[DONE]")

    state.refuse("chat")  # before the 200 is sent: an overloaded server still says 503 or 429
    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    state, who = _state(request), _caller(request)
    names = await state.run(state.collections.names, who)  # reads the disk
    if DEFAULT in names:
        names = [ALIAS, *names]
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": "snaprag"} for n in names],
    }


@router.post("/v1/embeddings")
async def embeddings(req: EmbeddingsIn, request: Request) -> dict[str, Any]:
    """Vectors of the collection's embedding model (as passages: what the index stores)."""
    state = _state(request)
    engine = state.collections.get(req.model, _caller(request))
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    if not texts or len(texts) > 2048:
        raise HTTPError(422, "bad_request", "input must hold 1 to 2048 texts")
    limit = state.config.max_query_chars
    if any(len(t) > limit for t in texts):
        raise HTTPError(422, "bad_request", f"every input must be at most {limit} characters")
    embedder = engine.embedder

    def embed() -> tuple[Any, int]:
        return embedder.embed_passages(texts), sum(embedder.count_tokens(texts))

    vectors, tokens = await state.work("embed", embed, units=len(texts))
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ],
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
