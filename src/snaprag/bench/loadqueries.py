"""What the load benchmark sends: distinct query texts from a BEIR folder, and the request
of each route for one query."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ..cache.normalize import normalize_query
from ..errors import QueryError

K = 10
ASK_K = 5
CACHED_QUERIES = 8
WARMUP = 8  # requests of the route before each measured phase, not recorded


def query_pool(dataset: Path) -> list[str]:
    """Distinct query texts of a BEIR folder: every query, then every title, shuffled
    with a fixed seed so that each run (and each phase) sees the same mix."""
    texts: list[str] = []
    queries = dataset / "queries.jsonl"
    if not queries.exists():
        found = sorted(dataset.glob("queries*.jsonl"))
        queries = found[0] if found else queries
    for path, key in ((queries, "text"), (dataset / "corpus.jsonl", "title")):
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    text = str(json.loads(line).get(key) or "").strip()
                    if text:
                        texts.append(text[:1000])
    # distinct as the query cache sees them: two texts with one cache key would be a hit
    seen: set[str] = set()
    pool: list[str] = []
    for text in texts:
        key = normalize_query(text)
        if key not in seen:
            seen.add(key)
            pool.append(text)
    if len(pool) < CACHED_QUERIES + WARMUP + 2:
        raise QueryError(
            f"{dataset} has {len(pool)} distinct queries and titles; the load benchmark "
            f"needs at least {CACHED_QUERIES + WARMUP + 2} (a BEIR folder: queries.jsonl, "
            "corpus.jsonl)"
        )
    random.Random(0).shuffle(pool)
    return pool


def _search(q: str) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/search", "body": {"query": q, "k": K}}


def _batch(qs: list[str]) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/search/batch", "body": {"queries": qs, "k": K}}


def _ask(q: str) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/ask", "body": {"question": q, "k": ASK_K}}


def _chat(q: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": q}]
    body = {"model": "snaprag", "messages": messages, "stream": False}
    return {"method": "POST", "path": "/v1/chat/completions", "body": body}
