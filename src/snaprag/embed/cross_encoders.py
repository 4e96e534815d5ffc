"""Cross-encoder models: where they come from and their conversion to int8 ONNX.

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

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError
from ..fs import atomic_write_text
from .models import hub_snapshot, locked, quantize_int8, save_onnx

CROSS_ENCODER_FORMAT = 1  # bump when the graph builder changes, to reconvert cached models
QUANTIZATIONS = ("fp32", "int8")
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
        src = hub_snapshot(repo, cache_dir)
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
        with locked(out.parent / f"{key}.lock"):
            if _read_cached(out, quantization) is None:  # not done meanwhile by another process
                out.mkdir(parents=True, exist_ok=True)
                for stale in out.glob("*.tmp*"):  # left by a killed conversion
                    stale.unlink(missing_ok=True)
                fp32 = out / "model-fp32.onnx"
                # converted for someone who uses fp32: leave it in place
                kept = fp32.exists() and (out / "meta.json").exists()
                if not kept:
                    _convert(name, src, config, out)
                if quantization == "int8":
                    quantize_int8(fp32, out / "model-int8.onnx")
                    if not kept:  # rebuilt from the weights if fp32 is ever asked for
                        fp32.unlink()
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
    save_onnx(model, out / "model-fp32.onnx")
    del model, weights
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tok["truncation"] = None  # set per use: only_second to the pair budget
    tok["padding"] = None
    atomic_write_text(out / "tokenizer.json", json.dumps(tok, ensure_ascii=False))
    meta = {"name": name, "num_labels": num_labels, "format": CROSS_ENCODER_FORMAT}
    meta.update(_dims(config))
    atomic_write_text(out / "meta.json", json.dumps(meta))
