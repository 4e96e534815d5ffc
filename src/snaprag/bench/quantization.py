"""``snaprag bench quantization``: what int8 quantization costs and buys, per model preset.

For each preset three variants of the same ONNX graph are compared:

* ``fp32``: the converted model as is;
* ``int8-per-tensor``: dynamic int8 quantization with one scale per weight tensor;
* ``int8-per-channel``: one scale per output channel (the project default, ``int8``).

Both int8 variants use the same operator list and options as the engine's own conversion.
Every variant is loaded with the engine's embedder (same tokenizer, prefixes, truncation to
the preset's ``max_tokens``, length-sorted batches of 32) and measured for:

* model file size;
* passages per second over the corpus texts (``title + "\\n" + text``, whole documents);
* single-query latency (one query per call, median over the test queries);
* agreement with fp32: mean cosine of passage vectors, and the Spearman rank correlation of
  each query's score row over the embedded documents (averaged over queries);
* dense-only nDCG@10 on the test split (documents ranked by cosine) and its change vs fp32.

When ``max_docs`` limits the corpus, it is cut down to every document judged for a test
query plus a fixed-seed random sample of the others (see :func:`select_subset`); nDCG on
such a subset is higher than on the whole corpus, but the differences between variants
remain comparable. The result records which documents were used.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.models import (
    PRESETS,
    QUANTIZED_OPS,
    ResolvedModel,
    canonical_name,
    quantize_int8,
    resolve_model,
)
from ..embed.onnx_embedder import OnnxEmbedder
from .datasets import load_queries
from .metrics import evaluate
from .output import write_json
from .retrieval import machine

VARIANTS = ("fp32", "int8-per-tensor", "int8-per-channel")
SUBSET_SEED = 20261124
BATCH_SIZE = 32

PER_TENSOR_FILE = "model-int8-per-tensor.onnx"


# --------------------------------------------------------------------------- pure helpers


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-d array, ties sharing their average rank (as scipy's rankdata)."""
    x = np.asarray(values)
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n))
    avg = starts + (counts - 1) / 2.0 + 1.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(avg, counts)
    return ranks


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (Pearson correlation of average ranks); nan if constant."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("spearman needs two 1-d arrays of the same length")
    rx, ry = average_ranks(x), average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    if denom == 0.0:
        return float("nan")
    return float((rx * ry).sum() / denom)


def mean_row_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the Spearman correlation of ``a[i]`` and ``b[i]`` (nan rows skipped)."""
    values = [spearman(ra, rb) for ra, rb in zip(a, b, strict=True)]
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of corresponding rows."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    return float(np.mean((a * b).sum(axis=1) / (na * nb)))


def select_subset(
    doc_ids: Sequence[str],
    judged: Iterable[str],
    max_docs: int | None,
    seed: int = SUBSET_SEED,
) -> list[str]:
    """Documents to embed: all of them, or every judged one plus a seeded random sample.

    The result keeps corpus order. Judged documents are always included, even when they
    alone exceed ``max_docs``; the sample fills the remaining room. Depends only on the
    inputs and ``seed``, not on the order ``judged`` is given in.
    """
    if max_docs is None or max_docs >= len(doc_ids):
        return list(doc_ids)
    present = set(doc_ids)
    keep = {d for d in judged if d in present}
    room = max_docs - len(keep)
    if room > 0:
        others = sorted(d for d in present if d not in keep)
        rng = np.random.default_rng(seed)
        picked = rng.permutation(len(others))[:room]
        keep.update(others[i] for i in picked)
    return [d for d in doc_ids if d in keep]


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's top-k columns of ``a`` that are also in ``b``'s top-k."""
    k = min(k, a.shape[1])
    ta = np.argpartition(-a, k - 1, axis=1)[:, :k]
    tb = np.argpartition(-b, k - 1, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ta, tb, strict=True)]))


# --------------------------------------------------------------------------- models


class _ModelEmbedder(OnnxEmbedder):
    """The engine's embedder, bound to an already resolved model file."""

    def __init__(self, model: ResolvedModel, threads: int, batch_size: int = BATCH_SIZE):
        super().__init__(
            model.name,
            model.onnx_path.parent,
            quantization=model.quantization,
            threads=threads,
            batch_size=batch_size,
        )
        self._model = model


