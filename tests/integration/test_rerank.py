"""The cross-encoder reranker on a small cross-encoder built here from random weights.

No cross-encoder weights can be had offline, so the test writes its own
``BertForSequenceClassification``-style checkpoint (``model.safetensors``, ``config.json``
and a real WordPiece ``tokenizer.json``) and checks the ONNX graph built from it against a
NumPy forward pass written out below.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from snaprag.embed.cross_encoder_graph import build_bert_cross_encoder
from snaprag.errors import ConfigError, ModelError
from snaprag.search import rerank as rerank_module
from snaprag.search.rerank import MAX_AUTO_BATCH, MEMORY_SHARE, OnnxCrossEncoder
from snaprag.types import Hit

HIDDEN, LAYERS, HEADS, INTERMEDIATE, MAX_POSITIONS = 32, 2, 2, 64, 128
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORD_LIST = (
    "the a an of to in on for with by from at and or not is are was were be been has have "
    "had do does did can could will would should may might must this that these those it "
    "its they them their we our you your he she his her who what when where why how which "
    "reset button hold press seconds control box desk motor height memory display error "
    "code power cable light blue red green battery charge device screen update install "
    "version system file folder index search query result score rank model token text "
    "document page chapter section table figure vitamin risk study patients cells protein "
    "gene disease treatment effect increase decrease level blood heart brain cancer drug "
    "dose trial group control data analysis method sample test water energy light heat "
    "cat dog mat sat ran jumped over under quick brown fox lazy day night week year time "
    "people world city country house road car train plane ship river mountain sea sky"
)
WORDS = _WORD_LIST.split()
SUFFIXES = ["##s", "##ed", "##ing", "##er", "##ly"]
PUNCT = list(".,;:!?'\"()-")


# --------------------------------------------------------------------------- the model


def _vocab() -> dict[str, int]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    digits = [str(d) for d in range(10)]
    tokens = SPECIALS + PUNCT + letters + digits + WORDS + SUFFIXES
    tokens += ["##" + c for c in letters + digits]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def _write_tokenizer(path: Path) -> int:
    vocab = _vocab()
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.save(str(path))
    return len(vocab)


def _random_checkpoint(vocab_size: int, num_labels: int, seed: int) -> dict[str, np.ndarray]:
    """Weights in BertForSequenceClassification names; scaled so that logits spread."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, std: float = 0.3) -> np.ndarray:
        return rng.normal(0.0, std, shape).astype(np.float32)

    def norm(name: str, dim: int) -> dict[str, np.ndarray]:
        return {f"{name}.weight": 1.0 + normal(dim, std=0.1), f"{name}.bias": normal(dim, std=0.1)}

    def linear(name: str, out: int, inp: int) -> dict[str, np.ndarray]:
        return {f"{name}.weight": normal(out, inp), f"{name}.bias": normal(out, std=0.1)}

    w: dict[str, np.ndarray] = {
        "bert.embeddings.word_embeddings.weight": normal(vocab_size, HIDDEN, std=1.0),
        "bert.embeddings.position_embeddings.weight": normal(MAX_POSITIONS, HIDDEN, std=0.5),
        "bert.embeddings.token_type_embeddings.weight": normal(2, HIDDEN, std=1.0),
        **norm("bert.embeddings.LayerNorm", HIDDEN),
    }
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        for part in ("query", "key", "value"):
            w.update(linear(p + "attention.self." + part, HIDDEN, HIDDEN))
        w.update(linear(p + "attention.output.dense", HIDDEN, HIDDEN))
        w.update(norm(p + "attention.output.LayerNorm", HIDDEN))
        w.update(linear(p + "intermediate.dense", INTERMEDIATE, HIDDEN))
        w.update(linear(p + "output.dense", HIDDEN, INTERMEDIATE))
        w.update(norm(p + "output.LayerNorm", HIDDEN))
    w.update(linear("bert.pooler.dense", HIDDEN, HIDDEN))
    w["classifier.weight"] = normal(num_labels, HIDDEN, std=1.0)
    w["classifier.bias"] = normal(num_labels, std=0.1)
    return w


