"""Command-line options shared by the commands, and the one mapping from options to settings.

Every option that sets a :class:`~snaprag.config.Config` field is declared once in
:data:`OPTIONS`; a command asks for the ones it takes with :func:`with_settings`, which adds
them to its signature and hands the command a :class:`Settings` (the config file and the
overrides, by field name). ``--config FILE`` is added to every such command.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ..types import TYPE_ALIASES

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines", metavar="")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Only sources matching this glob")]
TypeOpt = Annotated[
    str | None,
    typer.Option("--type", help="Only this document type: pdf, md, html, txt, docx, jsonl"),
]
ModeOpt = Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25")]


@dataclass(frozen=True)
class Option:
    """A CLI option that sets a config field (``None``: the config file itself)."""

    setting: str | None
    annotation: Any


OPTIONS: dict[str, Option] = {
    "config": Option(
        None,
        Annotated[
            Path | None,
            typer.Option("--config", help="TOML settings file (env SNAPRAG_CONFIG)"),
        ],
    ),
    "index": Option(
        "index_dir",
        Annotated[
            Path | None,
            typer.Option("--index", help="Index directory (env SNAPRAG_INDEX; default ./.snaprag)"),
        ],
    ),
    "model": Option(
        "model",
        Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Embedding model: minilm, e5-small, hf:ORG/NAME or a directory (default: "
                "the index's; a new index: e5-small for Korean or mixed text, else minilm)",
            ),
        ],
    ),
    "profile": Option(
        "profile",
        Annotated[
            str | None,
            typer.Option(
                "--profile",
                help="Named defaults: default, or edge (int8 vectors rescored from float16 on "
                "disk, one thread; env SNAPRAG_PROFILE)",
            ),
        ],
    ),
    "llm": Option(
        "llm",
        Annotated[
            str | None,
            typer.Option(
                "--llm",
                help="Who writes the answer: extractive, smollm2 (bundled demo model), "
                "gguf:PATH or openai:BASE_URL (env SNAPRAG_LLM)",
            ),
        ],
    ),
    "llm_model": Option(
        "llm_model",
        Annotated[
            str | None,
            typer.Option("--llm-model", help="Model name on an OpenAI-compatible server"),
        ],
    ),
    "llm_key": Option(
        "llm_api_key",
        Annotated[
            str | None,
            typer.Option("--llm-key", help="API key (env SNAPRAG_LLM_API_KEY or OPENAI_API_KEY)"),
        ],
    ),
    "llm_threads": Option(
        "llm_threads",
        Annotated[int | None, typer.Option("--llm-threads", help="Local model threads")],
    ),
    "llm_ctx": Option(
        "llm_ctx",
        Annotated[int | None, typer.Option("--llm-ctx", help="Local model context (tokens)")],
    ),
    "gpu_layers": Option(
        "llm_gpu_layers",
        Annotated[
            int | None, typer.Option("--gpu-layers", help="Local model layers on the GPU (-1: all)")
        ],
    ),
    "max_tokens": Option(
        "llm_max_tokens",
        Annotated[int | None, typer.Option("--max-tokens", help="Longest answer (tokens)")],
    ),
    "context_tokens": Option(
        "context_tokens",
        Annotated[
            int | None,
            typer.Option("--context-tokens", help="Tokens of retrieved text in the prompt"),
        ],
    ),
    "temperature": Option(
        "llm_temperature",
        Annotated[float | None, typer.Option("--temperature", help="0 = greedy")],
    ),
    "llm_timeout": Option(
        "llm_timeout",
        Annotated[
            float | None, typer.Option("--llm-timeout", help="Seconds a server may stay silent")
        ],
    ),
}

#: the options of answer generation (ask, bench ask)
LLM = (
    "llm",
    "llm_model",
    "llm_key",
    "llm_threads",
    "llm_ctx",
    "gpu_layers",
    "max_tokens",
    "context_tokens",
    "temperature",
    "llm_timeout",
)


@dataclass(frozen=True)
class Settings:
    """What the options of one command ask of the config: a file and overrides."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def with_settings(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options ``names`` (keys of :data:`OPTIONS`; ``config`` always) to a command;
    the command receives them as one ``settings: Settings`` keyword argument."""
    wanted = ["config", *(n for n in names if n != "config")]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        params = [p for p in signature.parameters.values() if p.name != "settings"]
        clash = {p.name for p in params} & set(wanted)
        if clash:  # a programming error, found when the module is imported
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} clash with options")
        extra = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=OPTIONS[n].annotation
            )
            for n in wanted
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            given = {n: kwargs.pop(n, None) for n in wanted}
            overrides = {
                OPTIONS[n].setting: v
                for n, v in given.items()
                if v is not None and OPTIONS[n].setting is not None
            }
            settings = Settings(given["config"], overrides)
            return command(*args, settings=settings, **kwargs)

        run.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
        run.__annotations__ = {
            **{p.name: p.annotation for p in params},
            **{n: OPTIONS[n].annotation for n in wanted},
        }
        return run

    return decorate


#: spellings people type for the document types the index knows


def normalize_type(value: str | None) -> str | None:
    """``PDF``, ``.pdf`` and ``pdf`` are the same type; unknown ones are left to the
    filter's validation, which names the valid ones."""
    if value is None:
        return None
    cleaned = value.strip().lstrip(".").lower()
    return TYPE_ALIASES.get(cleaned, cleaned)


def normalize_choice(value: str) -> str:
    """Case-insensitive choices (``--mode BM25``)."""
    return value.strip().lower()
