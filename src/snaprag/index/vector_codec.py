"""Compact vector encodings stored per chunk: float16, or int8 with a float32 scale in front."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["decode_vectors", "encode_vector"]


def encode_vector(v: np.ndarray, dtype: str) -> bytes:
    if dtype == "float16":
        return v.astype(np.float16).tobytes()
    scale = float(np.abs(v).max()) / 127.0 or 1.0
    q = np.clip(np.rint(v / scale), -127, 127).astype(np.int8)
    return np.float32(scale).tobytes() + q.tobytes()


def decode_vectors(blobs: Sequence[bytes], dim: int, dtype: str) -> np.ndarray:
    """Decode many stored vectors into one contiguous float32 matrix."""
    n = len(blobs)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    if dtype == "float16":
        return raw.view(np.float16).reshape(n, dim).astype(np.float32)
    rec = raw.reshape(n, 4 + dim)
    scales = rec[:, :4].copy().view(np.float32)
    return rec[:, 4:].view(np.int8).astype(np.float32) * scales
