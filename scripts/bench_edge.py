"""Benchmarks of the edge profile (docs/benchmarks.md, "Edge profile").

``small``: the first N chunks of an index (by chunk id; later documents are deleted from a
copy), searched with ``--profile edge`` by a fresh process pinned to one core (``taskset -c
0``) per dense backend: query latency (p50/p95 of ``Engine.search``, cache off) and the
process's resident memory after each step (imports, model, index, queries). Also the
agreement of the int8 and binary candidates + rescoring with exact search over the same
float16 vectors, for the test queries.

``hnsw``: a million synthetic clustered 384-d unit vectors in the usearch HNSW backend
(int8 codes, rescored from float16): build time, bytes on disk and in memory, and for
1,000 held-out queries recall@10 against exact float32 search and per-query latency on one
core, at several search breadths. The index is built once under ``--work`` and reused.

    python scripts/bench_edge.py small --source-index IDX --work /tmp/edge/s10k \\
        --queries ../shared/datasets/scifact/queries.test.jsonl --out docs/results/edge-10k.json
    python scripts/bench_edge.py hnsw --work /tmp/edge/h1m --out docs/results/edge-hnsw-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def memory() -> dict[str, float]:
    """Resident memory of this process in MiB: total, anonymous, file-backed, peak."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    from snaprag.bench.retrieval import machine as snaprag_machine

    info = snaprag_machine()
    info["busy_note"] = "load average at start; other engineers share the 2 cores"
    return info


