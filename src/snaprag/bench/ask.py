"""``snaprag bench ask``: how fast a generated answer is, stage by stage.

The bundled ``samples/`` (English and Korean) are ingested into a fresh temporary index
(or ``--index``), the generator is loaded and warmed (start-up is timed), and a fixed set
of questions is asked once each through ``Engine.ask_events`` with the answer cache off.
Per answer: time to first token, decode tokens/s, and milliseconds per stage (retrieve,
context, prefill, decode, total); the report gives p50 / p95 / mean over the questions.

When the engine has an answer cache (``engine.cache``), every question is then asked twice
more through ``Engine.ask``: the first fills the cache, the second is timed as a cache hit.
A hit is only counted when the generator received no request for it; otherwise the row is
left out and the report says why.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Engine
from .retrieval import machine as bench_machine

QUESTIONS = (
    "How long is the warranty on the frame?",
    "How do I reset the desk?",
    "What does error E05 mean?",
    "How long does assembly take?",
    "What is the lift capacity of the desk?",
    "How do I turn on the child lock?",
    "How do I make a warranty claim?",
    "What changed in firmware v2.4.1?",
    "보증 기간은 얼마나 되나요?",
    "A/S는 어떻게 접수하나요?",
)
STAGES = ("retrieve", "context", "prefill", "decode", "total")


def default_samples() -> Path:
    """The repository's ``samples/`` folder (next to ``src/``)."""
    return Path(__file__).resolve().parents[3] / "samples"


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "mean": round(float(arr.mean()), 2),
        "n": len(values),
    }


