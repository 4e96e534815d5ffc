"""ONNX Runtime sentence embedder: lazy session, length-sorted batches, int8 by default."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .models import MODEL_FORMAT, ResolvedModel, canonical_name, files_identity, resolve_model
from .onnx_base import OnnxModel


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
        """Load the model now and run one tiny batch so the first request is fast."""
        self._get_session()
        self.embed_queries(["warm up"])

    # ------------------------------------------------------------------ embedding
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([self.model.passage_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors that do not depend on which other queries share the call.

        Dynamic int8 quantization takes one activation scale per tensor, so a query's
        vector changes with the batch it is embedded in (and with its padding): on SciFact,
        batches of 16 changed 229 of 300 hybrid top-10 lists. A query must get the same
        hits alone or micro-batched with others, so int8 queries run one at a time (the
        batch gained only ~10 % per query on 2 cores); fp32 runs them as one batch.
        """
        prefixed = [self.model.query_prefix + t for t in texts]
        if not self.batch_invariant and len(prefixed) > 1:
            out = np.zeros((len(prefixed), self.dim), dtype=np.float32)
            for i, text in enumerate(prefixed):
                out[i] = self._embed([text])[0]
            return out
        return self._embed(prefixed)

    @property
    def batch_invariant(self) -> bool:
        """Whether a batch gives every text the vector it gets alone (fp32 does)."""
        return self.quantization == "fp32"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of ``text`` (no special tokens)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        session = self._get_session()
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
