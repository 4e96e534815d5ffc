"""Semantic cache guards: same content words, numbers and negations, or no hit."""

from __future__ import annotations

import numpy as np
import pytest

from snaprag.bench.variants import build_variants
from snaprag.cache.normalize import normalize_query
from snaprag.cache.semantic import QueryFeatures, SemanticCache


def _f(text: str) -> QueryFeatures:
    return QueryFeatures.of(normalize_query(text))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Is aspirin effective for headaches?",
            "Is it true that aspirin is effective for headache",
        ),
        ("warranty of the frame", "please tell me the warranty of the frame"),
        ("보증 기간은 얼마나 되나요?", "질문: 보증 기간이 얼마나 되나요"),
        ("프레임 보증 기간", "프레임 보증 기간을 알려주세요"),
    ],
)
def test_same_question_agrees(a: str, b: str) -> None:
    assert _f(a).agrees(_f(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is aspirin effective for headaches?", "Is aspirin not effective for headaches?"),
        ("Aspirin works for headaches", "Aspirin never works for headaches"),
        ("Aspirin works for headaches", "Aspirin doesn't work for headaches"),
        ("prices in 2019", "prices in 2020"),
        ("warranty of the frame", "warranty of the wheels"),
        ("warranty of the carbon frame", "warranty of the frame"),
        ("risk is higher after surgery", "risk is higher before surgery"),
        ("more effective than placebo", "less effective than placebo"),
        ("stress in endoplasmic stress", "stress in endoplasmic"),  # counts matter
        ("보증 기간은 얼마나 되나요", "보증 기간은 얼마나 안 되나요"),
        ("보증이 있는 부품", "보증이 없는 부품"),
        ("1989년에 파견된 인물", "1990년에 파견된 인물"),
        ("flights from seoul to busan", "flights from busan to seoul"),  # word order
        ("what did alice tell bob", "what did bob tell alice"),
        ("when was the company founded", "where was the company founded"),
        ("all employees get a bonus", "some employees get a bonus"),
        ("warranty for one year old devices", "warranty for two year old devices"),
        ("can he return the desk", "can she return the desk"),
        ("is x larger than y", "is y larger than x"),
        ("보증은 언제 시작되나요", "보증은 어디서 시작되나요"),
    ],
)
def test_different_question_disagrees(a: str, b: str) -> None:
    assert not _f(a).agrees(_f(b))


def test_empty_content_never_agrees() -> None:
    assert not _f("what is it?").agrees(_f("what is it"))


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_lookup_needs_threshold_and_guards() -> None:
    sem = SemanticCache(threshold=0.9)
    sem.add("s", normalize_query("is aspirin effective"), _unit([1, 0, 0]), "k1")
    near = _unit([1, 0.1, 0])
    far = _unit([1, 1, 0])
    assert sem.lookup("s", normalize_query("Is it true that aspirin is effective"), near) == (
        "k1",
        pytest.approx(float(near[0]), abs=1e-6),
    )
    assert sem.lookup("s", normalize_query("is aspirin effective"), far) is None  # threshold
    assert sem.lookup("s", normalize_query("is aspirin not effective"), near) is None  # guard
    assert sem.rejected == 1
    assert sem.lookup("other scope", normalize_query("is aspirin effective"), near) is None
    unguarded = SemanticCache(threshold=0.9, guards=False)
    unguarded.add("s", "is aspirin effective", _unit([1, 0, 0]), "k1")
    assert unguarded.lookup("s", "is aspirin not effective", near) is not None


def test_scopes_and_entries_are_bounded() -> None:
    sem = SemanticCache(threshold=0.5, max_entries=4, scopes=2)
    for i in range(10):
        sem.add("a", f"query number {i} words", _unit([1, i, 0]), f"k{i}")
    assert len(sem) <= 4
    sem.add("b", "x words", _unit([1, 0, 0]), "b")
    sem.add("c", "y words", _unit([1, 0, 0]), "c")
    assert sem.lookup("a", "query number 9 words", _unit([1, 9, 0])) is None  # scope dropped
    assert sem.lookup("c", "y words", _unit([1, 0, 0])) == ("c", pytest.approx(1.0))


def test_variant_set_is_labelled_sensibly() -> None:
    queries = [
        "Vitamin D deficiency increases the risk of 3 diseases.",
        "Aspirin reduces the risk of stroke in adults.",
        "1989년 6월 30일 평양축전에 대표로 파견 된 인물은?",
        "임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?",
    ]
    variants = build_variants(queries)
    kinds = {(v.kind, v.same) for v in variants}
    assert ("negation", False) in kinds and ("number", False) in kinds
    assert ("framing", True) in kinds and ("word swapped", False) in kinds
    for v in variants:
        assert v.text != v.original
        same = _f(v.text).agrees(_f(v.original))
        if v.kind == "framing":
            assert same, v
        if not v.same:
            assert not same, v