def run(
    index: Path | None = None,
    samples: Path | None = None,
    llm: str = "smollm2",
    k: int = 5,
    questions: tuple[str, ...] = QUESTIONS,
    progress: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Measure; ``settings`` are extra Config fields (``llm_max_tokens=...``)."""
    settings = {k_: v for k_, v in settings.items() if v is not None}
    tmp = None
    if index is None:
        tmp = tempfile.TemporaryDirectory(prefix="snaprag-bench-ask-")
        index = Path(tmp.name) / "index"
    try:
        samples = samples or default_samples()
        t = time.perf_counter()
        with Engine.open(index, cache=False) as engine:
            engine.ingest([samples])
        ingest_ms = (time.perf_counter() - t) * 1000
        result = _measure(index, llm, k, questions, progress, settings)
        result["ingest_ms"] = round(ingest_ms, 1)
        result["samples"] = str(samples)
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def _measure(
    index: Path,
    llm: str,
    k: int,
    questions: tuple[str, ...],
    progress: bool,
    settings: dict[str, Any],
) -> dict[str, Any]:
    machine = bench_machine()
    rows: list[dict[str, Any]] = []
    with Engine.open(index, llm=llm, cache=False, **settings) as engine:
        t = time.perf_counter()
        engine.warm_up()
        startup_ms = (time.perf_counter() - t) * 1000
        gen = engine.generator
        backend = getattr(gen, "backend", gen)  # the LLM under the answerer
        config = engine.config
        for q in questions:
            answer = None
            for event in engine.ask_events(q, k=k):
                if event.kind == "error":
                    raise event.error  # type: ignore[misc]
                if event.kind == "done":
                    answer = event.answer
            if answer is None:  # pragma: no cover - ask_events always ends with done/error
                continue
            m = answer.metrics
            row = {
                "question": q,
                "ttft_ms": round(m.get("ttft_ms", 0.0), 2),
                "tokens_per_s": round(m.get("tokens_per_s", 0.0), 2),
                "prompt_tokens": int(m.get("prompt_tokens", 0)),
                "completion_tokens": int(m.get("completion_tokens", 0)),
                "context_tokens": int(m.get("context_tokens", 0)),
                "stages_ms": {s: round(answer.timings.stages.get(s, 0.0), 2) for s in STAGES},
                "citations": [c.n for c in answer.citations],
                "finish_reason": answer.finish_reason,
                "answer": answer.text[:300],
            }
            rows.append(row)
            if progress:
                print(
                    f"  {row['ttft_ms']:8.0f} ms ttft  {row['tokens_per_s']:6.1f} tok/s  "
                    f"{row['stages_ms']['total']:8.0f} ms  {q}",
                    flush=True,
                )
        fingerprint = gen.fingerprint
        startup = {
            "warm_up_ms": round(startup_ms, 1),
            "model_load_ms": round(float(getattr(backend, "load_ms", 0.0)), 1),
            "first_request_ms": round(float(getattr(backend, "warmup_ms", 0.0)), 1),
        }
        llm_settings = {
            "llm": config.llm,
            "llm_ctx": config.llm_ctx,
            "llm_threads": config.effective_llm_threads,
            "llm_max_tokens": config.llm_max_tokens,
            "llm_temperature": config.llm_temperature,
            "context_tokens": config.context_tokens,
            "k": k,
        }
    cache_hit, cache_note = _cache_pass(index, llm, k, questions, settings)
    summary = {
        "ttft_ms": _summary([r["ttft_ms"] for r in rows if r["ttft_ms"]]),  # 0: no token
        "tokens_per_s": _summary([r["tokens_per_s"] for r in rows if r["tokens_per_s"]]),
        "completion_tokens": _summary([r["completion_tokens"] for r in rows]),
        "prompt_tokens": _summary([r["prompt_tokens"] for r in rows]),
        **{f"{s}_ms": _summary([r["stages_ms"][s] for r in rows]) for s in STAGES},
    }
    return {
        "benchmark": "ask",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "settings": llm_settings,
        "fingerprint": fingerprint,
        "startup": startup,
        "summary": summary,
        "answer_cache_hit": cache_hit,
        "answer_cache_note": cache_note,
        "questions": rows,
    }


def _cache_pass(
    index: Path, llm: str, k: int, questions: tuple[str, ...], settings: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """Second asks of the same questions through the answer cache, when there is one."""
    with Engine.open(index, llm=llm, **settings) as engine:
        cache = getattr(engine, "cache", None)
        if cache is None:
            return None, "no answer cache in this engine (engine.cache is None): row left out"
        gen = engine.generator
        times: list[float] = []
        for q in questions:
            engine.ask(q, k=k)  # fills the cache (or is already a hit)
            before = gen.requests
            t = time.perf_counter()
            engine.ask(q, k=k)
            ms = (time.perf_counter() - t) * 1000
            if gen.requests != before:
                return None, (
                    "engine.cache exists but a repeated question still reached the model "
                    "(answers are not cached yet): row left out"
                )
            times.append(ms)
        return {"total_ms": _summary(times)}, "second ask of each question, served from cache"


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s = result["settings"]
    mach = result["machine"]
    table = Table(
        title=f"snaprag bench ask — {s['llm']}, {len(result['questions'])} questions, "
        f"k={s['k']}, context {s['context_tokens']} tokens, max {s['llm_max_tokens']} tokens"
    )
    table.add_column("metric")
    for col in ("p50", "p95", "mean"):
        table.add_column(col, justify="right")
    summary = result["summary"]
    names = [
        ("time to first token (ms)", "ttft_ms"),
        ("decode tokens/s", "tokens_per_s"),
        ("prompt tokens", "prompt_tokens"),
        ("answer tokens", "completion_tokens"),
        *((f"{stage} (ms)", f"{stage}_ms") for stage in STAGES),
    ]
    for label, key in names:
        row = summary.get(key) or {}
        table.add_row(label, *(f"{row.get(c, float('nan')):.1f}" for c in ("p50", "p95", "mean")))
    hit = result.get("answer_cache_hit")
    if hit:
        row = hit["total_ms"]
        table.add_row(
            "answer-cache hit total (ms)", *(f"{row[c]:.2f}" for c in ("p50", "p95", "mean"))
        )
    console.print(table)
    st = result["startup"]
    console.print(
        f"start-up: warm_up {st['warm_up_ms']:.0f} ms (model load {st['model_load_ms']:.0f} ms, "
        f"first request {st['first_request_ms']:.0f} ms); ingest {result['ingest_ms']:.0f} ms"
    )
    console.print(f"answer cache: {result['answer_cache_note']}")
    console.print(
        f"[dim]{mach['cpu']}, {mach['cpus']} CPUs, {mach['memory_gib']} GiB, Python "
        f"{mach['python']}, load average {mach['load_avg_1m']} at start[/]"
    )
