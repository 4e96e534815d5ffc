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


def encode(value: Any) -> bytes:
    if isinstance(value, np.ndarray):
        return b"v" + np.ascontiguousarray(value, dtype="<f4").tobytes()
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    if len(raw) > COMPRESS_ABOVE:
        packed = zlib.compress(raw, 1)
        if len(packed) * 4 < len(raw) * 3:
            return b"z" + packed
    return b"j" + raw


def decode(data: bytes) -> Any:
    if not data:
        raise CodecError("empty cached value")
    tag, payload = data[:1], data[1:]
    try:
        if tag == b"v":
            vec = np.frombuffer(payload, dtype="<f4").astype(np.float32)
            vec.setflags(write=False)
            return vec
        if tag == b"j":
            return json.loads(payload)
        if tag == b"z":
            return json.loads(zlib.decompress(payload))
    except (ValueError, zlib.error) as exc:
        raise CodecError(f"damaged cached value: {exc}") from exc
    raise CodecError(f"unknown cached value tag {tag!r}")
