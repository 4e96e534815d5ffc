"""``snaprag keys``: API keys of a server's folder of collections (``serve --data DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .shell import echo_json, error_message, fail

keys_app = typer.Typer(no_args_is_help=True, help="API keys and tenants of 'snaprag serve --data'.")
DataOpt = Annotated[Path, typer.Option("--data", help="The folder 'snaprag serve --data' serves")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines", metavar="")]


def _store(data: Path):
    from ..serve.auth import KeyStore

    try:
        return KeyStore(data)
    except Exception as exc:
        fail(error_message(exc))


@keys_app.command("create")
def create(
    data: DataOpt,
    tenant: Annotated[str, typer.Option("--tenant", help="Who the key acts for")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma list: read, write, admin")
    ] = "read",
    as_json: JsonFlag = False,
) -> None:
    """Create a key; it is printed once, only its hash is kept."""
    store = _store(data)
    try:
        secret, key = store.create(tenant, [s.strip() for s in scopes.split(",") if s.strip()])
    except Exception as exc:
        fail(error_message(exc))
    if as_json:
        echo_json({"key": secret, "id": key.id, "tenant": key.tenant, "scopes": list(key.scopes)})
        return
    typer.echo(secret)
    typer.echo(
        f"(key {key.id} for tenant {key.tenant}: {','.join(key.scopes)}; shown only now)", err=True
    )


@keys_app.command("list")
def list_(data: DataOpt, as_json: JsonFlag = False) -> None:
    """Keys by id, tenant and scopes (never the keys themselves)."""
    keys = [k.public() for k in _store(data).list()]
    if as_json:
        echo_json(keys)
        return
    for k in keys:
        state = "revoked" if k["revoked"] else "active"
        typer.echo(f"{k['id']}  {k['tenant']}  {','.join(k['scopes'])}  {state}")


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id")], data: DataOpt) -> None:
    """Revoke a key (a running server stops accepting it at its next request)."""
    try:
        key = _store(data).revoke(key_id)
    except Exception as exc:
        fail(error_message(exc))
    typer.echo(f"revoked {key.id} ({key.tenant})")
