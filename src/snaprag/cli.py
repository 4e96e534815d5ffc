"""The ``snaprag`` command line: a thin shell over :class:`snaprag.Engine`.

Exit codes: 0 success; 1 some sources failed to ingest; 2 bad usage or an error that
stopped the command (the message says what to do next); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="snaprag: hybrid search and cited answers over your own documents, no server needed.",
)

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index directory [env SNAPRAG_INDEX; default ./.snaprag]"),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Embedding model: minilm, e5-small, hf:ORG/NAME or a directory"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Only sources matching this glob")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="Only this type: pdf, md, html...")]


def _engine(index: Path | None, model: str | None = None, **settings: Any):
    from .engine import Engine

    try:
        return Engine.open(index, model=model, **settings)
    except Exception as exc:  # a bad SNAPRAG_* value, for instance
        _fail(_error_message(exc))


def _with_engine(index: Path | None, action: Callable[[Any], Any], **settings: Any) -> Any:
    """Run ``action(engine)``; any error becomes the one-line message and exit code 2."""
    engine = _engine(index, **settings)
    try:
        return action(engine)
    except Exception as exc:
        _fail(_error_message(exc))
    finally:
        engine.close()


def _emit(data: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
    else:
        show(data)


def _fail(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    # one line, never folded at the terminal width (logs are grepped line by line)
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}", highlight=False
    )
    raise typer.Exit(2)


def _error_message(exc: BaseException) -> str:
    """A one-line message for any error that stops a command."""
    import sqlite3

    from .errors import SnapragError

    if isinstance(exc, SnapragError):
        return str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "the index is busy (another process holds its write lock); try again shortly"
    if isinstance(exc, sqlite3.Error):
        return f"index database error: {exc}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def _filters(source: str | None, type_: str | None):
    from .search.retriever import Filters

    return Filters(source=source, type=type_) if (source or type_) else None


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to index")],
    index: IndexOpt = None,
    model: ModelOpt = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove indexed sources under PATHS that are gone")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index files and directories (txt, md, html, pdf, docx, BEIR jsonl); incremental."""
    from .ingest.render import IngestProgress, print_summary

    engine = _engine(index, model)
    try:
        with IngestProgress(enabled=not as_json and sys.stderr.isatty()) as progress:
            report = engine.ingest(paths, prune=prune, progress=progress.update)
    except Exception as exc:
        _fail(_error_message(exc))
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: everything committed so far is kept; run the same "
            "command again to finish",
            err=True,
        )
        raise typer.Exit(130) from None
    finally:
        engine.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print_summary(report)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The query text")] = None,
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", help="Number of chunks to return")] = 10,
    queries: Annotated[
        Path | None,
        typer.Option("--queries", help='JSONL file of {"_id", "text"} lines, searched in batch'),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25")] = "hybrid",
    source: SourceOpt = None,
    type_: TypeOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
) -> None:
    """Search the index; -k counts chunks (several may come from one document)."""

    if (query is None) == (queries is None):
        _fail("give either a QUERY or --queries FILE.jsonl")
    engine = _engine(index, model)
    filters = _filters(source, type_)
    try:
        if queries is not None:
            _search_file(engine, queries, k, filters, mode)
            return
        hits = engine.search(query or "", k=k, filters=filters, mode=mode)
    except Exception as exc:
        _fail(_error_message(exc))
    finally:
        engine.close()
    if as_json:
        typer.echo(
            json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False)
        )
        return
    from .render import print_hits

    print_hits(query or "", hits)


