"""Prompt language choice, citation mapping, LLM settings and the answer event shapes."""

from __future__ import annotations

import json
import os

import pytest

from snaprag.config import Config
from snaprag.errors import ConfigError, GenerationError, SnapragError
from snaprag.generate.citations import cited_numbers, map_citations
from snaprag.generate.context import build_context
from snaprag.generate.prompts import TEMPLATES, detect_language, messages, template_for
from snaprag.types import Answer, AnswerEvent, Citation, Hit, StageTimings


def hit(n: int, page: int | None) -> Hit:
    return Hit(f"d{n}#{n}", f"d{n}", f"/docs/f{n}.pdf", page, 1.0 - n / 10, f"Fact number {n}.")


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("How long is the warranty on the frame?", "en"),
        ("보증 기간은 얼마나 되나요?", "ko"),
        ("SD2 모델의 보증 기간은?", "ko"),  # Latin model names in a Korean question
        ("What does 보증 mean in the Korean policy document?", "en"),  # one Korean word
        ("E05 오류가 나면 어떻게 하나요?", "ko"),
        ("12345 ???", "en"),  # no letters at all
        ("What is 보증 기간?", "en"),  # an English question about a Korean term
        ("Docker Compose 로 PostgreSQL 설정하는 법", "ko"),
        ("iPhone 15 Pro Max 배터리 교체 비용", "ko"),
        ("USB-C 충전기는 몇 W인가요?", "ko"),
    ],
)
def test_detect_language(question: str, language: str) -> None:
    assert detect_language(question) == language


def test_templates_by_language() -> None:
    ko = template_for("책상 높이는 어떻게 바꾸나요?")
    en = template_for("How do I change the desk height?")
    assert ko is TEMPLATES["ko"] and en is TEMPLATES["en"]
    assert "[1]" in ko.system and "[1]" in en.system  # both ask for numbered citations
    assert "한국어" in ko.system
    msgs = messages(ko, "질문?", "[1] a.txt\n내용")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[1]["content"] == "자료:\n\n[1] a.txt\n내용\n\n질문: 질문?"


def test_braces_in_sources_are_kept() -> None:
    msgs = messages(TEMPLATES["en"], "q {x}?", "code: {not_a_field}")
    assert "code: {not_a_field}" in msgs[1]["content"] and "q {x}?" in msgs[1]["content"]


# --------------------------------------------------------------------------- citations


def test_cited_numbers_forms() -> None:
    text = "Seven years [2]. Also [1][3], see [1, 4] and［5］; [2] again; not a year [2024x]."
    assert cited_numbers(text) == [2, 1, 3, 4, 5]
    assert cited_numbers("no citations here") == []
    assert cited_numbers("ranges [2-4] and [6–7], lenticular 【1】, both [9, 1-2]") == [
        2, 3, 4, 6, 7, 1, 9,
    ]  # fmt: skip
    assert cited_numbers("a date range [1990-2020] is not a citation list") == []


def test_map_citations_to_sources_and_pages() -> None:
    ctx = build_context([hit(1, 3), hit(2, None), hit(3, 7)], lambda t: [1] * len(t), 100)
    text = "The frame has seven years [3]. Motors too [1][3]. Invented [9] and [0]."
    cites = map_citations(text, ctx)
    assert [c.n for c in cites] == [3, 1]  # first appearance; invalid numbers ignored
    assert cites[0] == Citation(3, "/docs/f3.pdf", 7, "d3", "d3#3")
    assert cites[1] == Citation(1, "/docs/f1.pdf", 3, "d1", "d1#1")
    assert map_citations("only invalid [4] [12]", ctx) == []


def test_numbers_follow_context_order_not_hit_order() -> None:
    # hits arrive unsorted; [1] is the best-scored one
    ctx = build_context([hit(3, 1), hit(1, 2)], lambda t: [1] * len(t), 100)
    assert map_citations("x [1]", ctx)[0].doc_id == "d1"


# --------------------------------------------------------------------------- settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SNAPRAG_"):
            monkeypatch.delenv(name)


