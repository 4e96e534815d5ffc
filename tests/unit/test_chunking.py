"""Chunker and split_sentences with small fake tokenizers (and the real one when available)."""

from __future__ import annotations

import importlib.util
import itertools
import random
import re

import pytest

from snaprag.ingest.chunking import Chunker, split_sentences
from snaprag.types import Chunk, Document, Section

# --------------------------------------------------------------------------- fake tokenizers

_WORD = re.compile(r"\S+")


def word_count(texts):
    """One token per whitespace-separated word."""
    return [len(_WORD.findall(t)) for t in texts]


def word_offsets(text):
    return [m.span() for m in _WORD.finditer(text)]


def char_count(texts):
    """One token per non-space character (a stand-in for scripts without spaces)."""
    return [sum(not ch.isspace() for ch in t) for t in texts]


def char_offsets(text):
    return [(i, i + 1) for i, ch in enumerate(text) if not ch.isspace()]


def word_chunker(max_tokens: int, overlap: int) -> Chunker:
    return Chunker(word_count, word_offsets, max_tokens=max_tokens, overlap=overlap)


def char_chunker(max_tokens: int, overlap: int) -> Chunker:
    return Chunker(char_count, char_offsets, max_tokens=max_tokens, overlap=overlap)


# --------------------------------------------------------------------------- helpers


def make_doc(*sections: str | tuple[str, int | None], doc_id: str = "doc") -> Document:
    secs = tuple(Section(s) if isinstance(s, str) else Section(s[0], s[1]) for s in sections)
    return Document(doc_id=doc_id, source="src/file.txt", type="text", title="T", sections=secs)


_counter = iter(range(10**9))


def sentence(n_words: int, end: str = ".") -> str:
    """A sentence of ``n_words`` unique words, so every chunk text is unambiguous."""
    words = [f"w{next(_counter)}" for _ in range(n_words)]
    words[0] = words[0].capitalize()
    return " ".join(words) + end


def random_text(rng: random.Random, n_sentences: int, lo: int, hi: int) -> str:
    paras: list[list[str]] = [[]]
    for _ in range(n_sentences):
        paras[-1].append(sentence(rng.randint(lo, hi), rng.choice(".!?")))
        if rng.random() < 0.15:
            paras.append([])
    return "\n\n".join(" ".join(p) for p in paras if p)


def section_spans(doc: Document) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for s in doc.sections:
        spans.append((pos, pos + len(s.text)))
        pos += len(s.text) + 2
    return spans


def units_in(chunk: Chunk) -> int:
    """Sentence units packed into a chunk (chunks start and end on unit boundaries)."""
    return len(split_sentences(chunk.text))


def assert_within_budget(chunks: list[Chunk], count, max_tokens: int) -> None:
    for c in chunks:
        tokens = count([c.text])[0]
        seams = max(0, units_in(c) - 1)
        assert tokens + seams <= max_tokens, (c.seq, tokens, seams, c.text)


def assert_offsets(doc: Document, chunks: list[Chunk]) -> None:
    text = doc.text
    for c in chunks:
        assert 0 <= c.char_start < c.char_end <= len(text)
        assert text[c.char_start : c.char_end] == c.text
        assert c.text == c.text.strip()


def section_of(doc: Document, chunk: Chunk) -> int:
    for i, (s, e) in enumerate(section_spans(doc)):
        if s <= chunk.char_start and chunk.char_end <= e:
            return i
    raise AssertionError(f"chunk {chunk.seq} crosses a section boundary: {chunk.text!r}")


# --------------------------------------------------------------------------- split_sentences


def test_split_sentences_latin_punctuation_and_quotes():
    text = 'First one. Second? Third! He said "stop." Then (really.) done'
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "First one.",
        "Second?",
        "Third!",
        'He said "stop."',
        "Then (really.)",
        "done",
    ]


def test_split_sentences_line_breaks_and_trimming():
    text = "  line one\nline two.   Three\n\n\n  four  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["line one", "line two.", "Three", "four"]
    for s, e in spans:
        assert not text[s].isspace() and not text[e - 1].isspace()