def _search_file(engine, path: Path, k: int, filters, mode: str, batch: int = 256) -> None:
    from .errors import QueryError

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
    out = sys.stdout
    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        results = engine.search_many([t for _, t in part], k=k, filters=filters, mode=mode)
        for (qid, _), hits in zip(part, results, strict=True):
            out.write(
                json.dumps(
                    {"query_id": qid, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False
                )
                + "\n"
            )
    out.flush()


# answer generation (shared by ask and, later, serve); None keeps config / SNAPRAG_* values
LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Who writes the answer: extractive, smollm2 (bundled demo model), gguf:PATH or "
        "openai:BASE_URL [env SNAPRAG_LLM]",
    ),
]
LlmModelOpt = Annotated[
    str | None, typer.Option("--llm-model", help="Model name on an OpenAI-compatible server")
]
LlmKeyOpt = Annotated[
    str | None,
    typer.Option("--llm-key", help="API key [env SNAPRAG_LLM_API_KEY or OPENAI_API_KEY]"),
]
LlmThreadsOpt = Annotated[int | None, typer.Option("--llm-threads", help="Local model threads")]
LlmCtxOpt = Annotated[int | None, typer.Option("--llm-ctx", help="Local model context (tokens)")]
GpuLayersOpt = Annotated[
    int | None, typer.Option("--gpu-layers", help="Local model layers on the GPU (-1: all)")
]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", help="Longest answer (tokens)")]
ContextTokensOpt = Annotated[
    int | None, typer.Option("--context-tokens", help="Tokens of retrieved text in the prompt")
]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", help="0 = greedy")]
LlmTimeoutOpt = Annotated[
    float | None, typer.Option("--llm-timeout", help="Seconds a server may stay silent")
]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question")],
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", help="Chunks to read the answer from")] = 5,
    source: SourceOpt = None,
    type_: TypeOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
    llm: LlmOpt = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Print the answer as it is generated")
    ] = False,
    llm_model: LlmModelOpt = None,
    llm_key: LlmKeyOpt = None,
    llm_threads: LlmThreadsOpt = None,
    llm_ctx: LlmCtxOpt = None,
    gpu_layers: GpuLayersOpt = None,
    max_tokens: MaxTokensOpt = None,
    context_tokens: ContextTokensOpt = None,
    temperature: TemperatureOpt = None,
    llm_timeout: LlmTimeoutOpt = None,
) -> None:
    """Answer a question from the index, with citations (extractive, or by an LLM: --llm)."""

    engine = _engine(
        index,
        model,
        llm=llm,
        llm_model=llm_model,
        llm_api_key=llm_key,
        llm_threads=llm_threads,
        llm_ctx=llm_ctx,
        llm_gpu_layers=gpu_layers,
        llm_max_tokens=max_tokens,
        context_tokens=context_tokens,
        llm_temperature=temperature,
        llm_timeout=llm_timeout,
    )
    filters = _filters(source, type_)
    if stream:
        from .generate.display import stream_answer

        try:
            ok = stream_answer(engine.ask_events(question, k=k, filters=filters), as_json)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:
            _fail(_error_message(exc))
        finally:
            engine.close()
        raise typer.Exit(0 if ok else 2)
    try:
        answer = engine.ask(question, k=k, filters=filters)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        _fail(_error_message(exc))
    finally:
        engine.close()
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    if answer.generator != "extractive":
        from .generate.display import print_generated

        print_generated(answer)
        return
    from .render import print_answer

    print_answer(answer)


@app.command()
def stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Documents, chunks, bytes, model and version of an index."""
    from .render import print_stats

    _emit(_with_engine(index, lambda engine: engine.stats()), as_json, print_stats)


@app.command("eval")
def eval_(
    dataset: Annotated[
        Path, typer.Argument(help="BEIR folder (corpus.jsonl, queries, qrels/) or SQuAD .json")
    ],
    split: Annotated[str, typer.Option("--split")] = "test",
    preset: Annotated[
        str | None, typer.Option("--preset", help="Embedding model preset (default: minilm)")
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25")] = "hybrid",
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10, latency and ingest speed on an IR collection."""
    from .bench.eval import print_eval, run_eval

    try:
        result = run_eval(dataset, split=split, preset=preset, mode=mode)
    except Exception as exc:
        _fail(_error_message(exc))
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        print_eval(result)


cache_app = typer.Typer(no_args_is_help=True, help="The query cache: statistics, warming.")
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def cache_stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Hits and misses per tier and namespace (all processes so far), entries and bytes."""
    from .render import print_cache_report

    report = _with_engine(index, lambda engine: _require_cache(engine).report())
    _emit(report, as_json, print_cache_report)


@cache_app.command("warm")
def cache_warm(
    index: IndexOpt = None,
    top: Annotated[int, typer.Option("--top", help="How many of the most frequent queries")] = 100,
    llm: Annotated[
        str | None,
        typer.Option("--llm", help="Generator whose answers to warm (as on ask; env SNAPRAG_LLM)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Precompute the most frequent logged queries, so that they are answered from cache."""
    import time

    def warm(engine: Any) -> dict[str, Any]:
        _require_cache(engine)
        t = time.perf_counter()
        warmed = engine.warm_cache(top)
        seconds = time.perf_counter() - t
        return {"warmed": len(warmed), "seconds": round(seconds, 3), "queries": warmed}

    data = _with_engine(index, warm, llm=llm)
    _emit(
        data, as_json, lambda d: typer.echo(f"warmed {d['warmed']} queries in {d['seconds']:.2f} s")
    )


