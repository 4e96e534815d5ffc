"""A real local model (the bundled SmolLM2-135M GGUF, via xllamacpp) answers over the samples.

Generations are short (a few tokens) and the context small, so the whole module takes a few
seconds once the model file is in the cache.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from snaprag import Engine
from snaprag.config import default_cache_dir
from snaprag.errors import GenerationError
from snaprag.generate.context import build_context
from snaprag.generate.local import LocalGGUFGenerator, bundled_model_path, loaded_models
from snaprag.generate.prompts import messages, template_for

pytest.importorskip("xllamacpp")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SETTINGS = {"llm": "smollm2", "llm_max_tokens": 12, "context_tokens": 300, "llm_ctx": 1024}
QUESTION = "How long is the warranty on the frame?"


@pytest.fixture(scope="module")
def model_path() -> Path:
    return bundled_model_path(default_cache_dir())


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llm") / "index"
    with Engine.open(path, cache=False) as engine:
        report = engine.ingest([SAMPLES])
    assert report.ok
    return path


@pytest.fixture(scope="module")
def engine(index: Path) -> Engine:
    eng = Engine.open(index, cache=False, **SETTINGS)
    eng.warm_up()
    yield eng
    eng.close()


def test_bundled_model_is_a_gguf(model_path: Path) -> None:
    assert model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model_path.read_bytes()[:4] == b"GGUF"


def test_warm_up_loads_the_model_once(engine: Engine, index: Path) -> None:
    gen = engine.generator.backend  # the LLM backend under the answerer
    assert gen._backend is not None  # loaded by warm_up, before any question
    before = loaded_models()
    with Engine.open(index, cache=False, **SETTINGS) as second:
        second.warm_up()
        assert second.generator.backend.backend is gen.backend  # one model per process
    assert loaded_models() == before


def test_streamed_answer(engine: Engine) -> None:
    events = list(engine.ask_events(QUESTION, k=4))
    kinds = [e.kind for e in events]
    assert kinds[0] == "hits" and kinds[-1] == "done" and "error" not in kinds
    tokens = [e.text for e in events if e.kind == "token"]
    assert len(tokens) >= 2  # streamed piece by piece, not in one block
    answer = events[-1].answer
    assert answer is not None
    assert answer.text == "".join(tokens).strip() and answer.text
    assert answer.generator == "smollm2"
    assert answer.hits and answer.hits[0].source.endswith("warranty-and-service.pdf")
    stages = answer.timings.stages
    for stage in ("retrieve", "context", "prefill", "decode", "total"):
        assert stages[stage] >= 0, stage
    assert stages["total"] >= stages["prefill"] + stages["decode"]
    m = answer.metrics
    assert 0 < m["ttft_ms"] <= stages["total"]
    assert m["tokens_per_s"] > 0
    assert 1 <= m["completion_tokens"] <= SETTINGS["llm_max_tokens"]
    assert 0 < m["context_tokens"] <= m["context_budget"] <= SETTINGS["context_tokens"]
    assert m["prompt_tokens"] > m["context_tokens"]
    assert answer.finish_reason in ("stop", "length")
    for c in answer.citations:  # whatever the small model cites maps to a real hit
        assert any(h.id == c.chunk_id and h.page == c.page for h in answer.hits)
    json.dumps(answer.to_dict())


def test_ask_returns_the_streamed_text(engine: Engine) -> None:
    streamed = next(e for e in engine.ask_events(QUESTION, k=4) if e.kind == "done").answer
    answer = engine.ask(QUESTION, k=4)
    assert streamed is not None and answer.text == streamed.text  # greedy: deterministic


def test_prompt_tokens_counted_like_the_model(engine: Engine) -> None:
    """The budget is measured with the model's tokenizer: llama.cpp agrees on the count."""
    gen = engine.generator.backend
    hits = engine.search(QUESTION, k=5)
    template = template_for(QUESTION)
    for budget in (40, 120, 250):
        ctx = build_context(hits, gen.count_tokens, budget, template.page)
        assert ctx.tokens == gen.count_tokens([ctx.text])[0] <= budget
        assert ctx.sources
    prompt = messages(template, QUESTION, ctx.text)
    finish = [x for x in gen.stream(prompt) if not hasattr(x, "text")][-1]
    assert finish.prompt_tokens == gen.count_prompt(prompt)


def test_concurrent_callers_share_the_model(engine: Engine) -> None:
    questions = [QUESTION, "How do I reset the desk?", QUESTION, "How do I reset the desk?"]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            results[i] = engine.ask(questions[i], k=3).text
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 4
    assert results[0] == results[2] and results[1] == results[3]  # same question, same text
    assert all(results.values())


def test_korean_question(index: Path) -> None:
    # Hangul costs this model's tokenizer several tokens per syllable: keep the context small
    with Engine.open(index, cache=False, **{**SETTINGS, "context_tokens": 80}) as eng:
        answer = eng.ask("스냅데스크 프레임 보증 기간은 얼마나 되나요?", k=3)
    assert answer.text and answer.hits
    assert "-ko." in Path(answer.hits[0].source).name
    assert 0 < answer.metrics["context_tokens"] <= 80


