"""``snaprag ingest``: index files and directories, incrementally."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from .options import JsonOpt, Settings, with_settings
from .progress import IngestProgress, print_summary, status_line
from .shell import echo_json, error_message, fail, open_engine


@with_settings("index", "model", "profile")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to index")],
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Remove indexed sources under PATHS that are gone", metavar=""
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Skip files matching this glob (file name, path under a PATH, or a folder "
            "name); repeatable",
        ),
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Load, chunk and embed on Ray actors (extra 'ray'): a local Ray, or the "
            "cluster at the ADDRESS that follows (auto, HOST:PORT, ray://HOST:PORT)",
            metavar="",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster to use (same as --ray ADDRESS)"),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option("--ray-workers", help="Ray actors (default: the cluster's CPUs / --ray-cpus)"),
    ] = None,
    ray_cpus: Annotated[
        float | None,
        typer.Option("--ray-cpus", help="CPUs per Ray actor, its ONNX threads (default 1)"),
    ] = None,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Index files and directories (txt, md, html, pdf, docx, BEIR jsonl); incremental."""
    from ..ingest.runners import create_runner

    patterns = tuple(p for p in exclude or () if p.strip())
    name = "local"
    if ray or ray_address:
        name = f"ray:{ray_address}" if ray_address and ray_address != "local" else "ray"
    try:
        runner = create_runner(
            name,
            cpus_per_worker=1.0 if ray_cpus is None else ray_cpus,
            workers=ray_workers,
        )
    except Exception as exc:
        fail(error_message(exc))
    engine = open_engine(settings)
    live = not as_json and sys.stderr.isatty()
    try:
        with status_line(live) as status, IngestProgress(enabled=live) as progress:
            if status is not None:
                status.sink = progress.show_status
            report = engine.ingest(
                paths, prune=prune, exclude=patterns, progress=progress.update, runner=runner
            )
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: everything committed so far is kept; run the same "
            "command again to finish",
            err=True,
        )
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(error_message(exc))
    finally:
        runner.close()
        engine.close()
    if as_json:
        echo_json(report.to_dict())
    else:
        print_summary(report)
    raise typer.Exit(0 if report.ok else 1)


#: what may follow ``--ray`` as its ADDRESS: Ray's own forms, and ``local``
_RAY_ADDRESS = re.compile(r"auto|local|ray://\S+|[\w.-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}")


def ray_address_args(args: list[str]) -> list[str]:
    """``snaprag ingest ... --ray ADDRESS`` as ``--ray-address ADDRESS``.

    The parser has no options with an optional value, so ``--ray`` is a flag, and a
    following word that is a Ray address (``auto``, ``HOST:PORT``, ``ray://...``,
    ``local``), or ``--ray=ADDRESS``, is handed to ``--ray-address``; any other word stays
    a path to index (``--ray docs/``)."""
    if not args or args[0] != "ingest":
        return args
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":  # only paths follow
            out.extend(args[i:])
            break
        if arg.startswith("--ray="):
            out.append("--ray-address=" + arg.removeprefix("--ray="))
        elif arg == "--ray" and i + 1 < len(args) and _RAY_ADDRESS.fullmatch(args[i + 1]):
            out.append("--ray-address=" + args[i + 1])
            i += 1
        else:
            out.append(arg)
        i += 1
    return out
