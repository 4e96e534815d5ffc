"""Shared fixtures of the integration suite.

The suite runs the real bundled English model (preset ``minilm``). It is converted to ONNX
once and cached under :func:`snaprag.config.default_cache_dir`; the session fixture below
does that before the first test, so that later tests (and CLI subprocesses, which use
the same cache) only load it. Indexes of Korean or mixed text made with no model named
(the bundled sample among them) get the multilingual ``e5-small``, converted once on
first use in the same cache.

Every test gets its own index directory under ``tmp_path``; nothing is written to the
working tree. Test files (PDF, DOCX, BEIR jsonl) are generated here, never shipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docx
import pytest
from fpdf import FPDF

from snaprag.config import default_cache_dir
from snaprag.embed.models import resolve_model

MODEL = "minilm"
#: environment variables that would change which index, model or cache a test uses
_SNAPRAG_ENV = (
    "SNAPRAG_INDEX",
    "SNAPRAG_INDEX_DIR",
    "SNAPRAG_MODEL",
    "SNAPRAG_MAX_FILE_BYTES",
    "SNAPRAG_CACHE",
    "SNAPRAG_REDIS_URL",
    "SNAPRAG_SEMANTIC_CACHE",
    "SNAPRAG_CACHE_MEMORY_MB",
    "SNAPRAG_CACHE_DISK",
    "SNAPRAG_PROFILE",
    "SNAPRAG_DENSE_BACKEND",
    "SNAPRAG_THREADS",
)


# --------------------------------------------------------------------------- model & env


@pytest.fixture(scope="session", autouse=True)
def warm_model() -> Path:
    """Convert (first run) or find (later runs) the bundled model in the default cache."""
    resolved = resolve_model(MODEL, default_cache_dir())
    assert resolved.onnx_path.is_file()
    return resolved.onnx_path


@pytest.fixture(autouse=True)
def _clean_snaprag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the caller's shell must not leak into the tests."""
    for name in _SNAPRAG_ENV:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- file makers


def make_pdf(
    path: Path,
    pages: Sequence[str],
    *,
    title: str | None = None,
    user_password: str | None = None,
) -> Path:
    """A PDF with one page per entry of ``pages`` (core font: keep the text Latin-1)."""
    pdf = FPDF(format="A4")
    if title:
        pdf.set_title(title)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_docx(path: Path, heading: str, paragraphs: Iterable[str]) -> Path:
    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


def write_beir(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """A BEIR ``corpus.jsonl``: one ``{"_id", "title", "text"}`` object per line."""
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def warranty_docs(root: Path, years: int = 2) -> Path:
    """Two small text files; the frame's warranty (``years``) is the fact tests change."""
    root.mkdir(exist_ok=True)
    (root / "warranty.txt").write_text(
        f"Warranty terms. The frame is covered by a {years}-year warranty against defects. "
        "Wheels and tyres are covered for one year.\n",
        encoding="utf-8",
    )
    (root / "care.txt").write_text(
        "Care guide. Clean the chain every two weeks and keep the tyres inflated to the "
        "pressure printed on the sidewall.\n",
        encoding="utf-8",
    )
    return root


class Makers:
    """The file makers above, handed to tests as the ``make`` fixture."""

    pdf = staticmethod(make_pdf)
    docx = staticmethod(make_docx)
    beir = staticmethod(write_beir)
    warranty_docs = staticmethod(warranty_docs)


@pytest.fixture
def make() -> type[Makers]:
    return Makers


# --------------------------------------------------------------------------- CLI runner


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def err_flat(self) -> str:
        """stderr with all whitespace runs collapsed (rich wraps long lines)."""
        return " ".join(self.stderr.split())

    @property
    def out_flat(self) -> str:
        return " ".join(self.stdout.split())

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def cli_command(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "snaprag.cli", *map(str, args)]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: no SNAPRAG_* from the caller, wide output."""
    env = {k: v for k, v in os.environ.items() if k not in _SNAPRAG_ENV}
    env["COLUMNS"] = "400"  # rich folds long paths and messages at the terminal width
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class CliTools:
    """``cli_command`` and ``cli_env``, for tests that start the CLI themselves."""

    command = staticmethod(cli_command)
    env = staticmethod(cli_env)


@pytest.fixture(scope="session")
def cli() -> type[CliTools]:
    return CliTools


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run ``python -m snaprag.cli ARGS`` in ``tmp_path`` (so ``./.snaprag`` lands there)."""

    def run(
        *args: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> CliResult:
        proc = subprocess.run(
            cli_command(*args),
            cwd=cwd or tmp_path,
            env=cli_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


# --------------------------------------------------------------------------- backends


@pytest.fixture(params=["sqlite", "milvus"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    """Engine settings of each document store: the embedded default, and Milvus (a real
    Milvus Lite engine on a file of this test, started in this process by pymilvus)."""
    if request.param == "sqlite":
        yield {}
        return
    path = tmp_path / "milvus.db"
    yield {"store": f"milvus:{path}"}
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))  # its threads and file lock
