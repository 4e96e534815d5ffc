"""The embedder contract.

Backends (one file each, built by name in :mod:`snaprag.embed.factory`):
:class:`~snaprag.embed.onnx_embedder.OnnxEmbedder` (int8 ONNX on CPU, the real thing) and
:class:`~snaprag.embed.hashing.HashEmbedder` (a deterministic fake for fast tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(n, dim)``.

    Passages and queries are kept apart because some models prefix them differently.
    Constructors are cheap; the model loads on first use or in ``warm_up`` (exactly once,
    even with many threads asking; safe to call twice). Every method is thread-safe.
    ``fingerprint`` names the model and everything that changes its vectors, without
    loading it (cache keys carry it). Instances pickle without their loaded state, so a
    process pool or a distributed worker can embed with them.
    """

    name: str
    dim: int
    max_tokens: int

    @property
    def fingerprint(self) -> str: ...

    def warm_up(self) -> None: ...
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...
    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...
