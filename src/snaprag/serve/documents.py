"""Documents and collections over HTTP: uploads become ingest jobs; deletes make every
cached answer that used the document unreachable at once (the index version moves on)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from ..ingest.loaders import SUPPORTED_SUFFIXES
from .errors import HTTPError
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
    names = [_safe_name(f.filename, i) for i, f in enumerate(files)]
    bad = [n for n in names if Path(n).suffix.lower() not in SUPPORTED_SUFFIXES]
    if bad:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        message = f"unsupported file type(s) {', '.join(bad)}; supported: {supported}"
        raise HTTPError(415, "unsupported_type", message)

    folder = engine.config.index_dir / "uploads" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    for name, upload_file in zip(names, files, strict=True):
        target = folder / name
        with target.open("wb") as out:
            while chunk := await upload_file.read(1 << 20):
                out.write(chunk)
        saved.append(target)
    job = state.jobs.submit(engine, collection, saved, who.tenant)
    return JSONResponse({"job_id": job.id}, status_code=202)


@router.get("/v1/jobs/{job_id}")
async def job(job_id: str, request: Request) -> dict[str, Any]:
    who = _caller(request)
    found = _state(request).jobs.get(job_id)
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
    return await state.run(engine.delete, doc_id)


@router.post("/v1/collections", status_code=201)
async def create_collection(req: CollectionIn, request: Request) -> JSONResponse:
    _state(request).collections.create(req.name, req.model, _caller(request, "write"))
    return JSONResponse({"name": req.name}, status_code=201)


@router.get("/v1/collections")
async def list_collections(request: Request) -> dict[str, Any]:
    return {"collections": _state(request).collections.names(_caller(request))}


@router.delete("/v1/collections/{name}")
async def delete_collection(name: str, request: Request) -> dict[str, str]:
    state = _state(request)
    await state.run(state.collections.remove, name, _caller(request, "admin"))
    return {"deleted": name}
