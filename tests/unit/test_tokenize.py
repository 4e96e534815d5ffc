"""Lexical analysis: English stemming and stop words, Korean morphemes, mixed text."""

from __future__ import annotations

import multiprocessing
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from snaprag.errors import ConfigError
from snaprag.index.tokenize import (
    DEFAULT_KOREAN_MODE,
    ENGLISH_STOP_WORDS,
    KOREAN_MODES,
    TOKENIZER_VERSION,
    tokenize,
    tokenize_many,
    warm_up,
)

KOREAN = [
    "학교에서 공부를 했습니다.",
    "대한민국의 수도는 서울이다.",
    "임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?",
    "BM25를 사용한 검색 engines are running fast",
    "1989년 2월 15일",
]


# ---------------------------------------------------------------- English


def test_english_stemming_and_stop_words():
    tokens = tokenize("The runners were running quickly through the systems")
    assert tokens == ["runner", "run", "quick", "system"]


def test_inflections_share_a_stem():
    assert tokenize("connection") == tokenize("connected") == tokenize("connecting")
    assert tokenize("Studies") == tokenize("study")


def test_only_stop_words_gives_nothing():
    assert tokenize("the and of it is was to") == []


def test_stop_words_list():
    assert {"the", "and", "of", "with", "which"} <= ENGLISH_STOP_WORDS
    # content words that scikit-learn's list drops are kept here
    assert not {"system", "fire", "bill", "interest", "name"} & ENGLISH_STOP_WORDS
    assert tokenize("fire system") == ["fire", "system"]


def test_single_characters_are_dropped_digits_of_two_kept():
    assert tokenize("a b c 3 x") == []
    assert tokenize("covid-19 in 2020") == ["covid", "19", "2020"]


def test_case_folding_and_nfkc():
    assert tokenize("ＡＢＣ Ｄｅｆｇ") == tokenize("abc defg") == ["abc", "defg"]
    assert tokenize("ﬁle") == tokenize("file")  # ligature
    assert tokenize("STRASSE") == tokenize("Straße")  # casefold, not lower
    assert tokenize("Ⅻ century") == tokenize("xii century")


def test_other_scripts_are_kept_as_words():
    assert tokenize("東京 Ελληνικά") == ["東京", "ελληνικά"]


# ---------------------------------------------------------------- Korean


def morph(text: str) -> list[str]:
    return tokenize(text, korean="morph")


def test_korean_particles_and_endings_are_dropped():
    tokens = morph("학교에서")
    assert "학교" in tokens
    assert "에서" not in tokens
    assert morph("학교를") == morph("학교에서") == morph("학교는") == ["학교"]
    tokens = morph("공부를 했습니다")
    assert "공부" in tokens
    assert not {"를", "습니다", "었"} & set(tokens)


def test_korean_verb_stems_are_kept():
    assert "먹" in morph("밥을 먹었다")
    assert "먹" in morph("먹고 싶다")


def test_number_and_unit_are_joined():
    tokens = morph("1989년 2월 15일")
    assert {"1989년", "2월", "15일"} <= set(tokens)
    assert "1989" in tokens and "15" in tokens  # the plain numbers of 2+ digits stay
    assert "2" not in tokens  # single digits alone are still dropped
    assert "2월" not in morph("2개") and "2개" in morph("2개")
    assert "3.1운동" in morph("3.1운동은")
    assert "2월" not in morph("2 월")  # only when written together
    assert "2월" not in tokenize("1989년 2월", korean="bigram")  # bigram mode is unchanged
    assert "2월" in tokenize("1989년 2월")  # the default mode has it


def test_morph_bigram_mode_is_morphemes_plus_bigrams():
    assert DEFAULT_KOREAN_MODE == "morph"
    for text in [
        "학교에서 공부를 했습니다.",
        "대한민국의 수도는 서울이다.",
        "서울지방검찰청 공안부",
    ]:
        assert tokenize(text) == morph(text)
        assert Counter(tokenize(text, korean="morph+bigram")) == Counter(morph(text)) + Counter(
            tokenize(text, korean="bigram")
        )
    # in text order; at one position the morpheme comes before the bigram
    assert tokenize("학교에서", korean="morph+bigram") == ["학교", "학교", "교에", "에서"]
    # a name the analyser may split ("임종 석") still matches its unsplit form by bigrams
    assert {"임종", "종석"} <= set(tokenize("임종석이 발표했다", korean="morph+bigram"))


