"""Context builder: dedupe, score order, numbering, sentence trimming, the token budget."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from snaprag.generate.context import SEPARATOR, build_context, dedupe, render_block
from snaprag.types import Hit

WARRANTY = (
    "The frame and the lifting motors are covered for seven years. Electronics such as the "
    "control box and handset are covered for three years. The desktop surface is covered "
    "for two years. Keep your order confirmation as proof of the delivery date."
)
RESET = (
    "Hold the DOWN button for ten seconds until you hear a beep. The desk then lowers "
    "slowly to its lowest position. Release the button and wait for a second beep."
)
ASSEMBLY = "Assembly takes about thirty minutes with two people."


def hit(n: int, text: str, score: float, page: int | None = None, source: str = "") -> Hit:
    return Hit(
        id=f"doc{n}#0",
        doc_id=f"doc{n}",
        source=source or f"/docs/file{n}.pdf",
        page=page,
        score=score,
        text=text,
    )


def words(texts: Sequence[str]) -> list[int]:
    """A whitespace tokenizer: exact and easy to reason about in the logic tests."""
    return [len(t.split()) for t in texts]


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    """A real byte-level BPE tokenizer, trained here on a little text (no files needed).

    Its counts are not additive over concatenation (merges across joins), as with the
    tokenizers of real LLMs, so the final whole-text measurement matters.
    """
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["[UNK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([WARRANTY, RESET, ASSEMBLY] * 10, trainer)
    return tok


def bpe_counter(tok: Tokenizer):
    def count(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(list(texts))]

    return count


# --------------------------------------------------------------------------- dedupe, order


def test_dedupe_drops_repeats_and_contained_text() -> None:
    hits = [
        hit(1, WARRANTY, 0.9),
        hit(2, "  the FRAME and the lifting motors are covered   for seven years. ", 0.8),
        hit(1, WARRANTY, 0.7),  # the same chunk id again
        hit(3, RESET, 0.6),
        hit(4, RESET.upper(), 0.5),  # same text, other case and id
    ]
    kept, dropped = dedupe(hits)
    assert [h.doc_id for h in kept] == ["doc1", "doc3"]
    assert dropped == 3


def test_longer_lower_scored_chunk_is_kept() -> None:
    # a later chunk that contains a kept one adds text: it stays
    kept, dropped = dedupe([hit(1, ASSEMBLY, 0.9), hit(2, ASSEMBLY + " " + RESET, 0.5)])
    assert [h.doc_id for h in kept] == ["doc1", "doc2"] and dropped == 0


def test_sources_numbered_in_score_order() -> None:
    hits = [hit(1, RESET, 0.2), hit(2, WARRANTY, 0.9, page=3), hit(3, ASSEMBLY, 0.5)]
    ctx = build_context(hits, words, budget=10_000)
    assert [s.hit.doc_id for s in ctx.sources] == ["doc2", "doc3", "doc1"]
    assert [s.n for s in ctx.sources] == [1, 2, 3]
    assert ctx.text.startswith("[1] file2.pdf, p. 3\n" + WARRANTY)
    assert "\n\n[2] file3.pdf\n" + ASSEMBLY in ctx.text
    assert not any(s.trimmed for s in ctx.sources)
    assert ctx.left_out == 0 and ctx.duplicates == 0
    assert ctx.tokens == words([ctx.text])[0]
    assert ctx.source(2) is ctx.sources[1] and ctx.source(0) is None and ctx.source(4) is None


def test_korean_page_label() -> None:
    ctx = build_context([hit(1, "보증 기간은 7년입니다.", 0.9, page=2)], words, 100, "{page}쪽")
    assert ctx.text.startswith("[1] file1.pdf, 2쪽\n")


# --------------------------------------------------------------------------- budget, trimming


def test_long_chunk_trimmed_at_sentence_boundary() -> None:
    first = render_block(1, hit(1, ASSEMBLY, 0.9), ASSEMBLY)
    # room for the first block, the separator and the header plus about two sentences
    budget = words([first])[0] + 3 + 25
    ctx = build_context([hit(1, ASSEMBLY, 0.9), hit(2, WARRANTY, 0.8)], words, budget)
    assert len(ctx.sources) == 2
    second = ctx.sources[1]
    assert second.trimmed
    assert WARRANTY.startswith(second.text) and second.text != WARRANTY
    assert second.text.endswith("years.")  # a whole sentence, never a cut word
    assert ctx.tokens <= budget


def test_chunk_whose_first_sentence_does_not_fit_is_skipped() -> None:
    long_sentence = "word " * 60 + "end."
    hits = [hit(1, ASSEMBLY, 0.9), hit(2, long_sentence, 0.8), hit(3, "Short fact here.", 0.7)]
    ctx = build_context(hits, words, budget=30)
    assert [s.hit.doc_id for s in ctx.sources] == ["doc1", "doc3"]
    assert [s.n for s in ctx.sources] == [1, 2]  # numbering has no gap
    assert ctx.left_out == 1


def test_best_chunk_cut_at_a_word_when_no_sentence_fits() -> None:
    # with nothing else in the context, the best source is cut rather than left out
    long_sentence = " ".join(f"w{i}" for i in range(200)) + "."
    ctx = build_context([hit(1, long_sentence, 0.9)], words, budget=40)
    assert len(ctx.sources) == 1
    source = ctx.sources[0]
    assert source.trimmed and source.text.endswith(" …")
    assert long_sentence.startswith(source.text[:-2])
    assert 30 <= ctx.tokens <= 40


def test_zero_budget_and_no_hits() -> None:
    assert build_context([hit(1, ASSEMBLY, 0.9)], words, 0).sources == ()
    empty = build_context([], words, 100)
    assert empty.sources == () and empty.text == "" and empty.tokens == 0


@pytest.mark.parametrize("budget", [25, 40, 60, 90, 130, 200, 400])
def test_budget_holds_with_a_real_tokenizer(bpe: Tokenizer, budget: int) -> None:
    count = bpe_counter(bpe)
    hits = [
        hit(1, WARRANTY, 0.9, page=1),
        hit(2, RESET, 0.8),
        hit(3, ASSEMBLY + " " + RESET, 0.7),
        hit(4, WARRANTY, 0.6),  # duplicate
    ]
    ctx = build_context(hits, count, budget)
    measured = count([ctx.text])[0] if ctx.text else 0
    assert measured == ctx.tokens
    assert measured <= budget
    # the best source always makes it (whole or cut to fit); blocks are joined by the
    # separator only
    assert ctx.sources and ctx.sources[0].hit.doc_id == "doc1"
    assert ctx.text.count(SEPARATOR) == len(ctx.sources) - 1
    for source in ctx.sources:
        original = source.hit.text.strip()
        if source.trimmed:
            assert original.startswith(source.text.removesuffix(" …"))
        else:
            assert source.text == original


def test_big_budget_takes_everything_with_a_real_tokenizer(bpe: Tokenizer) -> None:
    count = bpe_counter(bpe)
    hits = [hit(1, WARRANTY, 0.9), hit(2, RESET, 0.8), hit(3, ASSEMBLY, 0.7)]
    ctx = build_context(hits, count, 10_000)
    assert len(ctx.sources) == 3 and not any(s.trimmed for s in ctx.sources)
    assert ctx.tokens == count([ctx.text])[0]


def test_contained_chunk_is_kept_when_the_containing_one_was_trimmed() -> None:
    filler = " ".join(
        f"Filler sentence number {i} says nothing at all about any of the desk parts here."
        for i in range(20)
    )  # 15 words a sentence: trimming to whole sentences leaves room for a short chunk
    big = hit(1, filler + " The warranty is seven years.", 0.9)
    small = hit(2, "The warranty is seven years.", 0.8)
    ctx = build_context([big, small], words, budget=40)
    assert "seven years" in ctx.text  # the trimmed big chunk lost it, the small one adds it
    assert ctx.duplicates == 0
    whole = build_context([big, small], words, budget=1000)
    assert whole.duplicates == 1 and len(whole.sources) == 1  # contained: dropped
