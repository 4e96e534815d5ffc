"""``snaprag report``: the performance report of a server's recorded traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .options import JsonOpt, Settings, with_settings
from .render import console, markup
from .shell import emit, fail


@with_settings("index")
def report(
    data: Annotated[
        Path | None, typer.Option("--data", help="The folder a server ran with --data")
    ] = None,
    hours: Annotated[float, typer.Option("--hours", help="How far back to look")] = 24.0,
    as_json: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Throughput, p50/p95/p99 per route, where the time goes per stage, cache hit rates,
    errors, the slowest queries and recommendations, from what 'snaprag serve' recorded
    (kept on disk: works after a restart)."""
    from ..config import Config
    from ..observe.history import FILE_NAME
    from ..observe.report import build_report

    if not hours > 0:
        fail(f"--hours must be > 0, got {hours:g}")
    folder = data
    if folder is None:
        overrides = dict(settings.overrides)
        index = overrides.get("index_dir")
        if index is None:
            index = Config.from_env(config_file=settings.config_file).index_dir
        folder = Path(index)
    if not (folder / FILE_NAME).exists():
        fail(
            f"no recorded traffic in {folder} (no {FILE_NAME}): run 'snaprag serve' over this "
            "index (or --data folder) first; it records as it serves"
        )
    emit(build_report(folder, hours), as_json, print_report)


def print_report(r: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"[bold]snaprag report[/] — last {r['hours']:g} h, "
        f"{r['minutes_with_traffic']} minutes with traffic ({markup(r['file'])})"
    )
    routes = Table(title="routes")
    for col in ("route", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "5xx", "refused"):
        routes.add_column(col, justify="left" if col == "route" else "right")
    for name, v in r["routes"].items():
        refused = r["refused"].get(name, 0)
        routes.add_row(
            name, str(v["count"]), f"{v['per_s']:.2f}", f"{v['p50_ms']:.2f}",
            f"{v['p95_ms']:.2f}", f"{v['p99_ms']:.2f}", str(v["errors"]), f"{refused:.0f}",
        )  # fmt: skip
    out.print(routes)
    for op, rows in r["stages"].items():
        if not rows:
            continue
        table = Table(title=f"where the time goes: {op}")
        for col in ("stage", "share", "mean ms", "p95 ms", "count"):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for row in rows:
            table.add_row(
                row["stage"], f"{row['share']:.0%}", f"{row['mean_ms']:.3f}",
                f"{row['p95_ms']:.3f}", str(row["count"]),
            )  # fmt: skip
        out.print(table)
    if r["cache"]:
        table = Table(title="cache")
        for col in ("namespace:tier", "hits", "misses", "hit rate"):
            table.add_column(col, justify="left" if col == "namespace:tier" else "right")
        for name, row in r["cache"].items():
            table.add_row(
                name, f"{row['hits']:.0f}", f"{row['misses']:.0f}", f"{row['hit_rate']:.0%}"
            )
        out.print(table)
    if r["slowest"]:
        table = Table(title="slowest queries")
        for col in ("ms", "route", "query"):
            table.add_column(col, justify="right" if col == "ms" else "left")
        for row in r["slowest"]:
            table.add_row(f"{row['ms']:.1f}", row["route"], markup(row["query"]))
        out.print(table)
    for rec in r["recommendations"]:
        out.print(f"[yellow]→[/] {markup(rec['advice'])} [dim]({markup(rec['because'])})[/]")
    if not r["recommendations"]:
        out.print("[green]no recommendations[/]: nothing in the data calls for a change")
