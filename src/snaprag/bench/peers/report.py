"""The peers benchmark's report: one row per measure, one column per system, and a last
column naming the best system of the row (so a row a peer wins says so)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIB = 2**20


@dataclass(frozen=True)
class Row:
    name: str
    get: Callable[[dict[str, Any]], float | None]
    fmt: str
    higher_is_better: bool = False


ROWS = (
    Row("nDCG@10", lambda s: s["quality"]["ndcg@10"], "{:.4f}", True),
    Row("Recall@100", lambda s: s["quality"]["recall@100"], "{:.4f}", True),
    Row(
        "query p50 ms (one by one, all rounds)", lambda s: s["query"]["single_ms"]["p50"], "{:.2f}"
    ),
    # on a shared machine the rounds differ; the quietest round is closest to the system's own
    Row("query p50 ms, best round", lambda s: min(s["query"]["p50_per_round"]), "{:.2f}"),
    Row("query p95 ms", lambda s: s["query"]["single_ms"]["p95"], "{:.2f}"),
    Row("query p99 ms", lambda s: s["query"]["single_ms"]["p99"], "{:.2f}"),
    Row("batched ms/query", lambda s: s["query"]["batched_ms_per_query"], "{:.2f}"),
    Row("ingest s (model load apart)", lambda s: s["ingest"]["ingest_s"], "{:.1f}"),
    Row("model load s", lambda s: s["ingest"]["model_load_s"], "{:.2f}"),
    Row("peak RSS building MiB", lambda s: s["ingest"]["peak_rss_bytes"] / MIB, "{:.0f}"),
    Row("RSS query process MiB", lambda s: s["query"]["rss_bytes"] / MIB, "{:.0f}"),
    Row("index on disk MiB", lambda s: s["ingest"]["index_bytes"] / MIB, "{:.1f}"),
    Row("cold start to first answer s", lambda s: s["query"]["first_answer_s"], "{:.2f}"),
)


def best_labels(row: Row, systems: list[dict[str, Any]]) -> list[str]:
    """The labels of every system with the best value of ``row`` (several on a tie; none
    when no system has a value)."""
    scored = [(row.get(s), s["label"]) for s in systems if row.get(s) is not None]
    if not scored:
        return []
    best = (max if row.higher_is_better else min)(v for v, _ in scored)
    return [label for v, label in scored if v == best]


def winner(row: Row, systems: list[dict[str, Any]]) -> str | None:
    """The first system with the best value of ``row`` (snaprag is listed first)."""
    labels = best_labels(row, systems)
    return labels[0] if labels else None


def _is_peer(label: str) -> bool:
    return not label.startswith("snaprag")


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Header + one row per measure; the best cells in bold, the last cell names the best
    systems, marked "(peer)" when snaprag is not among them."""
    systems = result["systems"]
    out = [["measure", *(s["label"] for s in systems), "best"]]
    for row in ROWS:
        best = best_labels(row, systems)
        cells = [row.name]
        for s in systems:
            v = row.get(s)
            text = "—" if v is None else row.fmt.format(v)
            cells.append(f"**{text}**" if s["label"] in best else text)
        if not best:
            cells.append("—")
        elif len(best) == len(systems) > 1:
            cells.append("tie (all)")
        else:
            names = " = ".join(best)
            cells.append(f"{names} (peer)" if all(map(_is_peer, best)) else names)
        out.append(cells)
    return out


def peer_wins(result: dict[str, Any]) -> dict[str, str]:
    """Measure -> the peers that beat snaprag there (a tie with snaprag is no win)."""
    out = {}
    for row in ROWS:
        best = best_labels(row, result["systems"])
        if best and all(map(_is_peer, best)):
            out[row.name] = " = ".join(best)
    return out


def markdown(result: dict[str, Any]) -> str:
    rows = table_rows(result)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    idle = result["idle"]
    m = result["machine"]
    subset = " (subset)" if result["subset"] else ""
    lines += [
        "",
        f"{result['dataset']}{subset}: {result['documents']:,} documents, {result['queries']} "
        f"queries, k={result['k']}, {result['rounds']} query rounds; {m['cpus']} CPUs "
        f"({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}. Other processes used "
        f"{idle['mean_other_cores']} cores on average during a pass (at most "
        f"{idle['max_other_cores']}); {idle['busy_passes']} of {idle['passes']} passes ran on "
        "a busy machine.",
        "",
        "Versions: "
        + "; ".join(
            f"{s['label']}: " + ", ".join(f"{k} {v}" for k, v in s["versions"].items())
            for s in result["systems"]
        ),
    ]
    return "\n".join(lines) + "\n"


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = table_rows(result)
    table = Table(
        title=f"snaprag bench peers — {result['dataset']}"
        f"{' (subset)' if result['subset'] else ''}, {result['documents']:,} docs, "
        f"{result['queries']} queries"
    )
    for i, name in enumerate(rows[0]):
        table.add_column(name, justify="left" if i == 0 else "right")
    for r in rows[1:]:
        table.add_row(*(c.replace("**", "") for c in r))
    console = Console()
    console.print(table)
    idle = result["idle"]
    state = "idle" if idle["idle"] else "BUSY (numbers are provisional)"
    console.print(
        f"[dim]machine {state}: other processes {idle['mean_other_cores']} cores on average, "
        f"{idle['busy_passes']}/{idle['passes']} passes busy[/]"
    )
