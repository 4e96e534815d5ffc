"""Build an ONNX graph of a BERT-style sentence encoder straight from its weights.

No torch is needed: the encoder is a dozen op types (Gather, LayerNormalization, MatMul,
Add, Reshape, Transpose, Softmax, Erf...) wired with the ``onnx`` helper API. The graph
includes mean pooling and L2 normalisation, so the session returns sentence embeddings.

Inputs: ``input_ids`` and ``attention_mask``, both ``int64[batch, seq]``.
Output: ``embeddings`` ``float32[batch, hidden]``.

Weights use Hugging Face ``BertModel`` names (``encoder.layer.{i}.attention.self.query
.weight`` ...), with Linear weights shaped ``(out, in)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
MS_DOMAIN = "com.microsoft"


class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        node = helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs)
        self.nodes.append(node)
        return out

    def model(self, name: str, inputs: list[str], output: str, width: int) -> onnx.ModelProto:
        """The finished model: int64 ``[batch, seq]`` inputs, one float ``[batch, width]``
        output, standard and ONNX Runtime contrib opsets."""
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(i, TensorProto.INT64, ["batch", "seq"]) for i in inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width])],
            self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
            producer_name="snaprag",
        )
        model.ir_version = 8
        return model

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        # torch Linear keeps (out, in); MatMul wants (in, out)
        wt = self.const(f"{name}.weight_t", np.ascontiguousarray(w.T.astype(np.float32)))
        bias = self.const(f"{name}.bias", b.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt]), bias])

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, name: str, eps: float) -> str:
        scale = self.const(f"{name}.weight", w.astype(np.float32))
        bias = self.const(f"{name}.bias", b.astype(np.float32))
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def build_bert_encoder(
    weights: Mapping[str, np.ndarray], config: Mapping[str, Any], fused: bool = True
) -> onnx.ModelProto:
    """Return an ONNX model computing mean-pooled, L2-normalised sentence embeddings.

    With ``fused`` (the default) each layer uses ONNX Runtime's contrib operators
    (``Attention``, ``SkipLayerNormalization``, ``BiasGelu``/``FastGelu``), which run
    about twice as fast on CPU and which the int8 quantizer turns into ``QAttention``.
    ``fused=False`` keeps to standard ONNX operators, for other runtimes.
    """
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    pos_offset = int(config.get("position_offset", 0))
    act = str(config.get("hidden_act", "gelu"))
    w = {k.removeprefix("bert."): v for k, v in weights.items()}

    g = GraphBuilder()
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    # --- embeddings: word + position + token type 0, then LayerNorm
    word = g.op(
        "Gather",
        [
            g.const("word_embeddings", w["embeddings.word_embeddings.weight"].astype(np.float32)),
            "input_ids",
        ],
        axis=0,
    )
    shape = g.op("Shape", ["input_ids"])
    seq_len = g.op("Gather", [shape, g.const("one_idx", i64(1))], axis=0)
    positions = g.op(
        "Range",
        [
            g.const("pos_start", np.array(pos_offset, np.int64)),
            g.op(
                "Add",
                [g.op("Squeeze", [seq_len]), g.const("pos_off", np.array(pos_offset, np.int64))],
            ),
            g.const("pos_step", np.array(1, np.int64)),
        ],
    )
    pos = g.op(
        "Gather",
        [
            g.const(
                "position_embeddings", w["embeddings.position_embeddings.weight"].astype(np.float32)
            ),
            positions,
        ],
        axis=0,
    )
    tt = w.get("embeddings.token_type_embeddings.weight")
    tt0 = tt[0] if tt is not None else np.zeros(hidden, np.float32)
    x = g.op("Add", [g.op("Add", [word, pos]), g.const("token_type_0", tt0.astype(np.float32))])
    x = g.layer_norm(
        x,
        w["embeddings.LayerNorm.weight"],
        w["embeddings.LayerNorm.bias"],
        "embeddings.LayerNorm",
        eps,
    )

    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    if fused:
        x = fused_layers(g, w, x, layers, heads, eps, act)
    else:
        x = plain_layers(g, w, x, maskf, layers, heads, hidden, eps, act)

    # --- mean pooling over attended tokens, then L2 normalisation
    m3 = g.op("Unsqueeze", [maskf, g.const("pool_axis", i64(2))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), g.const("seq_axis", i64(1))], keepdims=0)
    count = g.op(
        "Clip",
        [
            g.op("ReduceSum", [m3, g.const("seq_axis2", i64(1))], keepdims=0),
            g.const("tiny", np.array(1e-9, np.float32)),
        ],
    )
    pooled = g.op("Div", [summed, count])
    norm = g.op(
        "Clip",
        [
            g.op("ReduceL2", [pooled], axes=[-1], keepdims=1),
            g.const("tiny2", np.array(1e-12, np.float32)),
        ],
    )
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["embeddings"], name="l2_normalise"))

    return g.model("sentence_encoder", ["input_ids", "attention_mask"], "embeddings", hidden)


def _gelu_erf(g: GraphBuilder, h: str, sqrt2: str, half: str, one: str) -> str:
    """Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))."""
    return g.op(
        "Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), one])]
    )


def _gelu_tanh(g: GraphBuilder, h: str, half: str, one: str) -> str:
    """Tanh-approximate GELU: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    c = g.const(f"gelu_c_{g._n}", np.array(math.sqrt(2.0 / math.pi), np.float32))
    a = g.const(f"gelu_a_{g._n}", np.array(0.044715, np.float32))
    cube = g.op("Mul", [g.op("Mul", [h, h]), h])
    inner = g.op("Mul", [g.op("Add", [h, g.op("Mul", [cube, a])]), c])
    return g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Tanh", [inner]), one])])


