"""The snaprag API: health, search, batch search and answers (JSON or Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..types import Answer, Filters, SearchBatch
from .auth import Caller, caller
from .errors import body, to_http
from .schemas import AskIn, BatchIn, FiltersIn, SearchIn
from .state import State, timed_json
from .streaming import sse

router = APIRouter()


def _filters(f: FiltersIn | None) -> Filters | None:
    if f is None or not (f.source or f.type):
        return None
    return Filters(source=f.source, type=f.type)


def _state(request: Request) -> State:
    return request.app.state.snaprag


def _caller(request: Request, scope: str = "read") -> Caller:
    """Who asks (401 without a valid key when keys exist; 403 without the scope)."""
    found = caller(_state(request).keys, request.headers.get("authorization"))
    found.need(scope)
    return found


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 once models are loaded and indexes opened and warmed; 503 before."""
    state = _state(request)
    if not state.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "collections": len(state.collections.engines)})


@router.post("/v1/search")
async def search(req: SearchIn, request: Request) -> JSONResponse:
    state = _state(request)
    who = _caller(request)
    engine = state.collections.get(req.collection, who)
    filters = _filters(req.filters)
    hits = await state.search_one(engine, req.query, req.k, filters, req.mode, who.tenant)
    data = {"hits": [h.to_dict() for h in hits], "timings": hits.timings.to_dict()}
    if hits.timings.cache_tier:
        data["cache_tier"] = hits.timings.cache_tier  # which cache tier answered
    return timed_json(data, hits.timings)


@router.post("/v1/search/batch")
async def search_batch(req: BatchIn, request: Request) -> JSONResponse:
    batch = await _search(request, req.queries, req)
    timings = batch.timings.to_dict()
    results = [{"hits": [h.to_dict() for h in hits]} for hits in batch]
    return timed_json({"results": results, "timings": timings}, timings)


async def _search(request: Request, queries: list[str], req: SearchIn | BatchIn) -> SearchBatch:
    """One search call for one query or many (the engine batches them either way)."""
    state = _state(request)
    engine = state.collections.get(req.collection, _caller(request))
    filters = _filters(req.filters)
    return await state.work(
        "search", engine.search_many, queries, req.k, filters, req.mode, units=len(queries)
    )


def answer_body(answer: Answer) -> dict[str, Any]:
    return {
        "answer": answer.text,
        "citations": [
            {"n": c.n, "source": c.source, "page": c.page, "section": c.section, "doc_id": c.doc_id}
            for c in answer.citations
        ],
        "timings": answer.timings.to_dict(),
        "metrics": {k: round(float(v), 3) for k, v in answer.metrics.items()},
        "generator": answer.generator,
    }


@router.post("/v1/ask", response_model=None)
async def ask(req: AskIn, request: Request) -> JSONResponse | StreamingResponse:
    state = _state(request)
    who = _caller(request)
    engine = state.collections.get(req.collection, who)
    filters = _filters(req.filters)
    if not req.stream:
        answer = await state.answer("ask", engine, req.question, req.k, filters, who.tenant)
        return timed_json(answer_body(answer), answer.timings)

    async def stream() -> AsyncIterator[bytes]:
        make = lambda: engine.ask_events(req.question, req.k, filters)  # noqa: E731
        try:
            async for event in state.stream("ask", make, req.question, who.tenant):
                if event.kind == "done" and event.answer is not None:
                    yield sse("done", answer_body(event.answer))
                else:
                    yield sse(event.kind, event.to_dict())
        except Exception as exc:  # after the headers: the error travels as an event
            error = to_http(exc)
            yield sse("error", body(error)["error"])

    state.refuse("ask")  # before the 200 is sent: an overloaded server still says 503 or 429
    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _stats_with_cache(engine: Any) -> dict[str, Any]:
    """An index's counts and sizes, and its query cache (tiers' entries and bytes, hits)."""
    out = engine.stats()
    if engine.config.cache and engine.cache is not None:
        report = engine.cache_report()
        out["cache"] = {"tiers": report["tiers"], "hit_rate": report["hit_rate"]}
    return out


@router.get("/v1/stats")
async def stats(request: Request) -> dict[str, Any]:
    state = _state(request)
    who = _caller(request)
    out: dict[str, Any] = {"collections": {}, "queues": state.queues()}
    for name in await state.run(state.collections.names, who):
        engine = state.collections.get(name, who)
        try:
            out["collections"][name] = await state.run(_stats_with_cache, engine)
        except Exception as exc:
            out["collections"][name] = {"error": body(to_http(exc))["error"]}
    return out
