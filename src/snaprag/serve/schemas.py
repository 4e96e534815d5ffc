"""Request bodies (validated by FastAPI; a bad one is a 422 JSON error)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field


def _lower(value: object) -> object:
    """Modes are case-insensitive, as on the command line (``BM25`` = ``bm25``)."""
    return value.strip().lower() if isinstance(value, str) else value


Mode = Annotated[Literal["hybrid", "dense", "bm25"], BeforeValidator(_lower)]


class FiltersIn(BaseModel):
    source: str | None = None
    type: str | None = None


class SearchIn(BaseModel):
    query: str
    k: int = Field(10, ge=1, le=1000)
    mode: Mode = "hybrid"
    filters: FiltersIn | None = None
    collection: str = "default"


class BatchIn(BaseModel):
    queries: list[str] = Field(..., min_length=1, max_length=1024)
    k: int = Field(10, ge=1, le=1000)
    mode: Mode = "hybrid"
    filters: FiltersIn | None = None
    collection: str = "default"


class AskIn(BaseModel):
    question: str
    k: int = Field(5, ge=1, le=100)
    stream: bool = False
    filters: FiltersIn | None = None
    collection: str = "default"


class Message(BaseModel):
    role: str
    content: str | list[dict] | None = None


class ChatIn(BaseModel):
    model: str = "snaprag"
    messages: list[Message] = Field(..., min_length=1)
    stream: bool = False
    # accepted for compatibility; the collection's generator settings apply
    temperature: float | None = None
    max_tokens: int | None = None


class EmbeddingsIn(BaseModel):
    input: str | list[str]
    model: str = "snaprag"


class CollectionIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    model: str | None = None
