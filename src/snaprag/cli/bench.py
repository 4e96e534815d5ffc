"""``snaprag eval`` and ``snaprag bench ...``: measurements on real collections.

The benchmarks build their own engines (often several, on fresh indexes), so ``--config``
reaches them as ``SNAPRAG_CONFIG`` for this process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import LLM, JsonOpt, Settings, with_settings
from .shell import echo_json, emit, error_message, fail

OutOpt = Annotated[Path | None, typer.Option("--out", help="Also write the JSON here")]
#: where 'bench load' finds SciFact in a checkout (../shared/datasets next to the repository)
SCIFACT = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "scifact"
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Embedding model: minilm, e5-small, hf:ORG/NAME or a directory"),
]


def _use_config_file(settings: Settings) -> None:
    if settings.config_file is not None:
        from ..config_sources import read_config_file

        try:
            read_config_file(settings.config_file)  # a bad file fails now, not mid-run
        except Exception as exc:
            fail(error_message(exc))
        os.environ["SNAPRAG_CONFIG"] = str(settings.config_file)


def _bench(
    settings: Settings, run: Callable[[], Any], module: Any, out: Path | None, as_json: bool
) -> None:
    """Run a benchmark; write its JSON to ``out`` if given; print JSON or its report."""
    _use_config_file(settings)
    try:
        result = run()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(error_message(exc))
    if out is not None:
        from ..bench.output import write_json

        write_json(result, out)
    emit(result, as_json, module.print_report)


@with_settings()
def eval_(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="BEIR folder (corpus.jsonl, queries, qrels/) or SQuAD .json; with --outline "
            "a folder of PDFs or an index directory"
        ),
    ],
    outline: Annotated[
        bool,
        typer.Option(
            "--outline",
            help="Page-level Recall@10/MRR@10 with each PDF bookmark's title as a query and "
            "its page as the answer, for every mode, next to a page-level BM25 baseline",
            metavar="",
        ),
    ] = False,
    answers: Annotated[
        bool,
        typer.Option(
            "--answers",
            help="Answer quality on a SQuAD-format file: gold text in the answer, in the top "
            "hits, answer length, and abstention in and out of corpus",
            metavar="",
        ),
    ] = False,
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus",
            help="With --answers: ask a folder of documents instead of the file's own paragraphs",
        ),
    ] = None,
    out_of_corpus: Annotated[
        Path | None,
        typer.Option(
            "--out-of-corpus",
            help="With --answers: questions the documents cannot answer (BEIR folder, "
            ".jsonl, SQuAD .json or one per line); they should get no answer",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="With --answers: only the first N questions", min=1),
    ] = None,
    split: Annotated[str, typer.Option("--split")] = "test",
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Embedding model preset (default: chosen from the text, as by ingest)",
        ),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25")] = "hybrid",
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10, latency and ingest speed on an IR collection; with
    --outline, how often search finds the bookmarked page of your own PDFs."""
    _use_config_file(settings)
    if outline:
        _eval_outline(dataset, preset, as_json)
        return
    if answers:
        _eval_answers(dataset, corpus, out_of_corpus, preset, limit, as_json)
        return
    if corpus is not None or out_of_corpus is not None or limit is not None:
        fail("--corpus, --out-of-corpus and --limit go with --answers")
    from ..bench.eval import print_eval, run_eval

    try:
        result = run_eval(dataset, split=split, preset=preset, mode=mode.strip().lower())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(error_message(exc))
    emit(result, as_json, print_eval)


def _eval_outline(target: Path, preset: str | None, as_json: bool) -> None:
    from ..bench import outline

    try:
        result = outline.run(target, preset=preset)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(error_message(exc))
    _show(result, outline.last_line, outline.print_report, as_json)


