"""What a ``snaprag bench load`` run means: its targets (pass or fail) and its table.

Targets are reported, never asserted: timings depend on the machine and its load.
"""

from __future__ import annotations

from typing import Any

# RSS may rise this much under overload (hundreds of connections' buffers, allocator
# slack) without counting as growth; a leak shows as far more over a 10 s overload
RSS_TOLERANCE_MIB = 16.0
#: a GET /healthz slower than this (one client, keep-alive) means the transport stalls
FLOOR_WARN_MS = 10.0
#: the targets of the issue: name -> human-readable goal
TARGETS = {
    "cached_rps": "cached search >= 1,500 req/s",
    "cached_p99": "cached search p99 <= 20 ms",
    "uncached_scaling": "uncached, micro-batching on: N clients >= 2x one client's answers/s",
    "overload_only_429": "overload adds only 429s (no 5xx, no dropped connections)",
    "overload_p99": "overload: admitted p99 <= 3x unloaded p99",
    "overload_rss": f"overload: RSS does not grow over the measured round, beyond the "
    "query cache filling up to its bound "
    f"(within {RSS_TOLERANCE_MIB:g} MiB)",
}


def status_classes(status: dict[str, int], errors: dict[str, int]) -> dict[str, int]:
    """Status counts in the classes the report compares (connection errors apart)."""
    out = {"2xx": 0, "429": 0, "503": 0, "504": 0, "other": 0, "connection": sum(errors.values())}
    for code, n in status.items():
        if code.startswith("2"):
            out["2xx"] += n
        elif code in out:
            out[code] += n
        else:
            out["other"] += n
    return out


def cache_check(phases: list[dict[str, Any]]) -> dict[str, float | None]:
    """Whether the cached phase was served by the cache and the others were not."""
    cached = [p["searched_share"] for p in phases if p["name"] == "cached"]
    others = [
        p["searched_share"]
        for p in phases
        if p["name"] != "cached" and p["searched_share"] is not None
    ]
    return {
        "cached_hit_share": round(1 - cached[0], 4) if cached and cached[0] is not None else None,
        "uncached_searched_min": min(others) if others else None,
    }


