"""The command line's own parts, without an index: escaping, JSON, the shared options, the
status line of slow first-use steps, and the package's shape."""

from __future__ import annotations

import inspect
import io
import json
import logging
from pathlib import Path

import pytest
from rich.console import Console

from snaprag.cli import options, progress, render, shell
from snaprag.config import Config


def test_safe_escapes_control_characters():
    evil = "a\x1b[2Jb\x07c\x9bd\u202ee\r\n\tf"
    assert render.safe(evil) == "a\\x1b[2Jb\\x07c\\x9bd\\u202ee\\x0d\\x0a\\x09f"
    assert render.safe(evil, multiline=True) == "a\\x1b[2Jb\\x07c\\x9bd\\u202ee\\x0d\n\tf"
    assert render.safe("한국어 text — fine") == "한국어 text — fine"
    assert render.markup("[bold]x\x1b") == "\\[bold]x\\x1b"


def test_json_keeps_exact_strings_without_raw_controls():
    value = {"path": "bad\x1b[2J\x9b\u202e.txt", "ko": "보증"}
    line = shell.dumps(value)
    assert "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
    assert "보증" in line
    assert json.loads(line) == value


def test_one_mapping_from_options_to_settings():
    for name, option in options.OPTIONS.items():
        assert option.setting is None or option.setting in Config.__dataclass_fields__, name
    assert set(options.LLM) <= set(options.OPTIONS)

    @options.with_settings("index", *options.LLM)
    def command(x: int = 1, *, settings: options.Settings) -> tuple[int, options.Settings]:
        return x, settings

    params = inspect.signature(command).parameters
    assert {"config", "index", "llm", "max_tokens", "gpu_layers"} <= set(params)
    assert "settings" not in params
    x, settings = command(x=3, config=Path("c.toml"), index=Path("i"), max_tokens=9, llm=None)
    assert x == 3 and settings.config_file == Path("c.toml")
    assert settings.overrides == {"index_dir": Path("i"), "llm_max_tokens": 9}


@pytest.mark.parametrize(
    ("given", "wanted"),
    [("PDF", "pdf"), (".pdf", "pdf"), (" .Md ", "md"), ("markdown", "md"), (None, None)],
)
def test_type_spellings(given, wanted):
    assert options.normalize_type(given) == wanted


def test_status_line_shows_progress_records(monkeypatch):
    logger = logging.getLogger(progress.PROGRESS_LOGGER)
    shown: list[str] = []
    with progress.status_line(True) as status:
        assert status is not None
        status.sink = shown.append
        logger.info("converting to ONNX")
        logger.info("quantizing \x1b[2J to int8")
    logger.info("after the command")  # the handler is gone
    assert shown == ["converting to ONNX", "quantizing \\x1b[2J to int8"]
    assert not any(isinstance(h, progress.StatusLine) for h in logger.handlers)
    with progress.status_line(False) as status:
        assert status is None


def test_status_line_spinner_on_a_terminal():
    out = io.StringIO()
    handler = progress.StatusLine(Console(file=out, force_terminal=True, width=80))
    message = "fetching weights"
    handler.emit(logging.LogRecord("snaprag.progress", logging.INFO, "", 0, message, (), None))
    handler.stop()
    assert handler.last == message and message in out.getvalue()


def test_ingest_progress_names_the_file_and_preparation():
    bar = progress.IngestProgress(enabled=True)
    with bar:
        bar.show_status("fetching weights of all-MiniLM-L6-v2")
        task = bar._progress.tasks[0]
        assert task.fields["what"] == "fetching weights of all-MiniLM-L6-v2"
        assert task.fields["count"] == ""  # no bare 0/? before the files are known
        bar.update("discovered", 3)
        bar.update("start", "/docs/evil\x1b[2J.pdf")
        assert task.fields["what"] == "evil\\x1b[2J.pdf"
        bar.update("source", object())
        assert task.fields["count"] == "1/3 files"


def test_cli_files_stay_small():
    root = Path(render.__file__).parent
    for path in root.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name


def _answer(generator: str = "extractive", **stages: float):
    from snaprag.types import Answer, Citation, StageTimings

    cites = [
        Citation(1, "/d/manual.pdf", 2, "m", "m#1"),
        Citation(2, "/d/manual.pdf", 3, "m", "m#2"),
        Citation(3, "/d/guide.md", None, "g", "g#0"),
        Citation(4, "/d/manual.pdf", 2, "m", "m#1"),
    ]
    text = "Frame: 7 years. [manual.pdf p.2] Desk: 2 years. [guide.md]"
    return Answer("q?", text, cites, [], StageTimings(dict(stages)), generator)


def test_answers_list_each_cited_source_once_with_labelled_timings(capsys):
    answer = _answer(embed=3.0, fetch=1.1, answer=2.0, total=6.3)
    render.print_answer(answer)
    out = capsys.readouterr().out
    assert out.count("/d/manual.pdf") == 1 and out.count("/d/guide.md") == 1
    assert "[manual.pdf p.2] [manual.pdf p.3] /d/manual.pdf" in out
    assert "retrieval 4.1 ms · answer 2.0 ms · total 6.3 ms" in out
    cached = _answer(cache=0.8, total=0.8)
    cached.metrics["cached"] = 1.0
    assert render.answer_timing(cached) == "from cache · total 0.8 ms"
    cached.timings.cache_tier = "disk"
    assert render.answer_timing(cached) == "from cache (disk) · total 0.8 ms"
    fresh = _answer(normalize=0.1, cache=0.2, retrieve=4.0, answer=2.0, total=6.3)
    assert render.answer_timing(fresh) == "retrieval 4.0 ms · answer 2.0 ms · total 6.3 ms"


def test_generated_answers_group_numbered_sources(capsys):
    from snaprag.cli import stream

    stream.print_generated(_answer("gguf:x.gguf", retrieve=4.0, decode=10.0, total=20.0))
    out = capsys.readouterr().out
    assert out.count("/d/manual.pdf") == 1
    assert "[1] p.2 · [2] p.3 · [4] p.2 /d/manual.pdf" in out
    assert "total 20 ms (retrieval 4, decode 10 ms)" in out
