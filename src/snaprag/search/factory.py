"""The optional second stage, built by name from the config.

=====================  ==========================================================
``rerank_model``       a cross-encoder (local directory or ``hf:ORG/NAME``)
``rescore_model``      a second bi-encoder (a preset such as ``e5-small``) blended in
neither                no second stage (the default)
=====================  ==========================================================

Construction loads nothing; the model loads on first use or ``warm_up``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Config
from ..embed.base import Embedder
from ..index.base import DocumentStore
from .base import Reranker

if TYPE_CHECKING:
    from ..cache.base import Cache
    from .retriever import Retriever


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


def create_retriever(
    store: DocumentStore,
    embedder: Embedder,
    config: Config,
    cache: Cache | None,
    reranker: Reranker | None,
    vector_index: str | None,
    model: str,
) -> Retriever:
    """The hybrid retriever of an index; with a cache, its query embeddings go through it."""
    from .retriever import Retriever

    dim = int(store.get_meta("dim") or embedder.dim)
    dtype = store.get_meta("vector_dtype") or config.vector_dtype
    # a pair of models (the quality profile): the snapshot splits its vectors in two
    parts = getattr(embedder, "parts", None)
    if cache is not None:
        from ..cache.embedder import CachedQueryEmbedder
        from ..cache.query_cache import code_fingerprint

        fingerprint = f"{embedder.fingerprint}|{code_fingerprint()}"
        embedder = CachedQueryEmbedder(embedder, cache, fingerprint)
    return Retriever(store, embedder, config, dim, dtype, reranker, vector_index, model, parts)
