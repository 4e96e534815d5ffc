"""Terminal rendering: hits, answers, statistics, sources, settings and the cache report.

Everything shown on a terminal goes through :func:`safe` first: file names and document
text are data, and a control character in them (``ESC[2J`` in a file name) must never
reach the terminal as a command. JSON output keeps exact strings (see ``shell.dumps``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich loads only when something is printed (cold start)
    from rich.console import Console


from ..types import Answer, Citation, Hit

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what is shown
_UNSAFE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, multiline: bool = False) -> str:
    """``text`` with control characters written out (``\\x1b``); newlines and tabs are
    kept only when ``multiline``."""
    return (_UNSAFE_TEXT if multiline else _UNSAFE_LINE).sub(_visible, str(text))


def markup(text: object, multiline: bool = False) -> str:
    """:func:`safe`, then escaped for rich markup."""
    from rich.markup import escape

    return escape(safe(text, multiline))


def console(stderr: bool = False) -> Console:
    # soft_wrap: long lines are not folded at the terminal width (logs are grepped by line)
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=stderr)


def where(source: str, page: int | None) -> str:
    """``manual.pdf p.2`` (file name and page) or ``guide.md``."""
    name = source.rsplit("/", 1)[-1]
    return f"{name} p.{page}" if page is not None else name


def print_hits(query: str, hits: Sequence[Hit], timings: Any = None) -> None:
    from rich.table import Table

    out = console()
    if not hits:
        from ..search.query import has_searchable_terms

        if not has_searchable_terms(query):
            out.print(
                f"No results: [bold]{markup(query)}[/] has no searchable terms (no letters "
                "or digits); search for words."
            )
            return
        out.print(
            f"No results for [bold]{markup(query)}[/]. Is the index empty, or a filter too "
            "narrow? Try 'snaprag stats' or 'snaprag docs'."
        )
        return
    table = Table(title=f"Results for: {markup(query)}", show_lines=False, expand=True)
    table.add_column("#", justify="right", style="dim", width=3)
    table.add_column("score", justify="right", width=7)
    table.add_column("source", style="cyan", overflow="fold", ratio=1)
    table.add_column("text", ratio=3)
    for i, h in enumerate(hits, 1):
        text = " ".join(h.text.split())
        short = text[:300] + ("…" if len(text) > 300 else "")
        place = markup(where(h.source, h.page))
        if h.section:  # the heading path tells what the chunk is part of
            place += f"\n[dim]{markup(h.section)}[/]"
        table.add_row(str(i), f"{h.score:.4f}", place, markup(short))
    out.print(table)
    total = getattr(timings, "stages", {}).get("total") if timings is not None else None
    if total is not None:
        out.print(f"[dim]search {total:.1f} ms[/]", highlight=False)


#: stages that contain others (their share would count those twice)
WHOLE_STAGES = ("retrieve", "total")  # the same rule as the server's report


def print_timings(timings: Any) -> None:
    """The stages of one request: milliseconds and share, largest first; ``retrieve``
    (all of the search stages) and ``total`` are shown without a share."""
    from rich.table import Table

    stages = {k: v for k, v in timings.stages.items() if k not in WHOLE_STAGES}
    whole = sum(stages.values()) or 1.0
    table = Table(title="where the time went")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    table.add_column("share", justify="right")
    for name, ms in sorted(stages.items(), key=lambda kv: -kv[1]):
        tier = timings.cache_tier if name == "cache" else None
        table.add_row(f"{name} ({tier})" if tier else name, f"{ms:.3f}", f"{ms / whole:.0%}")
    if "retrieve" in timings.stages:
        table.add_row("retrieve (the search stages)", f"{timings.stages['retrieve']:.3f}", "")
    total = timings.stages.get("total", sum(stages.values()))
    table.add_row("[bold]total[/]", f"[bold]{total:.3f}[/]", "")
    console().print(table)


def print_query_summary(rows: Iterable[tuple[Any, str, Sequence[Hit]]]) -> None:
    """One line per query of a ``--queries`` file: its id, text, hits and the best one."""
    from rich.table import Table

    table = Table(title="Queries", expand=True)
    table.add_column("query id", overflow="fold")
    table.add_column("query", ratio=2, overflow="ellipsis", no_wrap=True)
    table.add_column("hits", justify="right")
    table.add_column("best hit", ratio=1, style="cyan", overflow="fold")
    table.add_column("score", justify="right")
    n = 0
    for qid, text, hits in rows:
        n += 1
        best = hits[0] if hits else None
        table.add_row(
            markup(qid),
            markup(" ".join(text.split())),
            str(len(hits)),
            markup(where(best.source, best.page)) if best else "-",
            f"{best.score:.4f}" if best else "-",
        )
    out = console()
    out.print(table)
    out.print(f"[dim]{n} queries; add --json for one JSON line per query with every hit[/]")


def cited_sources(citations: Sequence[Citation], label: Any) -> list[tuple[str, list[str]]]:
    """Citations grouped by source, in first-cited order: each path once, with its labels."""
    groups: dict[str, list[str]] = {}
    for c in citations:
        labels = groups.setdefault(c.source, [])
        if label(c) not in labels:
            labels.append(label(c))
    return list(groups.items())


def answer_timing(answer: Answer) -> str:
    """``retrieval 4.1 ms · answer 2.0 ms · total 6.3 ms`` (or a cached answer's time)."""
    stages = answer.timings.stages
    total = stages.get("total")
    if answer.metrics.get("cached"):
        tier = f" ({answer.timings.cache_tier})" if answer.timings.cache_tier else ""
        return f"from cache{tier} · total {total or stages.get('cache', 0.0):.1f} ms"
    parts = []
    # the retrieval's wall time; its own stages (embed, bm25...) are parts of it
    retrieval = stages.get("retrieve")
    if retrieval is None:
        retrieval = sum(v for k, v in stages.items() if k not in ("answer", "total"))
    if retrieval:
        parts.append(f"retrieval {retrieval:.1f} ms")
    if "answer" in stages:
        parts.append(f"answer {stages['answer']:.1f} ms")
    if total is not None:
        parts.append(f"total {total:.1f} ms")
    return " · ".join(parts)


def print_answer(answer: Answer) -> None:
    """An extractive answer: its text (labels inline), each cited source once, timings."""
    out = console()
    out.print(safe(answer.text, multiline=True), highlight=False, markup=False)
    groups = cited_sources(answer.citations, lambda c: c.label)
    if groups:
        out.print()
        for source, labels in groups:
            out.print(f"  [dim]{markup(' '.join(labels))}[/] {markup(source)}", highlight=False)
            sections = {c.section: None for c in answer.citations if c.source == source}
            shown = [s for s in sections if s]
            if shown:
                out.print(f"    [dim]{markup('; '.join(shown))}[/]", highlight=False)
    line = answer_timing(answer)
    if line:
        out.print(f"[dim]{markup(line)}[/]", highlight=False)


STATS_KEYS = (
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
)


def print_stats(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="snaprag index", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key in STATS_KEYS:
        value = data.get(key)
        if key == "bytes" and isinstance(value, int):
            value = f"{value:,} ({value / 2**20:.1f} MiB)"
        table.add_row(key.replace("_", " "), markup(value))
    console().print(table)


def print_documents(rows: Sequence[dict[str, Any]]) -> None:
    from rich.table import Table

    out = console()
    if not rows:
        out.print("The index holds no sources yet: run 'snaprag ingest PATH'.")
        return
    table = Table(title=f"Indexed sources ({len(rows)})")
    table.add_column("source", style="cyan", overflow="fold")
    table.add_column("type")
    table.add_column("docs", justify="right")
    table.add_column("pages", justify="right")
    table.add_column("chunks", justify="right")
    table.add_column("indexed")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["ingested_at"]))
        if not r.get("complete", True):
            when += " [yellow](partial)[/]"
        table.add_row(
            markup(r["path"]),
            markup(r["type"]),
            str(r["documents"]),
            "-" if r.get("pages") is None else str(r["pages"]),
            str(r["chunks"]),
            when,
        )
    out.print(table)


