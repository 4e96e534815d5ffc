"""``snaprag bench peers``: snaprag against the systems users pick instead (each in its own
virtual environment, built on first use), same documents, model and k, in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .bench import SCIFACT, _bench
from .options import JsonOpt, Settings, with_settings
from .shell import fail


@with_settings()
def bench_peers(
    peers: Annotated[
        str | None,
        typer.Option(
            "--peers",
            help="Comma list of reference, chroma, lancedb, qdrant, txtai, llamaindex, haystack "
            "(default: all; snaprag always runs)",
        ),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="BEIR folder (default: SciFact)")
    ] = None,
    docs: Annotated[
        int | None,
        typer.Option("--docs", min=1, help="A subset of N documents (judged ones kept)"),
    ] = None,
    queries: Annotated[
        int | None, typer.Option("--queries", min=1, help="The first N judged queries")
    ] = None,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Query passes per system (order rotated)")
    ] = 3,
    k: Annotated[int, typer.Option("-k", min=1, help="Results per timed query")] = 10,
    variants: Annotated[
        str,
        typer.Option(
            "--variants",
            help="all, default (documented defaults) or tuned (each system's best honest setting)",
        ),
    ] = "all",
    charts: Annotated[
        Path | None, typer.Option("--charts", help="Draw PNG charts into this folder")
    ] = None,
    work: Annotated[
        Path | None,
        typer.Option("--work", help="Keep the corpus, indexes and driver log here"),
    ] = None,
    pause_file: Annotated[
        Path | None,
        typer.Option("--pause-file", help="Wait before each pass while this file exists"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the JSON here, and the Markdown table next to it"),
    ] = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """snaprag against Chroma, LanceDB, Qdrant, txtai, LlamaIndex, Haystack and a bm25s +
    sentence-transformers reference, each in its own virtual environment, same documents,
    model and k, in one run."""
    from ..bench import peers as bench

    if dataset is None:
        if not SCIFACT.is_dir():
            fail(f"no SciFact at {SCIFACT}; pass --dataset BEIR_FOLDER")
        dataset = SCIFACT
    elif not (dataset / "corpus.jsonl").is_file():
        fail(f"--dataset {dataset} has no corpus.jsonl; give a BEIR folder")

    def run() -> dict[str, Any]:
        result = bench.run(
            dataset,
            peers=peers,
            docs=docs,
            queries=queries,
            rounds=rounds,
            k=k,
            variants=variants,
            work=work,
            pause_file=pause_file,
        )
        if charts is not None:
            from ..bench.peers.charts import draw

            stem = out.stem if out is not None else "peers"
            result["charts"] = [str(p) for p in draw(result, charts, stem)]
        if out is not None:
            from ..fs import atomic_write_text

            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out.with_suffix(".md"), bench.markdown(result))
        return result

    _bench(settings, run, bench, out, as_json)
