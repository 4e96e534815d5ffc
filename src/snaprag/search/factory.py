"""The optional second stage, built by name from the config.

=====================  ==========================================================
``rerank_model``       a cross-encoder (local directory or ``hf:ORG/NAME``)
``rescore_model``      a second bi-encoder (a preset such as ``e5-small``) blended in
neither                no second stage (the default)
=====================  ==========================================================

Construction loads nothing; the model loads on first use or ``warm_up``.
"""

from __future__ import annotations

from ..config import Config
from .base import Reranker


def create_reranker(config: Config) -> Reranker | None:
    if config.rerank_model:
        from .rerank import OnnxCrossEncoder

        return OnnxCrossEncoder(
            config.rerank_model, config.cache_dir, config.quantization, config.effective_threads
        )
    if config.rescore_model:
        from ..embed.factory import create_embedder
        from .rescore import BiEncoderRescorer

        return BiEncoderRescorer(
            create_embedder(config.rescore_model, config), config.rescore_alpha
        )
    return None
