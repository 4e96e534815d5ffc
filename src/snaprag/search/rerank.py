"""Second-stage reranking with a cross-encoder, int8 ONNX on CPU.

A cross-encoder reads the query and one passage together and returns a relevance logit;
it is far more accurate than comparing two embeddings, and far slower, so it rescores
only the first hits of a retrieval. Where its model comes from and how it is converted:
:mod:`snaprag.embed.cross_encoders`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.cross_encoders import QUANTIZATIONS, ResolvedCrossEncoder, resolve_cross_encoder
from ..embed.models import files_identity
from ..embed.onnx_base import OnnxModel
from ..errors import ConfigError, ModelError
from ..system import available_memory
from ..types import Hit

MAX_AUTO_BATCH = 64
#: share of the available memory that one automatically sized batch may use
MEMORY_SHARE = 0.10


class OnnxCrossEncoder(OnnxModel):
    """Scores (query, passage) pairs with a cross-encoder and reorders hits by that score.

    The constructor only records settings; the model is resolved (converted once and
    cached), and the ONNX session created, on first use or on :meth:`warm_up`.

    ``batch_size=None`` sizes each batch from the memory available at the time and the
    padded length of the batch (see :meth:`batch_size_for`). ``max_tokens`` bounds a
    pair's length; passages are truncated to fit, and a query longer than half of it is
    cut to half.
    """

    def __init__(
        self,
        spec: str,
        cache_dir: Path,
        quantization: str = "int8",
        threads: int = 1,
        batch_size: int | None = None,
        max_tokens: int = 512,
    ) -> None:
        if quantization not in QUANTIZATIONS:
            raise ConfigError(
                f"quantization {quantization!r} is not one of {', '.join(QUANTIZATIONS)}"
            )
        if batch_size is not None and batch_size < 1:
            raise ConfigError(
                f"batch_size must be at least 1 or None (automatic), not {batch_size}"
            )
        if max_tokens < 8:
            raise ConfigError(f"max_tokens must be at least 8, not {max_tokens}")
        super().__init__(spec, cache_dir, quantization, threads)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._fallback_tokenizer: Any = None
        self._input_names: set[str] = set()
        self._output_name = ""

    def _resolve(self) -> ResolvedCrossEncoder:
        return resolve_cross_encoder(self.spec, self.cache_dir, self.quantization)

    @property
    def fingerprint(self) -> str:
        ident = [f"xenc:{self.spec}", self.quantization, str(self.max_tokens)]
        return "|".join([*ident, *files_identity(self.spec)])

    @property
    def pair_limit(self) -> int:
        """Tokens per pair, special tokens included: ``max_tokens`` within the model's range."""
        positions = self.model.max_positions
        return min(self.max_tokens, positions) if positions > 0 else self.max_tokens

    def _read_tokenizer(self) -> Any:
        # only_second keeps the whole query and cuts the passage; the fallback cuts both
        self._fallback_tokenizer = self._truncating_tokenizer("longest_first")
        return self._truncating_tokenizer("only_second")

    def _truncating_tokenizer(self, strategy: str) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.model.tokenizer_path))
        tok.no_padding()
        tok.enable_truncation(self.pair_limit, strategy=strategy)
        return tok

    def _create_session(self) -> Any:
        try:
            return super()._create_session()
        except Exception as exc:  # onnxruntime raises its own classes
            raise ModelError(
                f"cannot load the cross-encoder {self.model.onnx_path}: {exc}"
            ) from exc

    def _on_session(self, session: Any) -> None:
        self._input_names = {i.name for i in session.get_inputs()}
        missing = ", ".join(sorted({"input_ids", "attention_mask"} - self._input_names))
        if missing:
            raise ModelError(
                f"{self.model.onnx_path} lacks the input(s) {missing}; a cross-encoder needs "
                "input_ids and attention_mask (and token_type_ids for BERT)"
            )
        self._output_name = session.get_outputs()[0].name

    def warm_up(self) -> None:
        """Load the model now and score one tiny pair so the first request is fast."""
        self._get_session()
        self.score("warm up", ["warm up"])

    # ------------------------------------------------------------------ batch sizing
    def bytes_per_pair(self, seq_len: int) -> int:
        """Estimated peak inference memory of one pair of ``seq_len`` tokens.

        ONNX Runtime frees a layer's intermediates once the next layer has consumed them,
        so the peak is one layer's working set (attention scores and their softmax,
        ``seq^2 * heads`` floats each; query/key/value, context, feed-forward and residual
        activations) plus the layer outputs. For a MiniLM-L6-sized model at 512 tokens the
        measured peak was about 0.8x this estimate with int8 and 0.5x with fp32.
        """
        m = self.model
        s = max(1, int(seq_len))
        attention = 2 * s * s * m.heads * 4
        activations = s * (6 * m.hidden + 2 * m.intermediate) * 4
        outputs = m.layers * s * m.hidden * 4
        return attention + activations + outputs

    def batch_size_for(self, seq_len: int, available: int | None = None) -> int:
        """Pairs per batch when the longest pair has ``seq_len`` tokens.

        The fixed ``batch_size`` if one was given; otherwise as many pairs as fit in
        :data:`MEMORY_SHARE` of ``available`` bytes (default: :func:`available_memory`),
        clamped to ``[1, MAX_AUTO_BATCH]``.
        """
        if self.batch_size is not None:
            return self.batch_size
        if available is None:
            available = available_memory()
        fits = int(available * MEMORY_SHARE) // self.bytes_per_pair(seq_len)
        return max(1, min(MAX_AUTO_BATCH, fits))

    # ------------------------------------------------------------------ scoring
    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance score per passage (the model's logit; higher is more relevant).

        For two-label models the score is the logit of the positive (second) class.
        """
        out = np.zeros(len(passages), dtype=np.float32)
        if not passages:
            return out
        session = self._get_session()
        encodings = self._encode(query, passages)
        lengths = [len(e.ids) for e in encodings]
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = np.argsort(lengths, kind="stable")
        available = available_memory() if self.batch_size is None else None
        start = 0
        while start < len(order):
            n = min(self.batch_size_for(lengths[order[start]], available), len(order) - start)
            # ascending lengths: the batch's last pair sets its padded width
            n = min(n, self.batch_size_for(lengths[order[start + n - 1]], available))
            rows = order[start : start + n]
            width = lengths[rows[-1]]
            input_ids = np.zeros((n, width), dtype=np.int64)
            types = np.zeros((n, width), dtype=np.int64)
            mask = np.zeros((n, width), dtype=np.int64)
            for j, r in enumerate(rows):
                enc = encodings[r]
                input_ids[j, : lengths[r]] = enc.ids
                types[j, : lengths[r]] = enc.type_ids
                mask[j, : lengths[r]] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = types
            logits = session.run([self._output_name], feed)[0]
            out[rows] = self._relevance(np.asarray(logits, dtype=np.float32), n)
            start += n
        return out

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int | None = None) -> list[Hit]:
        """The first ``top_n`` hits (all when None) rescored and sorted, then the rest.

        Rescored hits carry the cross-encoder score and are ordered by it, highest first;
        equal scores keep their original order. Hits beyond ``top_n`` follow unchanged,
        in their original order and with their original scores.
        """
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be None or at least 0, not {top_n}")
        head = list(hits if top_n is None else hits[:top_n])
        tail = list(hits[len(head) :])
        if not head:
            return tail
        scores = self.score(query, [h.text for h in head])
        order = np.argsort(-scores, kind="stable")  # stable: ties keep the original order
        rescored = [dataclasses.replace(head[i], score=float(scores[i])) for i in order]
        return rescored + tail

    # ------------------------------------------------------------------ helpers
    def _encode(self, query: str, passages: Sequence[str]) -> list[Any]:
        tok = self.tokenizer
        query = self._fit_query(query)
        pairs = [(query, p) for p in passages]
        try:
            return tok.encode_batch(pairs)
        except Exception:
            # only_second cannot help when the query alone fills the pair (a tokenizer
            # that splits far more than its offsets suggest); cut both sides instead
            return self._fallback_tokenizer.encode_batch(pairs)

    def _fit_query(self, query: str) -> str:
        """``query`` cut to at most half of the pair budget, so passages keep room."""
        processor = self.tokenizer.post_processor  # loads the fallback tokenizer too
        specials = processor.num_special_tokens_to_add(True) if processor is not None else 0
        keep = max(1, (self.pair_limit - specials) // 2)
        # only_second truncation rejects a lone sequence that is too long; longest_first
        # cuts it to the pair limit, which is more than the half kept here
        offsets = self._fallback_tokenizer.encode(query, add_special_tokens=False).offsets
        if len(offsets) <= keep:
            return query
        return query[: offsets[keep - 1][1]]

    def _relevance(self, logits: np.ndarray, n: int) -> np.ndarray:
        logits = logits.reshape(n, -1)
        if logits.shape[1] == 1:
            return logits[:, 0]
        if logits.shape[1] == 2:
            return logits[:, 1]
        raise ModelError(
            f"{self.model.name}: the model returns {logits.shape[1]} logits per pair; a "
            "relevance cross-encoder returns one (a score) or two (not relevant, relevant)"
        )