def evaluate_targets(
    phases: dict[str, dict[str, Any]],
    ratios: dict[str, float | None],
    overload: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Pass or fail per target, for the scenarios that were run."""
    rows: list[dict[str, Any]] = []

    def add(key: str, measured: str, ok: bool) -> None:
        rows.append({"target": key, "goal": TARGETS[key], "measured": measured, "pass": ok})

    cached = phases.get("cached")
    if cached:
        p99 = (cached["ok_latency_ms"] or {}).get("p99", float("inf"))
        add("cached_rps", f"{cached['req_per_s']:,.0f} req/s", cached["req_per_s"] >= 1500)
        add("cached_p99", f"{p99:.1f} ms", p99 <= 20.0)
    if ratios.get("on") is not None:
        add("uncached_scaling", f"{ratios['on']:.2f}x", ratios["on"] >= 2.0)
    if overload:
        errors = overload["not_429_errors"]
        add(
            "overload_only_429",
            f"{overload['status_429']:,} x 429, {errors} other errors",
            errors == 0 and overload["status_429"] > 0,  # no 429 at all: not overloaded
        )
        ratio = overload["p99_ratio"]
        add(
            "overload_p99",
            f"{overload['admitted_p99_ms']} vs {overload['unloaded_p99_ms']} ms ({ratio}x)",
            ratio is not None and ratio <= 3.0,
        )
        before, after = overload["rss_mib_before"], overload["rss_mib_after"]
        known = before is not None and after is not None
        cache = (overload.get("cache_mib_after") or 0) - (overload.get("cache_mib_before") or 0)
        grown = (after - before - cache) if known else None
        add(
            "overload_rss",
            f"{before} -> {after} MiB, {cache:+.1f} MiB of it the query cache"
            if known
            else "unknown (no /proc)",
            known and grown is not None and grown <= RSS_TOLERANCE_MIB,
        )
    return rows


def _ms(latency: dict[str, float] | None, key: str) -> str:
    value = (latency or {}).get(key)
    return "-" if value is None else f"{value:.1f}"


def _not_ok(classes: dict[str, int]) -> str:
    """The answers that were not 2xx, by class (``429: 2,640``), or ``0``."""
    parts = [f"{k}: {v:,}" for k, v in classes.items() if k != "2xx" and v]
    return ", ".join(parts) or "0"


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s = result["settings"]
    bound = " / ".join(
        x
        for x in (
            f"{s['duration_s']:g} s" if s["duration_s"] else "",
            f"{s['requests']:,} requests" if s["requests"] else "",
        )
        if x
    )
    table = Table(
        title=f"snaprag bench load — {result['dataset']}, {bound} per phase, "
        f"k={s['k']}, {s['distinct_queries']:,} distinct queries"
    )
    table.add_column("scenario")
    for col in ("clients", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "not 2xx"):
        table.add_column(col, justify="right")
    table.add_column("cores gen/srv", justify="right")
    for p in result["phases"]:
        rate = f"{p['req_per_s']:,.0f}"
        if p["queries_per_s"] != p["req_per_s"]:
            rate += f" ({p['queries_per_s']:,.0f} q/s)"
        server_cores = p["server"]["cores"]
        table.add_row(
            p["title"] + (" [dim](ran out of queries)[/]" if p["ended"] == "exhausted" else ""),
            str(p["clients"]),
            f"{p['requests']:,}",
            rate,
            _ms(p["ok_latency_ms"], "p50"),
            _ms(p["ok_latency_ms"], "p95"),
            _ms(p["ok_latency_ms"], "p99"),
            _not_ok(p["status"]),
            f"{p['loadgen']['cores']:.2f}/"
            + ("-" if server_cores is None else f"{server_cores:.2f}"),
        )
    console.print(table)
    console.print(
        "[dim]latencies of 2xx answers; not 2xx: by status (connection: dropped or refused); "
        "cores: CPU time / wall time of the load generator and of the server[/]"
    )
    floor = next((p for p in result["phases"] if p["name"] == "http-floor"), None)
    floor_p50 = ((floor or {}).get("ok_latency_ms") or {}).get("p50")
    if floor_p50 is not None and floor_p50 > FLOOR_WARN_MS:
        console.print(
            f"[yellow]HTTP floor p50 {floor_p50:.1f} ms: every keep-alive request waits this "
            "long on the transport alone, and the latencies above include it; ~40 ms is "
            "Nagle's algorithm meeting delayed ACKs (is TCP_NODELAY set on the server's "
            "accepted sockets?)[/]"
        )
    check = result["cache_check"]
    if check["cached_hit_share"] is not None:
        style = "" if check["cached_hit_share"] >= 0.99 else "[red]"
        console.print(
            f"{style}cache check: cached search answered from the cache for "
            f"{check['cached_hit_share']:.1%} of requests"
        )
    if check["uncached_searched_min"] is not None:
        style = "" if check["uncached_searched_min"] == 1.0 else "[red]"
        console.print(
            f"{style}cache check: the uncached phases ran the search for at least "
            f"{check['uncached_searched_min']:.1%} of requests (100%: no cache hit)"
        )
    ratios = result["uncached_scaling"]
    for batching in ("on", "off"):
        if ratios.get(batching) is not None:
            console.print(
                f"uncached search, micro-batching {batching}: {s['clients']} clients = "
                f"{ratios[batching]:.2f}x one client's req/s"
            )
    overload = result.get("overload")
    if overload:
        console.print(
            f"overload: {overload['clients']} clients against capacity {overload['capacity']}; "
            f"{overload['status_429']:,} answered 429 (the server counted "
            f"{overload['server_rejected']:,}); admitted p99 {overload['admitted_p99_ms']} ms "
            f"vs unloaded {overload['unloaded_p99_ms']} ms (clients that read only a "
            f"whole-second Retry-After: {overload.get('herd_admitted_p99_ms')} ms); RSS "
            f"{overload['rss_mib_before']} "
            f"-> {overload['rss_mib_after']} MiB over the measured round "
            f"({overload['rss_mib_unloaded']} MiB before the first)"
        )
    if result["targets"]:
        targets = Table(title="targets")
        targets.add_column("goal")
        targets.add_column("measured", justify="right")
        targets.add_column("", justify="center")
        for t in result["targets"]:
            mark = "[green]pass[/]" if t["pass"] else "[red]FAIL[/]"
            targets.add_row(t["goal"], t["measured"], mark)
        console.print(targets)
    mach = result["machine"]
    console.print(
        f"[dim]load generator: one process, at most {result['loadgen_cores_max']:.2f} cores "
        f"of {mach['cpus']}; {mach['cpu']}, {mach['cpus']} CPUs, {mach['memory_gib']} GiB, "
        f"Python {mach['python']}, load average {mach['load_avg_1m']} at start; "
        f"{result['seconds']:.0f} s in all[/]"
    )