def test_llm_defaults_and_env(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config()
    assert cfg.llm == "extractive" and cfg.llm_temperature == 0.0
    assert cfg.context_tokens == 1024 and cfg.llm_max_tokens < cfg.llm_ctx
    monkeypatch.setenv("SNAPRAG_LLM", "openai:http://127.0.0.1:8080/v1")
    monkeypatch.setenv("SNAPRAG_LLM_TIMEOUT", "2.5")
    monkeypatch.setenv("SNAPRAG_LLM_RETRIES", "0")
    monkeypatch.setenv("SNAPRAG_LLM_API_KEY", "sk-secret")
    cfg = Config.from_env()
    assert cfg.llm == "openai:http://127.0.0.1:8080/v1"
    assert cfg.llm_timeout == 2.5 and cfg.llm_retries == 0
    assert cfg.llm_api_key == "sk-secret" and "sk-secret" not in repr(cfg)
    assert Config.from_env(llm="smollm2", llm_threads=3).effective_llm_threads == 3


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"llm": "gpt"}, "extractive, smollm2, gguf:PATH, openai:BASE_URL"),
        ({"llm": "gguf:"}, "gguf:PATH"),
        ({"llm": "openai:localhost:8080"}, "http://"),
        ({"llm_max_tokens": 4096, "llm_ctx": 4096}, "below llm_ctx"),
        ({"llm_ctx": 64}, "llm_ctx must be >= 128"),
        ({"llm_temperature": 3.0}, "[0, 2]"),
        ({"llm_timeout": 0.0}, "llm_timeout"),
        ({"llm_retries": -1}, "llm_retries"),
        ({"llm_gpu_layers": -2}, "-1 = all"),
        ({"context_tokens": 8}, "context_tokens"),
        ({"llm_parallel": 0}, "llm_parallel"),
    ],
)
def test_bad_llm_settings(settings: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**settings)
    assert needle in str(info.value)


def test_bad_llm_env_value(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPRAG_LLM_CTX", "big")
    with pytest.raises(ConfigError, match="SNAPRAG_LLM_CTX"):
        Config.from_env()


# --------------------------------------------------------------------------- events


def test_event_shapes() -> None:
    h = hit(1, 2)
    answer = Answer(
        "q",
        "Seven years [1].",
        [Citation(1, h.source, 2, h.doc_id, h.id)],
        [h],
        StageTimings({"retrieve": 1.0, "prefill": 2.0}),
        "smollm2",
        {"ttft_ms": 3.0, "tokens_per_s": 40.0},
        "stop",
    )
    events = list(answer.events())
    assert [e.kind for e in events] == ["hits", "token", "done"]
    assert events[-1].answer is answer
    done = events[-1].to_dict()
    assert done["event"] == "done" and done["answer"]["generator"] == "smollm2"
    assert done["answer"]["metrics"] == {"ttft_ms": 3.0, "tokens_per_s": 40.0}
    assert done["answer"]["finish_reason"] == "stop"
    assert events[0].to_dict()["hits"][0]["id"] == h.id
    assert events[1].to_dict() == {"event": "token", "text": "Seven years [1]."}
    err = AnswerEvent("error", error=GenerationError("server went away", "stream_dropped"))
    assert err.to_dict() == {
        "event": "error",
        "code": "stream_dropped",
        "message": "server went away",
    }
    assert isinstance(err.error, SnapragError)
    json.dumps([e.to_dict() for e in [*events, err]])  # all JSON-ready


def test_server_error_texts_about_deadlines_are_not_overflows() -> None:
    from snaprag.generate.openai import _is_context_message

    assert _is_context_message("the request exceeds the available context size")
    assert _is_context_message(
        "This model's maximum context length is 4096 tokens. However, you requested 5000"
    )
    assert not _is_context_message("context deadline exceeded")
    assert not _is_context_message("upstream error: context deadline exceeded (timeout)")
    assert not _is_context_message("context canceled")


def test_token_estimate_is_an_upper_bound_for_korean() -> None:
    from snaprag.generate.openai import approx_tokens

    korean = "보증 기간은 얼마나 되나요? 프레임과 모터는 7년입니다."
    assert approx_tokens(korean) >= len(korean.encode("utf-8")) - korean.count(" ") - 8
    assert approx_tokens("a" * 30) == 10
