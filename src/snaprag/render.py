"""Terminal rendering of search hits, answers and index statistics (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .types import Answer, Hit


def where(source: str, page: int | None) -> str:
    """``manual.pdf p.2`` (file name and page) or ``guide.md``."""
    name = source.rsplit("/", 1)[-1]
    return f"{name} p.{page}" if page is not None else name


def print_hits(query: str, hits: list[Hit]) -> None:
    console = Console()
    if not hits:
        console.print(
            f"No results for [bold]{escape(query)}[/]. Is the index empty, or a filter too "
            "narrow? Try 'snaprag stats'."
        )
        return
    table = Table(title=f"Results for: {escape(query)}", show_lines=False, expand=True)
    table.add_column("#", justify="right", style="dim", width=3)
    table.add_column("score", justify="right", width=7)
    table.add_column("source", style="cyan", overflow="fold", ratio=1)
    table.add_column("text", ratio=3)
    for i, h in enumerate(hits, 1):
        text = " ".join(h.text.split())
        short = text[:300] + ("…" if len(text) > 300 else "")
        table.add_row(str(i), f"{h.score:.4f}", escape(where(h.source, h.page)), escape(short))
    console.print(table)


def print_answer(answer: Answer) -> None:
    console = Console()
    console.print(answer.text, highlight=False, markup=False)
    if answer.citations:
        console.print()
        for c in answer.citations:
            console.print(f"  [dim]{escape(c.label)}[/] {escape(c.source)}", highlight=False)
    total = answer.timings.stages.get("total")
    if total is not None:
        console.print(f"[dim]{total:.0f} ms[/]")


def print_stats(data: dict[str, Any]) -> None:
    table = Table(title="snaprag index", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key in (
        "index",
        "version",
        "sources",
        "documents",
        "chunks",
        "partial_sources",
        "bytes",
        "model",
        "model_description",
        "dim",
        "vector_dtype",
        "quantization",
        "chunk_tokens",
    ):
        value = data.get(key)
        if key == "bytes" and isinstance(value, int):
            value = f"{value:,} ({value / 2**20:.1f} MiB)"
        table.add_row(key.replace("_", " "), str(value))
    Console().print(table)


def print_cache_report(report: dict[str, Any]) -> None:
    console = Console()
    tiers = Table(title="cache tiers")
    for col in ("tier", "entries", "bytes", "state"):
        tiers.add_column(col, justify="right" if col in ("entries", "bytes") else "left")
    for name, info in report["tiers"].items():
        state = info.get("state", "")
        if name == "redis" and not info.get("available", True):
            state = f"unreachable, {state}"
        size = info.get("bytes")
        tiers.add_row(
            name,
            str(info.get("entries", "-")),
            f"{size:,}" if isinstance(size, int) else "-",
            escape(str(state or info.get("path", ""))),
        )
    console.print(tiers)
    stats = Table(title="hits and misses (all processes)")
    for col in ("tier", "namespace", "hits", "misses", "hit rate"):
        stats.add_column(col, justify="right" if col in ("hits", "misses", "hit rate") else "left")
    for row in report["stats"]:
        stats.add_row(
            row["tier"],
            row["namespace"],
            f"{row['hits']:,}",
            f"{row['misses']:,}",
            f"{row['hit_rate']:.1%}",
        )
    console.print(stats)
    if report["hit_rate"]:
        rates = ", ".join(f"{ns} {rate:.1%}" for ns, rate in sorted(report["hit_rate"].items()))
        console.print(f"overall hit rate: {rates}")