def test_split_sentences_needs_space_after_period():
    # decimals, versions and abbreviations without a following space stay whole
    text = "Version 3.14 of e.g.this file. Next"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Version 3.14 of e.g.this file.",
        "Next",
    ]


def test_split_sentences_korean_with_spaces():
    text = "안녕하세요. 반갑습니다! 오늘 날씨는 어떤가요? 좋아요…  끝"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "안녕하세요.",
        "반갑습니다!",
        "오늘 날씨는 어떤가요?",
        "좋아요…",
        "끝",
    ]


def test_split_sentences_abbreviations_and_numbers():
    text = (
        "Dr. Smith met Mr. Jones at 5 p.m. today. They talked, e.g. about work. It cost 42. Done."
    )
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Dr. Smith met Mr. Jones at 5 p.m. today.",
        "They talked, e.g. about work.",
        "It cost 42.",
        "Done.",
    ]
    text = "1. First item here. Second sentence."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "1. First item here.",
        "Second sentence.",
    ]


def test_split_sentences_wrapped_lines_headings_and_lists():
    long_line = "This long line of a PDF paragraph was wrapped by the layout engine and"
    assert len(long_line) >= 50
    text = f"{long_line}\ncontinues here. Next one."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        f"{long_line}\ncontinues here.",
        "Next one.",
    ]
    text = f"Short heading\n{long_line}\n- a list item\n- another"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Short heading",
        long_line,
        "- a list item",
        "- another",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_split_sentences_blank(text):
    assert split_sentences(text) == []


def test_split_sentences_cjk_full_stop_without_space():
    text = "今日は晴れ。明日は雨！本当？"
    assert [text[s:e] for s, e in split_sentences(text)] == ["今日は晴れ。", "明日は雨！", "本当？"]


# --------------------------------------------------------------------------- budget


@pytest.mark.parametrize("max_tokens", [8, 16, 40, 256])
@pytest.mark.parametrize("seed", range(4))
def test_chunks_fit_budget_without_overlap(max_tokens, seed):
    rng = random.Random(seed)
    doc = make_doc(random_text(rng, 60, 1, 30), random_text(rng, 20, 1, 12))
    chunks = word_chunker(max_tokens, 0).chunk(doc)
    assert chunks
    assert_within_budget(chunks, word_count, max_tokens)
    assert_offsets(doc, chunks)


@pytest.mark.parametrize("seed", range(4))
def test_chunks_fit_budget_with_overlap_short_sentences(seed):
    # every sentence fits next to a full overlap tail, so the budget must always hold
    max_tokens, overlap = 24, 8
    rng = random.Random(seed)
    doc = make_doc(random_text(rng, 80, 1, max_tokens - overlap - 2))
    chunks = word_chunker(max_tokens, overlap).chunk(doc)
    assert_within_budget(chunks, word_count, max_tokens)


def test_overlap_tail_plus_long_sentence_stays_within_budget():
    # A(3) B(3) C(2) D(9), max 10, overlap 4: the chunk after [B, C] is [C, D] = 11 tokens
    text = "a0 a1 aend. b0 b1 bend. c0 cend. d0 d1 d2 d3 d4 d5 d6 d7 dend."
    chunks = word_chunker(10, 4).chunk(make_doc(text))
    assert_within_budget(chunks, word_count, 10)


def test_single_long_sentence_split_at_word_offsets():
    words = [f"tok{i}" for i in range(50)]
    text = " ".join(words)  # no terminal punctuation: one 50-token sentence
    doc = make_doc(text)
    chunks = word_chunker(16, 4).chunk(doc)
    # windows keep 2 tokens of margin: a cut inside a word may recount one token longer
    assert [word_count([c.text])[0] for c in chunks] == [14, 14, 14, 8]
    assert [w for c in chunks for w in c.text.split()] == words  # no word cut, none repeated
    assert_offsets(doc, chunks)


def test_long_sentence_between_short_ones():
    long = " ".join(f"x{i}" for i in range(30)) + "."
    text = f"Short one. {long} Short two."
    doc = make_doc(text)
    chunks = word_chunker(12, 0).chunk(doc)
    assert_within_budget(chunks, word_count, 12)
    assert_offsets(doc, chunks)
    joined = " ".join(c.text for c in chunks)
    assert joined.split() == text.split()


