"""Second-stage reranking with a cross-encoder, int8 ONNX on CPU.

A cross-encoder reads the query and one passage together and returns a relevance logit;
it is far more accurate than comparing two embeddings, and far slower, so it rescores
only the first hits of a retrieval.

No PyPI package ships cross-encoder weights, so the model is always the user's:

* ``hf:ORG/NAME``: a Hugging Face hub model such as
  ``hf:cross-encoder/ms-marco-MiniLM-L-6-v2`` (needs ``pip install 'snaprag[hub]'`` and
  internet on first use);
* a local directory of a ``BertForSequenceClassification`` checkpoint: ``config.json``,
  ``tokenizer.json`` and ``model.safetensors``;
* a local directory with a ready ``model.onnx`` and ``tokenizer.json``, used as is (no
  conversion, no quantization): the way to bring non-BERT models (XLM-R, ELECTRA...).
  Its inputs are fed by name (``input_ids``, ``attention_mask``, ``token_type_ids`` where
  present); its first output holds the logits.

BERT checkpoints are converted once into ``<cache_dir>/models/xenc-<name>-<digest>/``
(``model-fp32.onnx``, ``model-int8.onnx`` with per-channel dynamic quantization,
``tokenizer.json``, ``meta.json``), written atomically under a file lock so that
concurrent first runs convert once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.models import (
    _atomic_save,
    _atomic_write,
    _hub_snapshot,
    _locked,
    cpu_session,
    quantize_int8,
)
from ..errors import ConfigError, ModelError
from ..types import Hit

CROSS_ENCODER_FORMAT = 1  # bump when the graph builder changes, to reconvert cached models
QUANTIZATIONS = ("fp32", "int8")
MAX_AUTO_BATCH = 64
#: share of the available memory that one automatically sized batch may use
MEMORY_SHARE = 0.10
_EXPECTED = (
    "expected 'hf:ORG/NAME' or a local directory holding config.json, tokenizer.json and "
    "model.safetensors of a BERT cross-encoder (BertForSequenceClassification), or a ready "
    "model.onnx next to tokenizer.json"
)
# Sizes assumed for a ready model.onnx without a config.json: those of BERT-base, so that
# the automatic batch size errs on the small side.
_DEFAULT_DIMS = {"hidden": 768, "heads": 12, "layers": 12, "intermediate": 3072}


@dataclass(frozen=True)
class ResolvedCrossEncoder:
    """A cross-encoder ready to load: its ONNX file, tokenizer and sizes."""

    name: str
    onnx_path: Path
    tokenizer_path: Path
    hidden: int
    heads: int
    layers: int
    intermediate: int
    max_positions: int  # 0 where unknown
    converted: bool  # False: a ready model.onnx used as is


# --------------------------------------------------------------------------- memory


def available_memory() -> int:
    """Bytes of memory this process can still use: ``MemAvailable``, capped by a cgroup."""
    avail: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            avail = 1 << 30
    headroom = _cgroup_headroom()
    return max(0, min(avail, headroom) if headroom is not None else avail)


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this container's memory cgroup (v2, then v1); None if unlimited."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as ~2**63
            return None
        return int(limit) - usage
    return None


# --------------------------------------------------------------------------- reranker


class OnnxCrossEncoder:
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
        self.spec = spec
        self.cache_dir = Path(cache_dir)
        self.quantization = quantization
        self.threads = threads
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model: ResolvedCrossEncoder | None = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._fallback_tokenizer: Any = None
        self._input_names: set[str] = set()
        self._output_name = ""
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lazy state
    @property
    def model(self) -> ResolvedCrossEncoder:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = resolve_cross_encoder(
                        self.spec, self.cache_dir, self.quantization
                    )
        return self._model

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def pair_limit(self) -> int:
        """Tokens per pair, special tokens included: ``max_tokens`` within the model's range."""
        positions = self.model.max_positions
        return min(self.max_tokens, positions) if positions > 0 else self.max_tokens

    @property
    def tokenizer(self) -> Any:  # tokenizers.Tokenizer
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._fallback_tokenizer = self._load_tokenizer("longest_first")
                    self._tokenizer = self._load_tokenizer("only_second")
        return self._tokenizer

    def _load_tokenizer(self, strategy: str) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.model.tokenizer_path))
        tok.no_padding()
        tok.enable_truncation(self.pair_limit, strategy=strategy)
        return tok

    def _get_session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    try:
                        session = cpu_session(self.model.onnx_path, self.threads)
                    except Exception as exc:  # onnxruntime raises its own classes
                        raise ModelError(
                            f"cannot load the cross-encoder {self.model.onnx_path}: {exc}"
                        ) from exc
                    self._input_names = {i.name for i in session.get_inputs()}
                    missing = ", ".join(sorted({"input_ids", "attention_mask"} - self._input_names))
                    if missing:
                        raise ModelError(
                            f"{self.model.onnx_path} lacks the input(s) {missing}; a "
                            "cross-encoder needs input_ids and attention_mask "
                            "(and token_type_ids for BERT)"
                        )
                    self._output_name = session.get_outputs()[0].name
                    self._session = session
        return self._session

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


