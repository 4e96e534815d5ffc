"""The ``snaprag`` application: commands from the modules of this package, ``--version``,
and one-line usage errors."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Annotated

import typer

from . import admin, bench, bench_peers, ingest, keys, query, report, serve
from .render import console, markup

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="snaprag: hybrid search and cited answers over your own documents, no server needed.",
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"snaprag {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit",
            metavar="",  # a flag: no value to show
        ),
    ] = False,
) -> None:
    """snaprag: hybrid search and cited answers over your own documents, no server needed."""


app.command("ingest")(ingest.ingest)
app.command("search")(query.search)
app.command("ask")(query.ask)
app.command("stats")(admin.stats)
app.command("docs")(admin.docs)
app.command("delete")(admin.delete)
app.command("eval")(bench.eval_)
app.command("serve")(serve.serve)
app.command("report")(report.report)
app.add_typer(admin.cache_app, name="cache")
app.add_typer(admin.config_app, name="config")
bench.bench_app.command("peers")(bench_peers.bench_peers)
app.add_typer(bench.bench_app, name="bench")
app.add_typer(keys.keys_app, name="keys")


def _parser_errors() -> list[ModuleType]:
    """Where the command-line parser's exceptions live: recent typer releases carry their
    own copy of click (``typer._click``), older ones use click itself."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def main(argv: list[str] | None = None) -> None:
    """Run the command line; usage errors are one line on stderr with exit code 2."""
    errors = _parser_errors()
    no_args = tuple(m.NoArgsIsHelpError for m in errors if hasattr(m, "NoArgsIsHelpError"))
    usage = tuple(m.UsageError for m in errors)
    other = tuple(m.ClickException for m in errors)
    aborted = (typer.Abort, *(m.Abort for m in errors if hasattr(m, "Abort")))
    args = ingest.ray_address_args(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="snaprag", standalone_mode=False)
    except no_args as exc:  # bare 'snaprag' or 'snaprag cache': the help, as before
        exc.show()
        code = 2
    except usage as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "snaprag"
        console(stderr=True).print(
            f"[bold red]error:[/] {markup(exc.format_message())} (see '{markup(where)} --help')",
            highlight=False,
        )
        code = 2
    except other as exc:
        console(stderr=True).print(
            f"[bold red]error:[/] {markup(exc.format_message())}", highlight=False
        )
        code = exc.exit_code
    except aborted:  # Ctrl-C outside a command's own handling
        console(stderr=True).print("interrupted", highlight=False)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
