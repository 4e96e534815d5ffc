"""Lexical analysis for BM25: the same function tokenizes documents and queries.

Every text is NFKC-normalised and case-folded, then split by script:

* Hangul runs go to Korean analysis, in one of three modes:

  - ``korean="morph"`` (default) runs the kiwipiepy morphological analyser and keeps content
    morphemes (nouns, numerals, pronouns, verb and adjective stems, roots, adverbs,
    determiners) while dropping particles (J*), endings (E*), affixes other than roots
    (X*) and symbols, so "학교에서" and "학교를" both give "학교". A number written next to
    its noun or unit also gives one joined token ("2월", "1989년", "3개"): a single digit
    alone is dropped (below), and "2월" must not match "2개".
  - ``korean="bigram"`` emits overlapping character bigrams of each Hangul run instead:
    no model to load (Kiwi takes ~1 s and ~300 MB) and 15-20x faster.
  - ``korean="morph+bigram"`` emits both. Bigrams catch what the analyser splits or joins
    inconsistently (names, compounds: "임종석" vs "임종 석"), and on KorQuAD this mode
    ranks best (docs/benchmarks.md, "Korean tuning"), at 2.4x the postings. It is not the
    default because callers that compare the default tokens of two questions (the
    semantic cache) would see rephrasings differ by bigrams across particles
    ("기간은" / "기간이").

* Everything else is matched as word tokens of two or more word characters, English stop
  words are removed and the rest is stemmed with the Snowball English stemmer (PyStemmer).

In mixed text ("BM25를 사용한 검색") both happen to their own parts of the text, and the
tokens come back in text order (at one position: English words, then morphemes, then
bigrams). Text without Hangul gives the same tokens in every mode.

Output depends only on the input text and the mode (and the pinned analyser versions), so
documents tokenized at ingest match queries tokenized later. Change anything here that
alters output and bump :data:`TOKENIZER_VERSION`, so stored token lists get rebuilt.

Threading: the Kiwi analyser is built once per process on first use, under a lock; its
``tokenize`` only reads the loaded model and may be called from several threads (verified
here: results match a serial run, though threads do not run it in parallel). PyStemmer
stemmers keep internal state and must not be shared, so each thread gets its own. A
forked child keeps using the parent's analyser, one text at a time, because the
analyser's worker threads do not survive fork().
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from snaprag.errors import ConfigError
from snaprag.system import usable_cpus
from snaprag.types import SECTION_SEPARATOR

__all__ = [
    "DEFAULT_KOREAN_MODE",
    "ENGLISH_STOP_WORDS",
    "KOREAN_MODES",
    "TOKENIZER_VERSION",
    "KoreanMode",
    "hangul_share",
    "has_hangul",
    "indexed_text",
    "tokenize",
    "tokenize_many",
    "warm_up",
]

KoreanMode = Literal["morph", "bigram", "morph+bigram"]
KOREAN_MODES: tuple[str, ...] = ("morph", "bigram", "morph+bigram")
#: The mode that documents are indexed and queries searched with.
DEFAULT_KOREAN_MODE: KoreanMode = "morph"

#: Bumped whenever a change alters the tokens produced for some text.
#: 2: number + unit tokens ("2월") in the morph modes.
#: 3: each chunk's heading term (:mod:`.heading_terms`) stored with its terms.
TOKENIZER_VERSION = 3

# The Glasgow IR group list that scikit-learn ships, less the content words in it
# ("system", "fire", "bill", "interest", "show", "find", "part", "name", ...) that are
# search terms in some collections, and less entries that the word pattern can never
# produce ("couldn't"). Measured against Lucene's 33-word English set with the same
# stemming (nDCG@10): SciFact train .696 -> .697, test .679 -> .684, NFCorpus .330 -> .332,
# Cranfield .339 -> .346.
_STOP_WORDS_TEXT = """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst an and another any anyhow anyone anything anyway
    anywhere are around as at be became because become becomes becoming been before
    beforehand behind being below beside besides between beyond both but by can cannot cant
    could do done down due during each eg eight either eleven else elsewhere enough etc even
    ever every everyone everything everywhere except few fifteen fifty first five for former
    formerly forty four from further get go had has have he hence her here hereafter hereby
    herein hereupon hers herself him himself his how however hundred i ie if in indeed into
    is it its itself last latter latterly least less made many may me meanwhile might mine
    more moreover most mostly much must my myself namely neither never nevertheless next nine
    no nobody none noone nor not nothing now nowhere of off often on once one only onto or
    other others otherwise our ours ourselves out over own per perhaps please rather re same
    see seem seemed seeming seems several she should since six sixty so some somehow someone
    something sometime sometimes somewhere still such ten than that the their them
    themselves then thence there thereafter thereby therefore therein thereupon these they
    third this those though three through throughout thru thus to together too toward
    towards twelve twenty two under until up upon us very via was we well were what whatever
    when whence whenever where whereafter whereas whereby wherein whereupon wherever whether
    which while whither who whoever whole whom whose why will with within without would yet
    you your yours yourself yourselves
