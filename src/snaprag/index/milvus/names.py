"""How a snaprag index maps onto Milvus: the server URI, collection names, ids.

An index is five collections, ``<prefix><name>_<role>``: ``chunks`` (vectors, text,
metadata, BM25 weights), ``documents``, ``sources``, ``meta`` (version, generation, settings,
BM25 corpus statistics) and ``terms`` (BM25 document frequencies). ``<name>`` is the index
directory's name, so hosts that keep their local caches in different directories of the
same name share one index.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import ConfigError

ROLES = ("chunks", "documents", "sources", "meta", "terms")
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
#: sparse vector dimensions are uint32 in Milvus, the largest one excluded
_SPARSE_DIMS = (1 << 32) - 1


def check_store(store: str, uri: str, prefix: str, stores: tuple[str, ...]) -> tuple[str, str]:
    """The ``store`` (one of ``stores``) and ``milvus_uri`` settings, checked: ``milvus:URI``
    names both."""
    kind, sep, rest = store.strip().partition(":")
    if kind == "milvus" and sep:
        uri = rest.strip()
    store = kind if sep else store.strip()
    if store not in stores:
        raise ConfigError(f"store must be one of {', '.join(stores)}, milvus:URI; got {store!r}")
    if store == "milvus" and not uri:
        raise ConfigError(
            "store milvus needs milvus_uri: a server (http://HOST:19530) or a local "
            "Milvus Lite file (PATH.db); e.g. SNAPRAG_STORE=milvus:./milvus.db"
        )
    if uri:
        check_uri(uri)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", prefix):
        raise ConfigError(
            "milvus_prefix must start with a letter or '_' and hold only letters, digits "
            f"and '_' (at most 64), e.g. 'snaprag_'; got {prefix!r}"
        )
    return store, uri


def check_uri(uri: str) -> None:
    """Refuse a URI that is neither a server address nor a Milvus Lite file."""
    if uri.startswith(_SERVER_SCHEMES):
        return
    if not uri.endswith(".db"):
        raise ConfigError(
            f"milvus_uri {uri!r} is neither a server (http://HOST:19530, https://...) nor a "
            "Milvus Lite file: a local path must end in .db, e.g. ./milvus.db"
        )


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite file (run in this process)."""
    return not uri.startswith(_SERVER_SCHEMES)


def index_name(prefix: str, index_dir: Path) -> str:
    """``<prefix><index directory name>`` with anything Milvus refuses replaced by ``_``."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", Path(index_dir).resolve().name).strip("_") or "index"
    return f"{prefix}{base}"[:200]


def collection(name: str, role: str) -> str:
    return f"{name}_{role}"


def term_id(term: str) -> int:
    """The sparse dimension of a BM25 term (a 32-bit hash; ``terms`` is keyed by it)."""
    # imported here: config.py imports this module, and hashlib loads OpenSSL's libcrypto
    # (~3.5 MiB resident) into every process, Milvus or not
    import hashlib

    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") % _SPARSE_DIMS


def source_id(path: str) -> int:
    """A source's id: a hash of its path, so every host computes the same one."""
    import hashlib  # see term_id

    digest = hashlib.blake2b(path.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # a positive int64


def new_chunk_ids(n: int) -> list[int]:
    """Fresh chunk ids: random positive int64s, never reused (unlike SQLite row ids), so a
    row id fetched after a concurrent write never names another chunk."""
    import secrets  # imports hashlib: see term_id

    return [secrets.randbits(62) + 1 for _ in range(n)]
