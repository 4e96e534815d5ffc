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
from .errors import HTTPError

DEFAULT = "default"
#: the OpenAI ``model`` name that means the default collection
ALIAS = "snaprag"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Collections:
    def __init__(self, config: Config, index: Path | None = None, data: Path | None = None):
        if (index is None) == (data is None):
            raise ValueError("give exactly one of index and data")
        self.config = config
        self.engines: dict[str, Engine] = {}
        self._data = Path(data) if data is not None else None
        if index is not None:
            self.engines[DEFAULT] = Engine(config.with_(index_dir=Path(index)))
        else:
            root = Path(data)  # type: ignore[arg-type]
            root.mkdir(parents=True, exist_ok=True)
            for sub in sorted(p for p in root.iterdir() if p.is_dir()):
                if (sub / DB_NAME).exists() and _NAME.match(sub.name):
                    self.engines[sub.name] = Engine(config.with_(index_dir=sub))

    @property
    def data(self) -> Path | None:
        return self._data

    def create(self, name: str, model: str | None = None) -> Engine:
        """A new, empty collection under ``--data`` (its index is made by its first upload)."""
        if self._data is None:
            raise HTTPError(400, "bad_request", "collections are created only with --data DIR")
        if not _NAME.match(name) or name == ALIAS:
            raise HTTPError(
                422, "bad_request", "a collection name is 1-64 letters, digits, '_', '.' or '-'"
            )
        if name in self.engines:
            raise HTTPError(409, "exists", f"collection {name!r} exists already")
        settings = {"index_dir": self._data / name}
        if model:
            settings["model"] = model
        engine = Engine(self.config.with_(**settings))
        self.engines[name] = engine
        return engine

    def remove(self, name: str) -> None:
        """Delete a collection and its index directory."""
        import shutil

        if self._data is None:
            raise HTTPError(400, "bad_request", "collections are deleted only with --data DIR")
        engine = self.get(name)
        del self.engines[name]
        engine.close()
        shutil.rmtree(engine.config.index_dir, ignore_errors=True)

    def names(self) -> list[str]:
        return sorted(self.engines)

    def get(self, name: str | None) -> Engine:
        """The engine of collection ``name``; a missing one is a 404."""
        key = DEFAULT if name in (None, "", ALIAS) else str(name)
        engine = self.engines.get(key)
        if engine is None:
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
