"""Prompt templates for cited answers, in English and Korean.

The template is chosen by the language of the question (Hangul share), so that a Korean
question gets Korean instructions and the model answers in Korean. Sources are numbered
blocks; the model is asked to cite them as ``[n]``, which :mod:`.citations` maps back to
documents and pages.

Bump :data:`PROMPT_VERSION` whenever a template changes: it is part of every LLM
generator's fingerprint, so cached answers made with an older prompt are not reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..index.tokenize import has_hangul

PROMPT_VERSION = "1"

_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class PromptTemplate:
    language: str
    system: str
    #: the user turn; ``{sources}`` and ``{question}`` are filled in
    user: str
    #: said when retrieval found nothing, without asking the model
    no_answer: str
    #: what a source block's page reads like, e.g. "p. 3" / "3쪽"
    page: str


TEMPLATES: dict[str, PromptTemplate] = {
    "en": PromptTemplate(
        language="en",
        system=(
            "You answer questions using only the numbered sources you are given. "
            "After every sentence, cite the sources it comes from by number in square "
            "brackets, like [1] or [2][3]. If the sources do not contain the answer, say that "
            "the documents do not answer the question. Be brief: at most three sentences."
        ),
        user="Sources:\n\n{sources}\n\nQuestion: {question}",
        no_answer="No answer found in the indexed documents.",
        page="p. {page}",
    ),
    "ko": PromptTemplate(
        language="ko",
        system=(
            "당신은 주어진 번호가 붙은 자료만 사용해 질문에 답합니다. "
            "각 문장 끝에 그 내용이 나온 자료의 번호를 [1] 또는 [2][3]처럼 대괄호로 표시하세요. "
            "자료에 답이 없으면 문서에서 답을 찾을 수 없다고 말하세요. "
            "한국어로 세 문장 이내로 간결하게 답하세요."
        ),
        user="자료:\n\n{sources}\n\n질문: {question}",
        no_answer="색인된 문서에서 답을 찾지 못했습니다.",
        page="{page}쪽",
    ),
}


def detect_language(text: str) -> str:
    """``ko`` when the question has more Korean words than English ones, else ``en``.

    Words, not letters, are counted (one Hangul syllable carries as much as two or three
    Latin letters), and Latin words that are names or codes rather than English do not
    count: ALLCAPS, CamelCase, words with digits, and capitalized words after the first
    ("iPhone 15 Pro Max 배터리", "SD2 모델의 보증 기간", "Docker Compose 로 설정하는 법" are
    Korean; "What does 보증 mean in the Korean policy?" and "What is 보증 기간?" are
    English).
    """
    korean = english = 0
    for i, word in enumerate(_WORD.findall(text)):
        if has_hangul(word):
            korean += 1
        elif _LETTER.search(word) and not _is_name(word, first=i == 0):
            english += 1
    return "ko" if korean > english else "en"


def _is_name(word: str, first: bool) -> bool:
    letters = "".join(_LETTER.findall(word))
    if any(c.isdigit() for c in word) or (len(letters) > 1 and letters.isupper()):
        return True  # SD2, E05, USB
    if any(c.isupper() for c in letters[1:]):
        return True  # iPhone, PostgreSQL
    return letters[:1].isupper() and not first  # Pro, Max, Korean (mid-sentence)


def template_for(question: str) -> PromptTemplate:
    return TEMPLATES[detect_language(question)]


def messages(template: PromptTemplate, question: str, sources: str) -> list[dict[str, str]]:
    """The chat messages of one request (system instructions, then sources and question)."""
    return [
        {"role": "system", "content": template.system},
        {"role": "user", "content": template.user.format(sources=sources, question=question)},
    ]
