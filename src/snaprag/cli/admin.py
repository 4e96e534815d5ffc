"""Looking after an index: ``stats``, ``docs``, ``delete``, ``cache ...`` and ``config show``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import LLM, JsonOpt, Settings, with_settings
from .render import (
    console,
    print_cache_report,
    print_cleared,
    print_deleted,
    print_documents,
    print_settings,
    print_stats,
)
from .shell import emit, error_message, fail, with_engine

MASK = "********"


@with_settings("index")
def stats(as_json: JsonOpt = False, *, settings: Settings) -> None:
    """Documents, chunks, bytes, model and version of an index."""
    emit(with_engine(settings, lambda engine: engine.stats()), as_json, print_stats)


@with_settings("index")
def docs(as_json: JsonOpt = False, *, settings: Settings) -> None:
    """The indexed sources: path, type, pages, chunks and when each was indexed."""
    emit(with_engine(settings, lambda engine: engine.documents()), as_json, print_documents)


@with_settings("index")
def delete(
    target: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE_OR_DOC_ID",
            help="A source path (as 'snaprag docs' lists it) or a document id (doc_id)",
        ),
    ],
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Remove a source, or one document, with its chunks from the index."""
    emit(with_engine(settings, lambda engine: engine.delete(target)), as_json, print_deleted)


cache_app = typer.Typer(no_args_is_help=True, help="The query cache: statistics, warming.")


@cache_app.command("stats")
@with_settings("index")
def cache_stats(as_json: JsonOpt = False, *, settings: Settings) -> None:
    """Hits and misses per tier and namespace (all processes so far), entries and bytes."""
    report = with_engine(settings, lambda engine: engine.cache_report())
    emit(report, as_json, print_cache_report)


@cache_app.command("warm")
@with_settings("index", *LLM)
def cache_warm(
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many of the most frequent queries")
    ] = 100,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Precompute the most frequent logged queries, so that they are answered from cache."""

    def warm(engine: Any) -> dict[str, Any]:
        engine.require_index()
        t = time.perf_counter()
        warmed = engine.warm_cache(top)
        seconds = time.perf_counter() - t
        return {"warmed": len(warmed), "seconds": round(seconds, 3), "queries": warmed}

    data = with_engine(settings, warm, status=not as_json)
    emit(
        data,
        as_json,
        lambda d: console().print(f"warmed {d['warmed']} queries in {d['seconds']:.2f} s"),
    )


@cache_app.command("clear")
@with_settings("index")
def cache_clear(as_json: JsonOpt = False, *, settings: Settings) -> None:
    """Drop every cached entry (memory, Redis, disk); the query log is kept."""
    removed = with_engine(settings, lambda engine: engine.cache_clear())
    emit(removed, as_json, print_cleared)
    if None in removed.values():
        raise typer.Exit(1)  # some tier kept its entries: say so to scripts too


config_app = typer.Typer(no_args_is_help=True, help="Settings: what is in effect, and why.")


@config_app.command("show")
@with_settings("index", "profile")
def config_show(as_json: JsonOpt = False, *, settings: Settings) -> None:
    """Every effective setting by section, with where its value came from (default, a
    profile, the config file, a SNAPRAG_* variable or an option). Secrets are masked."""
    from ..config import Config
    from ..config_sources import FIELD_SECTIONS, SECTIONS, redact

    try:
        config = Config.from_env(config_file=settings.config_file, **settings.overrides)
    except Exception as exc:
        fail(error_message(exc))
    file = settings.config_file or os.environ.get("SNAPRAG_CONFIG") or None
    sources = config.sources()
    data: dict[str, Any] = {
        "config_file": str(Path(file).expanduser()) if file else None,
        "settings": {section: {} for section in SECTIONS},
    }
    for name, section in FIELD_SECTIONS.items():
        value = redact(name, getattr(config, name))
        if isinstance(value, Path):
            value = str(value)
        data["settings"][section][name] = {"value": value, "source": sources[name]}
    emit(data, as_json, print_settings)
