"""Every text path runs in time linear in its input, whatever the input holds.

Each case is a megabyte or two of the repetition that once took quadratic time (a search
pattern retried at every character of a long run); at that size quadratic time would take
hours, so the tests assert only that the work finishes within the timeout, never a time.

The rewritten scanners must find exactly what the patterns they replace found: those
patterns are kept here as references and compared on many short random strings.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from snaprag.cache.normalize import normalize_query
from snaprag.cache.semantic import QueryFeatures
from snaprag.generate.citations import cited_numbers
from snaprag.generate.context import build_context
from snaprag.generate.extractive import ExtractiveAnswerer
from snaprag.generate.prompts import detect_language
from snaprag.index.tokenize import tokenize
from snaprag.ingest.chunking import split_sentences
from snaprag.ingest.loaders import HtmlLoader, MarkdownLoader, TextLoader
from snaprag.ingest.loaders import html as html_loader
from snaprag.ingest.loaders import markdown as md
from snaprag.ingest.loaders._text import normalize_text
from snaprag.types import Hit

MB = 1_000_000


def _repeat(unit: str, size: int = MB) -> str:
    return unit * (size // len(unit))


# --------------------------------------------------------------------------- queries


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("head", "run", "tail", "expected_end"),
    [
        ("", "?", "a", "?a"),  # a run that the trailing strip must not retry
        ("a", "? ", "", "a"),
        ("a", " ", "b", "a b"),
        ("", "¿", "a", "a"),
        ("a", "。 ", "b", "。 b"),
    ],
)
def test_normalize_query_long_runs(head: str, run: str, tail: str, expected_end: str) -> None:
    assert normalize_query(head + _repeat(run, 2 * MB) + tail).endswith(expected_end)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["?", "a", "an't ", "1,", "1.", "not ", "_a", "[-", "what "])
def test_semantic_guard_features_long_runs(unit: str) -> None:
    features = QueryFeatures.of(normalize_query(_repeat(unit) + "a"))
    assert isinstance(features.words, tuple)


def _old_normalize_query(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([?!.,;:])", r"\1", text)
    text = re.sub(r"^[\s¿¡]+", "", text)
    return re.sub(r"[\s?!.。,;:…·~]+$", "", text)


def test_normalize_query_matches_the_pattern_it_replaces() -> None:
    rng = random.Random(3)
    alphabet = list("ab ?!.。,;:…·~¿¡\t\n\u3000\u00a0？！가")
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert normalize_query(text) == _old_normalize_query(text), repr(text)


# --------------------------------------------------------------------------- loaders


@pytest.mark.timeout(60)
def test_text_with_a_long_run_of_spaces(tmp_path: Path) -> None:
    data = ("a" + " " * (2 * MB) + "b\n").encode()
    (doc,) = TextLoader().load(tmp_path / "spaces.txt", data)
    assert doc.text.startswith("a ") and doc.text.endswith(" b")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("middle", ["&nbsp;", "<b> </b>", "<td> </td>", " <br> "])
def test_html_long_line_of_spaces(tmp_path: Path, middle: str) -> None:
    data = ("<p>a" + _repeat(middle, 2 * MB if middle == "&nbsp;" else MB // 2) + "b</p>").encode()
    (doc,) = HtmlLoader().load(tmp_path / "nbsp.html", data)
    assert doc.text.startswith("a") and doc.text.endswith("b")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "line",
    [
        "*a ",  # emphasis openers that nothing closes
        "_a ",
        "**a ",
        "~~a ",
        "` a",  # code spans
        "`` a `",
        "`",
        "[a ",  # link text that no "](" follows
        "![a ",
        "[a](",
        "[a][",
        "<http:",
        "<!--",
        "<a ",
        "\\*",
    ],
)
def test_markdown_long_line(tmp_path: Path, line: str) -> None:
    data = ("x " + _repeat(line) + "end").encode()  # "x ": not a fence or heading
    (doc,) = MarkdownLoader().load(tmp_path / "line.md", data)
    assert doc.text.endswith("end")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("head", "run", "tail"),
    [
        ("# a", " ", "b"),  # a heading with a long run of spaces
        ("# a", " ", "#"),
        ("---\ntitle: a", " ", "b\n---\nbody"),  # front matter title
        ("", "> ", "quote"),
        ("- ", "- ", "item"),
        ("| ", "-|", "\n\nbody"),
    ],
)
def test_markdown_long_block_lines(head: str, run: str, tail: str) -> None:
    _, text = md.markdown_to_text(head + _repeat(run) + tail)
    assert text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("run", [" ", "\t ", "\x01 ", "\x02 "])
def test_html_layout_long_runs(run: str) -> None:
    assert html_loader._layout("a" + _repeat(run, 2 * MB) + "b").startswith("a")


# --------------------------------------------------------------------------- sentences


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("head", "run", "tail"),
    [
        ("", "J. ", ""),  # initials: one sentence that runs on through every full stop
        (" " * MB, "1. ", ""),  # list numbers after a long indent
        ("", "e.g. ", ""),
        ("", ". ", ""),
        ("", '."', ""),
        ("", "。", ""),
        ("a", " ", "b."),
    ],
    ids=["initials", "indented-numbers", "eg", "stops", "quoted-stops", "cjk-stops", "spaces"],
)
def test_split_sentences_long_inputs(head: str, run: str, tail: str) -> None:
    # initials once cost a copy of the sentence so far each: 8 MB makes that hours
    size = 8 * MB if run == "J. " else MB
    spans = split_sentences(head + _repeat(run, size) + tail)
    assert spans and all(s < e for s, e in spans)


# --------------------------------------------------------------------------- answers


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["[1,", "[1-", "[ ", "【1", "[1][2]"])
def test_citations_long_inputs(unit: str) -> None:
    assert isinstance(cited_numbers(_repeat(unit)), list)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["a ", "_a", "\t]", "보증 ", "iPhone "])
def test_language_detection_long_inputs(unit: str) -> None:
    assert detect_language(_repeat(unit)) in ("en", "ko")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["a", "ab ", "_a", "n't ", "?"])
def test_tokenize_long_inputs(unit: str) -> None:
    assert isinstance(tokenize(_repeat(unit, 2 * MB)), list)


class _ConstantEmbedder:
    """Every text maps to the same unit vector: only the text handling is under test."""

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32) / 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["J. ", " ", "Warranty covers the frame", "1. "])
def test_extractive_answer_long_hit(unit: str) -> None:
    text = "The frame has a warranty. " + _repeat(unit) + " It lasts two years."
    hit = Hit("c1", "d1", "/docs/manual.txt", None, 1.0, text)
    answer = ExtractiveAnswerer(_ConstantEmbedder()).answer("frame warranty?", [hit])  # type: ignore[arg-type]
    assert answer.text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["Abc def. ", "J. ", "Abc def "])
def test_context_trims_a_long_chunk(unit: str) -> None:
    """A chunk far over the budget is trimmed to its leading sentences without measuring
    every prefix (each as long as the chunk so far)."""
    hit = Hit("c1", "d1", "/docs/manual.txt", None, 1.0, _repeat(unit, 2 * MB))
    context = build_context([hit], lambda texts: [len(t) // 4 + 1 for t in texts], budget=500)
    assert 0 < context.tokens <= 500 and context.sources[0].trimmed


def test_context_trim_is_the_same_by_batch_or_by_search(monkeypatch: pytest.MonkeyPatch) -> None:
    from snaprag.generate import context as context_module

    def count(texts: list[str]) -> list[int]:
        return [len(t.split()) + 3 for t in texts]

    for sentences in (3, 10, 65, 300):
        text = " ".join(f"Sentence number {i} is here." for i in range(sentences))
        hit = Hit("c1", "d1", "/docs/manual.txt", None, 1.0, text)
        for budget in (5, 12, 40, 333):
            got = []
            for batched in (0, 10_000):
                monkeypatch.setattr(context_module, "_BATCHED_PREFIXES", batched)
                got.append(build_context([hit], count, budget))
            assert got[0] == got[1], (sentences, budget)


# --------------------------------------------------------------------------- references

# the patterns the markdown scanners replace
_REFERENCE_INLINE = [
    (md._STRONG.sub, r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2"),
    (md._EM_STAR.sub, r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1"),
    (md._EM_UNDER.sub, r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", r"\1"),
    (md._STRIKE.sub, r"~~(?=\S)(.+?)(?<=\S)~~", r"\1"),
    (lambda t: md._bracketed(t, "![", 0, "(", ")"), r"!\[([^\]]*)\]\([^)]*\)", r"\1"),
    (lambda t: md._bracketed(t, "[", 1, "(", ")"), r"\[([^\]]+)\]\([^)]*\)", r"\1"),
    (lambda t: md._bracketed(t, "[", 1, "[", "]"), r"\[([^\]]+)\]\[[^\]]*\]", r"\1"),
    (md._autolinks, r"<((?:https?|ftp|mailto):[^>\s]+)>", r"\1"),
    (md._drop_html_comments, r"(?s)<!--.*?-->", ""),
    (lambda t: md._code_spans(t, lambda c: f"<{c}>"), r"(`+)(.+?)\1", r"<\2>"),
]
_MD_ALPHABETS = ["` a\n", "*a _\n", "_a *", "~ a", "[]()a !\n", "[]a ", "<http:> a", "`*_ a\\"]
_MD_PIECES = ["**", "__", "~~", "```", "<!--", "-->", "http:", "<", ">", "a", " ", "\n", "`"]


def _random_markup(rng: random.Random) -> str:
    if rng.random() < 0.5:
        alphabet = list(rng.choice(_MD_ALPHABETS))
    else:
        alphabet = _MD_PIECES + list("*_[]()!#:\t-")
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))


@pytest.mark.parametrize(("scan", "pattern", "template"), _REFERENCE_INLINE)
def test_markdown_scanners_match_their_patterns(scan, pattern: str, template: str) -> None:
    rng = random.Random(pattern)
    compiled = re.compile(pattern)
    for _ in range(6000):
        text = _random_markup(rng)
        assert scan(text) == compiled.sub(template, text), repr(text)


def test_markdown_headings_and_front_title_match_their_patterns() -> None:
    atx = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
    title = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
    rng = random.Random(11)
    pieces = ["#", "#", " ", "\t", "a", "b", "title:", "\n", "  "]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        line = text.replace("\n", "")
        found = atx.match(line)
        want = (len(found.group(1)), found.group(2) or "") if found else None
        assert md._atx_heading(line) == want, repr(line)
        found = title.search(text)
        want_title = " ".join(found.group(1).split()) if found else ""
        assert " ".join(md._front_title(text).split()) == want_title, repr(text)


def test_html_layout_patterns_match_the_ones_they_replace() -> None:
    old_breaks = re.compile(r"[ \t]*[\x02\x03\x07][\x02\x03\x07 \t]*")
    old_cells = re.compile(r"[ \t]*(?:\x01[ \t]*)+")
    rng = random.Random(5)
    alphabet = list(" \t\x01\x02\x03\x07a")
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for new, old in ((html_loader._BREAKS_RE, old_breaks), (html_loader._CELLS_RE, old_cells)):
            assert [m.span() for m in new.finditer(text)] == [
                m.span() for m in old.finditer(text)
            ], repr(text)


def test_normalize_text_strips_trailing_spaces_as_before() -> None:
    old = re.compile(r"[ \t\u00a0\u3000]+$", re.MULTILINE)
    rng = random.Random(9)
    alphabet = list(" \t\u00a0\u3000\na")
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        expected = re.sub(r"\n{3,}", "\n\n", old.sub("", text)).strip("\n").rstrip()
        assert normalize_text(text) == expected, repr(text)
