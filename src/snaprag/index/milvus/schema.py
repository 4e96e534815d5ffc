"""Connecting to Milvus and creating an index's collections.

Every collection is read with ``Strong`` consistency: a search or a version read issued
after a write (by any host) sees it. Milvus wants a vector field in every collection, so
the bookkeeping ones (documents, sources, meta, terms) carry a 2-d ``pad`` vector of zeros.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError, IndexStateError
from .names import collection, is_local

#: longest strings, in bytes (Milvus counts UTF-8 bytes); longer values are cut to fit
TEXT_BYTES = 65535
NAME_BYTES = 4096
KEY_BYTES = 1024
PAD = [0.0, 0.0]
CONSISTENCY = "Strong"


def connect(uri: str, token: str = "") -> Any:
    """A ``MilvusClient`` for ``uri`` (a Milvus Lite ``.db`` path runs in this process)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise ConfigError("the milvus store needs pymilvus: pip install 'snaprag[milvus]'") from exc
    if is_local(uri):
        try:
            import milvus_lite  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"milvus_uri {uri!r} is a local Milvus Lite file, which needs milvus-lite: "
                "pip install 'snaprag[milvus]' (or point milvus_uri at a Milvus server)"
            ) from exc
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    try:
        return MilvusClient(uri=uri, token=token)
    except Exception as exc:  # pymilvus raises its own errors, and ConnectionError
        hint = (
            "Milvus Lite opens a file in one process only: to share it, run "
            f"'milvus-lite server --data-dir {uri} --port 19530' and set "
            "milvus_uri=http://127.0.0.1:19530"
            if is_local(uri)
            else "check that the server runs and milvus_uri / milvus_token are right"
        )
        raise IndexStateError(f"cannot open Milvus at {uri}: {exc}; {hint}") from exc


def fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def exists(client: Any, name: str) -> bool:
    return bool(client.has_collection(collection(name, "meta")))


def _schema(client: Any, *fields: tuple[str, Any, dict[str, Any]]) -> Any:
    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for i, (field, dtype, params) in enumerate(fields):
        s.add_field(field, dtype, is_primary=i == 0, **params)
    return s


def create(client: Any, name: str) -> None:
    """Create whichever bookkeeping collections of index ``name`` are missing (the chunks
    collection waits for the model's dimension: :func:`create_chunks`)."""
    from pymilvus import DataType

    def schema(*fields: tuple[str, Any, dict[str, Any]]) -> Any:
        return _schema(client, *fields)

    varchar = DataType.VARCHAR
    text = {"max_length": TEXT_BYTES}
    named = {"max_length": NAME_BYTES}
    key = {"max_length": KEY_BYTES}
    pad = ("pad", DataType.FLOAT_VECTOR, {"dim": 2})
    bookkeeping = {
        "documents": schema(
            ("doc_id", varchar, key),
            ("source_id", DataType.INT64, {}),
            ("source", varchar, named),
            ("title", varchar, named),
            ("type", varchar, key),
            ("doc_hash", varchar, key),
            ("n_chars", DataType.INT64, {}),
            pad,
        ),
        "sources": schema(
            ("path", varchar, named),
            ("id", DataType.INT64, {}),
            ("type", varchar, key),
            ("content_hash", varchar, key),  # "" while a source is only partly ingested
            ("size", DataType.INT64, {}),
            ("mtime", DataType.DOUBLE, {}),
            ("ingested_at", DataType.DOUBLE, {}),
            pad,
        ),
        "meta": schema(("key", varchar, key), ("value", varchar, text), pad),
        "terms": schema(("tid", DataType.INT64, {}), ("df", DataType.INT64, {}), pad),
    }
    for role, s in bookkeeping.items():
        if not client.has_collection(collection(name, role)):
            index = client.prepare_index_params()
            index.add_index("pad", index_type="FLAT", metric_type="L2")
            client.create_collection(
                collection(name, role), schema=s, index_params=index, consistency_level=CONSISTENCY
            )


def create_chunks(client: Any, name: str, dim: int, local: bool) -> None:
    """Create the chunks collection of index ``name`` for ``dim``-d vectors."""
    from pymilvus import DataType

    varchar = DataType.VARCHAR
    text = {"max_length": TEXT_BYTES}
    named = {"max_length": NAME_BYTES}
    key = {"max_length": KEY_BYTES}
    chunks = _schema(
        client,
        ("id", DataType.INT64, {}),
        ("doc_id", varchar, key),
        ("source_id", DataType.INT64, {}),
        ("type", varchar, key),  # the document's (filters read it here)
        ("seq", DataType.INT64, {}),
        ("text", varchar, text),
        ("page", DataType.INT64, {}),  # -1: no page
        ("char_start", DataType.INT64, {}),
        ("char_end", DataType.INT64, {}),
        ("section", varchar, named),
        ("tokens", varchar, text),  # BM25 terms, space separated
        ("avgdl", DataType.FLOAT, {}),  # the mean length its BM25 weights were made with
        ("vector", DataType.FLOAT_VECTOR, {"dim": dim}),
        ("sparse", DataType.SPARSE_FLOAT_VECTOR, {}),
    )
    index = client.prepare_index_params()
    # exact search in Milvus Lite (the embedded default's results); a server picks its own
    # index (AUTOINDEX: HNSW or what the deployment is configured with)
    index.add_index("vector", index_type="FLAT" if local else "AUTOINDEX", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(
        collection(name, "chunks"), schema=chunks, index_params=index, consistency_level=CONSISTENCY
    )


def chunks_dim(client: Any, name: str) -> int | None:
    """The vector dimension of index ``name``'s chunks collection (None: not made yet)."""
    target = collection(name, "chunks")
    if not client.has_collection(target):
        return None
    for field in client.describe_collection(target)["fields"]:
        if field["name"] == "vector":
            return int(field["params"]["dim"])
    return None


def drop(client: Any, name: str) -> None:
    """Drop every collection of index ``name`` (tests, and starting over)."""
    from .names import ROLES

    for role in ROLES:
        if client.has_collection(collection(name, role)):
            client.drop_collection(collection(name, role))