def quantize_per_tensor(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization with per-tensor scales (else as the engine's conversion)."""
    quantize_int8(src, dst, per_channel=False)


def variant_models(preset: str, cache_dir: Path) -> dict[str, ResolvedModel]:
    """The three model files of ``preset``, converting/quantizing on first use."""
    fp32 = resolve_model(preset, cache_dir, "fp32")
    per_channel = resolve_model(preset, cache_dir, "int8")
    per_tensor_path = fp32.onnx_path.with_name(PER_TENSOR_FILE)
    if (
        not per_tensor_path.exists()
        or per_tensor_path.stat().st_mtime < fp32.onnx_path.stat().st_mtime
    ):
        quantize_per_tensor(fp32.onnx_path, per_tensor_path)
    return {
        "fp32": fp32,
        "int8-per-tensor": replace(fp32, onnx_path=per_tensor_path, quantization="int8"),
        "int8-per-channel": per_channel,
    }


# --------------------------------------------------------------------------- benchmark


def _read_corpus(path: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            ids.append(str(row["_id"]))
            title, text = str(row.get("title") or ""), str(row.get("text") or "")
            texts.append(f"{title}\n{text}" if title else text)
    return ids, texts


def _measure_variant(
    model: ResolvedModel,
    texts: list[str],
    queries: list[str],
    threads: int,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    embedder = _ModelEmbedder(model, threads)
    embedder.warm_up()
    embedder.embed_passages(texts[:BATCH_SIZE])  # first-call allocations at passage lengths
    load_s = time.perf_counter() - t0

    t = time.perf_counter()
    passages = embedder.embed_passages(texts)
    embed_s = time.perf_counter() - t

    latencies = []
    query_vecs = np.zeros((len(queries), embedder.dim), dtype=np.float32)
    t = time.perf_counter()
    for i, q in enumerate(queries):
        t1 = time.perf_counter()
        query_vecs[i] = embedder.embed_queries([q])[0]
        latencies.append((time.perf_counter() - t1) * 1000)
    query_s = time.perf_counter() - t
    return {
        "passages": passages,
        "queries": query_vecs,
        "model_bytes": model.onnx_path.stat().st_size,
        "passages_per_s": len(texts) / embed_s if embed_s > 0 else float("nan"),
        "query_ms_p50": statistics.median(latencies) if latencies else float("nan"),
        "seconds": {
            "load": round(load_s, 2),
            "passages": round(embed_s, 2),
            "queries": round(query_s, 2),
        },
    }


def run(
    dataset: Path,
    presets: Sequence[str] = ("minilm", "e5-small"),
    cache_dir: Path | None = None,
    max_docs: int | None = None,
    threads: int = 2,
    *,
    split: str = "test",
    max_docs_per_preset: Mapping[str, int | None] | None = None,
    out: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure fp32 vs per-tensor vs per-channel int8 for each preset on ``dataset``.

    ``max_docs`` limits the corpus for every preset; ``max_docs_per_preset`` overrides it
    for the presets it names (``None`` there means the whole corpus). ``out``, if given, is
    rewritten after every preset, so a long run keeps what it finished.
    """
    from ..config import default_cache_dir

    dataset = Path(dataset)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    started = time.perf_counter()
    all_ids, all_texts = _read_corpus(dataset / "corpus.jsonl")
    text_of = dict(zip(all_ids, all_texts, strict=True))
    queries, qrels = load_queries(dataset, split)
    qrels = {q: qrels[q] for q, _ in queries}
    judged = {d for rels in qrels.values() for d in rels}
    query_texts = [t for _, t in queries]

    result: dict[str, Any] = {
        "dataset": dataset.name,
        "split": split,
        "machine": {**machine(), "threads": threads},
        "presets": {},
        "docs": {},
        "subset": {},
        "corpus_docs": len(all_ids),
        "judged_docs": len(judged & set(all_ids)),
        "queries": len(queries),
        "subset_rule": (
            "when a preset's corpus is limited to N docs: every doc judged for a test query "
            f"plus a numpy default_rng({SUBSET_SEED}) permutation sample of the rest, up to N"
        ),
        "method": {
            "passage_text": "title + '\\n' + text, whole document truncated to max_tokens",
            "batching": f"length-sorted batches of {BATCH_SIZE}, onnxruntime CPU",
            "query_latency": "one query per call incl. tokenization, median",
            "cosine_to_fp32": "mean cosine of passage vectors to the fp32 vectors",
            "spearman_to_fp32": "per query, Spearman of scores over the embedded docs; mean",
            "top10_overlap_to_fp32": "per query, share of fp32 top-10 docs kept; mean",
            "ndcg@10": "dense only, docs ranked by cosine among the embedded docs",
            "quantization": "onnxruntime quantize_dynamic, QInt8 weights, ops "
            f"{list(QUANTIZED_OPS)}, per_channel False / True",
        },
        "seconds": {},
    }
    for preset in presets:
        name = canonical_name(preset)
        if name not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        limit = max_docs
        if max_docs_per_preset is not None and name in max_docs_per_preset:
            limit = max_docs_per_preset[name]
        doc_ids = select_subset(all_ids, judged, limit)
        texts = [text_of[d] for d in doc_ids]
        subset = len(doc_ids) < len(all_ids)
        result["docs"][name] = len(doc_ids)
        result["subset"][name] = subset
        t_preset = time.perf_counter()
        models = variant_models(name, cache_dir)
        prepare_s = time.perf_counter() - t_preset
        measured: dict[str, dict[str, Any]] = {}
        for variant in VARIANTS:
            if progress:
                print(f"[quantization] {name} {variant}: {len(texts)} docs...", flush=True)
            t = time.perf_counter()
            measured[variant] = _measure_variant(models[variant], texts, query_texts, threads)
            measured[variant]["seconds"]["total"] = round(time.perf_counter() - t, 2)
            if progress:
                m = measured[variant]
                print(
                    f"[quantization]   {m['passages_per_s']:.1f} passages/s, "
                    f"query {m['query_ms_p50']:.2f} ms, {m['seconds']['total']:.0f} s",
                    flush=True,
                )
        ref = measured["fp32"]
        ref_scores = ref["queries"] @ ref["passages"].T
        rows: dict[str, dict[str, Any]] = {}
        ref_ndcg = None
        for variant in VARIANTS:
            m = measured[variant]
            scores = m["queries"] @ m["passages"].T
            top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
            ranked = {qid: [doc_ids[j] for j in top[i]] for i, (qid, _) in enumerate(queries)}
            quality = evaluate(qrels, ranked)
            ndcg = quality["ndcg@10"]
            if variant == "fp32":
                ref_ndcg = ndcg
            rows[variant] = {
                "model_bytes": int(m["model_bytes"]),
                "passages_per_s": round(m["passages_per_s"], 2),
                "query_ms_p50": round(m["query_ms_p50"], 3),
                "cosine_to_fp32": round(mean_cosine(m["passages"], ref["passages"]), 5),
                "spearman_to_fp32": round(mean_row_spearman(scores, ref_scores), 5),
                "top10_overlap_to_fp32": round(top_k_overlap(scores, ref_scores, 10), 4),
                "ndcg@10": round(ndcg, 4),
                "recall@10": round(quality["recall@10"], 4),
                "ndcg_delta_vs_fp32": round(ndcg - (ref_ndcg or 0.0), 4),
                "seconds": m["seconds"],
            }
        result["presets"][name] = rows
        result["seconds"][name] = {
            "prepare_models": round(prepare_s, 2),
            **{v: rows[v]["seconds"]["total"] for v in VARIANTS},
            "total": round(time.perf_counter() - t_preset, 2),
        }
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        if out is not None:
            write_json(result, out)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    if out is not None:
        write_json(result, out)
    return result


def markdown_table(result: dict[str, Any]) -> str:
    """The preset x variant table as GitHub markdown."""
    head = (
        "| preset | variant | docs | model bytes | passages/s | query ms p50 | cosine | "
        "spearman | nDCG@10 | Δ vs fp32 |"
    )
    lines = [head, "|" + "---|" * 10]
    for preset, variants in result["presets"].items():
        docs = result["docs"][preset]
        mark = " (subset)" if result["subset"].get(preset) else ""
        for variant, r in variants.items():
            lines.append(
                f"| {preset} | {variant} | {docs:,}{mark} | {r['model_bytes']:,} | "
                f"{r['passages_per_s']:.1f} | {r['query_ms_p50']:.2f} | "
                f"{r['cosine_to_fp32']:.4f} | {r['spearman_to_fp32']:.4f} | "
                f"{r['ndcg@10']:.4f} | {r['ndcg_delta_vs_fp32']:+.4f} |"
            )
    return "\n".join(lines)


def print_report(result: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"snaprag bench quantization — {result['dataset']} ({result.get('split', 'test')}, "
        f"{result['queries']} queries)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("model", no_wrap=True)
    table.add_column("variant", no_wrap=True)
    for col in ("MB", "docs/s", "q ms", "cosine", "rank ρ", "nDCG@10", "Δ"):
        table.add_column(col, justify="right", no_wrap=True)
    labels = {"int8-per-tensor": "int8 tensor", "int8-per-channel": "int8 channel"}
    for preset, variants in result["presets"].items():
        docs = f"{result['docs'][preset]:,} docs" + ("*" if result["subset"].get(preset) else "")
        for i, (variant, r) in enumerate(variants.items()):
            table.add_row(
                preset if i == 0 else docs if i == 1 else "",
                labels.get(variant, variant),
                f"{r['model_bytes'] / 1e6:.1f}",
                f"{r['passages_per_s']:.1f}",
                f"{r['query_ms_p50']:.2f}",
                f"{r['cosine_to_fp32']:.4f}",
                f"{r['spearman_to_fp32']:.4f}",
                f"{r['ndcg@10']:.4f}",
                f"{r['ndcg_delta_vs_fp32']:+.4f}",
            )
        table.add_section()
    console.print(table)
    console.print(
        "[dim]docs/s: passages embedded per second; q ms: single-query median; cosine and "
        "rank ρ (Spearman of each query's scores): agreement with fp32; Δ: nDCG@10 vs fp32[/]"
    )
    if any(result["subset"].values()):
        console.print(
            f"[dim]* subset of the {result['corpus_docs']:,} docs: {result['subset_rule']}; "
            "its nDCG is not comparable with whole-corpus numbers, the deltas are[/]"
        )
    m = result["machine"]
    console.print(
        f"[dim]{m['cpus']} CPUs ({m['cpu']}), {m.get('threads')} threads, Python {m['python']}, "
        f"{m['date']}; {result.get('wall_seconds', 0):.0f} s in all[/]"
    )