def read_queries(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


# --------------------------------------------------------------------------- small


def prepare_subset(source: Path, work: Path, chunks: int) -> int:
    """A copy of ``source`` holding only the documents of its first ``chunks`` chunks."""
    from snaprag import Engine

    if not (work / "snaprag.db").exists():
        work.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(source / "snaprag.db")
        dst = sqlite3.connect(work / "snaprag.db")
        src.backup(dst)
        src.close()
        dst.close()
        db = sqlite3.connect(work / "snaprag.db")
        rows = db.execute(
            "SELECT d.doc_id, MAX(c.id) FROM chunks c JOIN documents d ON d.id = c.document_id "
            "GROUP BY d.id ORDER BY MIN(c.id)"
        ).fetchall()
        db.close()
        total, drop = 0, []
        counts = dict(
            sqlite3.connect(work / "snaprag.db")
            .execute(
                "SELECT d.doc_id, COUNT(*) FROM chunks c JOIN documents d "
                "ON d.id = c.document_id GROUP BY d.id"
            )
            .fetchall()
        )
        for doc_id, _ in rows:
            if total + counts[doc_id] > chunks:
                drop.append(doc_id)
            else:
                total += counts[doc_id]
        with Engine.open(work, profile="edge", cache=False) as engine:
            for doc_id in drop:
                engine.delete(doc_id)
    with Engine.open(work, profile="edge", cache=False) as engine:
        engine.retriever.snapshot()
        return int(engine.store.counts()["chunks"])


def agreement(work: Path, queries: list[str]) -> dict[str, Any]:
    """Top-10 / top-100 overlap of int8 and binary (with rescoring) with exact search."""
    import numpy as np

    from snaprag import Engine
    from snaprag.index.dense import ExactIndex
    from snaprag.index.quantized import BinaryIndex, Int8Index

    with Engine.open(work, profile="edge", cache=False) as engine:
        snap = engine.retriever.snapshot()
        half = np.asarray(snap.dense.half, dtype=np.float32)
        qvec = engine.embedder.embed_queries(queries)
    exact = ExactIndex(half)
    out: dict[str, Any] = {"queries": len(queries), "rows": len(half)}
    for cls in (Int8Index, BinaryIndex):
        index = cls.build(half)
        for k in (10, 100):
            got = index.search_many(qvec, k)
            want = exact.search_many(qvec, k)
            overlap = [len(set(a[0]) & set(b[0])) / k for a, b in zip(got, want, strict=True)]
            same = [a[0].tolist() == b[0].tolist() for a, b in zip(got, want, strict=True)]
            out[f"{cls.kind}_overlap@{k}"] = round(float(np.mean(overlap)), 4)
            out[f"{cls.kind}_identical_lists@{k}"] = round(float(np.mean(same)), 4)
        out[f"{cls.kind}_code_bytes"] = index.nbytes
        out[f"{cls.kind}_oversample"] = index.oversample
    out["float32_bytes"] = int(half.nbytes)
    return out


def query_child(args: argparse.Namespace) -> None:
    """In a fresh process: open the index, run the queries, report latency and memory."""
    steps = {"python": memory()}
    import numpy as np

    steps["numpy"] = memory()
    import onnxruntime  # noqa: F401

    steps["onnxruntime"] = memory()
    import tokenizers  # noqa: F401

    steps["tokenizers"] = memory()
    from snaprag import Engine

    steps["snaprag"] = memory()
    engine = Engine.open(args.index, profile="edge", cache=False, dense_backend=args.backend)
    engine.embedder.warm_up()
    steps["model"] = memory()
    snap = engine.retriever.snapshot()
    steps["index"] = memory()
    queries = read_queries(args.queries)
    for q in queries[:10]:
        engine.search(q, k=10)
    times, cpu, stages = [], [], {}
    for _ in range(args.rounds):
        for q in queries:
            t, c = time.perf_counter(), time.process_time()
            hits = engine.search(q, k=10)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            for name, ms in hits.timings.to_dict().items():
                if isinstance(ms, int | float):
                    stages.setdefault(name, []).append(ms)
    steps["queries"] = memory()
    result = {
        "backend": args.backend,
        "dense_kind": snap.dense.kind,
        "chunks": len(snap),
        "searches": len(times),
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        # CPU time of the process per search: what a query costs on the core, even when
        # other processes take turns on it (wall time then includes their turns)
        "cpu_p50_ms": round(statistics.median(cpu), 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "stage_p50_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()},
        "memory_mib": steps,
        "kiwipiepy_loaded": "kiwipiepy" in sys.modules,
        "threads": engine.config.effective_threads,
        "cpus": len(os.sched_getaffinity(0)),
    }
    engine.close()
    print(json.dumps(result))


def run_small(args: argparse.Namespace) -> dict[str, Any]:
    queries_path = Path(args.queries)
    chunks = prepare_subset(Path(args.source_index), Path(args.work), args.chunks)
    print(f"index: {chunks} chunks under {args.work}", file=sys.stderr)
    result: dict[str, Any] = {"benchmark": "edge-small", "machine": machine(), "chunks": chunks}
    result["agreement"] = agreement(Path(args.work), read_queries(queries_path))
    runs = []
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    for backend in args.backends:
        shutil.rmtree(Path(args.work) / "snapshots", ignore_errors=True)
        from snaprag import Engine  # write this backend's snapshot outside the measurement

        with Engine.open(args.work, profile="edge", cache=False, dense_backend=backend) as e:
            e.retriever.snapshot()
        cmd = ["taskset", "-c", "0", sys.executable, __file__, "query", "--index", args.work]
        cmd += ["--queries", str(queries_path), "--backend", backend]
        cmd += ["--rounds", str(args.rounds)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        mem = run["memory_mib"]
        print(
            f"{backend:7s} p50 {run['p50_ms']:6.2f} ms  p95 {run['p95_ms']:6.2f} ms  "
            f"cpu p50 {run['cpu_p50_ms']:5.2f} ms  "
            f"RSS {mem['queries']['VmRSS']:6.1f} MiB  peak {mem['queries']['VmHWM']:6.1f} MiB",
            file=sys.stderr,
        )
    result["runs"] = runs
    return result


# --------------------------------------------------------------------------- hnsw


def clustered(n: int, dim: int, seed: int, clusters: int = 1000, decay: float = 0.5) -> Any:
    """Unit vectors around ``clusters`` random centres, the spread around each centre
    falling off over the dimensions (standard deviation ~ i^-decay along random
    directions), as the variance of real sentence embeddings falls off over their principal
    components; the 10 nearest neighbours of a query have cosine ~0.6."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    sigma = np.arange(1, dim + 1, dtype=np.float32) ** -decay
    sigma *= np.float32(1.2 * np.sqrt(dim / np.sum(sigma**2)))
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0].astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = (rng.normal(size=(m, dim)).astype(np.float32) * sigma) @ rotation
        part = centres[rng.integers(0, clusters, m)] + noise
        out[start : start + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def exact_top(matrix: Any, queries: Any, k: int) -> Any:
    import numpy as np

    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for start in range(0, len(matrix), 100_000):
        s = queries @ matrix[start : start + 100_000].T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + start], axis=1)
        keep = np.argsort(-cand_s, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, keep, 1)
        best_i = np.take_along_axis(cand_i, keep, 1)
    return best_i


def run_hnsw(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from snaprag.index.usearch_hnsw import UsearchIndex

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dim, n = 384, args.n
    result: dict[str, Any] = {"benchmark": "edge-hnsw", "machine": machine(), "n": n, "dim": dim}
    result["positioned"] = args.positioned
    truth_path = work / "truth.npy"
    built = all((work / f).exists() for f in ("queries.npy", "truth.npy", "usearch.json"))
    if not built:  # generating a million vectors takes a while: only to build
        data = clustered(n + args.queries, dim, seed=20261202)
        matrix, queries = data[:n], data[n:]
        np.save(work / "queries.npy", queries)  # the measured process reads them from here
    if truth_path.exists():
        truth = np.load(truth_path)
    else:
        t = time.perf_counter()
        truth = exact_top(matrix, queries, 10)
        np.save(truth_path, truth)
        result["exact_seconds"] = round(time.perf_counter() - t, 1)
    if not (work / "usearch.json").exists():
        from rich.progress import Progress

        t = time.perf_counter()
        with Progress() as bar:
            task = bar.add_task("building HNSW", total=n)
            index = UsearchIndex.build(
                matrix, threads=args.threads, progress=lambda d, _t: bar.update(task, completed=d)
            )
        build_s = time.perf_counter() - t
        index.save(work)
        (work / "build.json").write_text(
            json.dumps(
                {"seconds": round(build_s, 1), "threads": args.threads, "load": os.getloadavg()[0]}
            )
        )
        del index
    if not built:
        del data, matrix
    result["build"] = json.loads((work / "build.json").read_text())
    result["bytes_on_disk"] = {
        p.name: p.stat().st_size
        for p in work.iterdir()
        if p.name.startswith(("usearch", "vectors"))
    }
    cmd = ["taskset", "-c", "0", sys.executable, __file__, "hnsw-query", "--work", str(work)]
    cmd += ["--n", str(n), "--queries", str(args.queries)]
    cmd += ["--positioned"] if args.positioned else []
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result["search"] = json.loads(done.stdout.strip().splitlines()[-1])
    for row in result["search"]["breadths"]:
        print(
            f"ef {row['expansion']:4d} x{row['oversample']}: recall@10 {row['recall@10']:.4f}  "
            f"p50 {row['p50_ms']:.3f} ms  p95 {row['p95_ms']:.3f} ms  cpu {row['cpu_p50_ms']:.3f}",
            file=sys.stderr,
        )
    return result


def hnsw_child(args: argparse.Namespace) -> None:
    """In a fresh process on one core: open the saved index (memory-mapped), search."""
    import numpy as np

    from snaprag.index.usearch_hnsw import UsearchIndex

    work = Path(args.work)
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    before = memory()
    # positioned: the rescored float16 rows read with os.pread, as low_memory does
    index = UsearchIndex.load(work, 384, args.n, positioned=args.positioned)
    opened = memory()
    breadths, searched = [], None
    default = (UsearchIndex.EXPANSION_SEARCH, UsearchIndex.OVERSAMPLE)
    # the default breadth first, so that the memory after it is that of a process using it
    for expansion, oversample in (default, (32, 2), (64, 3), (96, 3), (128, 3), (256, 3)):
        index.graph.expansion_search = expansion
        index.oversample = oversample
        for q in queries[:50]:
            index.search_many(q[None], 10)
        times, cpu, found = [], [], []
        for q in queries:
            t, c = time.perf_counter(), time.process_time()
            rows, _ = index.search_many(q[None], 10)[0]
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            found.append(rows)
        rec = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        breadths.append(
            {
                "expansion": expansion,
                "oversample": oversample,
                "recall@10": round(float(rec), 4),
                "p50_ms": round(statistics.median(times), 3),
                "p95_ms": round(float(np.percentile(times, 95)), 3),
                "cpu_p50_ms": round(statistics.median(cpu), 3),
            }
        )
        searched = searched or memory()
    print(
        json.dumps(
            {
                "graph_memory_bytes": index.nbytes,
                "memory_mib": {
                    "before": before,
                    "opened": opened,
                    "after_default_breadth": searched,
                    "after_all": memory(),
                },
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "breadths": breadths,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    small = sub.add_parser("small", help="first N chunks of an index, one core")
    small.add_argument("--source-index", required=True)
    small.add_argument("--work", required=True)
    small.add_argument("--chunks", type=int, default=10_000)
    small.add_argument("--queries", required=True)
    small.add_argument("--rounds", type=int, default=3)
    small.add_argument("--backends", nargs="+", default=["int8", "binary", "exact"])
    small.add_argument("--out")
    query = sub.add_parser("query", help="(internal) the measured process of 'small'")
    query.add_argument("--index", required=True)
    query.add_argument("--queries", type=Path, required=True)
    query.add_argument("--backend", default="int8")
    query.add_argument("--rounds", type=int, default=3)
    hnsw = sub.add_parser("hnsw", help="1M synthetic vectors, usearch HNSW over int8")
    hnsw.add_argument("--work", required=True)
    hnsw.add_argument("--n", type=int, default=1_000_000)
    hnsw.add_argument("--queries", type=int, default=1000)
    hnsw.add_argument("--threads", type=int, default=2)
    hnsw.add_argument("--positioned", action="store_true", help="read rescored rows by position")
    hnsw.add_argument("--out")
    hq = sub.add_parser("hnsw-query", help="(internal) the measured process of 'hnsw'")
    hq.add_argument("--work", required=True)
    hq.add_argument("--n", type=int, required=True)
    hq.add_argument("--queries", type=int, required=True)
    hq.add_argument("--positioned", action="store_true")
    args = parser.parse_args()
    if args.command == "query":
        query_child(args)
        return
    if args.command == "hnsw-query":
        hnsw_child(args)
        return
    result = run_small(args) if args.command == "small" else run_hnsw(args)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
