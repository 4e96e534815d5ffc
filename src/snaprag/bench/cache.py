"""``snaprag bench cache``: what the query cache saves, tier by tier, on real queries.

1. A Zipf-distributed stream of a collection's real queries (popular questions repeat,
   most are rare), dealt round-robin to several engines as a server's worker processes
   would be (each its own L1; Redis and the disk cache shared), against: no cache, L1
   only, L1+L2 (Redis), L1+L2+L3 (disk), L1+L3: mean, p50 and p95 latency, hit rate per
   tier, queries/s, memory.
2. Hit latency of each tier alone (the other tiers off), on the full ``Engine.search``
   path: normalization, index-version check, key, lookup, decode.
3. The semantic cache on a labelled set of query variants built from real queries
   (:mod:`snaprag.bench.variants`): hit rate on same-meaning variants and false-hit rate
   on different-meaning ones, per cosine threshold, with and without the guards.
   Thresholds are compared on the train queries; the chosen one is reported on test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..cache.normalize import normalize_query
from ..cache.semantic import SemanticCache
from ..config import Config
from ..engine import Engine
from .datasets import load_queries
from .eval import eval_workdir
from .retrieval import machine
from .variants import build_variants

THRESHOLDS = (0.75, 0.8, 0.85, 0.9, 0.95)


def zipf_stream(n_queries: int, requests: int, s: float, seed: int = 7) -> np.ndarray:
    """Indices into the query list, rank r drawn with probability proportional to 1/r^s."""
    ranks = np.arange(1, n_queries + 1, dtype=np.float64)
    p = ranks**-s
    p /= p.sum()
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_queries)  # which query is popular is arbitrary
    return order[rng.choice(n_queries, size=requests, p=p)]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4)


def _fresh(index: Path, **settings: Any) -> Engine:
    engine = Engine.open(index, **settings)
    if engine.cache is not None:
        engine.cache.clear()
        engine.cache.reset_stats()
    return engine


def _stream_run(
    name: str, index: Path, texts: list[str], stream: np.ndarray, workers: int, **settings
) -> dict:
    """Requests dealt round-robin to ``workers`` engines (like server worker processes:
    each has its own L1, they share Redis and the disk cache)."""
    engines = [_fresh(index, **settings) if w == 0 else Engine.open(index, **settings)
               for w in range(workers)]  # fmt: skip
    for engine in engines:
        engine.warm_up()
        engine.retriever.search_many(texts[:4], 10)  # first-call allocations, not cached
    rss0 = _rss_mb()
    lat = []
    t0 = time.perf_counter()
    for n, i in enumerate(stream):
        t = time.perf_counter()
        engines[n % workers].search(texts[i], k=10)
        lat.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - t0
    row: dict[str, Any] = {
        "config": name,
        "requests": len(stream),
        "workers": workers,
        "mean_ms": round(float(np.mean(lat)), 4),
        "p50_ms": _pct(lat, 50),
        "p95_ms": _pct(lat, 95),
        "qps": round(len(stream) / wall, 1),
        "rss_mb_growth": round(_rss_mb() - rss0, 1),
    }
    if engines[0].cache is not None:
        counts: dict[str, int] = {}
        memory = 0
        for engine in engines:
            for (tier, ns), (hits, _) in engine.cache.stats.snapshot().items():
                if ns == "retrieval":
                    counts[tier] = counts.get(tier, 0) + hits
            if engine.cache.tiered.memory is not None:
                memory += engine.cache.tiered.memory.bytes
        for tier in engines[0].cache.tiered.tier_names:
            row[f"hit_rate_{tier}"] = round(counts.get(tier, 0) / len(stream), 4)
        row["memory_bytes"] = memory
    for engine in engines:
        engine.close()
    return row


def _tier_hit(name: str, index: Path, texts: list[str], **settings: Any) -> dict[str, Any]:
    engine = _fresh(index, **settings)
    engine.search_many(texts, k=10)  # fill
    for q in texts[:20]:
        engine.search(q, k=10)
    lat = []
    for _ in range(5):
        for q in texts:
            t = time.perf_counter()
            engine.search(q, k=10)
            lat.append((time.perf_counter() - t) * 1e6)
    tier = engine.cache.tiered.tier_names[0]
    counts = engine.cache.stats.snapshot()
    engine.close()
    return {
        "tier": name,
        "served_by": tier,
        "hits": counts.get((tier, "retrieval"), [0, 0])[0],
        "p50_us": _pct(lat, 50),
        "p95_us": _pct(lat, 95),
        "mean_us": round(float(np.mean(lat)), 2),
    }


def semantic_quality(
    queries: list[str], embedder: Any, thresholds: tuple[float, ...] = THRESHOLDS
) -> dict[str, Any]:
    """Hit rate (same meaning) and false-hit rate (different meaning) per threshold."""
    variants = build_variants(queries)
    originals = sorted(set(queries))
    vec_o = embedder.embed_queries(originals)
    vec_v = embedder.embed_queries([v.text for v in variants])
    pos = [v for v in variants if v.same]
    neg = [v for v in variants if not v.same]
    exact_pos = sum(normalize_query(v.text) == normalize_query(v.original) for v in pos)
    exact_neg = sum(normalize_query(v.text) == normalize_query(v.original) for v in neg)
    rows = []
    for guards in (True, False):
        for thr in thresholds:
            sem = SemanticCache(thr, max_entries=len(originals) + 1, guards=guards)
            for text, vec in zip(originals, vec_o, strict=True):
                sem.add("s", normalize_query(text), vec, text)
            hit_pos = wrong_pos = hit_neg = 0
            kinds: dict[str, list[int]] = {}
            for v, vec in zip(variants, vec_v, strict=True):
                if normalize_query(v.text) == normalize_query(v.original):
                    got: str | None = v.original
                else:
                    match = sem.lookup("s", normalize_query(v.text), vec)
                    got = match[0] if match else None
                k = kinds.setdefault(v.kind, [0, 0])
                k[1] += 1
                if got is None:
                    continue
                k[0] += 1
                if v.same and got == v.original:
                    hit_pos += 1
                elif v.same:
                    wrong_pos += 1
                else:
                    hit_neg += 1
            rows.append(
                {
                    "threshold": thr,
                    "guards": guards,
                    "hit_rate": round(hit_pos / len(pos), 4),
                    "false_hit_rate": round((hit_neg + wrong_pos) / len(variants), 4),
                    "false_hits_on_different_meaning": round(hit_neg / len(neg), 4),
                    "by_kind": {k: round(h / n, 4) for k, (h, n) in sorted(kinds.items())},
                }
            )
    return {
        "queries": len(originals),
        "same_meaning_variants": len(pos),
        "different_meaning_variants": len(neg),
        "exact_normalized_hit_rate": round(exact_pos / len(pos), 4),
        "exact_normalized_false_hits": exact_neg,
        "rows": rows,
    }


def run(
    dataset: Path,
    requests: int = 3000,
    zipf_s: float = 1.1,
    redis_url: str | None = None,
    korean: Path | None = None,
    progress: bool = True,
    workers: int = 4,
) -> dict[str, Any]:
    from rich.console import Console

    console = Console(stderr=True, quiet=not progress)
    dataset = dataset.resolve()
    base = Config.from_env(cache=False)
    work = eval_workdir(dataset, base)
    index = work / "index"
    status = console.status("ingesting the collection (once; kept with the eval indexes)")
    with status, Engine.open(index, cache=False) as engine:
        engine.ingest([dataset / "corpus.jsonl"])
    test_q = [q for _, q in load_queries(dataset, "test")[0]]
    try:
        train_q = [q for _, q in load_queries(dataset, "train")[0]]
    except Exception:
        train_q = []
    texts = sorted(set(test_q + train_q))
    stream = zipf_stream(len(texts), requests, zipf_s)

    server = None
    if redis_url is None:
        from ..cache.redis_server import RedisServer

        try:
            server = RedisServer().start()
            redis_url = server.url
        except Exception as exc:  # no redis-server installed: L2 rows are skipped
            console.print(f"[yellow]no Redis for L2 rows: {exc}[/]")
    try:
        configs: list[tuple[str, dict[str, Any]]] = [
            ("no cache", {"cache": False}),
            ("L1", {"cache_disk": False}),
        ]
        if redis_url:
            configs += [
                ("L1+L2", {"cache_disk": False, "redis_url": redis_url}),
                ("L1+L2+L3", {"redis_url": redis_url}),
            ]
        configs.append(("L1+L3", {}))
        rows = []
        for name, settings in configs:
            with console.status(f"Zipf stream: {name}"):
                rows.append(_stream_run(name, index, texts, stream, workers, **settings))
        hit_sample = texts[:200]
        tiers = [("L1 memory", {"cache_disk": False})]
        if redis_url:
            tiers.append(
                ("L2 Redis", {"cache_memory_mb": 0, "cache_disk": False, "redis_url": redis_url})
            )
        tiers.append(("L3 disk", {"cache_memory_mb": 0}))
        tier_rows = []
        for name, settings in tiers:
            with console.status(f"hit latency: {name}"):
                tier_rows.append(_tier_hit(name, index, hit_sample, **settings))
    finally:
        if server is not None:
            server.close()

    with console.status("semantic cache: labelled variants"), Engine.open(index, cache=False) as e:
        embedder = e.embedder
        semantic: dict[str, Any] = {}
        if train_q:
            semantic["tune (train queries)"] = semantic_quality(train_q, embedder)
        semantic["report (test queries)"] = semantic_quality(test_q, embedder)
        semantic["model"] = e.model_name
    if korean is not None:
        from .squad import read_squad

        _, kq, _ = read_squad(korean)
        sample = [q for _, q in kq[:: max(1, len(kq) // 300)]][:300]
        with console.status("semantic cache: Korean variants (e5-small)"):
            from ..embed.onnx_embedder import OnnxEmbedder

            cfg = Config.from_env()
            ko = OnnxEmbedder("e5-small", cfg.cache_dir, cfg.quantization, cfg.effective_threads)
            semantic["korean (KorQuAD sample, e5-small)"] = semantic_quality(sample, ko)
    return {
        "dataset": dataset.name,
        "queries": len(texts),
        "requests": requests,
        "zipf_s": zipf_s,
        "workers": workers,
        "distinct_in_stream": len(set(stream.tolist())),
        "stream": rows,
        "tier_hit": tier_rows,
        "semantic": semantic,
        "default_threshold": Config().semantic_threshold,
        "machine": machine(),
    }


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    t = Table(
        title=f"Zipf stream (s={result['zipf_s']}) of {result['requests']} requests over "
        f"{result['queries']} {result['dataset']} queries "
        f"({result['distinct_in_stream']} distinct), dealt to {result['workers']} workers"
    )
    cols = ["config", "mean ms", "p50 ms", "p95 ms", "q/s", "L1 hits", "L2 hits",
            "L3 hits", "L1 MB", "RSS +MB"]  # fmt: skip
    for c in cols:
        t.add_column(c, justify="left" if c == "config" else "right")
    for r in result["stream"]:
        t.add_row(
            r["config"],
            f"{r['mean_ms']:.3f}",
            f"{r['p50_ms']:.3f}",
            f"{r['p95_ms']:.3f}",
            f"{r['qps']:,.0f}",
            *(
                f"{r[f'hit_rate_{n}']:.1%}" if f"hit_rate_{n}" in r else "-"
                for n in ("memory", "redis", "disk")
            ),
            f"{r['memory_bytes'] / 2**20:.1f}" if "memory_bytes" in r else "-",
            f"{r['rss_mb_growth']:.1f}",
        )
    console.print(t)
    t = Table(title="hit latency, one tier alone (Engine.search, k=10)")
    for c in ("tier", "p50 µs", "p95 µs", "mean µs"):
        t.add_column(c, justify="left" if c == "tier" else "right")
    for r in result["tier_hit"]:
        t.add_row(r["tier"], f"{r['p50_us']:.1f}", f"{r['p95_us']:.1f}", f"{r['mean_us']:.1f}")
    console.print(t)
    for name, sem in result["semantic"].items():
        if not isinstance(sem, dict):
            continue
        t = Table(
            title=f"semantic cache, {name}: {sem['queries']} queries, "
            f"{sem['same_meaning_variants']} same-meaning / "
            f"{sem['different_meaning_variants']} different-meaning variants; exact "
            f"normalized key alone hits {sem['exact_normalized_hit_rate']:.1%}"
        )
        for c in ("threshold", "guards", "hit rate", "false-hit rate", "false on different"):
            t.add_column(c, justify="right")
        for r in sem["rows"]:
            t.add_row(
                f"{r['threshold']:.2f}",
                "yes" if r["guards"] else "no",
                f"{r['hit_rate']:.1%}",
                f"{r['false_hit_rate']:.2%}",
                f"{r['false_hits_on_different_meaning']:.2%}",
            )
        console.print(t)
