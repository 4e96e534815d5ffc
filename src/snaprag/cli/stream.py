"""Terminal output of generated answers: streamed tokens, numbered sources, speed."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from rich.console import Console

from ..types import Answer, AnswerEvent
from .render import cited_sources, console, markup, safe


def speed_line(answer: Answer) -> str:
    """``first token 812 ms · 41.2 tokens/s · total 2310 ms (retrieval 12, ...)``."""
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
        parts.append(f"total {stages['total']:.0f} ms")
    names = {"retrieve": "retrieval", "load": "model load", "context": "context"}
    names |= {"prefill": "prefill", "decode": "decode"}
    detail = ", ".join(
        f"{label} {stages[name]:.0f}" for name, label in names.items() if name in stages
    )
    line = " · ".join(parts)
    return f"{line} ({detail} ms)" if detail else line


def print_sources(answer: Answer, out: Console) -> None:
    """Each cited source once, with the numbers and pages the answer cites it by."""
    if answer.citations:
        out.print()
        groups = cited_sources(
            answer.citations, lambda c: f"[{c.n}]" + (f" p.{c.page}" if c.page is not None else "")
        )
        for source, labels in groups:
            out.print(f"  [dim]{markup(' · '.join(labels))}[/] {markup(source)}", highlight=False)
    elif answer.hits:
        out.print("\n  [dim](the answer cites no source)[/]", highlight=False)
    if answer.finish_reason == "length":
        out.print("  [dim](cut at --max-tokens)[/]", highlight=False)


def _footer(answer: Answer, out: Console) -> None:
    out.print(f"[dim]{markup(speed_line(answer))} · {markup(answer.generator)}[/]", highlight=False)


def print_generated(answer: Answer) -> None:
    out = console()
    out.print(safe(answer.text, multiline=True), highlight=False, markup=False)
    print_sources(answer, out)
    _footer(answer, out)


def stream_answer(events: Iterable[AnswerEvent], as_json: bool = False) -> bool:
    """Print events as they come; False when the stream ended with an error."""
    from .shell import dumps

    out = sys.stdout
    if as_json:
        ok = True
        for event in events:
            out.write(dumps(event.to_dict()) + "\n")
            out.flush()
            ok = ok and event.kind != "error"
        return ok
    rich_out = console()
    printed = False
    for event in events:
        if event.kind == "token" and event.text:
            out.write(safe(event.text, multiline=True))
            out.flush()
            printed = True
        elif event.kind == "done" and event.answer is not None:
            if printed:
                out.write("\n")
                out.flush()
            print_sources(event.answer, rich_out)
            _footer(event.answer, rich_out)
        elif event.kind == "error":
            if printed:
                out.write("\n")
                out.flush()
            console(stderr=True).print(
                f"[bold red]error:[/] {markup(event.message)}", highlight=False
            )
            return False
    return True