def print_deleted(result: dict[str, Any]) -> None:
    what = result.get("deleted")
    name = result.get("source") if what == "source" else result.get("doc_id")
    console().print(
        f"deleted {markup(what)} {markup(name)}: {result.get('documents', 0)} document(s), "
        f"{result.get('chunks', 0)} chunk(s)",
        highlight=False,
    )


def print_settings(data: dict[str, Any]) -> None:
    """``config show``: every effective setting by section, with where it came from."""
    from rich.table import Table

    out = console()
    table = Table(title="snaprag settings", show_lines=False)
    table.add_column("section", style="bold")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("from", style="dim", overflow="fold")
    for section, settings in data["settings"].items():
        first = True
        for name, info in settings.items():
            value = info["value"]
            shown = "-" if value is None else value
            if isinstance(value, bool):
                shown = str(value).lower()
            table.add_row(
                section if first else "",
                name,
                markup(shown),
                markup(info["source"]),
                end_section=name == list(settings)[-1],
            )
            first = False
    out.print(table)
    file = data.get("config_file")
    out.print(
        f"[dim]config file: {markup(file) if file else 'none (--config FILE or SNAPRAG_CONFIG)'}"
        "; priority: default < file < SNAPRAG_* env < option[/]",
        highlight=False,
    )


def print_cache_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    tiers = Table(title="cache tiers")
    for col in ("tier", "entries", "bytes", "state"):
        tiers.add_column(col, justify="right" if col in ("entries", "bytes") else "left")
    for name, info in report["tiers"].items():
        state = info.get("state", "")
        if name == "redis" and not info.get("available", True):
            state = f"unreachable, {state}"
        size = info.get("bytes")
        tiers.add_row(
            markup(name),
            str(info.get("entries", "-")),
            f"{size:,}" if isinstance(size, int) else "-",
            markup(state or info.get("path", "")),
        )
    out.print(tiers)
    stats = Table(title="hits and misses (all processes)")
    for col in ("tier", "namespace", "hits", "misses", "hit rate"):
        stats.add_column(col, justify="right" if col in ("hits", "misses", "hit rate") else "left")
    for row in report["stats"]:
        stats.add_row(
            markup(row["tier"]),
            markup(row["namespace"]),
            f"{row['hits']:,}",
            f"{row['misses']:,}",
            f"{row['hit_rate']:.1%}",
        )
    out.print(stats)
    if report["hit_rate"]:
        rates = ", ".join(f"{ns} {rate:.1%}" for ns, rate in sorted(report["hit_rate"].items()))
        out.print(f"overall hit rate: {markup(rates)}")


def print_cleared(removed: dict[str, int | None]) -> None:
    console().print(
        ", ".join(
            f"{markup(tier)}: unreachable, not cleared"
            if n is None
            else f"{markup(tier)}: {n} entries removed"
            for tier, n in removed.items()
        ),
        highlight=False,
    )
