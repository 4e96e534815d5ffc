"""Progress bar and summary table of an ingest run."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .job import FAILED, IGNORED, REMOVED, UNCHANGED, IngestReport, SourceResult


class IngestProgress:
    """A rich progress bar showing files/s and chunks/s; silent when disabled."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.files = 0
        self.chunks = 0
        self.start = time.perf_counter()
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> IngestProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]ingest"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("ingest", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, event: str, data: object) -> None:
        if event == "source":
            self.files += 1
        elif event == "chunks":
            self.chunks += int(data)  # type: ignore[arg-type]
        if self._progress is None:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = f"{self.files / elapsed:.1f} files/s  {self.chunks / elapsed:.1f} chunks/s"
        if event == "discovered":
            self._progress.update(self._task, total=int(data))  # type: ignore[arg-type]
        elif event == "source":
            self._progress.update(self._task, advance=1, rate=rate)
        else:
            self._progress.update(self._task, rate=rate)


def print_summary(report: IngestReport) -> None:
    console = Console()
    table = Table(title="Ingest summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    for status in ("added", "updated", UNCHANGED, REMOVED, FAILED, IGNORED):
        n = report.count(status)
        style = "red" if status == FAILED and n else ""
        table.add_row(status, f"[{style}]{n}[/]" if style else str(n))
    rate = report.chunks_embedded / report.embed_seconds if report.embed_seconds else 0.0
    table.add_row("chunks embedded", f"{report.chunks_embedded:,}")
    table.add_row("chunks/s", f"{rate:.1f}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    console.print(table)
    problems: list[SourceResult] = [r for r in report.results if r.status in (FAILED, IGNORED)]
    if problems:
        detail = Table(title="Not indexed", show_lines=False)
        detail.add_column("status")
        detail.add_column("source", overflow="fold")
        detail.add_column("reason", overflow="fold")
        for r in problems:
            style = "red" if r.status == FAILED else "yellow"
            detail.add_row(f"[{style}]{r.status}[/]", escape(r.path), escape(r.reason))
        console.print(detail)
    if report.failed:
        console.print(
            f"[red]{len(report.failed)} source(s) failed[/]; fix or remove them and "
            "run the command again (indexed sources are kept)."
        )
