"""Starting and stopping a real ``snaprag serve`` process for the server tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def sample_index(path: Path) -> Path:
    """An index of the bundled samples at ``path`` (the real default model)."""
    from snaprag import Engine

    with Engine.open(path) as e:
        assert e.ingest([SAMPLES]).ok
    return path


def start(index: Path, *args: str, env: dict[str, str] | None = None, flag: str = "--index"):
    """Start ``snaprag serve`` (``--index`` or, with ``flag``, ``--data``) on a free loopback
    port; return (process, base URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "snaprag.cli", "serve", flag, str(index), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = proc.stdout.readline()  # printed once the models are loaded and ready
    if not line.startswith("serving http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"server did not start: {line!r} {proc.stderr.read()}")
    return proc, line.split()[1]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
