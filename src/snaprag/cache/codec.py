"""Compact, binary-safe encodings of cached values (no pickle: L2 and L3 are shared).

A value is one tag byte and a payload:

- ``v``: a float32 vector (query embedding), raw little-endian bytes;
- ``j``: UTF-8 JSON (hits, answers);
- ``z``: zlib-compressed JSON, used when it saves at least a quarter of the bytes.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np

COMPRESS_ABOVE = 1024


class CodecError(ValueError):
    """A cached value that cannot be decoded (damaged, or written by another format)."""


#: decoded JSON (lists, dicts, str, Hit objects) takes about 1.7x its JSON text in memory
JSON_MEMORY_FACTOR = 2
ARRAY_OVERHEAD = 112


def encode(value: Any) -> bytes:
    return encode_sized(value)[0]


def encode_sized(value: Any) -> tuple[bytes, int]:
    """The encoded bytes and about how much memory the decoded value takes."""
    if isinstance(value, np.ndarray):
        raw = np.ascontiguousarray(value, dtype="<f4").tobytes()
        return b"v" + raw, len(raw) + ARRAY_OVERHEAD
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    memory = len(raw) * JSON_MEMORY_FACTOR
    if len(raw) > COMPRESS_ABOVE:
        packed = zlib.compress(raw, 1)
        if len(packed) * 4 < len(raw) * 3:
            return b"z" + packed, memory
    return b"j" + raw, memory


def decode(data: bytes) -> Any:
    return decode_sized(data)[0]


def decode_sized(data: bytes) -> tuple[Any, int]:
    """The value and about how much memory it takes (see :func:`encode_sized`)."""
    if not data:
        raise CodecError("empty cached value")
    tag, payload = data[:1], data[1:]
    try:
        if tag == b"v":
            vec = np.frombuffer(payload, dtype="<f4").astype(np.float32)
            vec.setflags(write=False)
            return vec, vec.nbytes + ARRAY_OVERHEAD
        if tag == b"j":
            return json.loads(payload), len(payload) * JSON_MEMORY_FACTOR
        if tag == b"z":
            raw = zlib.decompress(payload)
            return json.loads(raw), len(raw) * JSON_MEMORY_FACTOR
    except (ValueError, zlib.error) as exc:
        raise CodecError(f"damaged cached value: {exc}") from exc
    raise CodecError(f"unknown cached value tag {tag!r}")