@cache_app.command("clear")
def cache_clear(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Drop every cached entry (memory, Redis, disk); the query log is kept."""
    removed = _with_engine(index, lambda engine: _require_cache(engine).clear())
    _emit(
        removed,
        as_json,
        lambda r: typer.echo(
            ", ".join(
                f"{tier}: unreachable, not cleared" if n is None else f"{tier}: {n} entries removed"
                for tier, n in r.items()
            )
        ),
    )
    if None in removed.values():
        raise typer.Exit(1)  # some tier kept its entries: say so to scripts too


def _bench(run: Callable[[], Any], module: Any, out: Path | None, as_json: bool) -> None:
    """Run a benchmark; write its JSON to ``out`` if given; print JSON or its report."""
    try:
        result = run()
    except Exception as exc:
        _fail(_error_message(exc))
    if out is not None:
        module.write_json(result, out)
    _emit(result, as_json, module.print_report)


def _require_cache(engine: Any) -> Any:
    from .errors import ConfigError

    engine._open_store(create=False)  # a clear error when there is no index
    if engine.cache is None:
        raise ConfigError("the query cache is off (SNAPRAG_CACHE=0); nothing to show")
    return engine.cache


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on real IR collections.")
app.add_typer(bench_app, name="bench")


@bench_app.command("retrieval")
def bench_retrieval(
    dataset: Annotated[Path, typer.Argument(help="BEIR-layout folder (corpus.jsonl, qrels/)")],
    split: Annotated[str, typer.Option("--split")] = "test",
    index: Annotated[
        Path | None, typer.Option("--index", help="Reuse this index (default: fresh temp dir)")
    ] = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest speed, single vs batched query latency, cold start, nDCG@10."""
    from .bench import retrieval

    _bench(
        lambda: retrieval.run(dataset, split=split, index=index, model=model),
        retrieval,
        out,
        as_json,
    )


@bench_app.command("cache")
def bench_cache(
    dataset: Annotated[Path, typer.Argument(help="BEIR-layout folder whose queries to replay")],
    requests: Annotated[int, typer.Option("--requests", help="Length of the stream")] = 3000,
    zipf: Annotated[float, typer.Option("--zipf", help="Zipf exponent of query popularity")] = 1.1,
    workers: Annotated[
        int, typer.Option("--workers", help="Engines sharing L2/L3, each with its own L1")
    ] = 4,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Use this Redis (default: start a private one)"),
    ] = None,
    korean: Annotated[
        Path | None,
        typer.Option("--korean", help="SQuAD-format Korean file for Korean semantic variants"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """No cache vs L1 vs L1+L2 vs L1+L2+L3 on a Zipf stream; tier hit latency; semantic hits."""
    from .bench import cache as bench

    _bench(
        lambda: bench.run(
            dataset,
            requests=requests,
            zipf_s=zipf,
            redis_url=redis_url,
            korean=korean,
            progress=not as_json,
            workers=workers,
        ),
        bench,
        out,
        as_json,
    )


@bench_app.command("ask")
def bench_ask(
    index: Annotated[
        Path | None, typer.Option("--index", help="Ingest into this index (default: temp dir)")
    ] = None,
    samples: Annotated[
        Path | None, typer.Option("--samples", help="Documents to ask about (default: samples/)")
    ] = None,
    llm: Annotated[str, typer.Option("--llm", help="Generator to measure")] = "smollm2",
    k: Annotated[int, typer.Option("-k", help="Chunks retrieved per question")] = 5,
    llm_model: LlmModelOpt = None,
    llm_threads: LlmThreadsOpt = None,
    llm_ctx: LlmCtxOpt = None,
    gpu_layers: GpuLayersOpt = None,
    max_tokens: MaxTokensOpt = None,
    context_tokens: ContextTokensOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Time to first token, tokens/s and per-stage latency of generated answers."""
    from .bench import ask as bench

    _bench(
        lambda: bench.run(
            index=index,
            samples=samples,
            llm=llm,
            k=k,
            progress=not as_json,
            llm_model=llm_model,
            llm_threads=llm_threads,
            llm_ctx=llm_ctx,
            llm_gpu_layers=gpu_layers,
            llm_max_tokens=max_tokens,
            context_tokens=context_tokens,
        ),
        bench,
        out,
        as_json,
    )


@bench_app.command("quantization")
def bench_quantization(
    dataset: Annotated[Path, typer.Argument(help="BEIR-layout folder (e.g. scifact)")],
    preset: Annotated[
        list[str] | None, typer.Option("--preset", help="Preset(s) to study (default: all)")
    ] = None,
    max_docs: Annotated[
        int | None, typer.Option("--max-docs", help="Embed at most N docs (judged ones kept)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """fp32 vs int8 per-tensor vs int8 per-channel: size, speed, fidelity, nDCG@10."""
    from .bench import quantization

    try:
        result = quantization.run(
            dataset,
            presets=tuple(preset or ("minilm", "e5-small")),
            max_docs=max_docs,
            out=out,
            progress=not as_json,
        )
    except Exception as exc:
        _fail(_error_message(exc))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        quantization.print_report(result)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
