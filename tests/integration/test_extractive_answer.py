"""The extractive answer skips sentence tails cut at chunk boundaries and repeats."""

from __future__ import annotations

from snaprag.config import default_cache_dir
from snaprag.embed.onnx_embedder import OnnxEmbedder
from snaprag.generate.extractive import ExtractiveAnswerer
from snaprag.types import Hit


def _hit(n: int, text: str, score: float) -> Hit:
    return Hit(f"d{n}#0", f"d{n}", f"/docs/warranty{n}.txt", None, score, text)


def test_fragments_and_repeated_sentences_are_left_out() -> None:
    embedder = OnnxEmbedder("minilm", default_cache_dir(), "int8", 2)
    hits = [
        _hit(1, "a technician visit can be booked for frame replacements while the warranty "
                "is valid. The frame is covered by a seven-year warranty.", 0.9),
        _hit(2, "In the USA, a technician visit can be booked for frame replacements while "
                "the warranty is valid. The frame is covered by a seven-year warranty.", 0.8),
    ]  # fmt: skip
    answer = ExtractiveAnswerer(embedder).answer("How long is the frame warranty?", hits)
    text = answer.text
    assert not text.startswith("a technician")  # the cut-off tail is not a sentence
    assert " a technician visit can be booked" not in text.replace("USA, a", "")
    assert text.count("seven-year warranty") == 1  # the same sentence once
    assert "seven-year" in text