def test_text_without_hangul_is_the_same_in_every_mode():
    for text in ["The runners were running quickly", "covid-19 in 2020", "東京 Ελληνικά"]:
        assert len({tuple(tokenize(text, korean=m)) for m in KOREAN_MODES}) == 1


def test_korean_bigram_mode():
    assert tokenize("학교에서", korean="bigram") == ["학교", "교에", "에서"]
    assert tokenize("집", korean="bigram") == ["집"]
    assert tokenize("집 학교", korean="bigram") == ["집", "학교"]


def test_mixed_text_in_text_order():
    tokens = morph("BM25를 사용한 검색 engines")
    assert tokens[0] == "bm25"
    assert tokens[-1] == "engin"  # English part stemmed
    assert "검색" in tokens and "사용" in tokens
    assert "를" not in tokens
    assert tokens.index("사용") < tokens.index("검색")
    bigrams = tokenize("BM25를 사용한 검색 engines", korean="bigram")
    assert bigrams == ["bm25", "를", "사용", "용한", "검색", "engin"]
    both = tokenize("BM25를 사용한 검색 engines", korean="morph+bigram")
    assert both == ["bm25", "를", "사용", "사용", "용한", "검색", "검색", "engin"]


def test_decomposed_hangul_is_composed():
    decomposed = "\u1112\u1161\u11a8\u1100\u116d"  # 학교 as conjoining jamo (NFD)
    assert morph(decomposed) == morph("학교") == ["학교"]
    assert tokenize(decomposed, korean="morph+bigram") == ["학교", "학교"]


@pytest.mark.parametrize("korean", KOREAN_MODES)
def test_empty_and_blank_texts(korean):
    assert tokenize("", korean=korean) == []
    assert tokenize("   \n\t", korean=korean) == []
    assert tokenize("!!! ... ?", korean=korean) == []
    assert tokenize_many([], korean=korean) == []
    assert tokenize_many(["", " ", "학교"], korean=korean)[:2] == [[], []]


@pytest.mark.parametrize("korean", KOREAN_MODES)
def test_deterministic_and_batch_equals_single(korean):
    texts = [*KOREAN, "The quick brown foxes", "", "혼합 mixed 텍스트 texts"]
    single = [tokenize(t, korean=korean) for t in texts]
    assert tokenize_many(texts, korean=korean) == single
    assert tokenize_many(texts, korean=korean) == single
    assert tokenize_many(list(reversed(texts)), korean=korean) == list(reversed(single))


def test_unknown_korean_mode_is_rejected():
    with pytest.raises(ConfigError, match="morph, bigram"):
        tokenize("학교", korean="jamo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="morph, bigram"):
        warm_up("jamo")  # type: ignore[arg-type]


def test_concurrent_use_matches_serial():
    texts = KOREAN * 20 + ["Running studies of systems"] * 20
    serial = [tokenize(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(tokenize, texts)) == serial
        chunks = [texts[i : i + 7] for i in range(0, len(texts), 7)]
        batched = [t for chunk in pool.map(tokenize_many, chunks) for t in chunk]
    assert batched == serial


def _tokenize_in_child(queue):
    queue.put(tokenize_many(KOREAN))


@pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
    reason="needs fork()",
)
def test_forked_child_can_tokenize_korean():
    warm_up()  # the parent holds a loaded analyser with worker threads
    expected = tokenize_many(KOREAN)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_tokenize_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=60) == expected
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


def test_version_is_an_int():
    assert isinstance(TOKENIZER_VERSION, int)


def test_kiwi_is_imported_only_when_korean_text_is_tokenized():
    """The analyser costs ~1 s and ~300 MB: English-only work must never load it."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from snaprag.index.tokenize import tokenize_many, has_hangul\n"
        "tokenize_many(['Plain English text', 'numbers 2024 and units'])\n"
        "has_hangul('still English')\n"
        "print('kiwipiepy' in sys.modules)\n"
        "tokenize_many(['한국어 문장입니다'])\n"
        "print('kiwipiepy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out == ["False", "True"]
