"""Documents and collections over HTTP: uploads become ingest jobs; deletes make every
cached answer that used the document unreachable at once (the index version moves on)."""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from ..errors import IndexBusyError
from ..ingest.loaders import SUPPORTED_SUFFIXES
from .errors import HTTPError
from .jobs import WAIT_S
from .routes import _caller, _state
from .schemas import CollectionIn

router = APIRouter()
_UNSAFE = re.compile(r"[^\w.\- ]+")


def _safe_name(name: str | None, n: int) -> str:
    base = Path(name or "").name  # no directories, whatever the client sent
    base = _UNSAFE.sub("_", base).strip(" .") or f"upload-{n}"
    return base[:200]


@router.post("/v1/documents", status_code=202)
async def upload(
    request: Request,
    files: list[UploadFile] = File(...),  # noqa: B008 - FastAPI's way to declare a form part
    collection: str = Form("default"),
) -> JSONResponse:
    state = _state(request)
    who = _caller(request, "write")
    engine = state.collections.get(collection, who)
    state.resources.refuse_if_over()
    if state.jobs.pending() >= max(1, state.ingest_queue):  # the writer is this far behind
        state.observer.lane_event("ingest", "queue_full")
        raise HTTPError(
            429, "overloaded",
            f"{state.jobs.pending()} uploads are waiting to be ingested; retry later",
            {"Retry-After": "5"},
        )  # fmt: skip
    names = [_safe_name(f.filename, i) for i, f in enumerate(files)]
    bad = [n for n in names if Path(n).suffix.lower() not in SUPPORTED_SUFFIXES]
    if bad:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        message = f"unsupported file type(s) {', '.join(bad)}; supported: {supported}"
        raise HTTPError(415, "unsupported_type", message)

    uploads = engine.config.index_dir / "uploads"
    await state.run(lambda: uploads.mkdir(parents=True, exist_ok=True))
    saved: list[Path] = []
    for name, upload_file in zip(names, files, strict=True):
        saved.append(await _save(state, upload_file, uploads, name))
    current = lambda: state.collections.current(collection, engine)  # noqa: E731
    # jobs.db may be busy with another worker's write: never wait for it on the loop
    job = await state.run(state.jobs.submit, engine, collection, saved, who.tenant, current)
    return JSONResponse({"job_id": job.id}, status_code=202)


async def _save(state: Any, upload: UploadFile, uploads: Path, name: str) -> Path:
    """Store an upload under a folder named by its content: the same file uploaded again
    is the same source, so a job interrupted by a crash resumes (finished files are
    skipped) instead of indexing a second copy. Disk writes run on worker threads."""
    digest = hashlib.sha256()
    tmp = uploads / f".tmp-{uuid.uuid4().hex}"

    def place() -> Path:
        target = uploads / digest.hexdigest()[:16] / name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():  # already there: unchanged, and its ingest is skipped
            os.replace(tmp, target)
        return target

    out = await state.run(tmp.open, "wb")
    try:
        try:
            while chunk := await upload.read(1 << 20):
                digest.update(chunk)
                await state.run(out.write, chunk)
        finally:
            await state.run(out.close)
        return await state.run(place)
    finally:
        await state.run(lambda: tmp.unlink(missing_ok=True))


@router.get("/v1/jobs/{job_id}")
async def job(job_id: str, request: Request) -> dict[str, Any]:
    who = _caller(request)
    state = _state(request)
    found = await state.run(state.jobs.get, job_id)
    if found is None or (who.tenant is not None and found.tenant != who.tenant):
        raise HTTPError(404, "not_found", f"no job {job_id!r}")
    return found.to_dict()


@router.get("/v1/documents")
async def documents(request: Request, collection: str = "default") -> dict[str, Any]:
    state = _state(request)
    engine = state.collections.get(collection, _caller(request))
    return {"documents": await state.run(engine.documents)}


@router.delete("/v1/documents/{doc_id:path}")
async def delete(doc_id: str, request: Request, collection: str = "default") -> dict[str, Any]:
    state = _state(request)
    engine = state.collections.get(collection, _caller(request, "write"))
    # one writer per collection: while an upload is being ingested (by any server process)
    # the delete waits its turn, up to the request's deadline
    deadline = time.monotonic() + state.config.server_timeout
    while True:
        try:
            return await state.run(engine.delete, doc_id)
        except IndexBusyError:
            if time.monotonic() + WAIT_S >= deadline:
                raise HTTPError(
                    409,
                    "busy",
                    f"an upload is being ingested into collection {collection!r}; "
                    "delete the document once the job is done (GET /v1/jobs/{id})",
                    {"Retry-After": "5"},
                ) from None
            await anyio.sleep(WAIT_S)


@router.post("/v1/collections", status_code=201)
async def create_collection(req: CollectionIn, request: Request) -> JSONResponse:
    _state(request).collections.create(req.name, req.model, _caller(request, "write"))
    return JSONResponse({"name": req.name}, status_code=201)


@router.get("/v1/collections")
async def list_collections(request: Request) -> dict[str, Any]:
    state, who = _state(request), _caller(request)
    return {"collections": await state.run(state.collections.names, who)}  # reads the disk


@router.delete("/v1/collections/{name}")
async def delete_collection(name: str, request: Request) -> dict[str, str]:
    state = _state(request)
    await state.run(state.collections.remove, name, _caller(request, "admin"))
    return {"deleted": name}
