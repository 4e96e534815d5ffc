"""API keys and tenants.

Keys live in ``<data>/keys.json``, stored as SHA-256 hashes (a key is 32 random bytes,
so a fast hash is safe; the key itself is printed once, when created). A request carries
``Authorization: Bearer KEY``; a key belongs to one tenant and has scopes: ``read``
(search, answers, listings), ``write`` (uploads, deletes, new collections), ``admin``
(deleting collections). Tenancy fails closed: another tenant's collection is answered
exactly like one that does not exist (404), on every route.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError
from ..fs import atomic_write_text
from .errors import HTTPError

KEYS_FILE = "keys.json"
SCOPES = ("read", "write", "admin")
PREFIX = "snr_"


@dataclass(frozen=True)
class Key:
    id: str
    tenant: str
    scopes: tuple[str, ...]
    hash: str
    created: float
    revoked: bool = False

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "scopes": list(self.scopes),
            "created": self.created,
            "revoked": self.revoked,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, data: Path) -> None:
        self.path = Path(data) / KEYS_FILE
        self._lock = threading.Lock()
        self._keys: list[Key] = []
        self._mtime = -1.0
        self._load()

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._keys, self._mtime = [], -1.0
            return
        if mtime == self._mtime:
            return
        try:
            raw = json.loads(self.path.read_text())
            keys = [Key(**{**k, "scopes": tuple(k["scopes"])}) for k in raw["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the API keys in {self.path}: {exc}") from exc
        self._keys, self._mtime = keys, mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"keys": [asdict(k) for k in self._keys]}
        atomic_write_text(self.path, json.dumps(data, indent=1))
        self.path.chmod(0o600)

    @property
    def active(self) -> bool:
        """Whether any key exists (the server then requires one on every /v1 route)."""
        with self._lock:
            self._load()  # keys created or revoked by the CLI while the server runs
            return any(not k.revoked for k in self._keys)

    def create(self, tenant: str, scopes: list[str]) -> tuple[str, Key]:
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ConfigError(f"scopes must be among {', '.join(SCOPES)}; got {scopes}")
        if not tenant or not tenant.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"a tenant is letters, digits, '-' or '_'; got {tenant!r}")
        key_id = secrets.token_hex(4)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = Key(key_id, tenant, tuple(scopes), _digest(secret), time.time())
        with self._lock:
            self._load()
            self._keys.append(key)
            self._save()
        return secret, key

    def list(self) -> list[Key]:
        with self._lock:
            self._load()
            return list(self._keys)

    def revoke(self, key_id: str) -> Key:
        with self._lock:
            self._load()
            for i, key in enumerate(self._keys):
                if key.id == key_id:
                    self._keys[i] = Key(**{**asdict(key), "revoked": True})
                    self._save()
                    return self._keys[i]
        raise ConfigError(f"no key {key_id!r}; 'snaprag keys list' shows them")

    def verify(self, secret: str) -> Key | None:
        digest = _digest(secret)
        with self._lock:
            self._load()
            keys = list(self._keys)
        found = None
        for key in keys:  # compare every one: the time taken says nothing about the keys
            if hmac.compare_digest(key.hash, digest) and not key.revoked:
                found = key
        return found


@dataclass(frozen=True)
class Caller:
    """Who is asking: a tenant with scopes, or anyone (no keys configured)."""

    tenant: str | None
    scopes: tuple[str, ...]

    def need(self, scope: str) -> None:
        if self.tenant is not None and scope not in self.scopes:
            raise HTTPError(403, "forbidden", f"this key lacks the {scope!r} scope")


OPEN = Caller(None, SCOPES)


def caller(store: KeyStore | None, authorization: str | None) -> Caller:
    """The caller of a request; 401 when keys exist and none (or a bad one) is given."""
    if store is None or not store.active:
        return OPEN
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise HTTPError(
            401, "unauthorized", "send 'Authorization: Bearer KEY'", {"WWW-Authenticate": "Bearer"}
        )
    key = store.verify(secret.strip())
    if key is None:
        raise HTTPError(
            401, "unauthorized", "unknown or revoked key", {"WWW-Authenticate": "Bearer"}
        )
    return Caller(key.tenant, key.scopes)
