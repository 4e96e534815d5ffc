"""The embedder contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(n, dim)``.

    Passages and queries are kept apart because some models prefix them differently.
    Constructors are cheap; ``warm_up`` loads the model so a first request does not pay.
    """

    name: str
    dim: int
    max_tokens: int

    def warm_up(self) -> None: ...
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...
    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...