def _config(vocab_size: int, num_labels: int) -> dict[str, Any]:
    return {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": 2,
        "vocab_size": vocab_size,
        "id2label": {str(i): f"LABEL_{i}" for i in range(num_labels)},
    }


def make_cross_encoder(directory: Path, num_labels: int = 1, seed: int = 0) -> Path:
    """Write a random-weight BERT cross-encoder checkpoint into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab_size = _write_tokenizer(directory / "tokenizer.json")
    save_file(
        _random_checkpoint(vocab_size, num_labels, seed), str(directory / "model.safetensors")
    )
    (directory / "config.json").write_text(json.dumps(_config(vocab_size, num_labels)))
    return directory


def load_checkpoint(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors.numpy import load_file

    config = json.loads((directory / "config.json").read_text())
    return load_file(str(directory / "model.safetensors")), config


# --------------------------------------------------------------------------- NumPy reference

_erf = np.vectorize(math.erf)


def reference_logits(
    w: dict[str, np.ndarray], ids: np.ndarray, types: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """BertForSequenceClassification forward pass in float64: ``[batch, num_labels]``."""
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in w.items()}
    b, s = ids.shape
    d = HIDDEN // HEADS

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def lin(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def heads(x: np.ndarray) -> np.ndarray:
        return x.reshape(b, s, HEADS, d).transpose(0, 2, 1, 3)

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(s)][None]
        + w["embeddings.token_type_embeddings.weight"][types]
    )
    x = ln(x, "embeddings.LayerNorm")
    neg = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + neg
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, s, HIDDEN)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = np.tanh(lin(x[:, 0], "pooler.dense"))
    return lin(pooled, "classifier")


def padded_batch(encodings: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(len(e.ids) for e in encodings)
    ids, types, mask = (np.zeros((len(encodings), width), np.int64) for _ in range(3))
    for j, e in enumerate(encodings):
        n = len(e.ids)
        ids[j, :n], types[j, :n], mask[j, :n] = e.ids, e.type_ids, 1
    return ids, types, mask


# --------------------------------------------------------------------------- fixtures

QUERIES = [
    "how do I reset the desk control box?",
    "vitamin D and the risk of heart disease",
    "quick brown fox",
    "which cable charges the battery",
]


def _passages(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(WORDS, size=int(rng.integers(1, 40)))) + rng.choice(["", ".", "?"])
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cross_encoder(tmp_path_factory.mktemp("xenc") / "tiny-xenc")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fp32(model_dir: Path, cache: Path) -> OnnxCrossEncoder:
    return OnnxCrossEncoder(str(model_dir), cache, quantization="fp32")


@pytest.fixture(scope="module")
def int8(model_dir: Path, cache: Path) -> OnnxCrossEncoder:
    return OnnxCrossEncoder(str(model_dir), cache, quantization="int8")


# --------------------------------------------------------------------------- tests


def test_score_plumbing(int8: OnnxCrossEncoder, cache: Path) -> None:
    passages = ["To reset the control box, hold the button for ten seconds.", "", "blue sky"]
    scores = int8.score(QUERIES[0], passages)
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert int8.score(QUERIES[0], []).shape == (0,)
    int8.warm_up()
    out = int8.model.onnx_path.parent
    assert out.parent == cache / "models" and out.name.startswith("xenc-tiny-xenc-")
    assert {p.name for p in out.iterdir()} >= {"model-int8.onnx", "tokenizer.json", "meta.json"}


def test_long_pairs_are_truncated(model_dir: Path, cache: Path) -> None:
    xenc = OnnxCrossEncoder(str(model_dir), cache, quantization="fp32", max_tokens=24)
    query, passage = "reset the desk " * 30, "hold the button " * 200
    encoding = xenc._encode(query, [passage])[0]
    assert len(encoding.ids) == 24
    # the query keeps half of the budget; the passage (segment B) fills the rest
    assert 0 < encoding.type_ids.count(1) < 24 and encoding.type_ids.count(0) <= 13
    assert np.isfinite(xenc.score(query, [passage, "short"])).all()
    # the model's position table bounds the pair whatever max_tokens says
    wide = OnnxCrossEncoder(str(model_dir), cache, quantization="fp32", max_tokens=4096)
    assert wide.pair_limit == MAX_POSITIONS
    assert np.isfinite(wide.score(query, [passage])).all()


@pytest.mark.parametrize("fused", [True, False])
def test_graph_matches_numpy_reference_on_a_padded_batch(
    model_dir: Path, fp32: OnnxCrossEncoder, fused: bool
) -> None:
    weights, config = load_checkpoint(model_dir)
    model = build_bert_cross_encoder(weights, config, fused=fused)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    passages = ["cat", "the quick brown fox jumped over the lazy dog " * 3, "blood level", ""]
    encodings = fp32._encode(QUERIES[1], passages)
    assert len({len(e.ids) for e in encodings}) == len(passages)  # padding in play
    ids, types, mask = padded_batch(encodings)
    got = session.run(
        ["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    )[0]
    assert got.shape == (len(passages), 1) and got.dtype == np.float32
    # the truth: each pair alone, unpadded
    want = np.concatenate([reference_logits(weights, *padded_batch([e])) for e in encodings])
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    # token types matter: segment B read as segment A changes the logits
    flat = session.run(
        ["logits"],
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(types)},
    )[0]
    assert np.abs(flat - got).max() > 1e-2
    # the reranker's own batching and feeding give the same numbers
    np.testing.assert_allclose(fp32.score(QUERIES[1], passages), want[:, 0], atol=1e-4, rtol=1e-4)


def test_two_label_model_scores_the_positive_class(tmp_path: Path) -> None:
    directory = make_cross_encoder(tmp_path / "two-labels", num_labels=2, seed=3)
    weights, _ = load_checkpoint(directory)
    xenc = OnnxCrossEncoder(str(directory), tmp_path / "cache", quantization="fp32")
    passages = ["heart disease risk", "a train over the river", "blue"]
    want = np.concatenate(
        [reference_logits(weights, *padded_batch([e])) for e in xenc._encode(QUERIES[1], passages)]
    )
    assert want.shape == (3, 2)
    np.testing.assert_allclose(xenc.score(QUERIES[1], passages), want[:, 1], atol=1e-4)


def test_int8_close_to_fp32(fp32: OnnxCrossEncoder, int8: OnnxCrossEncoder) -> None:
    passages = _passages(10)
    a = np.concatenate([fp32.score(q, passages) for q in QUERIES])
    b = np.concatenate([int8.score(q, passages) for q in QUERIES])
    assert a.shape == (40,) and a.std() > 0.1  # the logits do spread
    corr = float(np.corrcoef(a, b)[0, 1])
    assert corr > 0.95, corr
    assert "QAttention" in {n.op_type for n in onnx.load(str(int8.model.onnx_path)).graph.node}


def _hits(texts: list[str]) -> list[Hit]:
    return [
        Hit(
            id=f"d{i}#0", doc_id=f"d{i}", source=f"d{i}.txt", page=None, score=1.0 - i / 100, text=t
        )
        for i, t in enumerate(texts)
    ]


def test_rerank_orders_by_score_and_respects_top_n(fp32: OnnxCrossEncoder) -> None:
    hits = _hits(_passages(8, seed=5))
    scores = fp32.score(QUERIES[0], [h.text for h in hits[:5]])
    out = fp32.rerank(QUERIES[0], hits, top_n=5)
    assert len(out) == 8
    assert [h.id for h in out[:5]] == [hits[i].id for i in np.argsort(-scores, kind="stable")]
    assert [h.score for h in out[:5]] == sorted((float(s) for s in scores), reverse=True)
    assert out[5:] == hits[5:]  # beyond top_n: same order, same scores
    assert all(isinstance(h, Hit) and h.text == hits[int(h.doc_id[1:])].text for h in out)
    everything = fp32.rerank(QUERIES[0], hits)
    assert [h.score for h in everything] == sorted((h.score for h in everything), reverse=True)
    assert fp32.rerank(QUERIES[0], hits, top_n=0) == hits
    assert fp32.rerank(QUERIES[0], [], top_n=3) == []
    with pytest.raises(ValueError, match="top_n"):
        fp32.rerank(QUERIES[0], hits, top_n=-1)


def test_rerank_ties_keep_the_original_order(
    fp32: OnnxCrossEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    hits = _hits(["a", "b", "c", "d", "e"])
    fixed = np.array([0.5, 2.0, 0.5, 2.0, 0.5], np.float32)
    monkeypatch.setattr(fp32, "score", lambda query, passages: fixed[: len(passages)])
    assert [h.id for h in fp32.rerank("q", hits)] == ["d1#0", "d3#0", "d0#0", "d2#0", "d4#0"]
    assert [h.id for h in fp32.rerank("q", hits, top_n=3)] == [
        "d1#0", "d0#0", "d2#0", "d3#0", "d4#0"
    ]  # fmt: skip


def test_batch_size_does_not_change_scores(
    model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passages = _passages(23, seed=7)
    results = {}
    for label, batch_size in (("1", 1), ("7", 7), ("auto", None)):
        xenc = OnnxCrossEncoder(str(model_dir), cache, quantization="fp32", batch_size=batch_size)
        results[label] = xenc.score(QUERIES[2], passages)
    # auto with little memory: several batches of adaptive size
    xenc = OnnxCrossEncoder(str(model_dir), cache, quantization="fp32")
    tight = int(8 * xenc.bytes_per_pair(20) / MEMORY_SHARE)
    monkeypatch.setattr(rerank_module, "available_memory", lambda: tight)
    assert 1 < xenc.batch_size_for(40) < xenc.batch_size_for(10) < len(passages)
    results["auto-tight"] = xenc.score(QUERIES[2], passages)
    for label, scores in results.items():
        np.testing.assert_allclose(scores, results["1"], atol=1e-5, err_msg=label)


def test_batch_size_for_adapts_to_memory(model_dir: Path, cache: Path) -> None:
    xenc = OnnxCrossEncoder(str(model_dir), cache, quantization="fp32")
    per_pair = [xenc.bytes_per_pair(s) for s in (8, 64, 128)]
    assert per_pair == sorted(per_pair) and per_pair[0] > 0
    # attention scores alone: seq^2 * heads float32 values per layer
    assert xenc.bytes_per_pair(128) > 128 * 128 * HEADS * 4
    assert xenc.batch_size_for(128, available=0) == 1
    assert xenc.batch_size_for(8, available=1 << 40) == MAX_AUTO_BATCH
    budget = 20 * xenc.bytes_per_pair(64) / MEMORY_SHARE
    assert xenc.batch_size_for(64, available=int(budget)) == 20
    sizes = [xenc.batch_size_for(s, available=int(budget)) for s in (8, 32, 64, 128)]
    assert sizes == sorted(sizes, reverse=True) and all(1 <= n <= MAX_AUTO_BATCH for n in sizes)
    assert 1 <= xenc.batch_size_for(128) <= MAX_AUTO_BATCH  # from this machine's memory
    assert rerank_module.available_memory() > 0
    fixed = OnnxCrossEncoder(str(model_dir), cache, batch_size=5)
    assert fixed.batch_size_for(128, available=0) == 5


def test_ready_onnx_directory_is_used_as_is(
    model_dir: Path, fp32: OnnxCrossEncoder, tmp_path: Path
) -> None:
    ready = tmp_path / "exported"
    ready.mkdir()
    weights, config = load_checkpoint(model_dir)
    onnx.save(build_bert_cross_encoder(weights, config), str(ready / "model.onnx"))
    shutil.copy(model_dir / "tokenizer.json", ready / "tokenizer.json")
    # a model type that could not be converted: the ready graph makes that moot
    (ready / "config.json").write_text(json.dumps({**config, "model_type": "xlm-roberta"}))
    xenc = OnnxCrossEncoder(str(ready), tmp_path / "cache", quantization="int8")
    passages = _passages(6, seed=9)
    np.testing.assert_allclose(
        xenc.score(QUERIES[3], passages), fp32.score(QUERIES[3], passages), atol=1e-5
    )
    assert xenc.model.onnx_path == ready / "model.onnx" and not xenc.model.converted
    assert not (tmp_path / "cache").exists()  # nothing converted or copied


def test_error_messages(model_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match=r"not found: expected 'hf:ORG/NAME' or a local dir"):
        OnnxCrossEncoder(str(tmp_path / "nowhere"), cache).warm_up()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError) as err:
        OnnxCrossEncoder(str(empty), cache).score("q", ["p"])
    message = str(err.value)
    assert "no config.json, tokenizer.json, model.safetensors" in message
    assert "BertForSequenceClassification" in message and "model.onnx" in message

    no_weights = tmp_path / "no-weights"
    shutil.copytree(model_dir, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"no model\.safetensors"):
        OnnxCrossEncoder(str(no_weights), cache).warm_up()

    roberta = tmp_path / "roberta"
    shutil.copytree(model_dir, roberta)
    config = json.loads((roberta / "config.json").read_text())
    (roberta / "config.json").write_text(json.dumps({**config, "model_type": "xlm-roberta"}))
    with pytest.raises(ModelError) as err:
        OnnxCrossEncoder(str(roberta), cache).warm_up()
    message = str(err.value)
    assert "'xlm-roberta' cannot be converted" in message
    assert "BertForSequenceClassification" in message and "model.onnx" in message

    encoder_only = tmp_path / "encoder-only"
    shutil.copytree(model_dir, encoder_only)
    weights, _ = load_checkpoint(model_dir)
    weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
    save_file(weights, str(encoder_only / "model.safetensors"))
    with pytest.raises(ModelError, match="no classifier weights"):
        OnnxCrossEncoder(str(encoder_only), cache).warm_up()

    with pytest.raises(ConfigError, match="'int4' is not one of fp32, int8"):
        OnnxCrossEncoder(str(model_dir), cache, quantization="int4")
    with pytest.raises(ConfigError, match="batch_size"):
        OnnxCrossEncoder(str(model_dir), cache, batch_size=0)


def test_engine_second_stage_uses_the_cross_encoder(
    model_dir: Path, cache: Path, tmp_path: Path
) -> None:
    from snaprag import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(_passages(12, seed=5)):
        (docs / f"d{i}.txt").write_text(text + ".", encoding="utf-8")
    with Engine.open(tmp_path / "plain") as plain:
        assert plain.ingest([docs]).ok
        first_stage = plain.search("alpha beta", k=12)
    with Engine.open(
        tmp_path / "plain",
        rerank_model=str(model_dir),
        rerank_top_n=8,
        quantization="fp32",
        cache_dir=cache,
    ) as eng:
        hits = eng.search("alpha beta", k=5)
        timings = eng.retriever.search_many(["alpha beta"], 5).timings.stages
    assert len(hits) == 5 and "rerank" in timings
    # the top 5 are the first stage's top 8 reordered by the cross-encoder's scores
    assert {h.id for h in hits} <= {h.id for h in first_stage[:8]}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    reranker = OnnxCrossEncoder(str(model_dir), cache, quantization="fp32")
    expect = reranker.score("alpha beta", [h.text for h in hits])
    np.testing.assert_allclose([h.score for h in hits], expect, atol=1e-5)
