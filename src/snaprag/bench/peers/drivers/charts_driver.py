"""Draws the peers benchmark's PNG charts with matplotlib, in an environment of its own.

Reads ``{"result": <the benchmark JSON>, "out_dir": ..., "stem": ...}`` on stdin and prints
the paths it wrote: latency against nDCG@10, ingest time (model load stacked apart), and
memory (peak while building, query-only process)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

MIB = 2**20


def _subtitle(result: dict[str, Any]) -> str:
    subset = " subset" if result["subset"] else ""
    busy = "" if result["idle"]["idle"] else ", shared busy machine"
    return (
        f"{result['dataset']}{subset}, {result['documents']:,} docs, {result['queries']} "
        f"queries, {result['machine']['cpus']} CPUs{busy}"
    )


def latency_vs_ndcg(result: dict[str, Any], path: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, s in enumerate(result["systems"]):
        x, y = s["query"]["single_ms"]["p50"], s["quality"]["ndcg@10"]
        ax.scatter([x], [y], s=60, marker="*" if s["peer"] == "snaprag" else "o")
        # staggered so that labels of systems with close numbers do not print over each other
        offset = (6, 4 - 11 * (i % 3))
        ax.annotate(s["label"], (x, y), textcoords="offset points", xytext=offset, fontsize=8)
    ax.set_xscale("log")
    # plain numbers at 1-2-5 steps: the default 2x10^1 labels are hard to read
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("query p50, ms (one at a time, log scale)")
    ax.set_ylabel("nDCG@10")
    ax.set_title("Latency against quality\n" + _subtitle(result), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(
    result: dict[str, Any],
    path: str,
    series: list[tuple[str, Any]],
    xlabel: str,
    title: str,
    stacked: bool,
) -> None:
    labels = [s["label"] for s in result["systems"]]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(labels) + 1.8))
    ys = list(range(len(labels)))
    left = [0.0] * len(labels)
    height = 0.8 / (1 if stacked else len(series))
    for i, (name, get) in enumerate(series):
        values = [get(s) for s in result["systems"]]
        pos = ys if stacked else [y + i * height for y in ys]
        ax.barh(pos, values, height=height, left=left if stacked else None, label=name)
        if stacked:
            left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks([y + (0 if stacked else height * (len(series) - 1) / 2) for y in ys])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title + "\n" + _subtitle(result), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    spec = json.loads(sys.stdin.read())
    result, out, stem = spec["result"], spec["out_dir"], spec["stem"]
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, f"{stem}-{name}.png") for name in ("latency", "ingest", "rss")]
    latency_vs_ndcg(result, paths[0])
    _bars(
        result,
        paths[1],
        [
            ("ingest", lambda s: s["ingest"]["ingest_s"]),
            ("model load", lambda s: s["ingest"]["model_load_s"]),
        ],
        "seconds",
        "Ingest time",
        stacked=True,
    )
    _bars(
        result,
        paths[2],
        [
            ("peak while building", lambda s: s["ingest"]["peak_rss_bytes"] / MIB),
            ("query-only process", lambda s: s["query"]["rss_bytes"] / MIB),
        ],
        "MiB resident",
        "Memory",
        stacked=False,
    )
    print(json.dumps(paths))


if __name__ == "__main__":
    main()
