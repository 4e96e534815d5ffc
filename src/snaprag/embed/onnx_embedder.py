"""ONNX Runtime sentence embedder: lazy session, length-sorted batches, int8 by default.

Passages and queries run on different sessions of the same model file:

* passages (ingest: large batches of long texts) on a session with ``threads`` intra-op
  threads, which split each large matrix product;
* queries (a few dozen tokens each) on a session with one thread, the query of each call
  on its own worker thread. Splitting a short query's products over two threads bought
  nothing measurable on 2 cores (1.64-1.72 vs 1.62-1.75 ms per SciFact query) and cost 40 %
  more CPU in waking and waiting threads; the queries of a micro-batch instead run side by
  side, one per core (1.0 vs 1.9 ms per query for a batch of 16). A session's output does
  not depend on its thread count (identical vectors, checked by the tests), so a query gets
  the same vector alone or in a batch, on either session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .models import (
    MODEL_FORMAT,
    ResolvedModel,
    canonical_name,
    cpu_session,
    files_identity,
    resolve_model,
)
from .onnx_base import OnnxModel

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


class OnnxEmbedder(OnnxModel):
    """Embeds texts with an ONNX encoder that outputs normalised sentence vectors.

    The constructor only records settings; the model is resolved (converted once and
    cached), and the ONNX session created, on first use or on :meth:`warm_up`.
    """

    def __init__(
        self,
        spec: str,
        cache_dir: Path,
        quantization: str = "int8",
        threads: int = 1,
        batch_size: int = 32,
        low_memory: bool = False,
    ) -> None:
        super().__init__(spec, cache_dir, quantization, threads, low_memory)
        self.batch_size = batch_size
        self._input_names: set[str] = set()
        self._query_session: Any = None
        self._pool: ThreadPoolExecutor | None = None

    def _resolve(self) -> ResolvedModel:
        return resolve_model(self.spec, self.cache_dir, self.quantization)

    def _on_session(self, session: Any) -> None:
        self._input_names = {i.name for i in session.get_inputs()}

    @property
    def fingerprint(self) -> str:
        """The model's identity without loading it: spec, graph format, quantization and,
        for a local directory, its files."""
        parts = [canonical_name(self.spec), str(MODEL_FORMAT), self.quantization]
        return "|".join([*parts, *files_identity(self.spec)])

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def max_tokens(self) -> int:
        return self.model.max_tokens

    def warm_up(self) -> None:
        """Load the query session now and run one query so the first request is fast (the
        passage session loads when passages are first embedded)."""
        self.embed_queries(["warm up"])

    # ------------------------------------------------------------------ query sessions
    def _get_query_session(self) -> Any:
        """The one-thread session for queries (the passage session itself when that has
        one thread)."""
        if self.threads <= 1:
            return self._get_session()
        if self._query_session is None:
            with self._lock:
                if self._query_session is None:
                    session = cpu_session(self.model.onnx_path, 1, self.low_memory)
                    self._query_session = self._loaded(session)
        return self._query_session

    def _query_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    # imported on first use: one thread (the edge profile) never needs it
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(
                        max_workers=self.threads, thread_name_prefix="snaprag-query"
                    )
        return self._pool

    @property
    def loaded(self) -> bool:
        return self._session is not None or self._query_session is not None

    def close(self) -> None:
        """Stop the query workers (a call still running finishes; a later call embeds its
        queries one after another, or starts new workers if used again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_query_session=None, _pool=None)
        return state

    # ------------------------------------------------------------------ embedding
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([self.model.passage_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors that do not depend on which other queries share the call.

        Dynamic int8 quantization takes one activation scale per tensor, so a query's
        vector changes with the batch it is embedded in (and with its padding): on SciFact,
        batches of 16 changed 229 of 300 hybrid top-10 lists. A query must get the same
        hits alone or micro-batched with others, so each query runs alone on the one-thread
        query session, the queries of one call side by side on ``threads`` worker threads
        (a padded int8 batch saved no CPU per query on 2 cores).
        """
        prefixed = [self.model.query_prefix + t for t in texts]
        session = self._get_query_session()

        def one(text: str) -> np.ndarray:
            return self._embed([text], session)[0]

        out = np.zeros((len(prefixed), self.dim), dtype=np.float32)
        rows: Any = map(one, prefixed)
        if len(prefixed) > 1 and self.threads > 1:
            try:
                rows = self._query_pool().map(one, prefixed)
            except RuntimeError:  # closed by another thread meanwhile: one after another
                rows = map(one, prefixed)
        for i, row in enumerate(rows):
            out[i] = row
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of ``text`` (no special tokens)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    def _embed(self, texts: list[str], session: Any = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        session = session if session is not None else self._get_session()
        limit = self.max_tokens
        encs = self.tokenizer.encode_batch(texts)
        ids = [e.ids if len(e.ids) <= limit else e.ids[: limit - 1] + e.ids[-1:] for e in encs]
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(ids[r]) for r in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                seq = ids[r]
                input_ids[j, : len(seq)] = seq
                mask[j, : len(seq)] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            vectors = session.run(None, feed)[0]
            if vectors.ndim == 3:  # a plain encoder export: token states, pool them here
                m = mask[:, :, None].astype(np.float32)
                vectors = (vectors * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            out[rows] = vectors
        return out