def _eval_answers(
    dataset: Path,
    corpus: Path | None,
    out_of_corpus: Path | None,
    preset: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    from ..bench import answers

    try:
        with _progress_bar(not as_json) as progress:
            result = answers.run(
                dataset, corpus, out_of_corpus, preset=preset, limit=limit, progress=progress
            )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(error_message(exc))
    _show(result, answers.last_line, answers.print_report, as_json)


def _show(
    result: dict[str, Any],
    last_line: Callable[[dict[str, Any]], dict[str, Any]],
    print_report: Callable[[dict[str, Any]], None],
    as_json: bool,
) -> None:
    """An evaluation's result: a table, or JSON whose last line is the summary."""
    if as_json:  # details first; the last line is the summary scripts read
        summary = last_line(result)
        echo_json({k: v for k, v in result.items() if k not in summary})
        echo_json(summary)
    else:
        print_report(result)


@contextlib.contextmanager
def _progress_bar(show: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A bar on stderr while questions are asked (none for --json or a non-terminal)."""
    import sys

    if not show or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("asking", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on real IR collections.")


@bench_app.command("retrieval")
@with_settings()
def bench_retrieval(
    dataset: Annotated[Path, typer.Argument(help="BEIR-layout folder (corpus.jsonl, qrels/)")],
    split: Annotated[str, typer.Option("--split")] = "test",
    index: Annotated[
        Path | None, typer.Option("--index", help="Reuse this index (default: fresh temp dir)")
    ] = None,
    model: ModelOpt = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Ingest speed, single vs batched query latency, cold start, nDCG@10."""
    from ..bench import retrieval

    _bench(
        settings,
        lambda: retrieval.run(dataset, split=split, index=index, model=model),
        retrieval,
        out,
        as_json,
    )


@bench_app.command("cache")
@with_settings()
def bench_cache(
    dataset: Annotated[Path, typer.Argument(help="BEIR-layout folder whose queries to replay")],
    requests: Annotated[int, typer.Option("--requests", min=1, help="Length of the stream")] = 3000,
    zipf: Annotated[float, typer.Option("--zipf", help="Zipf exponent of query popularity")] = 1.1,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Engines sharing L2/L3, each with its own L1")
    ] = 4,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Use this Redis (default: start a private one)"),
    ] = None,
    korean: Annotated[
        Path | None,
        typer.Option("--korean", help="SQuAD-format Korean file for Korean semantic variants"),
    ] = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """No cache vs L1 vs L1+L2 vs L1+L2+L3 on a Zipf stream; tier hit latency; semantic hits."""
    from ..bench import cache as bench

    _bench(
        settings,
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
@with_settings(*LLM)
def bench_ask(
    index: Annotated[
        Path | None, typer.Option("--index", help="Ingest into this index (default: temp dir)")
    ] = None,
    samples: Annotated[
        Path | None, typer.Option("--samples", help="Documents to ask about (default: samples/)")
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Chunks retrieved per question")] = 5,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Time to first token, tokens/s and per-stage latency of generated answers
    (--llm defaults to smollm2 here)."""
    from ..bench import ask as bench

    overrides = dict(settings.overrides)
    llm = overrides.pop("llm", "smollm2")
    _bench(
        settings,
        lambda: bench.run(
            index=index, samples=samples, llm=llm, k=k, progress=not as_json, **overrides
        ),
        bench,
        out,
        as_json,
    )


@bench_app.command("load")
@with_settings()
def bench_load(
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset", help="BEIR folder whose queries and titles to send (default: SciFact)"
        ),
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option(
            "--index", help="Serve a copy of this index (default: the dataset, indexed once)"
        ),
    ] = None,
    clients: Annotated[
        int, typer.Option("--clients", min=2, help="Concurrent clients of the loaded phases")
    ] = 16,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration", min=0.1, help="Seconds per phase (default 10 without --requests)"
        ),
    ] = None,
    requests: Annotated[
        int | None, typer.Option("--requests", min=1, help="Requests per phase, at most")
    ] = None,
    scenarios: Annotated[
        str,
        typer.Option(
            "--scenarios",
            help="all, or a comma list of: cached, uncached, batch, ask, chat, overload",
        ),
    ] = "all",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (snaprag serve --workers)")
    ] = 1,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Req/s and p50/p95/p99 of a real 'snaprag serve' under load: cached and uncached
    search (micro-batching on and off), batch search, ask, chat, and overload."""
    from ..bench import load as bench

    chosen = tuple(s.strip().lower() for s in scenarios.split(",") if s.strip())
    if chosen == ("all",):
        chosen = bench.SCENARIOS
    unknown = [s for s in chosen if s not in bench.SCENARIOS]
    if unknown or not chosen:
        fail(
            f"--scenarios: unknown {', '.join(unknown) or '(none given)'}; "
            f"give all or a comma list of {', '.join(bench.SCENARIOS)}"
        )
    if dataset is None:
        if not SCIFACT.is_dir():
            fail(
                f"no SciFact at {SCIFACT}; pass --dataset BEIR_FOLDER (queries.jsonl, corpus.jsonl)"
            )
        dataset = SCIFACT
    elif not dataset.is_dir():
        fail(
            f"--dataset {dataset} is not a folder; give a BEIR folder (queries.jsonl, corpus.jsonl)"
        )
    _bench(
        settings,
        lambda: bench.run(
            dataset,
            index=index,
            clients=clients,
            duration_s=duration,
            requests=requests,
            scenarios=chosen,
            progress=not as_json,
            workers=workers,
        ),
        bench,
        out,
        as_json,
    )


@bench_app.command("quantization")
@with_settings()
def bench_quantization(
    dataset: Annotated[Path, typer.Argument(help="BEIR-layout folder (e.g. scifact)")],
    preset: Annotated[
        list[str] | None, typer.Option("--preset", help="Preset(s) to study (default: all)")
    ] = None,
    max_docs: Annotated[
        int | None,
        typer.Option("--max-docs", min=1, help="Embed at most N docs (judged ones kept)"),
    ] = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """fp32 vs int8 per-tensor vs int8 per-channel: size, speed, fidelity, nDCG@10."""
    from ..bench import quantization

    _use_config_file(settings)
    try:
        result = quantization.run(
            dataset,
            presets=tuple(preset or ("minilm", "e5-small")),
            max_docs=max_docs,
            out=out,
            progress=not as_json,
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(error_message(exc))
    emit(result, as_json, quantization.print_report)
