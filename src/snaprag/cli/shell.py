"""How every command opens the engine, reports errors and prints JSON.

An error that stops a command is one line on stderr and exit code 2; a command never
prints a traceback for a user's mistake.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from .options import Settings
from .progress import status_line
from .render import console, markup

# JSON escapes C0 controls itself; these it leaves raw, and a terminal may act on them
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dumps(data: Any) -> str:
    """One line of JSON: exact strings, with no character a terminal would act on."""
    text = json.dumps(data, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def echo_json(data: Any) -> None:
    typer.echo(dumps(data))


def emit(data: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    if as_json:
        echo_json(data)
    else:
        show(data)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` (one line, never folded) and exit with code 2."""
    console(stderr=True).print(f"[bold red]error:[/] {markup(message)}", highlight=False)
    raise typer.Exit(2)


def error_message(exc: BaseException) -> str:
    """A one-line message for any error that stops a command."""
    import sqlite3

    from ..errors import SnapragError

    if isinstance(exc, SnapragError):
        return " ".join(str(exc).split("\n"))
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "the index is busy (another process holds its write lock); try again shortly"
    if isinstance(exc, sqlite3.Error):
        return f"index database error: {exc}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def open_engine(settings: Settings) -> Any:
    """The engine the options ask for; a bad setting is a one-line error (exit 2)."""
    from ..engine import Engine

    overrides = dict(settings.overrides)
    index = overrides.pop("index_dir", None)
    try:
        return Engine.open(index, config_file=settings.config_file, **overrides)
    except Exception as exc:  # a bad SNAPRAG_* value or config file, for instance
        fail(error_message(exc))


def with_engine(settings: Settings, action: Callable[[Any], Any], status: bool = False) -> Any:
    """Run ``action(engine)`` and close the engine; any error becomes the one-line message
    and exit code 2. With ``status``, slow first-use steps are shown on stderr meanwhile."""
    engine = open_engine(settings)
    try:
        with status_line(status and sys.stderr.isatty()):
            return action(engine)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:
        fail(error_message(exc))
    finally:
        engine.close()


def check_query(engine: Any, text: str) -> None:
    """Refuse an empty query or one longer than ``max_query_chars`` before any work (the
    engine checks again; checking here first names the query of a file that fails)."""
    from ..search.query import check_query as check

    check(text, engine.config.max_query_chars)