def _fused_layer(
    g: GraphBuilder,
    w: Mapping[str, np.ndarray],
    p: str,
    x: str,
    mask_i32: str,
    heads: int,
    eps: float,
    act: str,
) -> str:
    """One encoder layer with ONNX Runtime contrib operators."""

    def t(name: str) -> np.ndarray:
        return np.ascontiguousarray(w[p + name].T.astype(np.float32))

    def f(name: str) -> np.ndarray:
        return w[p + name].astype(np.float32)

    qkv_w = np.concatenate(
        [
            t("attention.self.query.weight"),
            t("attention.self.key.weight"),
            t("attention.self.value.weight"),
        ],
        axis=1,
    )
    qkv_b = np.concatenate(
        [
            f("attention.self.query.bias"),
            f("attention.self.key.bias"),
            f("attention.self.value.bias"),
        ]
    )
    attn = g.op(
        "Attention",
        [x, g.const(p + "qkv.weight", qkv_w), g.const(p + "qkv.bias", qkv_b), mask_i32],
        domain=MS_DOMAIN,
        num_heads=heads,
    )
    dense = g.op(
        "MatMul", [attn, g.const(p + "attn_out.weight_t", t("attention.output.dense.weight"))]
    )
    x = _add_norm(
        g,
        dense,
        g.const(p + "attn_out.bias", f("attention.output.dense.bias")),
        x,
        g.const(p + "ln1.weight", f("attention.output.LayerNorm.weight")),
        g.const(p + "ln1.bias", f("attention.output.LayerNorm.bias")),
        eps,
    )
    h = g.op("MatMul", [x, g.const(p + "ffn_in.weight_t", t("intermediate.dense.weight"))])
    gelu = "FastGelu" if act in ("gelu_new", "gelu_pytorch_tanh") else "BiasGelu"
    h = g.op(gelu, [h, g.const(p + "ffn_in.bias", f("intermediate.dense.bias"))], domain=MS_DOMAIN)
    ff = g.op("MatMul", [h, g.const(p + "ffn_out.weight_t", t("output.dense.weight"))])
    return _add_norm(
        g,
        ff,
        g.const(p + "ffn_out.bias", f("output.dense.bias")),
        x,
        g.const(p + "ln2.weight", f("output.LayerNorm.weight")),
        g.const(p + "ln2.bias", f("output.LayerNorm.bias")),
        eps,
    )


def _add_norm(
    g: GraphBuilder, y: str, bias: str, residual: str, gamma: str, beta: str, eps: float
) -> str:
    """LayerNorm(y + bias + residual) in standard operators.

    Standard operators rather than the contrib SkipLayerNormalization: the same end-to-end
    speed here, and the latter measured ~10x slower per element in isolation
    (5.4 vs 0.5 ns/element, onnxruntime 1.32, 2 cores).
    """
    summed = g.op("Add", [g.op("Add", [y, bias]), residual])
    return g.op("LayerNormalization", [summed, gamma, beta], axis=-1, epsilon=eps)


def fused_layers(
    g: GraphBuilder,
    w: Mapping[str, np.ndarray],
    x: str,
    layers: int,
    heads: int,
    eps: float,
    act: str,
) -> str:
    mask_i32 = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    for i in range(layers):
        x = _fused_layer(g, w, f"encoder.layer.{i}.", x, mask_i32, heads, eps, act)
    return x


def plain_layers(
    g: GraphBuilder,
    w: Mapping[str, np.ndarray],
    x: str,
    maskf: str,
    layers: int,
    heads: int,
    hidden: int,
    eps: float,
    act: str,
) -> str:
    """Encoder layers in standard ONNX operators only."""
    head_dim = hidden // heads
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    # --- additive attention mask (batch, 1, 1, seq): 0 where attended, -1e4 on padding
    mask4 = g.op("Unsqueeze", [maskf, g.const("mask_axes", i64(1, 2))])
    neg = g.op(
        "Mul",
        [
            g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), mask4]),
            g.const("neg_big", np.array(-10000.0, np.float32)),
        ],
    )

    split_shape = g.const("split_heads", i64(0, -1, heads, head_dim))
    merge_shape = g.const("merge_heads", i64(0, -1, hidden))
    scale = g.const("attn_scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))
    one = g.const("one_g", np.array(1.0, np.float32))

    for i in range(layers):
        p = f"encoder.layer.{i}."

        def lin(name: str, inp: str, p: str = p) -> str:
            return g.linear(inp, w[p + name + ".weight"], w[p + name + ".bias"], p + name)

        q = g.op(
            "Transpose",
            [g.op("Reshape", [lin("attention.self.query", x), split_shape])],
            perm=[0, 2, 1, 3],
        )
        k = g.op(
            "Transpose",
            [g.op("Reshape", [lin("attention.self.key", x), split_shape])],
            perm=[0, 2, 3, 1],
        )
        v = g.op(
            "Transpose",
            [g.op("Reshape", [lin("attention.self.value", x), split_shape])],
            perm=[0, 2, 1, 3],
        )
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), neg])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op(
            "Reshape",
            [g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge_shape],
        )
        attn = lin("attention.output.dense", ctx)
        x = g.layer_norm(
            g.op("Add", [x, attn]),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            p + "attention.output.LayerNorm",
            eps,
        )
        h = lin("intermediate.dense", x)
        if act in ("gelu_new", "gelu_pytorch_tanh"):
            h = _gelu_tanh(g, h, half, one)
        else:
            h = _gelu_erf(g, h, sqrt2, half, one)
        ff = lin("output.dense", h)
        x = g.layer_norm(
            g.op("Add", [x, ff]),
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            p + "output.LayerNorm",
            eps,
        )

    return x
