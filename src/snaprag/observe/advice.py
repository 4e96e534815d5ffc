"""Recommendations derived from measured traffic; each cites the numbers it comes from.

Input: a window summary (:func:`~.windows.summarize`, optionally with ``live`` gauges and
the server's settings under ``settings``). A rule speaks only when it has enough data to
be right (a minimum number of requests), so an idle server gets no advice.
"""

from __future__ import annotations

from typing import Any

from .windows import retrieval_hits, stage_breakdown

#: fewer requests than this in the window: no advice from them
MIN_REQUESTS = 50


def _stage_share(summary: dict[str, Any], operation: str) -> dict[str, float]:
    """Per stage of ``operation``: its share of the operation's summed stage time."""
    return {r["stage"]: r["share"] for r in stage_breakdown(summary["series"], operation)}


def recommend(summary: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    series, counters = summary["series"], summary["counters"]
    settings = summary.get("settings", {})
    live = summary.get("live", {})

    def add(rule: str, advice: str, because: str) -> None:
        out.append({"rule": rule, "advice": advice, "because": because})

    # cache: repeated queries that still miss
    lookups = counters.get("cache:retrieval:requests", 0)
    hits = retrieval_hits(counters)
    repeats = counters.get("queries:repeated", 0)
    if lookups >= MIN_REQUESTS and hits / lookups < 0.5 and repeats / lookups > 0.3:
        add(
            "cache_hit_rate",
            "raise cache_memory_mb or cache_ttl: repeated queries miss the cache",
            f"hit rate {hits / lookups:.0%} of {lookups:.0f} look-ups while "
            f"{repeats / lookups:.0%} of queries repeat an earlier one",
        )
    search = sum(v["count"] for k, v in series.items() if k == "stage:search.embed")
    share = _stage_share(summary, "search")
    if search >= MIN_REQUESTS and share.get("embed", 0) > 0.5:
        batch = settings.get("server_batch_max", 32)
        batching = "keep micro-batching on" if batch > 1 else "turn micro-batching on"
        add(
            "embed_dominates",
            f"embedding dominates search: {batching} (server_batch_max > 1), run more "
            "processes (--workers N) where there are idle cores, or choose a smaller model",
            f"embed is {share['embed']:.0%} of search stage time over {search} searches",
        )
    ask = share_ask = _stage_share(summary, "ask")
    if ask and sum(v["count"] for k, v in series.items() if k == "stage:ask.total") >= 10:
        prefill = share_ask.get("prefill", 0)
        if prefill > 0.5:
            add(
                "prefill_dominates",
                "the LLM spends most of its time reading the prompt: lower context_tokens "
                "or ask for fewer chunks (k)",
                f"prefill is {prefill:.0%} of answer time",
            )
    rejected = sum(v for k, v in counters.items() if k.startswith("rejected:"))
    requests = sum(v["count"] for k, v in series.items() if k.startswith("route:"))
    if requests >= MIN_REQUESTS and rejected / requests > 0.01:
        add(
            "rejections",
            "requests are refused (429/503): raise server_queue or server_concurrency, "
            "run more --workers, or add hosts",
            f"{rejected:.0f} of {requests} requests refused ({rejected / requests:.1%})",
        )
    memory = live.get("memory_mb")
    limit = live.get("memory_total_mb")
    if memory and limit and memory / limit > 0.7:
        add(
            "memory_high",
            "memory is high: store vectors as int8 (vector_dtype=int8), use the HNSW index "
            "for large collections, or lower cache_memory_mb",
            f"resident memory {memory:.0f} MiB of {limit:.0f} MiB",
        )
    errors = sum(v["errors"] for k, v in series.items() if k.startswith("route:"))
    if requests >= MIN_REQUESTS and errors / requests > 0.01:
        add(
            "errors",
            "server errors: look at the server log and GET /v1/alerts",
            f"{errors} of {requests} requests failed with 5xx ({errors / requests:.1%})",
        )
    return out
