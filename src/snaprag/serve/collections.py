"""The collections a server answers for: one engine each, opened and warmed at start.

``--index DIR`` serves that index as the collection ``default``; ``--data DIR`` serves
every sub-directory holding an index as a collection named after it.

With ``--data`` the directory, not this object, is the truth: with ``--workers N`` another
process may create or delete a collection at any time. A name not known here is looked
for on disk, and a known one is checked on every use (one ``stat``): a collection deleted
elsewhere answers 404, and one deleted and made again under the same name is reopened.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..engine import Engine
from ..errors import IndexBusyError
from ..index import layout
from ..index.layout import DB_NAME
from ..observe.base import Telemetry
from .auth import OPEN, Caller
from .errors import HTTPError
from .jobs import JOBS_DB

DEFAULT = "default"
#: the OpenAI ``model`` name that means the default collection
ALIAS = "snaprag"
#: who owns a collection made over the API (a file in its index directory, written once:
#: its appearance is the collection's creation)
TENANT_FILE = "tenant"
#: the embedding model asked for when the collection was made (used by its first upload)
MODEL_FILE = "model"
DEFAULT_TENANT = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: what tells one collection from another made later under the same name: the tenant
#: file's inode and creation time (never rewritten), else the index database's inode
Mark = tuple[str, int, int]


class Collections:
    def __init__(
        self,
        config: Config,
        index: Path | None = None,
        data: Path | None = None,
        telemetry: Callable[[str], Telemetry] | None = None,
    ):
        if (index is None) == (data is None):
            raise ValueError("give exactly one of index and data")
        self.config = config
        #: the telemetry of a collection's engine, by collection name
        self.telemetry = telemetry
        self.engines: dict[str, Engine] = {}
        self._data = Path(data) if data is not None else None
        self._index = Path(index) if index is not None else None
        self._marks: dict[str, Mark] = {}
        self._tenants: dict[str, str] = {}
        # guards the dicts above: requests, jobs and deletes use them from several threads
        self._lock = threading.RLock()
        if index is not None:
            self.engines[DEFAULT] = self._engine(config.with_(index_dir=Path(index)), DEFAULT)
        else:
            root = Path(data)  # type: ignore[arg-type]
            root.mkdir(parents=True, exist_ok=True)
            self._scan()

    def _engine(self, config: Config, name: str) -> Engine:
        telemetry = self.telemetry(name) if self.telemetry is not None else None
        return Engine(config, telemetry=telemetry)

    @property
    def data(self) -> Path | None:
        return self._data

    @property
    def jobs_path(self) -> Path:
        """Where upload jobs are kept, shared by every server process on this data."""
        return (self._data or self._index or Path(".")) / JOBS_DB

    # ------------------------------------------------------------------ on disk
    def _mark(self, name: str) -> Mark | None:
        """The collection ``name`` as it is on disk now (None: there is none)."""
        folder = self._data / name  # type: ignore[operator]
        for file in (TENANT_FILE, DB_NAME):
            try:
                st = os.stat(folder / file)
            except OSError:
                continue
            return (file, st.st_ino, st.st_ctime_ns if file == TENANT_FILE else 0)
        return None

    def _open(self, name: str, mark: Mark) -> Engine:
        """Open (cheaply: models load on first use) the collection found on disk."""
        folder = self._data / name  # type: ignore[operator]
        settings: dict[str, object] = {"index_dir": folder}
        with contextlib.suppress(OSError):
            settings["model"] = (folder / MODEL_FILE).read_text().strip() or None
        if settings.get("model") is None:
            settings.pop("model", None)
        engine = self._engine(self.config.with_(**settings), name)
        self.engines[name] = engine
        self._marks[name] = mark
        self._tenants.pop(name, None)
        return engine

    def _drop(self, name: str) -> None:
        engine = self.engines.pop(name, None)
        self._marks.pop(name, None)
        self._tenants.pop(name, None)
        if engine is not None:
            engine.close()  # a request still using it finishes; nothing new reaches it
            # the server froze what it loaded at start (the garbage collector skips it):
            # an engine dropped now may hold reference cycles that only a collection over
            # the unfrozen objects frees
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _sync(self, name: str) -> Engine | None:
        """The engine of ``name`` as the disk has it now: opened when another process made
        it, dropped when another deleted it, reopened when it was made again."""
        if self._data is None:
            return self.engines.get(name)
        if not _NAME.match(name):
            return None
        mark = self._mark(name)
        engine = self.engines.get(name)
        if engine is not None and mark == self._marks.get(name):
            return engine
        with self._lock:
            if name in self.engines and self._marks.get(name) != mark:
                self._drop(name)
            if mark is None:
                return None
            return self.engines.get(name) or self._open(name, mark)

    def _scan(self) -> None:
        """Bring the known collections in line with the directory."""
        root = self._data
        assert root is not None
        on_disk = {p.name for p in root.iterdir() if _NAME.match(p.name) and p.is_dir()}
        for name in sorted(on_disk | set(self.engines)):
            self._sync(name)

    def current(self, name: str, engine: Engine) -> bool:
        """Whether ``engine`` is still the engine of collection ``name`` on disk."""
        return self._sync(name) is engine

    # ------------------------------------------------------------------ API
    def create(self, name: str, model: str | None = None, caller: Caller = OPEN) -> Engine:
        """A new, empty collection under ``--data`` (its index is made by its first upload)."""
        if self._data is None:
            raise HTTPError(400, "bad_request", "collections are created only with --data DIR")
        if not _NAME.match(name) or name == ALIAS:
            raise HTTPError(
                422, "bad_request", "a collection name is 1-64 letters, digits, '_', '.' or '-'"
            )
        folder = self._data / name
        if model:
            self.config.with_(index_dir=folder, model=model)  # a bad setting: 400, nothing made
        with self._lock:
            if self._sync(name) is not None or not self._claim(folder, name, model, caller):
                if not self._visible(name, caller):  # another tenant's: it must not show
                    raise HTTPError(409, "exists", f"collection name {name!r} is taken")
                raise HTTPError(409, "exists", f"collection {name!r} exists already")
            engine = self._sync(name)
        assert engine is not None
        return engine

    def _claim(self, folder: Path, name: str, model: str | None, caller: Caller) -> bool:
        """Make the collection on disk, unless another process just did (False). Its
        tenant file appears at once with its content (linked into place), so no process
        ever reads a half-written owner."""
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / DB_NAME).exists():  # an index put there by hand: it exists
            return False
        tmp = folder / f".{TENANT_FILE}-{uuid.uuid4().hex}"
        try:
            if model:
                model_tmp = folder / f".{MODEL_FILE}-{uuid.uuid4().hex}"
                model_tmp.write_text(model)
                os.replace(model_tmp, folder / MODEL_FILE)
            tmp.write_text(caller.tenant or DEFAULT_TENANT)
            try:
                os.link(tmp, folder / TENANT_FILE)
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def remove(self, name: str, caller: Caller = OPEN) -> None:
        """Delete a collection and its index directory (not while an upload is being
        ingested into it: 409, try again when the job is done)."""
        if self._data is None:
            raise HTTPError(400, "bad_request", "collections are deleted only with --data DIR")
        engine = self.get(name, caller)
        folder = engine.config.index_dir
        # moved aside first, in one step, under the ingest lock: every process sees it
        # gone at once, and no ingest is writing into it meanwhile
        trash = folder.with_name(f".deleted-{name}-{uuid.uuid4().hex[:8]}")
        try:
            with layout.ingest_lock(folder):
                os.rename(folder, trash)
        except IndexBusyError:
            raise HTTPError(
                409,
                "busy",
                f"an upload is being ingested into collection {name!r}; delete it once the "
                "job is done (GET /v1/jobs/{id})",
                {"Retry-After": "5"},
            ) from None
        except FileNotFoundError:  # another process deleted it just now
            pass
        with self._lock:
            self._drop(name)
        shutil.rmtree(trash, ignore_errors=True)

    def tenant_of(self, name: str) -> str:
        """The tenant owning a collection (``default`` for one made outside the API)."""
        tenant = self._tenants.get(name)
        if tenant is None:
            folder = self._data / name if self._data is not None else self._index
            try:
                tenant = (folder or Path(".")).joinpath(TENANT_FILE).read_text().strip()
                tenant = tenant or DEFAULT_TENANT
            except OSError:
                tenant = DEFAULT_TENANT
            self._tenants[name] = tenant  # written once, at creation: safe to keep
        return tenant

    def names(self, caller: Caller = OPEN) -> list[str]:
        """The collections ``caller`` may see."""
        if self._data is not None:
            with self._lock:
                self._scan()
        return sorted(n for n in list(self.engines) if self._visible(n, caller))

    def _visible(self, name: str, caller: Caller) -> bool:
        return caller.tenant is None or self.tenant_of(name) == caller.tenant

    def get(self, name: str | None, caller: Caller = OPEN) -> Engine:
        """The engine of collection ``name``; a missing one, or another tenant's, is the
        same 404 (fails closed: nothing tells them apart)."""
        key = DEFAULT if name in (None, "", ALIAS) else str(name)
        engine = self._sync(key)
        if engine is None or not self._visible(key, caller):
            hint = "GET /v1/collections lists yours"
            if key == DEFAULT and self._data is not None:  # --data has no default one
                hint = 'name one with "collection" (chat: "model"); ' + hint
            raise HTTPError(404, "not_found", f"no collection named {key!r}; {hint}")
        return engine

    def warm_up(self) -> None:
        for engine in list(self.engines.values()):
            try:
                engine.warm_up()
            except Exception:  # an empty or missing index still serves its errors
                engine.close()

    def close(self) -> None:
        for engine in list(self.engines.values()):
            engine.close()
