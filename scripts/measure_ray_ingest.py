"""Ingestion speed: one process against Ray actors, on a BEIR corpus (default SciFact).

Usage: python scripts/measure_ray_ingest.py [--corpus FILE] [--docs N]
       [--layouts 2x1,1x2] [--out FILE.json] [--json]

Each run ingests the same corpus into a fresh index with the bundled model. The local run
is the default path (one process, ONNX threads = usable CPUs). Each Ray layout ``WxC`` (W
actors of C CPUs each, on a local Ray started here with all usable CPUs) first ingests a
one-document warm-up file with the same runner, so Ray's start and the actors' model
loading are timed apart from the ingest itself; both are reported. Per worker: chunks it
embedded, its share of the run's throughput (chunks per second of the ingest's wall time)
and its model's speed alone (chunks per second inside the embedder). The writer's commit
time is the ceiling on any layout's speed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from snaprag import Engine
from snaprag.ingest.runners.ray import RayRunner
from snaprag.system import usable_cpus

SCIFACT = Path(__file__).resolve().parents[1].parent / "shared/datasets/scifact/corpus.jsonl"


def subset(corpus: Path, n: int | None, work: Path) -> Path:
    if n is None:
        return corpus
    out = work / f"corpus-{n}.jsonl"
    with corpus.open(encoding="utf-8") as f, out.open("w", encoding="utf-8") as g:
        g.writelines(itertools.islice(f, n))
    return out


def one_run(corpus: Path, index: Path, runner: Any) -> dict[str, Any]:
    start = time.perf_counter()
    with Engine.open(index) as eng:
        report = eng.ingest([corpus], runner=runner)
    wall = time.perf_counter() - start
    data = report.to_dict()
    workers = data["runner"]["workers"] if data["runner"] else []
    for w in workers:
        # a worker's share of the run, and its model's speed alone
        w["chunks_per_wall_s"] = round(w["chunks"] / wall, 1)
        w["embed_chunks_per_s"] = (
            round(w["chunks"] / w["embed_seconds"], 1) if w["embed_seconds"] else None
        )
    return {
        "wall_s": round(wall, 2),
        "chunks": report.chunks_embedded,
        "chunks_per_s": round(report.chunks_embedded / wall, 1),
        "commit_s": data["commit_seconds"],
        "workers": workers,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=SCIFACT)
    ap.add_argument("--docs", type=int, default=None, help="first N documents only")
    ap.add_argument("--layouts", default="2x1,1x2", help="Ray actors x CPUs each, comma-separated")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    if not args.corpus.is_file():
        sys.exit(f"error: no corpus at {args.corpus}; pass --corpus FILE (a BEIR corpus.jsonl)")
    layouts = []
    for spec in args.layouts.split(","):
        w, _, c = spec.strip().partition("x")
        layouts.append((int(w), float(c or 1)))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ray-ingest-") as tmp:
        work = Path(tmp)
        corpus = subset(args.corpus, args.docs, work)
        warm = work / "warm.jsonl"
        warm.write_text(json.dumps({"_id": "w", "title": "warm", "text": "warm up"}) + "\n")
        runs.append({"layout": "local", "start_s": 0.0, **one_run(corpus, work / "local", "local")})
        for w, c in layouts:
            runner = RayRunner(workers=w, cpus_per_worker=c, num_cpus=usable_cpus())
            try:
                start = time.perf_counter()
                one_run(warm, work / f"warm-{w}x{c:g}", runner)  # Ray, actors, models
                started = round(time.perf_counter() - start, 2)
                run = one_run(corpus, work / f"ray-{w}x{c:g}", runner)
            finally:
                runner.close()
            # the workers' totals include the warm-up's one chunk: negligible
            runs.append({"layout": f"ray {w}x{c:g}", "start_s": started, **run})
    local = runs[0]["wall_s"]
    for run in runs:
        run["speedup"] = round(local / run["wall_s"], 2)
    result = {
        "corpus": str(args.corpus),
        "docs": args.docs,
        "machine": f"{platform.machine()}, {usable_cpus()} usable CPUs, "
        f"Python {platform.python_version()}",
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title=f"Ingest {args.corpus.name} ({runs[0]['chunks']} chunks)", expand=True)
    for col in ("layout", "start s", "ingest s", "chunks/s", "speed-up", "commit s", "per worker"):
        table.add_column(col, justify="left" if col in ("layout", "per worker") else "right")
    for run in runs:
        per = ", ".join(
            f"{w['worker']}: {w['chunks']} ({w['chunks_per_wall_s']}/s, model "
            f"{w['embed_chunks_per_s']}/s)"
            for w in run["workers"]
        )
        table.add_row(
            run["layout"],
            f"{run['start_s']:.1f}",
            f"{run['wall_s']:.1f}",
            f"{run['chunks_per_s']:.1f}",
            f"{run['speedup']:.2f}x",
            f"{run['commit_s']:.1f}",
            per,
        )
    Console().print(table)


if __name__ == "__main__":
    main()
