"""What a running command shows on stderr: the ingest progress bar, the status line of
slow first-use steps (model fetch, conversion, quantization), and the ingest summary.

The engine logs such steps at INFO on the ``snaprag.progress`` logger; :func:`status_line`
shows them on a terminal (never in ``--json`` runs, never when stderr is not a terminal).
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich loads only when something is printed (cold start)
    from rich.console import Console


from .render import console, markup, safe

PROGRESS_LOGGER = "snaprag.progress"
# transient failures: running again may well work, so --exclude is not the advice
_TRANSIENT = ("no such file", "file not found", "cannot read file", "file name is not valid")


class StatusLine(logging.Handler):
    """Shows each record as a one-line status: in a sink (the ingest bar) if one is set,
    else as a transient spinner line on stderr."""

    def __init__(self, out: Console) -> None:
        from rich.status import Status

        super().__init__(logging.INFO)
        self.out = out
        self.sink: Callable[[str], None] | None = None
        self._status: Status | None = None
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        from rich.status import Status

        try:
            message = safe(record.getMessage())
        except Exception:  # a bad log call must not stop the command
            return
        self.last = message
        if self.sink is not None:
            self.sink(message)
        elif self._status is None:
            self._status = Status(markup(message), console=self.out)
            self._status.start()
        else:
            self._status.update(markup(message))

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


@contextlib.contextmanager
def status_line(enabled: bool) -> Iterator[StatusLine | None]:
    """While the block runs, show ``snaprag.progress`` records as a status line on stderr."""
    if not enabled:
        yield None
        return
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = StatusLine(console(stderr=True))
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.stop()


class IngestProgress:
    """A rich progress bar: files done of all, the file being read, time left, files/s and
    chunks/s; before the files are known, what the engine is preparing. Silent when
    disabled."""

    def __init__(self, enabled: bool = True) -> None:
        from rich.progress import Progress

        self.enabled = enabled
        self.files = 0
        self.chunks = 0
        self.start = time.perf_counter()
        self._progress: Progress | None = None
        self._task: Any = None
        self._total: int | None = None

    def __enter__(self) -> IngestProgress:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]ingest"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeRemainingColumn(),
                TextColumn("[dim]left"),
                TextColumn("[dim]{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[what]}"),
                console=console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "ingest", total=None, count="", rate="", what="starting"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            if self._total is not None:
                self._progress.update(self._task, what="")
            self._progress.__exit__(*exc)

    def show_status(self, message: str) -> None:
        """A status line from the engine (model preparation), shown in place of a file."""
        if self._progress is not None:
            self._progress.update(self._task, what=markup(message))

    def update(self, event: str, data: object) -> None:
        if event == "source":
            self.files += 1
        elif event == "chunks":
            self.chunks += int(data)  # type: ignore[call-overload]
        if self._progress is None:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = f"{self.files / elapsed:.1f} files/s {self.chunks / elapsed:.1f} chunks/s"
        fields: dict[str, Any] = {"rate": rate}
        if event == "discovered":
            self._total = int(data)  # type: ignore[call-overload]
            fields |= {"total": self._total, "what": ""}
        elif event == "start":
            fields["what"] = markup(_short(Path(str(data)).name))
        elif event == "source":
            fields["advance"] = 1
        if self._total is not None:
            fields["count"] = f"{min(self.files, self._total)}/{self._total} files"
        self._progress.update(self._task, **fields)


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def print_summary(report: Any) -> None:
    """The counts of an ingest run, then every source that was not indexed and why."""
    from rich.table import Table

    out = console()
    table = Table(title="Ingest summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    for status in ("added", "updated", "unchanged", "removed", "failed", "ignored"):
        n = report.count(status)
        style = "red" if status == "failed" and n else ""
        table.add_row(status, f"[{style}]{n}[/]" if style else str(n))
    rate = report.chunks_embedded / report.embed_seconds if report.embed_seconds else 0.0
    table.add_row("chunks embedded", f"{report.chunks_embedded:,}")
    table.add_row("chunks/s", f"{rate:.1f}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    runner = getattr(report, "runner", None)
    if runner is not None and runner.name != "local" and runner.workers:
        table.add_row(runner.name, f"{len(runner.workers)} workers at {runner.address}")
        for w in runner.workers:
            table.add_row(f"  {w.worker} ({w.node})", f"{w.chunks:,} chunks")
    out.print(table)
    for note in getattr(report, "notes", ()):
        out.print(f"[yellow]note:[/] {markup(note)}", highlight=False)
    problems = [r for r in report.results if r.status in ("failed", "ignored")]
    if problems:
        detail = Table(title="Not indexed", show_lines=False)
        detail.add_column("status")
        detail.add_column("source", overflow="fold")
        detail.add_column("reason", overflow="fold")
        for r in problems:
            style = "red" if r.status == "failed" else "yellow"
            detail.add_row(f"[{style}]{r.status}[/]", markup(r.path), markup(r.reason))
        out.print(detail)
    failed = [r for r in report.results if r.status == "failed"]
    if failed:
        out.print(
            f"[red]{len(failed)} source(s) failed[/]; fix or remove them and "
            "run the command again (indexed sources are kept).",
            highlight=False,
        )
        lasting = [r for r in failed if not r.reason.lower().startswith(_TRANSIENT)]
        if lasting:
            example = shlex.quote(Path(lasting[0].path).name)
            out.print(
                "A source that can never be indexed (a scanned PDF, an encrypted or binary "
                "file) fails every run; skip it with --exclude GLOB so that scheduled "
                f"ingests exit 0, e.g. --exclude {markup(example)}",
                highlight=False,
            )
