"""``snaprag bench peers``: snaprag and the systems users pick instead, side by side in one
run, on the same documents, model and k.

Every system builds its index once (in rotated order), then answers the queries in
``rounds`` fresh query-only processes, the order rotated each round so that the machine's
drift does not always favour the same system. Each pass records how much CPU the rest of
the machine used meanwhile; a busy machine is reported, not hidden.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..datasets import load_queries
from ..retrieval import machine
from .catalog import Peer, Variant, pick_variants, resolve
from .envs import driver_env, ensure_env
from .passes import dir_bytes, run_pass
from .scoring import idle_summary, latency, pass_order, quality

Log = Callable[[str], None]


def subset(
    dataset: Path, split: str, docs: int | None, queries: int | None, out: Path
) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]], int]:
    """Write the corpus every system ingests to ``out``: all of it, or ``docs`` documents that
    include every judged document of the chosen queries (so the subset can still be scored).
    Returns the chosen queries, their judgements and the document count."""
    chosen, qrels = load_queries(dataset, split)
    if queries is not None:
        chosen = chosen[:queries]
    qrels = {q: qrels[q] for q, _ in chosen}
    rows = [
        line
        for line in (dataset / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if docs is not None and docs < len(rows):
        needed = {d for rels in qrels.values() for d, g in rels.items() if g > 0}
        keep = [r for r in rows if str(json.loads(r)["_id"]) in needed]
        rest = [r for r in rows if str(json.loads(r)["_id"]) not in needed]
        rows_set = set(keep[:docs]) | set(rest[: max(0, docs - len(keep))])
        rows = [r for r in rows if r in rows_set]  # corpus order, not judged-first
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return chosen, qrels, len(rows)


def _label(peer: Peer, variant: Variant) -> str:
    return variant.label or peer.name


def run(
    dataset: Path,
    peers: str | None = None,
    docs: int | None = None,
    queries: int | None = None,
    rounds: int = 3,
    k: int = 10,
    depth: int = 100,
    split: str = "test",
    variants: str = "all",
    work: Path | None = None,
    pause_file: Path | None = None,
    log: Log | None = None,
    timeout_s: float | None = 3600,
) -> dict[str, Any]:
    say: Log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    chosen = [replace(p, variants=pick_variants(p, variants)) for p in resolve(peers)]
    own_work = work is None
    work = Path(work or tempfile.mkdtemp(prefix="snaprag-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(
            dataset,
            chosen,
            docs,
            queries,
            rounds,
            k,
            depth,
            split,
            work,
            pause_file,
            say,
            timeout_s,
        )
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


def _run(
    dataset: Path,
    chosen: list[Peer],
    docs: int | None,
    queries: int | None,
    rounds: int,
    k: int,
    depth: int,
    split: str,
    work: Path,
    pause_file: Path | None,
    say: Log,
    timeout_s: float | None,
) -> dict[str, Any]:
    corpus = work / "corpus.jsonl"
    qs, qrels, n_docs = subset(dataset, split, docs, queries, corpus)
    if not qs:
        raise ValueError(f"no judged queries for split {split!r} in {dataset}")
    log = work / "drivers.log"
    systems: dict[str, tuple[Peer, Variant, Path]] = {}
    for peer in chosen:
        if peer.requirements:
            say(f"environment of {peer.name} (built once, under ~/.cache/snaprag/peers) ...")
        python = ensure_env(peer.name, peer.requirements, log=work / f"install-{peer.name}.log")
        for variant in peer.variants:
            systems[_label(peer, variant)] = (peer, variant, python)
    labels = list(systems)
    base = {"corpus": str(corpus), "queries": qs, "k": k, "depth": depth}
    book: dict[str, dict[str, Any]] = {lab: {"passes": [], "query": []} for lab in labels}
    sequence: list[str] = []

    def one(label: str, phase: str, round_: int) -> None:
        _wait_while(pause_file, say)
        peer, variant, python = systems[label]
        spec = {
            **base,
            "phase": phase,
            "index_dir": str(work / "index" / _slug(label)),
            "settings": variant.settings,
        }
        say(f"{phase:5} {label} (round {round_})")
        env = driver_env(peer, variant.env)
        result, info = run_pass(python, peer.driver, spec, env, log, timeout_s)
        info.update(phase=phase, round=round_)
        book[label]["passes"].append(info)
        book[label]["versions"] = result.pop("versions")
        if phase == "build":
            book[label]["build"] = {
                **result,
                "tree_peak_rss_bytes": info["tree_peak_rss_bytes"],
                "index_bytes": dir_bytes(Path(spec["index_dir"])),
            }
        else:
            book[label]["query"].append(
                {**result, "tree_peak_rss_bytes": info["tree_peak_rss_bytes"]}
            )
        sequence.append(f"{phase}:{label}")

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    for label in pass_order(labels, 0):
        one(label, "build", 0)
    for r in range(rounds):
        for label in pass_order(labels, r):
            one(label, "query", r)
    all_passes = [p for lab in labels for p in book[lab]["passes"]]
    return {
        "benchmark": "peers",
        "dataset": dataset.name,
        "split": split,
        "documents": n_docs,
        "subset": docs is not None,
        "queries": len(qs),
        "k": k,
        "depth": depth,
        "rounds": rounds,
        "started": started,
        "machine": machine(),
        "idle": idle_summary(all_passes),
        "order": sequence,
        "systems": [_summary(lab, *systems[lab][:2], book[lab], qrels) for lab in labels],
    }


def _summary(
    label: str, peer: Peer, variant: Variant, book: dict[str, Any], qrels: dict[str, dict[str, int]]
) -> dict[str, Any]:
    build, runs = book["build"], book["query"]
    single = [ms for r in runs for ms in r["single_ms"]]
    batched = [r["batched_ms_per_query"] for r in runs if r["batched_ms_per_query"] is not None]
    return {
        "label": label,
        "peer": peer.name,
        "what": peer.what,
        "note": variant.note,
        "env": variant.env,
        "versions": book["versions"],
        "ingest": {
            "model_load_s": round(build["model_load_s"], 2),
            "ingest_s": round(build["ingest_s"], 2),
            "items": build["items"],
            # the sampled tree includes worker processes; the driver's own peak catches
            # a spike between two samples
            "peak_rss_bytes": max(build.get("peak_rss_bytes", 0), build["tree_peak_rss_bytes"]),
            "index_bytes": build["index_bytes"],
        },
        "query": {
            "single_ms": latency(single),
            "p50_per_round": [latency(r["single_ms"])["p50"] for r in runs],
            "batched_ms_per_query": round(min(batched), 3) if batched else None,
            "first_answer_s": round(statistics.median(r["first_answer_s"] for r in runs), 3),
            "rss_bytes": int(statistics.median(r["rss_bytes"] for r in runs)),
            "peak_rss_bytes": max(
                max(r.get("peak_rss_bytes", 0), r["tree_peak_rss_bytes"]) for r in runs
            ),
        },
        "quality": {m: round(v, 4) for m, v in quality(qrels, runs[0]["rankings"]).items()},
        "passes": book["passes"],
    }


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-")


def _wait_while(pause_file: Path | None, say: Log, poll_s: float = 30.0) -> None:
    """Someone else is measuring on this machine: wait until their marker file is gone."""
    if pause_file is None or not pause_file.exists():
        return
    say(f"paused while {pause_file} exists ...")
    while pause_file.exists():
        time.sleep(poll_s)
