"""``snaprag eval``: retrieval quality and speed of the default pipeline on a collection.

The collection is ingested into a cached index (under the cache directory, keyed by the
collection, preset and chunking), so a second run only searches. A cached index whose BM25
terms were made by an older tokenizer (``TOKENIZER_VERSION``) gets them rebuilt from the
stored chunk texts, keeping its vectors, so tokenizer changes cost seconds, not a
re-embedding. Documents are ranked by
their best chunk. Latency: every query alone (p50/p95), then all queries in one batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..engine import Engine
from ..errors import QueryError
from ..index.retokenize import upgrade_terms
from ..index.tokenize import TOKENIZER_VERSION
from ..ingest.model_choice import AUTO_MODEL
from .datasets import load_queries
from .metrics import evaluate
from .squad import read_squad


def load_collection(
    dataset: Path, split: str, work: Path
) -> tuple[Path, list[tuple[str, str]], dict[str, dict[str, int]]]:
    """The corpus file to ingest, the queries and the qrels of ``split``."""
    if dataset.is_dir():
        corpus = dataset / "corpus.jsonl"
        if not corpus.exists():
            raise QueryError(f"{dataset} has no corpus.jsonl; is it a BEIR-layout folder?")
        queries, qrels = load_queries(dataset, split)
        return corpus, queries, qrels
    if dataset.suffix.lower() == ".json":
        rows, queries, qrels = read_squad(dataset)
        work.mkdir(parents=True, exist_ok=True)
        corpus = work / "corpus.jsonl"
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if not corpus.exists() or corpus.read_text(encoding="utf-8") != text:
            corpus.write_text(text, encoding="utf-8")
        return corpus, queries, qrels
    raise QueryError(f"{dataset}: expected a BEIR folder or a SQuAD-format .json file")


def eval_workdir(dataset: Path, config: Config) -> Path:
    """Where the cached index of ``dataset`` under ``config``'s ingest settings lives."""
    key = hashlib.sha1(
        (
            f"{dataset.resolve()}|{config.model or AUTO_MODEL}|{config.chunk_tokens}|"
            f"{config.chunk_overlap}|{config.quantization}|{config.vector_dtype}"
            # the quality profile's second model: its own index (unset: the keys as before)
            + (f"|second={config.second_model}" if config.second_model else "")
        ).encode()
    ).hexdigest()[:12]
    # another store keeps its own work folder: its ingest rate is not the embedded one's
    store = "" if config.store == "sqlite" else f"-{config.store}"
    return config.cache_dir / "eval" / f"{dataset.stem}{store}-{key}"


def run_eval(
    dataset: Path,
    split: str = "test",
    preset: str | None = None,
    mode: str = "hybrid",
    single_limit: int = 300,
    **settings: Any,
) -> dict[str, Any]:
    dataset = dataset.resolve()
    settings.setdefault("cache", False)  # measure the pipeline, not the query cache
    config = Config.from_env(model=preset, **settings)
    work = eval_workdir(dataset, config)
    corpus, queries, qrels = load_collection(dataset, split, work / "collection")
    if not queries:
        raise QueryError(f"no judged queries for split {split!r} in {dataset}")
    engine = Engine(config.with_(index_dir=work / "index"))
    report = engine.ingest([corpus])
    if not report.ok:
        raise QueryError(f"ingesting {corpus} failed: {report.failed[0].reason}")
    upgrade_terms(engine.store)
    rate_file = work / "ingest.json"
    if report.chunks_embedded:
        rate = report.chunks_embedded / report.embed_seconds
        rate_file.write_text(json.dumps({"chunks_per_s": rate}))
    else:  # cached index: the rate measured when it was built
        rate = json.loads(rate_file.read_text())["chunks_per_s"] if rate_file.exists() else None

    texts = [q for _, q in queries]
    engine.warm_up()
    engine.search_many(texts[:8], k=10, mode=mode)
    t = time.perf_counter()
    hits = engine.search_many(texts, k=300, mode=mode)
    batched_ms = (time.perf_counter() - t) * 1000 / len(texts)
    run = {qid: [h.doc_id for h in hs] for (qid, _), hs in zip(queries, hits, strict=True)}
    quality = evaluate({q: qrels[q] for q, _ in queries}, run)
    single = []
    for q in texts[:single_limit]:
        t = time.perf_counter()
        engine.search(q, k=10, mode=mode)
        single.append((time.perf_counter() - t) * 1000)
    stats = engine.stats()
    engine.close()
    return {
        "dataset": dataset.name,
        "split": split,
        "mode": mode,
        "preset": stats["model"],
        "queries": len(texts),
        "tokenizer_version": TOKENIZER_VERSION,
        **{k: round(v, 4) for k, v in quality.items()},
        "latency_ms": {
            "p50": round(float(np.percentile(single, 50)), 3),
            "p95": round(float(np.percentile(single, 95)), 3),
            "batched_per_query": round(batched_ms, 3),
        },
        "ingest_chunks_per_s": round(rate, 1) if rate else None,
        "index_bytes": stats["bytes"],
    }


def print_eval(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"snaprag eval — {result['dataset']} ({result['split']}, "
        f"{result['queries']} queries, {result['mode']}, {result['preset']})"
    )
    for col in (
        "nDCG@10",
        "R@10",
        "R@100",
        "MRR@10",
        "p50 ms",
        "p95 ms",
        "batched ms/q",
        "ingest chunks/s",
        "index MB",
    ):
        table.add_column(col, justify="right")
    lat = result["latency_ms"]
    table.add_row(
        f"{result['ndcg@10']:.4f}",
        f"{result['recall@10']:.4f}",
        f"{result['recall@100']:.4f}",
        f"{result['mrr@10']:.4f}",
        str(lat["p50"]),
        str(lat["p95"]),
        str(lat["batched_per_query"]),
        str(result["ingest_chunks_per_s"]),
        f"{result['index_bytes'] / 2**20:.1f}",
    )
    Console().print(table)
