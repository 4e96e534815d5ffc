"""Atomic file writes: a file is either its old content or its new one, never half of each.

Every writer of persistent state (converted models, BM25 files, snapshots, benchmark
results) goes through :func:`atomic_write`, so a killed process or a full disk leaves at
most a stray temporary file, never a truncated file that a later run would trust.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path``, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_copy(src: Path, dst: Path) -> None:
    atomic_write(dst, lambda fh: fh.write(Path(src).read_bytes()))
