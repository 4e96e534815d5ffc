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


def winner(row: Row, systems: list[dict[str, Any]]) -> str | None:
    """The label of the best system in ``row`` (None when no system has a value); a tie
    goes to the first listed (snaprag), so a peer wins only by being strictly better."""
    scored = [(row.get(s), s["label"]) for s in systems if row.get(s) is not None]
    if not scored:
        return None
    best = max if row.higher_is_better else min
    value = best(v for v, _ in scored)
    return next(label for v, label in scored if v == value)


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Header + one row per measure; the best cell in bold, the last cell names the winner
    (marked "(peer)" when it is not snaprag, "tie (n)" when n systems share the best value)."""
    systems = result["systems"]
    out = [["measure", *(s["label"] for s in systems), "best"]]
    for row in ROWS:
        win = winner(row, systems)
        cells = [row.name]
        for s in systems:
            v = row.get(s)
            text = "—" if v is None else row.fmt.format(v)
            cells.append(f"**{text}**" if s["label"] == win else text)
        peer = win is not None and not win.startswith("snaprag")
        tied = sum(
            1 for s in systems if win is not None and row.get(s) == row.get(_by(systems, win))
        )
        if win is None:
            cells.append("—")
        elif tied > 1:
            cells.append(f"tie ({tied})")
        else:
            cells.append(f"{win} (peer)" if peer else win)
        out.append(cells)
    return out


def _by(systems: list[dict[str, Any]], label: str) -> dict[str, Any]:
    return next(s for s in systems if s["label"] == label)


def peer_wins(result: dict[str, Any]) -> dict[str, str]:
    """Measure -> label of the peer that beat every other system there (ties are no win)."""
    out = {}
    systems = result["systems"]
    for row in ROWS:
        win = winner(row, systems)
        best = None if win is None else row.get(_by(systems, win))
        if win is not None and sum(1 for s in systems if row.get(s) == best) > 1:
            continue
        if win is not None and not win.startswith("snaprag"):
            out[row.name] = win
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