# --------------------------------------------------------------------------- Korean / char-level


def test_korean_without_spaces_split_at_token_offsets():
    text = "가나다라마바사아자차카타파하" * 7  # 98 characters, no space, no punctuation
    doc = make_doc(text)
    chunks = char_chunker(16, 4).chunk(doc)
    assert [len(c.text) for c in chunks] == [14] * 7
    assert "".join(c.text for c in chunks) == text  # contiguous, nothing repeated
    assert_offsets(doc, chunks)
    assert_within_budget(chunks, char_count, 16)


def test_korean_sentences_packed_by_char_tokens():
    sents = ["안녕하세요.", "오늘은 날씨가 좋습니다.", "산책을 갑시다!", "내일 또 만나요?"]
    text = " ".join(sents)
    doc = make_doc(text)
    chunks = char_chunker(20, 0).chunk(doc)
    assert_within_budget(chunks, char_count, 20)
    assert_offsets(doc, chunks)
    # chunks start and end on sentence boundaries
    for c in chunks:
        assert any(c.text.startswith(s) for s in sents)
        assert any(c.text.endswith(s) for s in sents)
    assert " ".join(c.text for c in chunks) == text


def test_korean_long_sentence_with_spaces_cut_at_char_tokens():
    text = "한국어 문장은 띄어쓰기가 있어도 아주 길게 이어질 수 있습니다 " * 6
    doc = make_doc(text.strip())
    chunks = char_chunker(20, 0).chunk(doc)
    assert_within_budget(chunks, char_count, 20)
    assert_offsets(doc, chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


# --------------------------------------------------------------------------- overlap


@pytest.mark.parametrize("seed", range(5))
def test_overlap_repeats_trailing_whole_sentences(seed):
    max_tokens, overlap = 30, 10
    rng = random.Random(seed)
    text = random_text(rng, 60, 1, 9)
    doc = make_doc(text)
    chunks = word_chunker(max_tokens, overlap).chunk(doc)
    sentence_starts = {s for s, _ in split_sentences(text)}
    overlapped = 0
    for prev, nxt in itertools.pairwise(chunks):
        # progress: never the same chunk again, never a chunk inside the previous one
        assert nxt.char_start > prev.char_start
        assert nxt.char_end > prev.char_end
        if nxt.char_start < prev.char_end:
            overlapped += 1
            assert nxt.char_start in sentence_starts
            shared = text[nxt.char_start : prev.char_end]
            assert prev.text.endswith(shared) and nxt.text.startswith(shared)
            assert shared.endswith(tuple(".!?"))  # whole sentences only
            n_units = len(split_sentences(shared))
            assert word_count([shared])[0] + n_units <= overlap
    assert overlapped > 0


def test_overlap_zero_gives_disjoint_chunks():
    rng = random.Random(7)
    doc = make_doc(random_text(rng, 60, 1, 9))
    chunks = word_chunker(20, 0).chunk(doc)
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start >= prev.char_end


def test_overlap_never_repeats_a_whole_chunk():
    # "Tiny one." alone fills the first chunk and fits the overlap budget, but repeating it
    # would make the next chunk contain the whole previous chunk
    long = sentence(9)
    text = f"Tiny one. {long}"
    chunks = word_chunker(10, 8).chunk(make_doc(text))
    assert [c.text for c in chunks] == ["Tiny one.", long]


def test_overlap_tail_example():
    a, b, c, d = sentence(3), sentence(3), sentence(3), sentence(3)
    text = " ".join([a, b, c, d])
    chunks = word_chunker(12, 4).chunk(make_doc(text))
    # each chunk holds three 3-word sentences (+1 per seam = 12); the tail repeats one
    assert [ch.text for ch in chunks] == [f"{a} {b} {c}", f"{c} {d}"]


# --------------------------------------------------------------------------- offsets, pages


def test_offsets_match_document_text_across_sections():
    rng = random.Random(3)
    doc = make_doc(
        (random_text(rng, 15, 1, 10), 1),
        (random_text(rng, 15, 1, 10), 2),
        ("", 3),
        (random_text(rng, 3, 1, 4), 4),
    )
    chunks = word_chunker(16, 5).chunk(doc)
    assert_offsets(doc, chunks)


def test_chunks_never_cross_pages_and_carry_the_page():
    rng = random.Random(11)
    pages = [(random_text(rng, rng.randint(1, 12), 1, 8), p) for p in range(1, 8)]
    doc = make_doc(*pages)
    chunks = word_chunker(64, 8).chunk(doc)
    seen_pages = []
    for c in chunks:
        i = section_of(doc, c)
        assert c.page == doc.sections[i].page
        seen_pages.append(c.page)
    assert seen_pages == sorted(seen_pages)
    assert set(seen_pages) == set(range(1, 8))  # short pages are not merged into others


def test_short_pages_stay_separate_even_when_they_would_fit():
    doc = make_doc(("One.", 1), ("Two.", 2), ("Three.", None))
    chunks = word_chunker(256, 32).chunk(doc)
    assert [(c.text, c.page) for c in chunks] == [("One.", 1), ("Two.", 2), ("Three.", None)]
    assert_offsets(doc, chunks)


def test_section_text_with_inner_blank_lines():
    doc = make_doc(("Alpha one.\n\nAlpha two.", 1), ("\n\nBeta one.\n\n", 2))
    chunks = word_chunker(256, 0).chunk(doc)
    assert [(c.text, c.page) for c in chunks] == [("Alpha one.\n\nAlpha two.", 1), ("Beta one.", 2)]
    assert_offsets(doc, chunks)


# --------------------------------------------------------------------------- paragraphs


def test_paragraph_without_punctuation_is_its_own_unit():
    text = "A heading line\n\nBody one. Body two.\n\n\n   \nClosing words"
    doc = make_doc(text)
    chunks = word_chunker(4, 0).chunk(doc)
    assert [c.text for c in chunks] == ["A heading line", "Body one.", "Body two.", "Closing words"]
    assert_offsets(doc, chunks)


def test_paragraphs_are_packed_together_when_they_fit():
    text = "First para here.\n\nSecond para here."
    chunks = word_chunker(256, 0).chunk(make_doc(text))
    assert [c.text for c in chunks] == [text]


def test_chunks_start_on_sentence_or_paragraph_starts():
    rng = random.Random(5)
    text = random_text(rng, 50, 1, 10)
    chunks = word_chunker(20, 6).chunk(make_doc(text))
    starts = {s for s, _ in split_sentences(text)}
    ends = {e for _, e in split_sentences(text)}
    for c in chunks:
        assert c.char_start in starts
        assert c.char_end in ends


# --------------------------------------------------------------------------- edge cases


def test_empty_sections_produce_no_chunks():
    doc = make_doc(("", 1), ("Hello world.", 2), ("   ", 3), ("\n\n", 4), ("Bye now.", 5), ("", 6))
    chunks = word_chunker(32, 4).chunk(doc)
    assert [(c.text, c.page, c.seq) for c in chunks] == [("Hello world.", 2, 0), ("Bye now.", 5, 1)]
    assert_offsets(doc, chunks)


def test_document_without_sections_or_text():
    assert word_chunker(32, 4).chunk(make_doc()) == []
    assert word_chunker(32, 4).chunk(make_doc("", "  \n ")) == []


def test_deterministic_output():
    rng = random.Random(21)
    doc = make_doc(*[(random_text(rng, 20, 1, 15), p) for p in range(1, 4)])
    first = word_chunker(24, 6).chunk(doc)
    assert first == word_chunker(24, 6).chunk(doc)
    assert first == word_chunker(24, 6).chunk(doc)


def test_seq_numbering_and_metadata():
    rng = random.Random(2)
    doc = make_doc(*[(random_text(rng, 10, 1, 8), p) for p in range(1, 5)], doc_id="my-doc")
    chunks = word_chunker(16, 4).chunk(doc)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert len(chunks) > 4
    for c in chunks:
        assert (c.doc_id, c.source, c.title) == ("my-doc", "src/file.txt", "T")
        assert c.id == f"my-doc#{c.seq}"


# --------------------------------------------------------------------------- real tokenizer


@pytest.fixture(scope="module")
def real_embedder():
    from snaprag.config import default_cache_dir
    from snaprag.embed.models import PRESETS
    from snaprag.embed.onnx_embedder import OnnxEmbedder

    cache = default_cache_dir()
    converted = any((cache / "models").glob("minilm-*/tokenizer.json"))
    if not converted and importlib.util.find_spec(PRESETS["minilm"].module) is None:
        pytest.skip("the minilm model is neither cached nor installed (no downloads in tests)")
    try:
        emb = OnnxEmbedder("minilm", cache)
        emb.count_tokens(["probe"])
    except Exception as exc:  # model resolution failed: not what these tests check
        pytest.skip(f"minilm tokenizer unavailable: {exc}")
    return emb


PROSE = " ".join(
    f"Sentence number {i} is about retrieval-augmented generation, BM25 and tokenizers."
    for i in range(40)
)


def test_real_tokenizer_prose_fits_budget(real_embedder):
    emb = real_embedder
    doc = make_doc((PROSE, 1), ("Short tail here. Another one.", 2))
    for overlap in (0, 16):
        chunks = Chunker(emb.count_tokens, emb.token_offsets, max_tokens=64, overlap=overlap).chunk(
            doc
        )
        assert len(chunks) > 3
        assert_offsets(doc, chunks)
        assert_within_budget(chunks, emb.count_tokens, 64)
        assert [c.page for c in chunks][-1] == 2


def test_real_tokenizer_long_sentence_windows(real_embedder):
    emb = real_embedder
    long = " ".join(["internationalization and uncharacteristically long words"] * 40)
    doc = make_doc((long, 1))
    chunks = Chunker(emb.count_tokens, emb.token_offsets, max_tokens=64, overlap=8).chunk(doc)
    assert len(chunks) > 3
    assert_offsets(doc, chunks)
    # every window holds at most 64 tokens of the sentence's own tokenization
    offsets = emb.token_offsets(long)
    for c in chunks:
        inside = [o for o in offsets if c.char_start <= o[0] and o[1] <= c.char_end]
        assert 0 < len(inside) <= 64
    # windows tile the sentence: together they cover every token exactly once
    covered = sorted(o for c in chunks for o in offsets if c.char_start <= o[0] < c.char_end)
    assert covered == sorted(offsets)


def test_real_tokenizer_long_sentence_windows_fit_on_recount(real_embedder):
    emb = real_embedder
    long = (
        " ".join(
            [
                "Internationalization, counterrevolutionaries and uncharacteristically "
                "antidisestablishmentarianism"
            ]
            * 40
        )
        + "."
    )
    chunks = Chunker(emb.count_tokens, emb.token_offsets, max_tokens=64, overlap=0).chunk(
        make_doc(long)
    )
    assert max(emb.count_tokens([c.text for c in chunks])) <= 64


def test_wrapped_korean_and_comma_lines_are_one_sentence() -> None:
    """A Korean line wrapped at 30 syllables (as wide as 60 letters) and a line ending in
    a comma continue on the next line; an answer quoting only the second half of such a
    sentence stated the wrong fact (the handset's 3 years for the frame's 7)."""
    from snaprag.ingest.chunking import split_sentences

    line1, line2 = (
        "이 책상의 프레임 보증 기간은 7년이고, 컨트롤 박스와",
        "핸드셋은 3년 동안 보증합니다.",
    )
    text = f"제품 안내\n\n{line1}\n{line2}\n"
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == [
        "제품 안내",
        "이 책상의 프레임 보증 기간은 7년이고, 컨트롤 박스와\n핸드셋은 3년 동안 보증합니다.",
    ]
    short = "Covered for seven years,\nthe motors for five.\n- one\n- two"
    got = [short[a:b] for a, b in split_sentences(short)]
    assert got == ["Covered for seven years,\nthe motors for five.", "- one", "- two"]