# --------------------------------------------------------------------------- resolution


def resolve_cross_encoder(
    spec: str, cache_dir: Path, quantization: str = "int8"
) -> ResolvedCrossEncoder:
    """Find or build the ONNX model of a cross-encoder ``spec``; converts on first use only."""
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"quantization {quantization!r} is not one of {', '.join(QUANTIZATIONS)}")
    cache_dir = Path(cache_dir)
    key: str | None = None
    if spec.startswith("hf:"):
        repo = spec[3:]
        name = repo.rsplit("/", 1)[-1]
        key = _cache_key(name, spec)
        cached = _read_cached(cache_dir / "models" / key, quantization)
        if cached is not None:  # converted before: no need to reach the hub
            return cached
        src = _hub_snapshot(repo, cache_dir)
    else:
        src = Path(spec).expanduser()
        if not src.is_dir():
            raise ModelError(f"cross-encoder model {spec!r} not found: {_EXPECTED}")
        src = src.resolve()
        name = src.name

    config_path, tok_path = src / "config.json", src / "tokenizer.json"
    config = _read_config(config_path) if config_path.exists() else {}
    if (src / "model.onnx").exists() and tok_path.exists():
        return _as_is(name, src / "model.onnx", tok_path, config)
    convertible = config.get("model_type") in (None, "bert")
    weights_path = src / "model.safetensors"
    can_convert = convertible and config_path.exists() and weights_path.exists()
    if not can_convert and (src / "onnx" / "model.onnx").exists() and tok_path.exists():
        return _as_is(name, src / "onnx" / "model.onnx", tok_path, config)  # hub export layout
    if not convertible:
        raise ModelError(
            f"{src}: model_type {config['model_type']!r} cannot be converted; only BERT "
            "cross-encoders (BertForSequenceClassification) can. Export the model to ONNX "
            "(inputs input_ids, attention_mask[, token_type_ids]; first output the logits) "
            "and put it in the directory as model.onnx"
        )
    missing = [p.name for p in (config_path, tok_path, weights_path) if not p.exists()]
    if missing:
        raise ModelError(
            f"{src} is not a usable cross-encoder directory: no {', '.join(missing)}; {_EXPECTED}"
        )
    if key is None:
        stamp = ";".join(
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in (config_path, weights_path)
        )
        key = _cache_key(src.name, f"{src}|{stamp}")
    return _ensure_converted(key, name, src, config, cache_dir, quantization)


def _cache_key(name: str, identity: str) -> str:
    digest = hashlib.sha1(f"{CROSS_ENCODER_FORMAT}|{identity}".encode()).hexdigest()[:10]
    return f"xenc-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{digest}"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{path} is not a JSON object")
    return config


def _dims(config: dict[str, Any]) -> dict[str, int]:
    hidden = int(config.get("hidden_size", _DEFAULT_DIMS["hidden"]))
    return {
        "hidden": hidden,
        "heads": int(config.get("num_attention_heads", _DEFAULT_DIMS["heads"])),
        "layers": int(config.get("num_hidden_layers", _DEFAULT_DIMS["layers"])),
        "intermediate": int(config.get("intermediate_size", 4 * hidden)),
        "max_positions": int(config.get("max_position_embeddings", 0)),
    }