"""
ENGLISH_STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())

# Hangul syllables, conjoining jamo (what NFKC turns compatibility jamo into) and the
# extended jamo blocks.
_HANGUL = "\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff"
_has_hangul = re.compile(f"[{_HANGUL}]").search
_hangul_runs = re.compile(f"[{_HANGUL}]+").finditer
# Two or more word characters that are not Hangul. Single characters ("a", "3") are
# dropped: keeping digits measured no better on SciFact, NFCorpus, Cranfield or KorQuAD.
_word_tokens = re.compile(rf"[^\W{_HANGUL}]{{2,}}").finditer

# Kiwi tags kept in the morph modes: nouns (general, proper, bound), numerals, pronouns,
# verb/adjective/auxiliary stems (with their irregular-conjugation variants), roots,
# adverbs and determiners. Latin, hanja and digits (SL/SH/SN) come from the word pattern,
# except that a number directly followed by a noun or unit (SN + NNB/NNG: "2월", "15일",
# "3.1운동") is also kept joined, so that dates and counts can match. Measured on the
# KorQuAD dev tuning half (docs/benchmarks.md, "Korean tuning"): dropping adverbs and
# determiners, bound nouns, or everything but nouns scored lower.
_KIWI_UNITS = frozenset({"NNB", "NNG"})
_KIWI_KEEP = frozenset(
    {"NNG", "NNP", "NNB", "NR", "NP", "XR", "MAG", "MM"}
    | {f"{t}{v}" for t in ("VV", "VA", "VX") for v in ("", "-I", "-R")}
)

_kiwi: Any = None
_kiwi_lock = threading.Lock()
_kiwi_pool_usable = True
_local = threading.local()


def _after_fork_in_child() -> None:
    # Kiwi's worker threads do not survive fork(): a batch call in the child waits
    # forever, and so does dropping the analyser (its destructor joins the threads).
    # Analysing one text at a time on the calling thread still works, so the child keeps
    # the parent's analyser (shared pages, no reload) and stops using its pool.
    global _kiwi_lock, _kiwi_pool_usable
    _kiwi_lock = threading.Lock()
    if _kiwi is not None:
        _kiwi_pool_usable = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def tokenize(text: str, *, korean: KoreanMode = DEFAULT_KOREAN_MODE) -> list[str]:
    """Tokens of one text (document or query), in text order; ``[]`` for empty text."""
    return tokenize_many([text], korean=korean)[0]


def tokenize_many(
    texts: Sequence[str], *, korean: KoreanMode = DEFAULT_KOREAN_MODE
) -> list[list[str]]:
    """:func:`tokenize` for many texts; faster than a loop (shared stemming, batched Kiwi)."""
    if korean not in KOREAN_MODES:
        raise ConfigError(f"korean must be one of {', '.join(KOREAN_MODES)}; got {korean!r}")
    normed = [_normalize(t) for t in texts]
    words = [_english_words(t) for t in normed]
    _stem_in_place(words)
    hangul = [i for i, t in enumerate(normed) if _has_hangul(t)]
    if not hangul:
        return [[w for _, w in ws] for ws in words]
    if korean == "bigram":
        korean_tokens = [_bigram_tokens(normed[i]) for i in hangul]
    else:
        korean_tokens = _kiwi_tokens([normed[i] for i in hangul])
        if korean == "morph+bigram":
            for i, kt in zip(hangul, korean_tokens, strict=True):
                kt.extend(_bigram_tokens(normed[i]))
    out = [[w for _, w in ws] for ws in words]
    for i, kt in zip(hangul, korean_tokens, strict=True):
        merged = words[i] + kt
        merged.sort(key=_position)  # stable, so morphemes sharing a start keep Kiwi's order
        out[i] = [w for _, w in merged]
    return out


#: longest heading path put in front of a chunk (its innermost headings are kept)
MAX_SECTION_CHARS = 200


def indexed_text(title: str, text: str, section: str = "") -> str:
    """The text that is embedded and BM25-indexed: title line, heading path line, chunk text.

    The heading path tells what a chunk is about when its own words do not (the second
    chunk of "Installing > Windows" never says "Windows"). A heading the chunk already
    starts with, or that repeats the title, is not written twice, so it does not weigh
    double in BM25.
    """
    lines = []
    if title and not text.startswith(title):
        lines.append(title)
    if section:
        headings = [h for h in section.split(SECTION_SEPARATOR) if h and h != title]
        if headings and _starts_with(text, headings[-1]):
            headings.pop()
        path = SECTION_SEPARATOR.join(headings)
        if len(path) > MAX_SECTION_CHARS:
            path = path[-MAX_SECTION_CHARS:].split(" ", 1)[-1]
        if path:
            lines.append(path)
    lines.append(text)
    return "\n".join(lines)


def _starts_with(text: str, heading: str) -> bool:
    """Whether ``text`` opens with ``heading``, maybe after its number ("2.3 Title")."""
    head = text[: len(heading) + 16].lstrip()
    return head.startswith(heading) or heading in head.split("\n", 1)[0]


def has_hangul(text: str) -> bool:
    """Whether ``text`` contains a Hangul syllable or jamo (NFKC-normalised text)."""
    return _has_hangul(text) is not None


_hangul_chars = re.compile(f"[{_HANGUL}]").findall


def hangul_share(text: str) -> float:
    """The share of ``text``'s letters that are Hangul (0.0 when it has no letters)."""
    letters = sum(ch.isalpha() for ch in text)
    return len(_hangul_chars(text)) / letters if letters else 0.0


