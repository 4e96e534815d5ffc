"""low_memory (the edge profile's): sessions without a memory arena, and the allocator's free
memory handed back once a model is loaded; results do not depend on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from snaprag import system
from snaprag.config import Config
from snaprag.embed.factory import create_embedder
from snaprag.embed.models import cpu_session
from snaprag.embed.onnx_base import OnnxModel


def tiny_model(path: Path) -> Path:
    """y = x @ W: the smallest graph with a weight."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], np.arange(8, dtype=np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("low_memory", [False, True])
def test_session_arena_follows_low_memory(tmp_path, low_memory):
    session = cpu_session(tiny_model(tmp_path / "m.onnx"), 1, low_memory=low_memory)
    assert session.get_session_options().enable_cpu_mem_arena is (not low_memory)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], [[12.0, 16.0]])


class _Tiny(OnnxModel):
    def __init__(self, path: Path, low_memory: bool) -> None:
        super().__init__("tiny", path.parent, "fp32", 1, low_memory)
        self._path = path

    def _resolve(self):
        return type("Resolved", (), {"onnx_path": self._path, "name": "tiny"})()


@pytest.mark.parametrize("low_memory", [False, True])
def test_loaded_model_hands_free_memory_back_only_with_low_memory(
    tmp_path, monkeypatch, low_memory
):
    calls = []
    monkeypatch.setattr(system, "release_free_memory", lambda: calls.append(1))
    model = _Tiny(tiny_model(tmp_path / "m.onnx"), low_memory)
    model._get_session()
    model._get_session()  # loaded once, released once
    assert calls == ([1] if low_memory else [])


def test_release_free_memory_runs_here():
    system.release_free_memory()  # glibc here; elsewhere a no-op, never an error


def test_embedder_gets_the_setting_from_the_config(tmp_path):
    plain = create_embedder("minilm", Config(cache_dir=tmp_path))
    edge = create_embedder("minilm", Config.from_env(profile="edge", cache_dir=tmp_path))
    assert plain.low_memory is False and edge.low_memory is True
    assert edge.threads == 1
    assert not edge.loaded  # construction stays cheap: nothing is loaded