def test_missing_model_is_an_error_event(index: Path, tmp_path: Path) -> None:
    with Engine.open(index, cache=False, llm=f"gguf:{tmp_path / 'nope.gguf'}") as eng:
        events = list(eng.ask_events(QUESTION))
        assert [e.kind for e in events] == ["hits", "error"]
        assert events[-1].code == "model_missing"
        assert "nope.gguf" in events[-1].message and "--llm" in events[-1].message
        with pytest.raises(GenerationError, match="not found"):
            eng.ask(QUESTION)


@pytest.mark.parametrize("kind", ["text", "directory", "truncated"])
def test_unreadable_model_file(tmp_path: Path, model_path: Path, kind: str) -> None:
    path = tmp_path / "model.gguf"
    if kind == "text":
        path.write_text("not a model")
    elif kind == "directory":
        path.mkdir()
    else:  # the right magic, but cut short: llama.cpp itself refuses it
        with model_path.open("rb") as src:
            path.write_bytes(src.read(4096))
    gen = LocalGGUFGenerator(path, n_ctx=256, threads=1)
    with pytest.raises(GenerationError) as info:
        gen.load()
    expected = "model_load_failed" if kind == "truncated" else "model_unreadable"
    assert info.value.code == expected
    assert str(path) in str(info.value)


def test_prompt_over_the_context(index: Path) -> None:
    settings = {**SETTINGS, "llm_ctx": 160, "llm_max_tokens": 64}
    question = "Explain " + " and ".join(f"topic number {i}" for i in range(40)) + "?"
    with Engine.open(index, cache=False, **settings) as eng:
        events = list(eng.ask_events(question, k=2))
    assert events[-1].kind == "error" and events[-1].code == "context_overflow"
    assert "--llm-ctx" in events[-1].message


def test_small_context_is_filled_not_overflowed(index: Path) -> None:
    # a context smaller than the budget: the builder shrinks to what is left
    settings = {**SETTINGS, "llm_ctx": 256, "llm_max_tokens": 8, "context_tokens": 2000}
    with Engine.open(index, cache=False, **settings) as eng:
        answer = eng.ask(QUESTION, k=5)
    assert answer.metrics["prompt_tokens"] <= 256 - 8
    assert answer.metrics["context_budget"] < 2000


def test_cli_streams_json_events(index: Path, run_cli) -> None:
    res = run_cli(
        "ask", QUESTION, "--index", index, "--llm", "smollm2", "--stream", "--json",
        "--max-tokens", "6", "--context-tokens", "200", "--llm-ctx", "1024",
        timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = res.json_lines()
    assert events[0]["event"] == "hits" and events[-1]["event"] == "done"
    tokens = [e["text"] for e in events if e["event"] == "token"]
    assert tokens and events[-1]["answer"]["answer"] == "".join(tokens).strip()
    assert events[-1]["answer"]["metrics"]["ttft_ms"] > 0
    human = run_cli(
        "ask", QUESTION, "--index", index, "--llm", "smollm2", "--stream",
        "--max-tokens", "6", "--context-tokens", "200", "--llm-ctx", "1024",
        timeout=180,
    )  # fmt: skip
    assert human.returncode == 0, human.stderr
    # the same question and settings again: the answer cache replays it
    assert "from cache" in human.stdout and tokens[0].strip() in human.stdout
    fresh = run_cli(
        "ask", QUESTION, "--index", index, "--llm", "smollm2", "--stream",
        "--max-tokens", "6", "--context-tokens", "200", "--llm-ctx", "1024",
        timeout=180, env={"SNAPRAG_CACHE": "0"},
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert "tokens/s" in fresh.stdout and "first token" in fresh.stdout


def test_cli_missing_model(index: Path, run_cli, tmp_path: Path) -> None:
    for extra in ((), ("--stream",)):
        res = run_cli("ask", QUESTION, "--index", index, "--llm", f"gguf:{tmp_path}/x.gguf", *extra)
        assert res.returncode == 2
        assert "Traceback" not in res.stderr
        assert "model file not found" in res.err_flat


def test_models_nobody_uses_are_unloaded_when_another_loads(tmp_path: Path) -> None:
    from snaprag.config import default_cache_dir
    from snaprag.generate import local

    first = local.LocalGGUFGenerator(None, cache_dir=default_cache_dir(), n_ctx=320)
    first.load()
    key = first._key
    assert key in local._LOADED
    first.close()
    assert key in local._LOADED  # kept while nothing else needs the memory
    second = local.LocalGGUFGenerator(None, cache_dir=default_cache_dir(), n_ctx=384)
    second.load()
    try:
        assert key not in local._LOADED and second._key in local._LOADED
        assert second.count_tokens(["hello world"])[0] >= 2
    finally:
        second.close()
