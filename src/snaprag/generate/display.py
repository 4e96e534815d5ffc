"""Terminal output of generated answers: streamed tokens, numbered sources, speed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from ..render import where
from ..types import Answer, AnswerEvent


def speed_line(answer: Answer) -> str:
    """``first token 812 ms · 41.2 tokens/s · 2310 ms total (retrieve 12, ...)``."""
    stages = answer.timings.stages
    m = answer.metrics
    parts = []
    if m.get("cached"):
        parts.append(f"from cache (generated in {m.get('generated_ms', 0):.0f} ms)")
    if "ttft_ms" in m:
        parts.append(f"first token {m['ttft_ms']:.0f} ms")
    if "tokens_per_s" in m:
        parts.append(f"{m['tokens_per_s']:.1f} tokens/s")
    if "total" in stages:
        parts.append(f"{stages['total']:.0f} ms total")
    detail = ", ".join(
        f"{name} {stages[name]:.0f}"
        for name in ("retrieve", "load", "context", "prefill", "decode")
        if name in stages
    )
    line = " · ".join(parts)
    return f"{line} ({detail} ms)" if detail else line


def print_sources(answer: Answer, console: Console) -> None:
    if answer.citations:
        console.print()
        for c in answer.citations:
            console.print(
                f"  [dim]\\[{c.n}] {escape(where(c.source, c.page))}[/] {escape(c.source)}",
                highlight=False,
            )
    elif answer.hits:
        console.print("\n  [dim](the answer cites no source)[/]", highlight=False)
    if answer.finish_reason == "length":
        console.print("  [dim](cut at --max-tokens)[/]", highlight=False)


def print_generated(answer: Answer) -> None:
    console = Console()
    console.print(answer.text, highlight=False, markup=False)
    print_sources(answer, console)
    console.print(f"[dim]{escape(speed_line(answer))} · {escape(answer.generator)}[/]")


def stream_answer(events: Iterable[AnswerEvent], as_json: bool = False) -> bool:
    """Print events as they come; False when the stream ended with an error."""
    out = sys.stdout
    if as_json:
        ok = True
        for event in events:
            out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
            out.flush()
            ok = ok and event.kind != "error"
        return ok
    console = Console()
    printed = False
    for event in events:
        if event.kind == "token" and event.text:
            out.write(event.text)
            out.flush()
            printed = True
        elif event.kind == "done" and event.answer is not None:
            if printed:
                out.write("\n")
                out.flush()
            print_sources(event.answer, console)
            console.print(
                f"[dim]{escape(speed_line(event.answer))} · {escape(event.answer.generator)}[/]"
            )
        elif event.kind == "error":
            if printed:
                out.write("\n")
                out.flush()
            Console(stderr=True, soft_wrap=True).print(
                f"[bold red]error:[/] {escape(event.message)}", highlight=False
            )
            return False
    return True
