"""Which passages the extractive answer quotes, and when it says there is no answer.

The embedder is the deterministic hash fake: these tests are about the text handling,
the lexical scoring and the abstention rule, not about a model's judgement.
"""

from __future__ import annotations

from snaprag.embed.hashing import HashEmbedder
from snaprag.generate.abstain import AbstentionRule, Evidence
from snaprag.generate.extractive import ExtractiveAnswerer
from snaprag.types import Hit

CLAIM = (
    "2. How to make a warranty claim\n"
    "1. Find the serial number on the label of the control box under the desktop. It has 9 "
    "characters\nand starts with SD2, for example SD2481730.\n"
    "2. Take a short video or photos that show the problem.\n"
    "3. Send the serial number, your order number and the video to support@snapdesk.example.\n"
    "We answer every claim within 2 business days. In the USA, a technician visit can be "
    "booked for frame or motor replacements at no cost while the warranty is valid."
)
COVERAGE = (
    "1. Warranty coverage\n"
    "Snapdesk Inc. warrants the Snapdesk S2 against defects in materials and workmanship "
    "for the\nfollowing periods, counted from the date of delivery:\n"
    "- Frame and lifting motors: 7 years.\n"
    "- Electronics (control box, handset, power supply): 3 years.\n"
    "- Desktop surface, including edges and laminate: 2 years.\n"
    "The warranty covers the original purchaser and is not transferable when the desk is sold."
)
EXCLUSIONS = (
    "The warranty does not cover:\n- damage from loads above the rated 120 kg;\n"
    "- liquid damage to the electronics.\nOut-of-warranty repairs cost a flat service fee of "
    "USD 89 plus parts."
)
KOREAN = (
    "프레임과 모터는 7년, 컨트롤 박스와\n"
    "핸드셋, 전원 어댑터 같은 전자 부품은 3년, 상판은 2년 동안 무상으로 보증합니다.\n"
    "보증 기간은 구매일이 아니라 제품을 받은 날(배송 완료일)부터 계산합니다."
)


def _hit(n: int, text: str, page: int | None = None, section: str = "") -> Hit:
    source = "/docs/warranty-and-service.pdf" if page else "/docs/policy.txt"
    return Hit(f"d{n}#0", f"d{n}", source, page, 1.0 / (n + 1), text, section=section)


def _answerer(**kwargs: object) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(HashEmbedder(), **kwargs)  # type: ignore[arg-type]


HITS = [
    _hit(0, CLAIM, 2, "2. How to make a warranty claim"),
    _hit(1, COVERAGE, 1, "1. Warranty coverage"),
    _hit(2, EXCLUSIONS, 3, "3. Exclusions"),
]


def test_a_how_to_question_gets_the_steps_in_order_with_page_and_section() -> None:
    answer = _answerer().answer("How do I make a warranty claim?", HITS)
    assert answer.text.startswith("1. Find the serial number")
    steps = answer.text.index("1. Find"), answer.text.index("2. Take"), answer.text.index("3. Send")
    assert list(steps) == sorted(steps)
    assert "characters and starts with SD2" in answer.text  # the wrapped item stays whole
    assert "[warranty-and-service.pdf p.2]" in answer.text
    first = answer.citations[0]
    assert (first.page, first.section) == (2, "2. How to make a warranty claim")


def test_a_list_question_quotes_the_list_with_its_introduction() -> None:
    answer = _answerer().answer("What does the warranty not cover?", HITS)
    assert answer.text.startswith("The warranty does not cover: - damage from loads")
    assert "liquid damage" in answer.text.split("[")[0]


def test_a_korean_sentence_broken_across_lines_is_quoted_whole() -> None:
    answer = _answerer().answer("프레임과 모터의 보증 기간은 몇 년인가요?", [_hit(0, KOREAN)])
    assert answer.text.startswith("프레임과 모터는 7년, 컨트롤 박스와 핸드셋, 전원 어댑터")
    assert answer.citations and answer.citations[0].source == "/docs/policy.txt"


def test_passages_far_from_the_question_are_not_added() -> None:
    answer = _answerer().answer("How much does an out-of-warranty repair cost?", HITS)
    assert answer.text.startswith("Out-of-warranty repairs cost a flat service fee of USD 89")
    assert "serial number" not in answer.text and "7 years" not in answer.text


def test_the_same_sentence_in_two_hits_is_quoted_once() -> None:
    text = "The frame is covered by a seven-year warranty. Keep the receipt."
    hits = [_hit(0, text), _hit(1, "In short: " + text)]
    answer = _answerer().answer("How long is the frame warranty?", hits)
    assert answer.text.count("seven-year warranty") == 1


def test_no_answer_when_the_hits_do_not_say_what_was_asked() -> None:
    answer = _answerer().answer("What is the capital of France?", HITS)
    assert answer.text == "No answer found in the indexed documents."
    assert answer.citations == [] and answer.metrics["abstained"] == 1.0
    assert answer.hits == HITS  # what retrieval found is still there to look at


def test_no_answer_in_the_question_s_language() -> None:
    answer = _answerer().answer("프랑스의 수도는 어디인가요?", HITS)
    assert answer.text == "색인된 문서에서 답을 찾지 못했습니다." and not answer.citations


def test_no_answer_without_hits_or_quotable_text() -> None:
    assert not _answerer().answer("frame warranty?", []).citations
    headings_only = [_hit(0, "Warranty\n\nFrame")]
    assert not _answerer().answer("frame warranty?", headings_only).citations


def test_the_abstention_rule_is_the_answerer_s() -> None:
    never = AbstentionRule(min_coverage=0.0)
    always = AbstentionRule(min_coverage=1.1)
    question = "How long is the warranty on the frame?"
    assert _answerer(rule=never).answer(question, HITS).citations
    assert not _answerer(rule=always).answer(question, HITS).citations
    assert _answerer().answer(question, HITS).metrics["coverage"] > 0


def test_abstention_rule() -> None:
    rule = AbstentionRule(min_coverage=0.2, similarity_floor=0.5, sure_coverage=0.6)
    assert rule.abstains(Evidence(coverage=0.1, similarity=0.9, terms=3))  # too little said
    assert not rule.abstains(Evidence(coverage=0.4, similarity=0.6, terms=3))
    assert rule.abstains(Evidence(coverage=0.4, similarity=0.4, terms=3))  # and far apart
    assert not rule.abstains(Evidence(coverage=0.7, similarity=0.1, terms=3))  # sure enough
    assert rule.abstains(Evidence(coverage=1.0, similarity=1.0, terms=0))  # nothing asked
    coverage_only = AbstentionRule(min_coverage=0.2)
    assert not coverage_only.abstains(Evidence(coverage=0.3, similarity=-1.0, terms=2))


def test_each_measured_model_has_a_similarity_floor_and_others_none() -> None:
    assert AbstentionRule.for_model("minilm").similarity_floor is not None
    assert AbstentionRule.for_model("/models/my-encoder").similarity_floor is None
