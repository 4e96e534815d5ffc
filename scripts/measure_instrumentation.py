"""The cost of the server's instrumentation on uncached search, measured in one run.

Two engines over the same index with the query cache off: one with no telemetry, one
with what ``snaprag serve`` plugs in (Prometheus metrics and the rolling windows), plus
the per-request hooks of the server (request, stage and query records). Blocks of
queries alternate between them so drift hits both alike; prints JSON.

    python scripts/measure_instrumentation.py INDEX_DIR QUERIES.jsonl [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from snaprag import Config, Engine
from snaprag.serve.metrics import Observer


def main() -> None:
    index, queries_file = Path(sys.argv[1]), Path(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    queries = [json.loads(line)["text"] for line in queries_file.open()][:200]
    config = Config.from_env(index_dir=index, cache=False)
    observer = Observer(config, None)
    plain = Engine(config)
    measured = Engine(config, telemetry=observer.telemetry)
    for engine in (plain, measured):
        engine.warm_up()
        for q in queries[:20]:
            engine.search(q)

    def block(engine: Engine, hooks: bool) -> float:
        t = time.perf_counter()
        for q in queries:
            t1 = time.perf_counter()
            hits = engine.search(q)
            if hooks:  # what the server adds per request
                ms = (time.perf_counter() - t1) * 1000
                observer.stages("search", hits.timings, ("queue_wait", "batch_wait"))
                observer.query("search", q, ms)
                observer.request("/v1/search", "POST", 200, ms / 1000)
        return (time.perf_counter() - t) / len(queries) * 1000

    off, on, ratios = [], [], []
    for i in range(rounds):  # paired rounds, the order flipped every other one
        if i % 2:
            b1, a1 = block(measured, True), block(plain, False)
        else:
            a1, b1 = block(plain, False), block(measured, True)
        off.append(a1)
        on.append(b1)
        ratios.append(b1 / a1)
    a, b = statistics.median(off), statistics.median(on)
    print(
        json.dumps(
            {
                "queries": len(queries),
                "rounds": rounds,
                "ms_per_query_without": round(a, 4),
                "ms_per_query_with": round(b, 4),
                "overhead_percent": round((b / a - 1) * 100, 2),
                # the median of the per-round ratios: drift between rounds cancels out
                "overhead_percent_paired": round((statistics.median(ratios) - 1) * 100, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
