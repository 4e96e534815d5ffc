"""``snaprag ingest``: index files and directories, incrementally."""

from __future__ import annotations

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
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Index files and directories (txt, md, html, pdf, docx, BEIR jsonl); incremental."""
    patterns = tuple(p for p in exclude or () if p.strip())
    engine = open_engine(settings)
    live = not as_json and sys.stderr.isatty()
    try:
        with status_line(live) as status, IngestProgress(enabled=live) as progress:
            if status is not None:
                status.sink = progress.show_status
            report = engine.ingest(paths, prune=prune, exclude=patterns, progress=progress.update)
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
        engine.close()
    if as_json:
        echo_json(report.to_dict())
    else:
        print_summary(report)
    raise typer.Exit(0 if report.ok else 1)