def _as_is(
    name: str, onnx_path: Path, tok_path: Path, config: dict[str, Any]
) -> ResolvedCrossEncoder:
    return ResolvedCrossEncoder(
        name=name, onnx_path=onnx_path, tokenizer_path=tok_path, converted=False, **_dims(config)
    )


def _read_cached(out: Path, quantization: str) -> ResolvedCrossEncoder | None:
    onnx_path, meta_path = out / f"model-{quantization}.onnx", out / "meta.json"
    if not (onnx_path.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    return ResolvedCrossEncoder(
        name=meta["name"],
        onnx_path=onnx_path,
        tokenizer_path=out / "tokenizer.json",
        converted=True,
        **{k: int(meta[k]) for k in ("hidden", "heads", "layers", "intermediate", "max_positions")},
    )


def _ensure_converted(
    key: str, name: str, src: Path, config: dict[str, Any], cache_dir: Path, quantization: str
) -> ResolvedCrossEncoder:
    out = cache_dir / "models" / key
    resolved = _read_cached(out, quantization)
    if resolved is not None:
        return resolved
    try:
        with _locked(out.parent / f"{key}.lock"):
            if _read_cached(out, quantization) is None:  # not done meanwhile by another process
                out.mkdir(parents=True, exist_ok=True)
                for stale in out.glob("*.tmp*"):  # left by a killed conversion
                    stale.unlink(missing_ok=True)
                fp32 = out / "model-fp32.onnx"
                if not (fp32.exists() and (out / "meta.json").exists()):
                    _convert(name, src, config, out)
                if quantization == "int8":
                    quantize_int8(fp32, out / "model-int8.onnx")
    except OSError as exc:
        raise ModelError(
            f"cannot write the converted cross-encoder under {out}: {exc.strerror or exc}; "
            "free some space or point the cache directory somewhere writable"
        ) from exc
    resolved = _read_cached(out, quantization)
    if resolved is None:  # pragma: no cover - the conversion above writes both files
        raise ModelError(f"converting {src} left no model-{quantization}.onnx in {out}")
    return resolved


def _convert(name: str, src: Path, config: dict[str, Any], out: Path) -> None:
    from safetensors.numpy import load_file

    from ..embed.cross_encoder_graph import build_bert_cross_encoder, normalize_bert_weights

    try:
        weights = normalize_bert_weights(load_file(str(src / "model.safetensors")))
    except Exception as exc:  # safetensors raises its own error class on corrupt files
        raise ModelError(f"cannot read {src / 'model.safetensors'}: {exc}") from exc
    if "classifier.weight" not in weights:
        raise ModelError(
            f"{src}: the checkpoint has no classifier weights; expected a cross-encoder "
            "(BertForSequenceClassification), not a plain encoder such as BertModel"
        )
    num_labels = int(weights["classifier.weight"].shape[0])
    if num_labels not in (1, 2):
        raise ModelError(
            f"{src}: the classifier has {num_labels} labels; a relevance cross-encoder has "
            "one (a score) or two (not relevant, relevant)"
        )
    try:
        model = build_bert_cross_encoder(weights, config)
    except KeyError as exc:
        raise ModelError(
            f"{src}: tensor {exc.args[0]!r} is missing from model.safetensors, or config.json "
            "lacks that setting; expected a BertForSequenceClassification checkpoint"
        ) from exc
    _atomic_save(model, out / "model-fp32.onnx")
    del model, weights
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tok["truncation"] = None  # set per use: only_second to the pair budget
    tok["padding"] = None
    _atomic_write(out / "tokenizer.json", json.dumps(tok, ensure_ascii=False))
    meta = {"name": name, "num_labels": num_labels, "format": CROSS_ENCODER_FORMAT}
    meta.update(_dims(config))
    _atomic_write(out / "meta.json", json.dumps(meta))
