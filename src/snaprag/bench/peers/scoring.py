"""The harness's arithmetic, kept pure so it is tested without any peer installed: the
order of passes, documents ranked by their best chunk, quality, percentiles, and how busy
the rest of the machine was during a pass."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import ndcg_at, recall_at

#: another process using more than this share of one core during a pass makes it "busy"
BUSY_CORES = 0.25


def pass_order(labels: Sequence[str], round_: int) -> list[str]:
    """The systems' order in one round: rotated by one each round, so over as many rounds
    as systems each runs once in every position and a drift of the machine (thermal,
    neighbours) does not always land on the same system."""
    if not labels:
        return []
    shift = round_ % len(labels)
    return [*labels[shift:], *labels[:shift]]


def best_chunk_ranking(ranked_doc_ids: Sequence[str], depth: int) -> list[str]:
    """Documents in the order of their best (first) chunk, at most ``depth`` of them."""
    seen: dict[str, None] = {}
    for doc_id in ranked_doc_ids:
        if doc_id not in seen:
            seen[doc_id] = None
            if len(seen) == depth:
                break
    return list(seen)


def quality(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 over the queries in ``rankings`` that have a relevant
    document (the same judged set for every system)."""
    judged = [q for q in rankings if any(g > 0 for g in qrels.get(q, {}).values())]
    if not judged:
        return {"ndcg@10": 0.0, "recall@100": 0.0}
    docs = {q: best_chunk_ranking(rankings[q], 100) for q in judged}
    return {
        "ndcg@10": sum(ndcg_at(qrels[q], docs[q], 10) for q in judged) / len(judged),
        "recall@100": sum(recall_at(qrels[q], docs[q], 100) for q in judged) / len(judged),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (NumPy's default), without NumPy for a fake's sake."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency(single_ms: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(single_ms, q), 3) for q in (50, 95, 99)}


@dataclass(frozen=True)
class CpuTimes:
    """Seconds of busy CPU on the whole machine, and of this process's finished children
    plus itself, at one instant."""

    machine_busy_s: float
    ours_s: float


def read_cpu_times() -> CpuTimes:
    """From /proc/stat (all CPUs, busy = everything but idle and iowait) and getrusage."""
    import resource

    busy = 0.0
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        # guest time is already inside user time (fields 8 and 9)
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return CpuTimes(busy, ours)


def other_cpu(before: CpuTimes, after: CpuTimes, wall_s: float) -> dict[str, Any]:
    """What the rest of the machine used during a pass: CPU seconds that were neither the
    driver's (a waited-for child) nor the harness's, and their mean in cores."""
    other_s = max(
        0.0, (after.machine_busy_s - before.machine_busy_s) - (after.ours_s - before.ours_s)
    )
    cores = other_s / wall_s if wall_s > 0 else 0.0
    return {
        "other_cpu_s": round(other_s, 2),
        "other_cores": round(cores, 3),
        "busy": cores > BUSY_CORES,
    }


def idle_summary(passes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole run: how many passes had the machine busy, and the worst of them."""
    cores = [p["other_cores"] for p in passes]
    return {
        "passes": len(passes),
        "busy_passes": sum(1 for p in passes if p["busy"]),
        "max_other_cores": max(cores, default=0.0),
        "mean_other_cores": round(sum(cores) / len(cores), 3) if cores else 0.0,
        "idle": not any(p["busy"] for p in passes),
    }
