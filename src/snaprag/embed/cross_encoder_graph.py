"""Build an ONNX graph of a BERT cross-encoder (``BertForSequenceClassification``).

A cross-encoder reads a (query, passage) pair as one sequence, ``[CLS] query [SEP] passage
[SEP]``, and returns relevance logits. The encoder layers are those of
:mod:`snaprag.embed.onnx_graph`; what differs is around them:

* token-type embeddings are looked up from the ``token_type_ids`` input (segment A = the
  query, B = the passage), where the sentence encoder adds row 0 everywhere;
* the head is BERT's pooler (``dense`` + ``tanh`` on the first token) followed by the
  ``classifier`` Linear layer, instead of mean pooling.

Inputs: ``input_ids``, ``attention_mask``, ``token_type_ids``, all ``int64[batch, seq]``.
Output: ``logits`` ``float32[batch, num_labels]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnx_graph import GraphBuilder, fused_layers, plain_layers


def normalize_bert_weights(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hugging Face names without the ``bert.`` prefix; old ``gamma``/``beta`` renamed."""
    out: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        name = key.removeprefix("bert.")
        if name.endswith(".gamma"):
            name = name[: -len(".gamma")] + ".weight"
        elif name.endswith(".beta"):
            name = name[: -len(".beta")] + ".bias"
        out[name] = value
    return out


def build_bert_cross_encoder(
    weights: Mapping[str, np.ndarray], config: Mapping[str, Any], fused: bool = True
) -> onnx.ModelProto:
    """Return an ONNX model computing the classification logits of sentence pairs.

    ``weights`` are the tensors of a ``BertForSequenceClassification`` checkpoint (names
    with or without the ``bert.`` prefix), ``config`` its ``config.json``. ``fused`` picks
    ONNX Runtime's contrib ``Attention`` operator (faster on CPU, and quantized to
    ``QAttention`` by the int8 quantizer) over standard operators only.

    Raises ``KeyError`` naming the first missing tensor if the checkpoint lacks one.
    """
    w = normalize_bert_weights(weights)
    for name in ("pooler.dense.weight", "pooler.dense.bias", "classifier.weight"):
        if name not in w:
            raise KeyError(name)
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    act = str(config.get("hidden_act", "gelu"))
    num_labels = int(w["classifier.weight"].shape[0])
    cls_bias = w.get("classifier.bias", np.zeros(num_labels, np.float32))

    g = GraphBuilder()
    x = _pair_embeddings(g, w, eps, int(config.get("position_offset", 0)))
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    if fused:
        x = fused_layers(g, w, x, layers, heads, eps, act)
    else:
        x = plain_layers(g, w, x, maskf, layers, heads, hidden, eps, act)

    # --- pooler: tanh(dense(first token)), then the classifier
    first = g.op("Gather", [x, g.const("first_token", np.array(0, np.int64))], axis=1)
    pooled = g.op(
        "Tanh", [g.linear(first, w["pooler.dense.weight"], w["pooler.dense.bias"], "pooler.dense")]
    )
    cls_w = g.const(
        "classifier.weight_t", np.ascontiguousarray(w["classifier.weight"].T, np.float32)
    )
    cls_b = g.const("classifier.bias", np.asarray(cls_bias, np.float32))
    g.nodes.append(
        helper.make_node(
            "Add", [g.op("MatMul", [pooled, cls_w]), cls_b], ["logits"], name="classifier"
        )
    )

    return g.model(
        "cross_encoder", ["input_ids", "attention_mask", "token_type_ids"], "logits", num_labels
    )


def _pair_embeddings(
    g: GraphBuilder, w: Mapping[str, np.ndarray], eps: float, pos_offset: int
) -> str:
    """LayerNorm(word + position + token type), token types taken from the input."""

    def table(name: str) -> str:
        return g.const(name, np.asarray(w[f"embeddings.{name}.weight"], np.float32))

    word = g.op("Gather", [table("word_embeddings"), "input_ids"], axis=0)
    shape = g.op("Shape", ["input_ids"])
    seq_dim = g.const("seq_dim", np.array([1], np.int64))
    seq_len = g.op("Squeeze", [g.op("Gather", [shape, seq_dim], axis=0)])
    start = g.const("pos_start", np.array(pos_offset, np.int64))
    positions = g.op(
        "Range",
        [start, g.op("Add", [seq_len, start]), g.const("pos_step", np.array(1, np.int64))],
    )
    pos = g.op("Gather", [table("position_embeddings"), positions], axis=0)
    x = g.op("Add", [word, pos])
    if "embeddings.token_type_embeddings.weight" in w:
        types = g.op("Gather", [table("token_type_embeddings"), "token_type_ids"], axis=0)
        x = g.op("Add", [x, types])
    return g.layer_norm(
        x,
        w["embeddings.LayerNorm.weight"],
        w["embeddings.LayerNorm.bias"],
        "embeddings.LayerNorm",
        eps,
    )