def warm_up(korean: KoreanMode = DEFAULT_KOREAN_MODE) -> None:
    """Load what tokenizing Korean needs now (about 1 s for Kiwi) instead of on first use."""
    if korean not in KOREAN_MODES:
        raise ConfigError(f"korean must be one of {', '.join(KOREAN_MODES)}; got {korean!r}")
    tokenize("warm up 준비", korean=korean)


# --------------------------------------------------------------------------- internals


def _position(item: tuple[int, str]) -> int:
    return item[0]


def _normalize(text: str) -> str:
    if text.isascii():  # ASCII is NFKC-stable and case-folds like lower()
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


def _english_words(text: str) -> list[tuple[int, str]]:
    stop = ENGLISH_STOP_WORDS
    return [(m.start(), w) for m in _word_tokens(text) if (w := m.group()) not in stop]


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def _stem_in_place(words: list[list[tuple[int, str]]]) -> None:
    """Stem every word of every text with one ``stemWords`` call over distinct words."""
    distinct = list({w for ws in words for _, w in ws})
    if not distinct:
        return
    stems = dict(zip(distinct, _stemmer().stemWords(distinct), strict=True))
    for ws in words:
        ws[:] = [(p, stems[w]) for p, w in ws]


def _bigram_tokens(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for m in _hangul_runs(text):
        run, start = m.group(), m.start()
        if len(run) == 1:
            out.append((start, run))
        else:
            out.extend((start + j, run[j : j + 2]) for j in range(len(run) - 1))
    return out


def _get_kiwi() -> Any:
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                # The multi-word noun dictionary costs ~190 MB and ~1 s to load and made
                # no difference on KorQuAD; typo correction is not used.
                kiwi = Kiwi(
                    num_workers=usable_cpus(),
                    load_multi_dict=False,
                    load_typo_dict=False,
                )
                kiwi.tokenize("준비")  # the model finishes loading on the first call
                _kiwi = kiwi
    return _kiwi


def _kiwi_tokens(texts: list[str]) -> list[list[tuple[int, str]]]:
    kiwi = _get_kiwi()
    # A list goes through Kiwi's own worker pool; a single text runs on this thread.
    analysed: Iterable[Any]
    if len(texts) > 1 and _kiwi_pool_usable:
        analysed = kiwi.tokenize(texts)
    else:
        analysed = [kiwi.tokenize(t) for t in texts]
    return [_content_morphemes(toks) for toks in analysed]


def _content_morphemes(toks: Sequence[Any]) -> list[tuple[int, str]]:
    """Kept morphemes of one analysed text, plus number + unit pairs joined into one token."""
    keep, units = _KIWI_KEEP, _KIWI_UNITS
    out: list[tuple[int, str]] = []
    prev = None
    for t in toks:
        if t.tag in keep and _has_hangul(t.form):
            out.append((t.start, t.form))
        if (
            prev is not None
            and prev.tag == "SN"
            and t.tag in units
            and prev.start + prev.len == t.start
        ):
            out.append((prev.start, prev.form + t.form))
        prev = t
    return out
