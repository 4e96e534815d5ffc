"""The collections a server answers for: one engine each, opened and warmed at start.

``--index DIR`` serves that index as the collection ``default``; ``--data DIR`` serves
every sub-directory holding an index as a collection named after it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import Config
from ..engine import Engine
from ..index.layout import DB_NAME
from ..observe.base import Telemetry
from .auth import OPEN, Caller
from .errors import HTTPError

DEFAULT = "default"
#: the OpenAI ``model`` name that means the default collection
ALIAS = "snaprag"
#: who owns a collection made over the API (a file in its index directory)
TENANT_FILE = "tenant"
DEFAULT_TENANT = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Collections:
    def __init__(
        self,
        config: Config,
        index: Path | None = None,
        data: Path | None = None,
        telemetry: Telemetry | None = None,
    ):
        if (index is None) == (data is None):
            raise ValueError("give exactly one of index and data")
        self.config = config
        self.telemetry = telemetry
        self.engines: dict[str, Engine] = {}
        self._data = Path(data) if data is not None else None
        if index is not None:
            self.engines[DEFAULT] = self._engine(config.with_(index_dir=Path(index)))
        else:
            root = Path(data)  # type: ignore[arg-type]
            root.mkdir(parents=True, exist_ok=True)
            for sub in sorted(p for p in root.iterdir() if p.is_dir()):
                made = (sub / DB_NAME).exists() or (sub / TENANT_FILE).exists()
                if made and _NAME.match(sub.name):
                    self.engines[sub.name] = self._engine(config.with_(index_dir=sub))

    def _engine(self, config: Config) -> Engine:
        return Engine(config, telemetry=self.telemetry)

    @property
    def data(self) -> Path | None:
        return self._data

    def create(self, name: str, model: str | None = None, caller: Caller = OPEN) -> Engine:
        """A new, empty collection under ``--data`` (its index is made by its first upload)."""
        if self._data is None:
            raise HTTPError(400, "bad_request", "collections are created only with --data DIR")
        if not _NAME.match(name) or name == ALIAS:
            raise HTTPError(
                422, "bad_request", "a collection name is 1-64 letters, digits, '_', '.' or '-'"
            )
        if name in self.engines:
            if not self._visible(name, caller):  # another tenant's: it must not show
                raise HTTPError(409, "exists", f"collection name {name!r} is taken")
            raise HTTPError(409, "exists", f"collection {name!r} exists already")
        settings = {"index_dir": self._data / name}
        settings["index_dir"].mkdir(parents=True, exist_ok=True)
        (settings["index_dir"] / TENANT_FILE).write_text(caller.tenant or DEFAULT_TENANT)
        if model:
            settings["model"] = model
        engine = self._engine(self.config.with_(**settings))
        self.engines[name] = engine
        return engine

    def remove(self, name: str, caller: Caller = OPEN) -> None:
        """Delete a collection and its index directory."""
        import shutil

        if self._data is None:
            raise HTTPError(400, "bad_request", "collections are deleted only with --data DIR")
        engine = self.get(name, caller)
        del self.engines[name]
        engine.close()
        shutil.rmtree(engine.config.index_dir, ignore_errors=True)

    def tenant_of(self, name: str) -> str:
        """The tenant owning a collection (``default`` for one made outside the API)."""
        path = self.engines[name].config.index_dir / TENANT_FILE
        try:
            return path.read_text().strip() or DEFAULT_TENANT
        except OSError:
            return DEFAULT_TENANT

    def names(self, caller: Caller = OPEN) -> list[str]:
        """The collections ``caller`` may see."""
        return sorted(n for n in self.engines if self._visible(n, caller))

    def _visible(self, name: str, caller: Caller) -> bool:
        return caller.tenant is None or self.tenant_of(name) == caller.tenant

    def get(self, name: str | None, caller: Caller = OPEN) -> Engine:
        """The engine of collection ``name``; a missing one, or another tenant's, is the
        same 404 (fails closed: nothing tells them apart)."""
        key = DEFAULT if name in (None, "", ALIAS) else str(name)
        engine = self.engines.get(key)
        if engine is None or not self._visible(key, caller):
            raise HTTPError(404, "not_found", f"no collection named {key!r}")
        return engine

    def warm_up(self) -> None:
        for engine in self.engines.values():
            try:
                engine.warm_up()
            except Exception:  # an empty or missing index still serves its errors
                engine.close()

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
