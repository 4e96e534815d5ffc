"""low_memory (the edge profile's): sessions without a memory arena; once a model or an
index is loaded, the allocator's free memory handed back and the pages of library code only
loading ran unmapped; results do not depend on it."""

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
    monkeypatch.setattr(system, "release_free_memory", lambda: calls.append("heap"))
    monkeypatch.setattr(system, "release_library_pages", lambda: calls.append("pages") or 0)
    model = _Tiny(tiny_model(tmp_path / "m.onnx"), low_memory)
    model._get_session()
    model._get_session()  # loaded once, released once
    assert calls == (["heap", "pages"] if low_memory else [])


def test_release_free_memory_runs_here():
    system.release_free_memory()  # glibc here; elsewhere a no-op, never an error


def _resident_library_bytes() -> int:
    with open("/proc/self/smaps", encoding="utf-8") as fh:
        return sum(rss for _, _, rss in system.library_spans(fh.read()))


def test_release_library_pages_runs_here_and_code_still_runs(tmp_path):
    if not Path("/proc/self/smaps").exists():
        assert system.release_library_pages() == 0  # elsewhere nothing, never an error
        return
    before = _resident_library_bytes()  # numpy's and ONNX Runtime's code, at least
    released = system.release_library_pages()
    assert released > 0 and before > 0
    assert _resident_library_bytes() < before  # the pages really left this process
    # the dropped pages are mapped back on first touch: numpy, ONNX Runtime still work
    session = cpu_session(tiny_model(tmp_path / "m.onnx"), 1)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], [[12.0, 16.0]])


SMAPS = """\
55d0c0a00000-55d0c0b00000 rw-p 00000000 00:00 0                          [heap]
Rss:                1024 kB
Anonymous:          1024 kB
VmFlags: rd wr mr mw me ac
7f0000000000-7f0000100000 r-xp 00010000 08:01 111   /usr/lib/libfoo.so.1
Rss:                 400 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
7f0000100000-7f0000180000 r--p 00110000 08:01 111   /usr/lib/libfoo.so.1
Rss:                  64 kB
Anonymous:            64 kB
VmFlags: rd mr mw me ac
7f0000180000-7f0000181000 rw-p 00190000 08:01 111   /usr/lib/libfoo.so.1
Rss:                   4 kB
Anonymous:             4 kB
VmFlags: rd wr mr mw me ac
7f0000190000-7f00001a0000 r--p 00000000 08:01 116   /usr/lib/libloading.so
Rss:                  64 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
7f0000180000-7f00001a0000 r--p 00190000 08:01 112   /opt/my libs/_ext.cpython-311.so
Rss:                  32 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
7f00001a0000-7f00001b0000 rw-p 001b0000 08:01 112   /opt/my libs/_ext.cpython-311.so
Rss:                   8 kB
Anonymous:             0 kB
VmFlags: rd wr mr mw me ac
7f00001b0000-7f00001c0000 r-xp 00000000 08:01 113   /usr/lib/liblocked.so
Rss:                  16 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me lo
7f00001c0000-7f00001d0000 r--s 00000000 08:01 114   /data/snapshot/codes.npy
Rss:                  64 kB
Anonymous:             0 kB
VmFlags: rd sh mr mw me
7f00001d0000-7f00001e0000 r-xp 00000000 08:01 115   /usr/lib/libidle.so
Rss:                   0 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
"""


def test_library_spans_keep_only_clean_read_only_library_pages():
    spans = system.library_spans(SMAPS)
    # the code of libfoo; the constants of _ext (a path with a space). Not: the heap,
    # libfoo's relocated constants (written: anonymous pages), a writable segment, a
    # library still loading (its file mapped read-only, its writable segment not yet), a
    # locked library, a data file, a mapping with nothing resident, the vDSO
    assert spans == [
        (0x7F0000000000, 0x7F0000100000, 400 * 1024),
        (0x7F0000180000, 0x7F00001A0000, 32 * 1024),
    ]
    assert system.library_spans("") == []
    assert system.library_spans("garbage-line here\nRss: 12 kB\n") == []


def test_embedder_gets_the_setting_from_the_config(tmp_path):
    plain = create_embedder("minilm", Config(cache_dir=tmp_path))
    edge = create_embedder("minilm", Config.from_env(profile="edge", cache_dir=tmp_path))
    assert plain.low_memory is False and edge.low_memory is True
    assert edge.threads == 1
    assert not edge.loaded  # construction stays cheap: nothing is loaded
