"""``snaprag search`` and ``snaprag ask``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import (
    LLM,
    JsonOpt,
    ModeOpt,
    Settings,
    SourceOpt,
    TypeOpt,
    normalize_choice,
    normalize_type,
    with_settings,
)
from .progress import StatusLine, status_line
from .shell import check_query, dumps, echo_json, error_message, fail, open_engine, with_engine

KOpt = Annotated[int, typer.Option("-k", min=1, help="Number of chunks to return")]

TimingsOpt = Annotated[
    bool, typer.Option("--timings", help="Show where the time went, stage by stage", metavar="")
]


def make_filters(source: str | None, type_: str | None) -> Any:
    """The search filters of ``--source`` / ``--type`` (None when neither is given)."""
    from .. import Filters

    type_ = normalize_type(type_)
    if not (source or type_):
        return None
    try:
        return Filters(source=source, type=type_)
    except Exception as exc:  # an unknown type: the message names the valid ones
        fail(error_message(exc))


@with_settings("index", "model", "profile")
def search(
    query: Annotated[str | None, typer.Argument(help="The query text")] = None,
    k: KOpt = 10,
    queries: Annotated[
        Path | None,
        typer.Option("--queries", help='JSONL file of {"_id", "text"} lines, searched in batch'),
    ] = None,
    mode: ModeOpt = "hybrid",
    source: SourceOpt = None,
    type_: TypeOpt = None,
    as_json: JsonOpt = False,
    timings: TimingsOpt = False,
    *,
    settings: Settings,
) -> None:
    """Search the index; -k counts chunks (several may come from one document)."""
    if (query is None) == (queries is None):
        fail("give either a QUERY or --queries FILE.jsonl")
    filters = make_filters(source, type_)
    mode = normalize_choice(mode)
    if queries is not None:
        with_engine(
            settings,
            lambda engine: _search_file(engine, queries, k, filters, mode, as_json),
            status=not as_json,
        )
        return
    text = query or ""

    def run(engine: Any) -> Any:
        check_query(engine, text)
        return engine.search(text, k=k, filters=filters, mode=mode)

    hits = with_engine(settings, run, status=not as_json)
    if as_json:
        echo_json(
            {"query": text, "hits": [h.to_dict() for h in hits], "timings": hits.timings.to_dict()}
        )
        return
    from .render import print_hits, print_timings

    print_hits(text, hits, hits.timings)
    if timings:
        print_timings(hits.timings)


def _read_queries(path: Path) -> list[tuple[Any, str]]:
    from ..errors import QueryError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"cannot read queries file {path}: {exc}") from exc
    items: list[tuple[Any, str]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            items.append((obj["_id"], str(obj["text"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise QueryError(
                f'{path}:{n}: expected a JSON object with "_id" and "text" ({exc})'
            ) from exc
    return items


def _search_file(
    engine: Any, path: Path, k: int, filters: Any, mode: str, as_json: bool, batch: int = 256
) -> None:
    """Search every query of a JSONL file in batches: JSON lines with ``--json``, else a
    readable summary. Every query is checked before anything is printed."""
    from ..errors import QueryError

    items = _read_queries(path)
    for qid, text in items:
        try:
            check_query(engine, text)
        except QueryError as exc:
            raise QueryError(f"{path}: query {qid!r}: {exc}") from None
    rows: list[tuple[Any, str, list[Any]]] = []
    out = sys.stdout
    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        results = engine.search_many([t for _, t in part], k=k, filters=filters, mode=mode)
        for (qid, text), hits in zip(part, results, strict=True):
            if as_json:
                out.write(dumps({"query_id": qid, "hits": [h.to_dict() for h in hits]}) + "\n")
            else:
                rows.append((qid, text, hits))
    out.flush()
    if not as_json:
        from .render import print_query_summary

        print_query_summary(rows)


def _quiet_from_first_token(events: Iterator[Any], status: StatusLine | None) -> Iterator[Any]:
    """The status line (model preparation and loading) ends where the answer starts."""
    for event in events:
        if status is not None and event.kind in ("token", "done", "error"):
            status.stop()
            status.sink, status = (lambda message: None), None
        yield event


def _keep_done(events: Any, done: list[Any]) -> Any:
    """Pass the events through, keeping the final answer (for --timings after a stream)."""
    for event in events:
        if event.kind == "done" and event.answer is not None:
            done.append(event.answer)
        yield event


@with_settings("index", "model", "profile", *LLM)
def ask(
    question: Annotated[str, typer.Argument(help="Your question")],
    k: Annotated[int, typer.Option("-k", min=1, help="Chunks to read the answer from")] = 5,
    source: SourceOpt = None,
    type_: TypeOpt = None,
    as_json: JsonOpt = False,
    timings: TimingsOpt = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Print the answer as it is generated", metavar="")
    ] = False,
    *,
    settings: Settings,
) -> None:
    """Answer a question from the index, with citations (extractive, or by an LLM: --llm)."""
    filters = make_filters(source, type_)
    if stream:
        from .stream import stream_answer

        engine = open_engine(settings)
        try:
            check_query(engine, question)
            done: list[Any] = []
            with status_line(not as_json and sys.stderr.isatty()) as status:
                events = _keep_done(engine.ask_events(question, k=k, filters=filters), done)
                ok = stream_answer(_quiet_from_first_token(events, status), as_json)
            if timings and done and not as_json:
                from .render import print_timings

                print_timings(done[0].timings)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:
            fail(error_message(exc))
        finally:
            engine.close()
        raise typer.Exit(0 if ok else 2)

    def run(engine: Any) -> Any:
        check_query(engine, question)
        return engine.ask(question, k=k, filters=filters)

    answer = with_engine(settings, run, status=not as_json)
    if as_json:
        echo_json(answer.to_dict())
    elif answer.generator != "extractive":
        from .stream import print_generated

        print_generated(answer)
    else:
        from .render import print_answer

        print_answer(answer)
    if timings and not as_json:
        from .render import print_timings

        print_timings(answer.timings)
